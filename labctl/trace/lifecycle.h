// A TCP connection's whole life as one capture point saw it: the three-way handshake, the
// request and the reply, the four-way close (who sent the first FIN, and each FIN's
// acknowledgement) and so which side must wait in TIME_WAIT. The course's words: three
// handshakes before any resource is set up, four steps to part (each side says it wants to
// close and each acknowledges the other), then the side that closed first waits a while
// before it frees its port. Pure: segments in, typed steps out; words are made at the end.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace labctl {

enum class Side { Client, Server };
[[nodiscard]] const char* to_string(Side s);
[[nodiscard]] inline Side other(Side s) { return s == Side::Client ? Side::Server : Side::Client; }

/// One segment of the connection as seen at one place.
struct TcpSegment {
  int64_t t_ns = 0;
  Side from = Side::Client;
  uint8_t flags = 0;  ///< FIN 0x01 SYN 0x02 RST 0x04 PSH 0x08 ACK 0x10.
  uint32_t seq = 0, ack = 0;
  uint32_t payload_len = 0;
};

/// What one segment did in the connection's life. A segment can do several things at once
/// (data with a FIN, a FIN that also acknowledges the other side's).
struct LifeStep {
  TcpSegment seg;
  int handshake = 0;   ///< 1..3: this segment is that step of the three-way handshake.
  bool data = false;   ///< Carries payload: the request (from the client) or the reply.
  int close = 0;       ///< 1 or 3: a FIN, the first or the second side saying it closes.
  int close_ack = 0;   ///< 2 or 4: acknowledges the other side's FIN.
  bool reset = false;  ///< RST: the connection was torn down, not closed.
  bool again = false;  ///< A retransmission of something already seen.
};

struct Lifecycle {
  std::vector<LifeStep> steps;  ///< Time order.
  bool established = false;     ///< All three handshake steps were seen.
  uint64_t request_bytes = 0, reply_bytes = 0;
  std::optional<Side> closed_first;  ///< Sent the first FIN.
  bool closed = false;               ///< Both FINs sent and both acknowledged.
  std::optional<Side> reset_by;
  /// The side the kernel keeps in TIME_WAIT: the one that closed first, once it has
  /// acknowledged the other's FIN (nullopt before that, or after a reset).
  [[nodiscard]] std::optional<Side> time_wait() const;
};

/// The steps of one connection's segments (any order; sorted by time here).
[[nodiscard]] Lifecycle follow_connection(std::vector<TcpSegment> segments);

/// A step in words, in the course's terms: "three-way handshake 2/3: SYN-ACK: server
/// answers and asks back", "four-way close 1/4: FIN: server says it wants to close" ...
/// `client` and `server` name the two sides.
[[nodiscard]] std::string step_text(const LifeStep& s, const std::string& client, const std::string& server);

}  // namespace labctl
