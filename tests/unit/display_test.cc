#include "labctl/base/display.h"

#include <gtest/gtest.h>

#include <string>

namespace labctl {
namespace {

using namespace std::string_literals;

TEST(Shown, PlainNamesAreQuotedAsTheyAre) {
  EXPECT_EQ(shown("dr-demo"), "'dr-demo'");
  EXPECT_EQ(shown(""), "''");
  EXPECT_EQ(shown("späť"), "'späť'");  // valid UTF-8 stays readable
}

TEST(Shown, ControlBytesNulAndQuotesAreVisible) {
  EXPECT_EQ(shown("eth\0x"s), "'eth\\0x'");
  EXPECT_EQ(shown("a\ab"), "'a\\ab'");  // no raw BEL reaches the terminal
  EXPECT_EQ(shown("a\nb\tc"), "'a\\nb\\tc'");
  EXPECT_EQ(shown("\x1b[31m"), "'\\x1b[31m'");
  EXPECT_EQ(shown("\x7f"), "'\\x7f'");
  EXPECT_EQ(shown("it's"), "'it\\'s'");
  EXPECT_EQ(shown("a\\b"), "'a\\\\b'");
}

TEST(Shown, InvalidUtf8IsShownByteByByte) {
  EXPECT_EQ(shown("a\xff"), "'a\\xff'");
  EXPECT_EQ(shown("\xc3"), "'\\xc3'");              // a sequence cut short
  EXPECT_EQ(shown("\xc0\xaf"), "'\\xc0\\xaf'");      // overlong '/'
  EXPECT_EQ(shown("\xed\xa0\x80"), "'\\xed\\xa0\\x80'");  // a surrogate
}

TEST(Shown, LongStringsAreCutAtACharacterAndSayTheirSize) {
  const std::string mib(1 << 20, 'x');
  const std::string s = shown(mib);
  EXPECT_EQ(s, "'" + std::string(kShownMax, 'x') + "'... (1048576 bytes)");
  // Never half a UTF-8 sequence: each 'é' is two bytes but one character.
  std::string accents;
  for (int i = 0; i < 100; ++i) accents += "é";
  const std::string a = shown(accents, 5);
  EXPECT_EQ(a, "'ééééé'... (200 bytes)");
  // Never half an escape.
  EXPECT_EQ(shown("ab\x01" "cd", 3), "'ab\\x01'... (5 bytes)");
}

TEST(PlainlyPrintable, OnlyValidUtf8WithoutControls) {
  EXPECT_TRUE(plainly_printable("dr-demo é"));
  EXPECT_FALSE(plainly_printable("a\nb"));
  EXPECT_FALSE(plainly_printable("a\0b"s));
  EXPECT_FALSE(plainly_printable("a\xff"));
}

}  // namespace
}  // namespace labctl
