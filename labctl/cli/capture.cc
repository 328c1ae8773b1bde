// labctl capture LAB NODE IFACE [-w FILE] [--count N] [--seconds S] [--filter EXPR] [--json]
#include "labctl/trace/capture.h"

#include <cstdio>
#include <ctime>

#include "labctl/base/display.h"
#include "labctl/base/interrupt.h"
#include "labctl/cli/command.h"
#include "labctl/kernel/netns.h"
#include "labctl/lab/lifecycle.h"
#include "labctl/lab/netlink_executor.h"
#include "labctl/lab/state.h"
#include "labctl/model/rules.h"
#include "labctl/plan/plan.h"
#include "labctl/trace/trace.h"

namespace labctl::cli {
namespace {

// "14:03:07.123456", local time as tcpdump prints it.
std::string clock_text(int64_t t_ns) {
  const time_t s = static_cast<time_t>(t_ns / 1'000'000'000);
  tm local{};
  ::localtime_r(&s, &local);
  char hms[16];
  std::strftime(hms, sizeof hms, "%H:%M:%S", &local);
  return std::string(hms) + "." + std::to_string(1'000'000 + (t_ns % 1'000'000'000) / 1000).substr(1);
}

void setup(CLI::App& app) {
  auto* cmd = app.add_subcommand("capture", "Capture packets on an interface of a lab node");
  cmd->footer(
      "Captures inside the node's namespace (libpcap, both directions) and prints one line\n"
      "per packet: time, direction, MACs, addresses and ports, flags, and for IPIP the outer\n"
      "and the inner header. With -w it writes a pcap file (nanosecond timestamps) that\n"
      "tcpdump -r and Wireshark read; `-w -` writes it to standard output. Stops after\n"
      "--count packets, after --seconds, or at Ctrl-C, and the file is complete either way.\n"
      "Examples:\n"
      "  labctl capture dr-demo rs1 eth0 --count 10\n"
      "  labctl capture tun-demo rs1 tunl0 --filter 'tcp port 80' --seconds 30\n"
      "  labctl capture nat-demo director eth1 -w nat.pcap --count 100\n"
      "  labctl capture dr-demo director eth0 -w - | tshark -r - -V\n"
      "Exit status: 0 when the capture ran (even if nothing came), 1 when it could not,\n"
      "2 for bad usage (an unknown lab, node or interface, a filter that does not compile).");
  static std::string lab, node, iface, write, filter;
  static size_t count = 0;
  static double seconds = 10;
  static bool json = false;
  cmd->add_option("lab", lab, "Running lab")->required();
  cmd->add_option("node", node, "Node (or switch) whose interface to capture on")->required();
  cmd->add_option("iface", iface, "Interface name inside the node (eth0, tunl0 ...)")->required();
  cmd->add_option("-w,--write", write, "Write a pcap file (- for standard output) instead of lines; mode 0600, or that of\n"
                  "the file already there")
      ->type_name("FILE");
  cmd->add_option("-c,--count", count, "Stop after N packets (default: no limit)")->type_name("N");
  cmd->add_option("--seconds", seconds, "Stop after this many seconds (default 10)")
      ->type_name("S")
      ->check(CLI::Range(0.1, 86400.0));
  cmd->add_option("--filter", filter, "Only packets matching this tcpdump filter, e.g. 'tcp port 80'")
      ->type_name("EXPR");
  cmd->add_flag("--json", json, "One JSON object per packet and line (JSON lines)");
  cmd->callback([] {
    if (Status st = check_lab_name(lab); !st) die(st.error(), kExitInvalid);
    if (Status st = check_privileges(); !st) die(st.error());
    if (lab_namespaces(lab).empty())
      die(Error{"lab " + lab + " is not up", 0, {}, "`labctl ls` lists running labs"}, kExitInvalid);
    const std::string ns = netns_name(lab, node);
    if (topo::bad_name(node) || read_netns_mark(ns) != netns_mark(lab)) {
      std::string names;
      for (const auto& n : lab_namespaces(lab)) names += " " + n.substr(lab.size() + 1);
      die(Error{"lab " + lab + " has no node " + shown(node), 0, {}, "its nodes and switches:" + names},
          kExitInvalid);
    }
    auto ifs = node_interfaces(lab, node, false);
    if (!ifs) die(ifs.error());
    std::string names;
    bool found = false;
    for (const auto& i : *ifs) {
      names += " " + i.iface;
      found = found || i.iface == iface;
    }
    if (!found)
      die(Error{"node " + node + " of lab " + lab + " has no interface " + shown(iface), 0, {},
                "its interfaces:" + names},
          kExitInvalid);
    auto fd = open_netns(ns);
    if (!fd) die(fd.error());
    CaptureOptions co;
    co.filter = filter;
    auto cap = PcapCapture::open({{node, iface, fd->get()}}, co);
    if (!cap) die(cap.error(), cap.error().message.starts_with("filter") ? kExitInvalid : kExitFailure);
    const bool to_stdout = write == "-";
    if (!write.empty())
      if (Status st = cap->write_pcap(write); !st) die(st.error(), kExitInvalid);
    InterruptGuard interrupt;
    CaptureLimits lim;
    if (count > 0) lim.count = count;
    lim.until = std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
    lim.interrupted = interrupt.flag();
    auto rep = cap->run(lim, [&](const CapturedFrame& f) {
      if (!write.empty()) return;
      Packet p = decode_packet(f.link, f.data.data(), f.data.size(), f.wire_len);
      if (json) {
        nlohmann::json j = {{"time_ns", f.t_ns}, {"node", node}, {"iface", iface}, {"dir", to_string(f.dir)},
                            {"packet", packet_json(p)}, {"summary", packet_summary(p)}};
        std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
      } else {
        std::printf("%s %-3s %s\n", clock_text(f.t_ns).c_str(), to_string(f.dir), packet_summary(p).c_str());
      }
      std::fflush(stdout);
    });
    if (!rep) die(rep.error());
    const char* why = rep->interrupted ? "interrupted" : rep->timed_out ? "time limit" : "count reached";
    std::fprintf(stderr, "labctl: %zu packet%s captured on %s %s:%s (%s)%s%s\n", rep->frames,
                 rep->frames == 1 ? "" : "s", lab.c_str(), node.c_str(), iface.c_str(), why,
                 write.empty() || to_stdout ? "" : ", written to ", write.empty() || to_stdout ? "" : write.c_str());
    if (rep->dropped) std::fprintf(stderr, "labctl: the kernel dropped %llu packets\n",
                                   static_cast<unsigned long long>(rep->dropped));
  });
}

LABCTL_COMMAND(60, setup);

}  // namespace
}  // namespace labctl::cli
