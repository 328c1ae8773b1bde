// labctl trace LAB [--from NODE] [--service NAME] [--to ADDR:PORT] [--timeout S] [--wait] [--all] [--json]
#include "labctl/trace/trace.h"

#include <unistd.h>

#include <cstdio>

#include "labctl/base/interrupt.h"
#include "labctl/cli/command.h"
#include "labctl/cli/load.h"
#include "labctl/lab/lifecycle.h"
#include "labctl/kernel/netns.h"
#include "labctl/lab/multihost.h"
#include "labctl/lab/state.h"
#include "labctl/model/hosts.h"
#include "labctl/trace/host_frames.h"

namespace labctl::cli {
namespace {

void setup(CLI::App& app) {
  auto* cmd = app.add_subcommand("trace", "Follow one request through a lab, hop by hop");
  cmd->footer(
      "Captures on every interface of every node at once, sends one request to the service\n"
      "(an HTTP GET, or a UDP datagram for a UDP service) from the client, and prints the\n"
      "walk of its first packet (the TCP SYN) and of the answer (the SYN-ACK): each hop's\n"
      "node:interface and direction, MACs, addresses, ports, the outer and inner headers of\n"
      "IPIP, what changed since the hop before and why (DR rewrites only the destination\n"
      "MAC; NAT rewrites the destination address and the reply's source; TUN wraps the\n"
      "packet in a second IP header DIP -> RIP), and whether the reply passed the director.\n"
      "Everything shown was captured, not derived from the topology. When the lab is broken\n"
      "the walk says where the packet was last seen.\n"
      "When the node that got the request opens a connection of its own before it answers (a\n"
      "proxy such as nginx), the walk goes on through that second connection: its new source\n"
      "address and port, the next server's answer, the proxy's answer to the client.\n"
      "--all also follows the whole connection beyond its first packet: the three-way\n"
      "handshake, the request and the reply, the four-way close (each FIN and its ACK, in\n"
      "the order they came, and who closed first), then who holds TIME_WAIT, read from each\n"
      "end's socket table; in LVS, what the director saw of it and its IPVS connection entry\n"
      "(DR and TUN: the director never sees the real server's FIN, so the entry stays\n"
      "FIN_WAIT and counts as InActConn).\n"
      "In a lab across hosts it captures on every host at once over ssh, has the sending\n"
      "node's host send the request, and merges the frames in time order (docs/multihost.md).\n"
      "Examples:\n"
      "  labctl trace dr-demo\n"
      "  labctl trace nat-demo --json\n"
      "  labctl trace tun-demo --wait --timeout 30   # the next request someone sends\n"
      "  labctl trace mylab --from client --to 10.0.2.10:80   # no IPVS: plain routing\n"
      "  labctl trace dr-demo --all   # handshake, request, reply, four-way close, TIME_WAIT\n"
      "Exit status: 0 when the request was answered and the walk is what the forwarding\n"
      "method promises, 1 when not (or the trace could not run), 2 for bad usage.");
  static std::string lab, from, service, to;
  static double timeout_s = 2;
  static bool wait = false, json = false, all = false, frames_here_flag = false, send_only = false;
  cmd->add_option("lab", lab, "Running lab")->required();
  cmd->add_option("--from", from, "Node to send the request from (default: the node the lab's checks of the service use)")
      ->type_name("NODE");
  cmd->add_option("--service", service, "Service to trace (default: the lab's only one)")->type_name("NAME");
  cmd->add_option("--to", to, "Trace a TCP request to ADDRESS:PORT instead of a service (plain routing; needs --from)")
      ->type_name("ADDR:PORT");
  cmd->add_option("--timeout", timeout_s, "How long the answer may take, in seconds (default 2)")
      ->type_name("S")
      ->check(CLI::Range(0.1, 600.0));
  cmd->add_flag("--wait", wait, "Send nothing: walk the next connection the --from node opens to the service");
  cmd->add_flag("--all", all,
                "Follow the whole connection: handshake, request, reply, four-way close, who holds TIME_WAIT");
  cmd->add_flag("--json", json, "Machine-readable output");
  // Between the hosts of a lab across hosts: capture on this host's nodes and send the
  // frames as lines until stdin ends (trace/host_frames.h).
  cmd->add_flag("--frames-here", frames_here_flag)->group("");
  // Between the hosts too: send the request from --from (a node of this host), print what
  // came back, capture nothing.
  cmd->add_flag("--send-only", send_only)->group("");
  cmd->callback([] {
    if (Status st = check_lab_name(lab); !st) die(st.error(), kExitInvalid);
    if (Status st = check_privileges(); !st) die(st.error());
    if (lab_namespaces(lab).empty() && !find_hosts_record(lab))
      die(Error{"lab " + lab + " is not up", 0, {}, "`labctl up " + lab + "` first; `labctl ls` lists running labs"},
          kExitInvalid);
    Topology t = running_or_load_or_die(lab);
    InterruptGuard interrupt;
    if (frames_here_flag) {
      auto rec = find_hosts_record(lab);
      if (!multi_host(t) || !rec || rec->self.empty())
        die(Error{"lab " + lab + " has no part on this host", 0, {}, "--frames-here is how a trace across hosts captures"},
            kExitInvalid);
      std::vector<std::string> nodes;
      for (const auto& n : t.nodes)
        if (host_of(t, n) == rec->self) nodes.push_back(n.name);
      const auto bound = std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000));
      if (Status st = frames_here(lab, nodes, STDIN_FILENO, bound, interrupt.flag(), stdout); !st) die(st.error());
      return;
    }
    TraceOptions o;
    o.from = from;
    o.service = service;
    o.to = to;
    o.timeout = std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000));
    o.passive = wait;
    o.whole = all;
    o.interrupted = interrupt.flag();
    auto setup = trace_setup(t, o);
    if (!setup) die(setup.error(), kExitInvalid);
    if (send_only) {
      auto ns = open_netns(netns_name(lab, setup->client));
      if (!ns) die(ns.error());
      std::printf("%s\n", send_trace_request(ns->get(), *setup, o.timeout).c_str());
      return;
    }
    auto w = run_trace(t, *setup, o);
    if (!w) die(w.error());
    if (json) std::printf("%s\n", json_text(walk_json(*w)).c_str());
    else std::printf("%s", render_walk(*w).c_str());
    if (!w->ok) throw ExitError{kExitFailure, {}};
  });
}

LABCTL_COMMAND(47, setup);

}  // namespace
}  // namespace labctl::cli
