#include "labctl/trace/lifecycle.h"

#include <algorithm>
#include <map>

#include <fmt/format.h>

namespace labctl {
namespace {

constexpr uint8_t kFin = 0x01, kSyn = 0x02, kRst = 0x04, kAck = 0x10;

// Sequence numbers wrap: a is at or after b.
bool at_or_after(uint32_t a, uint32_t b) { return static_cast<int32_t>(a - b) >= 0; }

}  // namespace

const char* to_string(Side s) { return s == Side::Client ? "client" : "server"; }

std::optional<Side> Lifecycle::time_wait() const {
  if (reset_by || !closed_first) return std::nullopt;
  // The first closer enters TIME_WAIT when it acknowledges the other side's FIN (step 4).
  for (const auto& s : steps)
    if (s.close_ack == 4 && s.seg.from == *closed_first) return closed_first;
  return std::nullopt;
}

Lifecycle follow_connection(std::vector<TcpSegment> segments) {
  std::stable_sort(segments.begin(), segments.end(),
                   [](const TcpSegment& a, const TcpSegment& b) { return a.t_ns < b.t_ns; });
  Lifecycle l;
  std::optional<uint32_t> client_isn, server_isn;
  std::map<Side, uint32_t> next_seq;  // the highest sequence number each side has sent up to
  std::map<Side, uint32_t> fin_end;   // the ACK number that acknowledges each side's FIN
  std::map<Side, bool> fin_acked;
  for (const TcpSegment& g : segments) {
    LifeStep st;
    st.seg = g;
    const bool syn = g.flags & kSyn, ack = g.flags & kAck, fin = g.flags & kFin;
    if (g.flags & kRst) {
      st.reset = true;
      if (!l.reset_by) l.reset_by = g.from;
      l.steps.push_back(st);
      continue;
    }
    if (syn && !ack && g.from == Side::Client) {
      st.handshake = 1;
      st.again = client_isn.has_value();
      client_isn = g.seq;
      next_seq[Side::Client] = g.seq + 1;
    } else if (syn && ack && g.from == Side::Server) {
      st.handshake = 2;
      st.again = server_isn.has_value();
      server_isn = g.seq;
      next_seq[Side::Server] = g.seq + 1;
    } else if (!syn && ack && g.from == Side::Client && server_isn && !l.established && g.ack == *server_isn + 1) {
      st.handshake = 3;
      l.established = true;
    }
    const uint32_t end = g.seq + g.payload_len + (fin ? 1 : 0);
    const bool seen_before = !syn && next_seq.contains(g.from) && (g.payload_len > 0 || fin) &&
                             at_or_after(next_seq[g.from], end);
    if (g.payload_len > 0 && !syn) {
      st.data = true;
      if (seen_before) st.again = true;
      else (g.from == Side::Client ? l.request_bytes : l.reply_bytes) += g.payload_len;
    }
    if (fin) {
      if (fin_end.contains(g.from)) {
        st.again = true;
      } else {
        fin_end[g.from] = end;
        st.close = fin_end.contains(other(g.from)) ? 3 : 1;
        if (!l.closed_first) l.closed_first = g.from;
      }
    }
    if (!syn && (g.payload_len > 0 || fin) && !seen_before) next_seq[g.from] = end;
    const Side peer = other(g.from);
    if (ack && fin_end.contains(peer) && !fin_acked[peer] && at_or_after(g.ack, fin_end[peer])) {
      fin_acked[peer] = true;
      st.close_ack = peer == l.closed_first ? 2 : 4;
    }
    l.steps.push_back(st);
  }
  l.closed = fin_acked[Side::Client] && fin_acked[Side::Server];
  return l;
}

std::string step_text(const LifeStep& s, const std::string& client, const std::string& server) {
  const std::string& me = s.seg.from == Side::Client ? client : server;
  const std::string& peer = s.seg.from == Side::Client ? server : client;
  std::vector<std::string> parts;
  if (s.reset) return fmt::format("RST: {} tears the connection down (no four-way close)", me);
  switch (s.handshake) {
    case 1:
      parts.push_back(fmt::format("three-way handshake 1/3: SYN: {} asks to connect", me));
      break;
    case 2:
      parts.push_back(fmt::format("three-way handshake 2/3: SYN-ACK: {} answers and asks back", me));
      break;
    case 3:
      parts.push_back(fmt::format("three-way handshake 3/3: ACK: {} confirms; now both know that sending and "
                                  "receiving work, and only now does each side set up the connection's "
                                  "resources",
                                  me));
      break;
    default:
      break;
  }
  if (s.data)
    parts.push_back(fmt::format("{}: {} bytes, {} -> {}", s.seg.from == Side::Client ? "request" : "reply",
                                s.seg.payload_len, me, peer));
  // An acknowledgement of the other's FIN comes before a FIN carried in the same segment.
  if (s.close_ack == 2)
    parts.push_back(fmt::format("four-way close 2/4: ACK: {} acknowledges: it knows {} wants to close", me, peer));
  if (s.close == 1)
    parts.push_back(fmt::format("four-way close 1/4: FIN: {} says it wants to close (it closes first)", me));
  if (s.close == 3)
    parts.push_back(fmt::format("four-way close 3/4: FIN: {} wants to close too", me));
  if (s.close_ack == 4)
    parts.push_back(fmt::format("four-way close 4/4: ACK: {} acknowledges; both sides know, so {} frees the "
                                "connection and {}, which closed first, waits in TIME_WAIT",
                                me, peer, me));
  if (parts.empty()) parts.push_back(s.seg.flags & kAck ? "ACK: data received" : "segment");
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : "; ") + p;
  if (s.again) out += " (again: a retransmission)";
  return out;
}

}  // namespace labctl
