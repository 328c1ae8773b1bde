// Capturing frames on lab interfaces with libpcap. Each interface's AF_PACKET sockets are
// opened by a thread inside that interface's namespace (a packet socket belongs to the
// namespace it was made in and binds to an ifindex there), then one poll loop reads them
// all, from any thread. Every interface gets two handles, one per direction, so each
// frame carries the kernel's own word on whether it came in or went out (libpcap's Ethernet
// link type has no direction of its own). Bounded by a frame count, a time limit and an
// interrupt flag (Ctrl-C); a pcap file being written is flushed and closed either way.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "labctl/base/error.h"
#include "labctl/trace/packet.h"

namespace labctl {

struct CaptureIface {
  std::string node;  ///< For labels and errors.
  std::string iface;
  int ns_fd = -1;  ///< The node's namespace (borrowed: must stay open while opening).
};

enum class Direction { In, Out };
[[nodiscard]] const char* to_string(Direction d);

struct CaptureOptions {
  std::string filter;           ///< A BPF expression in tcpdump's syntax; "" for every frame.
  int snaplen = 262144;         ///< Bytes kept of each frame.
  int buffer_bytes = 1 << 20;   ///< Kernel ring per handle.
};

/// One captured frame, as libpcap handed it over.
struct CapturedFrame {
  size_t iface = 0;  ///< Index into the interfaces given to open().
  Direction dir = Direction::In;
  int64_t t_ns = 0;  ///< CLOCK_REALTIME nanoseconds (the kernel's timestamp).
  LinkType link = LinkType::Ethernet;
  uint32_t wire_len = 0;
  std::vector<uint8_t> data;  ///< The captured bytes (up to the snap length).
};

/// When run() stops (whichever comes first).
struct CaptureLimits {
  std::optional<size_t> count;                       ///< After this many frames.
  std::chrono::steady_clock::time_point until;       ///< At this time.
  const std::atomic<bool>* interrupted = nullptr;    ///< When this turns true (Ctrl-C).
  /// When this turns true: the caller has what it waited for; frames already queued in the
  /// kernel are still read (an interrupt drops them).
  const std::atomic<bool>* finish = nullptr;
  std::function<bool()> done;                        ///< Asked after each frame; may be empty.
};

struct CaptureReport {
  size_t frames = 0;
  bool interrupted = false;
  bool timed_out = false;  ///< Stopped by the time limit (not by count or done()).
  uint64_t dropped = 0;    ///< Frames the kernel dropped (pcap_stats), 0 when unknown.
};

class PcapCapture {
 public:
  /// Opens and activates capture handles on every interface, each in its namespace.
  /// Errors name the node and interface (and libpcap's words: no such device, not up, a
  /// filter that does not compile).
  [[nodiscard]] static Result<PcapCapture> open(const std::vector<CaptureIface>& ifaces,
                                                const CaptureOptions& o);
  PcapCapture(PcapCapture&&) noexcept;
  PcapCapture& operator=(PcapCapture&&) noexcept;
  ~PcapCapture();

  /// Also writes every frame to a pcap file ("-": standard output), in nanosecond
  /// resolution, as tcpdump -w would. The file is complete when run() returns.
  [[nodiscard]] Status write_pcap(const std::string& path);

  /// CLOCK_REALTIME (the clock of frame timestamps) once every handle was active. A frame
  /// stamped earlier may be missing from the handles opened after it went by.
  [[nodiscard]] int64_t armed_ns() const;

  /// Reads frames until a limit is reached, calling on_frame for each. Frames are handed
  /// on in timestamp order within each round of polling (what was queued together);
  /// across rounds they come as the kernel queued them.
  [[nodiscard]] Result<CaptureReport> run(const CaptureLimits& limits,
                                          const std::function<void(const CapturedFrame&)>& on_frame);

 private:
  struct Impl;
  explicit PcapCapture(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace labctl
