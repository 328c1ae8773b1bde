// A trace of a lab across hosts (docs/multihost.md) captures on every host at once: the
// host of the sending node runs the trace, and each other host of the lab runs
// `labctl trace LAB --frames-here` over ssh, which captures on its own nodes' interfaces
// and sends every frame back as a line of JSON until its stdin ends. This is that exchange:
// the lines (pure, unit-tested), the capturing side, and the collector the trace merges.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "labctl/base/error.h"
#include "labctl/model/topology.h"
#include "labctl/trace/capture.h"
#include "labctl/trace/walk.h"

namespace labctl {

/// A trace keeps headers only: Ethernet + two IPv6 headers + TCP with options fit.
inline constexpr int kTraceSnaplen = 200;
/// The kernel ring of each of a trace's capture handles.
inline constexpr int kTraceBuffer = 256 * 1024;

/// The line that lists a host's capture points, first of all: {"ifaces":[{node,iface,mac}]}.
[[nodiscard]] std::string ifaces_line(const std::vector<TraceIface>& ifaces);
/// The line that says every capture point is armed.
inline constexpr std::string_view kFramesReady = "{\"ready\":true}";
/// One frame: {"i":IFACE,"d":"in"|"out","t":NS,"l":"eth"|"raw"|"sll","w":WIRE,"x":HEX}.
[[nodiscard]] std::string frame_line(const CapturedFrame& f);

/// What one host sent, line by line.
struct HostFrames {
  std::vector<TraceIface> ifaces;
  std::vector<CapturedFrame> frames;  ///< iface: an index into ifaces.
  bool ready = false;
  /// Takes one line; a line that is not one of the three (or names an interface it never
  /// listed) is an error naming it, so a garbled exchange is never half-read.
  [[nodiscard]] Status take(std::string_view line);
};

/// The capturing side (`trace LAB --frames-here`): captures on every up interface of
/// `nodes` (this host's nodes of `lab`) with the trace's snap length, writes the ifaces
/// line and the ready line to `out`, then a line per frame as it comes, until `input_fd`
/// ends (the trace is done: frames the kernel already queued still go), `bound` passes or
/// `interrupted` turns true.
[[nodiscard]] Status frames_here(const std::string& lab, const std::vector<std::string>& nodes, int input_fd,
                                 std::chrono::milliseconds bound, const std::atomic<bool>* interrupted, std::FILE* out);

}  // namespace labctl
