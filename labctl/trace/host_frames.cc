#include "labctl/trace/host_frames.h"

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "labctl/base/fd.h"
#include "labctl/kernel/netns.h"
#include "labctl/trace/trace.h"

namespace labctl {
namespace {

const char* link_name(LinkType l) {
  switch (l) {
    case LinkType::Ethernet: return "eth";
    case LinkType::Raw: return "raw";
    case LinkType::LinuxSll: return "sll";
  }
  return "eth";
}

std::optional<LinkType> link_of(const std::string& s) {
  if (s == "eth") return LinkType::Ethernet;
  if (s == "raw") return LinkType::Raw;
  if (s == "sll") return LinkType::LinuxSll;
  return std::nullopt;
}

std::string hex(const std::vector<uint8_t>& data) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s;
  s.reserve(data.size() * 2);
  for (uint8_t b : data) s += kDigits[b >> 4], s += kDigits[b & 15];
  return s;
}

std::optional<std::vector<uint8_t>> unhex(const std::string& s) {
  auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  if (s.size() % 2) return std::nullopt;
  std::vector<uint8_t> out;
  out.reserve(s.size() / 2);
  for (size_t i = 0; i < s.size(); i += 2) {
    const int hi = digit(s[i]), lo = digit(s[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<uint8_t>(hi << 4 | lo));
  }
  return out;
}

}  // namespace

std::string ifaces_line(const std::vector<TraceIface>& ifaces) {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& i : ifaces) a.push_back({{"node", i.node}, {"iface", i.iface}, {"mac", i.mac}});
  return nlohmann::json{{"ifaces", a}}.dump();
}

std::string frame_line(const CapturedFrame& f) {
  return nlohmann::json{{"i", f.iface},    {"d", to_string(f.dir)},  {"t", f.t_ns},
                        {"l", link_name(f.link)}, {"w", f.wire_len}, {"x", hex(f.data)}}
      .dump();
}

Status HostFrames::take(std::string_view line) {
  auto bad = [&](const std::string& why) {
    return fail("a line of captured frames is not as expected (" + why + "): " + std::string(line.substr(0, 200)));
  };
  auto j = nlohmann::json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return bad("not a JSON object");
  try {
    if (j.contains("ifaces")) {
      for (const auto& i : j.at("ifaces"))
        ifaces.push_back({i.at("node").get<std::string>(), i.at("iface").get<std::string>(), i.at("mac").get<std::string>()});
      return {};
    }
    if (j.contains("ready")) {
      ready = true;
      return {};
    }
    CapturedFrame f;
    f.iface = j.at("i").get<size_t>();
    if (f.iface >= ifaces.size()) return bad("interface " + std::to_string(f.iface) + " was never listed");
    const std::string d = j.at("d").get<std::string>();
    if (d != "in" && d != "out") return bad("direction " + d);
    f.dir = d == "in" ? Direction::In : Direction::Out;
    f.t_ns = j.at("t").get<int64_t>();
    auto l = link_of(j.at("l").get<std::string>());
    if (!l) return bad("link type");
    f.link = *l;
    f.wire_len = j.at("w").get<uint32_t>();
    auto data = unhex(j.at("x").get<std::string>());
    if (!data) return bad("bytes not in hex");
    f.data = std::move(*data);
    frames.push_back(std::move(f));
    return {};
  } catch (const nlohmann::json::exception& e) {
    return bad(e.what());
  }
}

Status frames_here(const std::string& lab, const std::vector<std::string>& nodes, int input_fd,
                   std::chrono::milliseconds bound, const std::atomic<bool>* interrupted, std::FILE* out) {
  std::vector<Fd> ns;
  std::vector<CaptureIface> where;
  std::vector<TraceIface> ifaces;
  for (const auto& node : nodes) {
    TRY_ASSIGN(Fd fd, open_netns(netns_name(lab, node)));
    TRY_ASSIGN(auto ifs, node_interfaces(lab, node, true));
    for (auto& i : ifs) {
      where.push_back({node, i.iface, fd.get()});
      ifaces.push_back(std::move(i));
    }
    ns.push_back(std::move(fd));
  }
  CaptureOptions co;
  co.snaplen = kTraceSnaplen;
  co.buffer_bytes = kTraceBuffer;
  TRY_ASSIGN(PcapCapture cap, PcapCapture::open(where, co));
  std::fprintf(out, "%s\n%s\n", ifaces_line(ifaces).c_str(), std::string(kFramesReady).c_str());
  std::fflush(out);

  // The trace is done when its end of our stdin closes.
  std::atomic<bool> finish{false}, stop_watch{false};
  std::thread watch([&] {
    char buf[256];
    while (!stop_watch) {
      pollfd p{input_fd, POLLIN, 0};
      const int n = ::poll(&p, 1, 100);
      if (n < 0 && errno != EINTR) break;
      if (n > 0) {
        const ssize_t r = ::read(input_fd, buf, sizeof buf);
        if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN)) break;
      }
    }
    finish = true;
  });
  CaptureLimits lim;
  lim.until = std::chrono::steady_clock::now() + bound;
  lim.interrupted = interrupted;
  lim.finish = &finish;
  bool write_failed = false;
  auto rep = cap.run(lim, [&](const CapturedFrame& f) {
    if (write_failed) return;
    const std::string line = frame_line(f) + "\n";
    write_failed = std::fwrite(line.data(), 1, line.size(), out) != line.size() || std::fflush(out) != 0;
  });
  stop_watch = true;
  watch.join();
  if (!rep) return tl::unexpected(rep.error());
  if (write_failed) return fail("the trace that asked for these frames has gone (its connection closed)");
  return {};
}

}  // namespace labctl
