// `labctl trace` and `labctl capture`, minus the flags: which lab interfaces to capture on,
// sending one request (or waiting for the next one), and turning the frames into a walk.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "labctl/base/error.h"
#include "labctl/model/topology.h"
#include "labctl/trace/capture.h"
#include "labctl/trace/walk.h"

namespace labctl {

struct TraceOptions {
  std::string from;     ///< The node the request is sent from; "" : the service's checks' node.
  std::string service;  ///< The service to trace; "" : the lab's only one.
  /// A plain ADDRESS:PORT (TCP) to trace instead of a service: routing without IPVS.
  std::string to;
  /// How long the answer may take (sent request), or how long to wait for a connection (passive).
  std::chrono::milliseconds timeout{2000};
  bool passive = false;  ///< Send nothing: walk the next connection from `from` to the service.
  /// Follow the whole connection (--all): handshake, request, reply, four-way close, then
  /// read who holds TIME_WAIT (and, in LVS, the director's connection entry).
  bool whole = false;
  const std::atomic<bool>* interrupted = nullptr;  ///< Ctrl-C.
};

/// What a trace of `t` is about: the service (or --to target), the node sending, the
/// lab's address owners. Errors are usage errors (no such service or node, a bad target).
[[nodiscard]] Result<TraceSetup> trace_setup(const Topology& t, const TraceOptions& o);

/// Captures on every interface of every node of the running lab `t` while one request
/// crosses it, and returns its walk. Fails only when the trace cannot run at all (no such
/// service or node, the lab is down, capture not permitted); a broken lab gives a walk
/// that says where the packet was last seen.
[[nodiscard]] Result<Walk> run_trace(const Topology& t, TraceSetup setup, const TraceOptions& o);

/// Sends the trace's one request (an HTTP GET, or a UDP datagram) from the client node,
/// whose namespace is `client_ns`, and says what came back: "HTTP 200: BODY", "UDP answer:
/// ..." or "failed: WHY". In a lab across hosts the client's host runs this for a trace
/// run elsewhere (`trace --send-only`).
[[nodiscard]] std::string send_trace_request(int client_ns, const TraceSetup& setup, std::chrono::milliseconds timeout);

/// The interfaces of a node of a running lab, as its namespace has them (name -> MAC, ""
/// for links without one), for choosing and naming capture points. Loopback is left out.
[[nodiscard]] Result<std::vector<TraceIface>> node_interfaces(const std::string& lab, const std::string& node,
                                                              bool only_up);

}  // namespace labctl
