// Showing a user-given string in a message: visibly, unambiguously and bounded. A name may
// hold NUL, control bytes or invalid UTF-8, and may be a megabyte long; a message must
// neither ring the terminal's bell nor print half a UTF-8 sequence nor echo it all.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace labctl {

/// The longest part of a user string a message shows (in characters as printed).
inline constexpr std::size_t kShownMax = 64;

/// `s` single-quoted for a message: NUL as \0, other control bytes and DEL as \a \b \t \n
/// \v \f \r or \xNN, a byte that is not part of valid UTF-8 as \xNN, `'` and `\` escaped.
/// Longer than `max` printed characters, it is cut at a character boundary (never inside
/// an escape or a UTF-8 sequence) and followed by "... (N bytes)".
[[nodiscard]] std::string shown(std::string_view s, std::size_t max = kShownMax);

/// Whether `s` is printable as it is: valid UTF-8 without control bytes.
[[nodiscard]] bool plainly_printable(std::string_view s);

}  // namespace labctl
