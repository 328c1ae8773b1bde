#include "labctl/doctor/doctor.h"

#include <gtest/gtest.h>

namespace labctl {
namespace {

DoctorReport sample() {
  return {"6.18.0-test",
          {{"veth", "veth pairs", true, "", ""},
           {"ipip", "IPIP tunnels", false, "create an ipip tunnel: Unknown device type",
            "use the micro-VM"}}};
}

TEST(Doctor, TextReportAlignsStatesAndShowsHintsOnlyForMissing) {
  EXPECT_EQ(format_report(sample()),
            "labctl doctor: kernel 6.18.0-test\n"
            "  ok       veth pairs\n"
            "  missing  IPIP tunnels: create an ipip tunnel: Unknown device type\n"
            "           hint: use the micro-VM\n"
            "1 ok, 1 missing\n");
}

TEST(Doctor, JsonCarriesTheSameData) {
  auto j = report_json(sample());
  EXPECT_EQ(j["kernel"], "6.18.0-test");
  EXPECT_EQ(j["missing"], 1);
  ASSERT_EQ(j["checks"].size(), 2u);
  EXPECT_EQ(j["checks"][1]["id"], "ipip");
  EXPECT_EQ(j["checks"][1]["ok"], false);
  EXPECT_EQ(j["checks"][1]["hint"], "use the micro-VM");
  EXPECT_EQ(j["checks"][0]["ok"], true);
}

TEST(Doctor, MissingOfCountsAbsentChecksAsMissing) {
  auto r = sample();
  EXPECT_TRUE(r.missing_of({"veth"}).empty());
  EXPECT_EQ(r.missing_of({"veth", "ipip", "ipvs-scheduler-rr"}),
            (std::vector<std::string>{"ipip", "ipvs-scheduler-rr"}));
}

}  // namespace
}  // namespace labctl
