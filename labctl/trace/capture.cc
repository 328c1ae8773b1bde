#include "labctl/trace/capture.h"

#include <pcap/pcap.h>
#include <poll.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <utility>

#include <fmt/format.h>

#include "labctl/base/file.h"
#include "labctl/kernel/netns.h"

namespace labctl {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
// How often the loop looks at the interrupt flag when no frame comes.
constexpr auto kPollSlice = 100ms;

struct Handle {
  pcap_t* p = nullptr;
  size_t iface = 0;
  Direction dir = Direction::In;
  LinkType link = LinkType::Ethernet;
};

std::string where(const CaptureIface& i) { return i.node + ":" + i.iface; }

// What an activate error means, in words a lab user can act on.
Error activate_error(const CaptureIface& i, pcap_t* p, int rc) {
  const std::string what = "capture on " + where(i);
  const std::string detail = pcap_geterr(p);
  switch (rc) {
    case PCAP_ERROR_NO_SUCH_DEVICE:
      return Error{what + ": no such interface", ENODEV, {},
                   "`labctl status` lists each node's interfaces"};
    case PCAP_ERROR_PERM_DENIED:
      return Error{what + ": permission denied (" + detail + ")", EPERM, {},
                   "capturing needs CAP_NET_RAW: run as root"};
    case PCAP_ERROR_IFACE_NOT_UP:
      return Error{what + ": the interface is down", ENETDOWN, {},
                   "bring it up or check the lab: `labctl status`"};
    default:
      return Error{what + ": " + (detail.empty() ? pcap_statustostr(rc) : detail), 0, {}, {}};
  }
}

// Creates and activates one handle on the calling thread (inside the interface's namespace).
Result<Handle> open_one(const CaptureIface& i, size_t index, Direction dir, const CaptureOptions& o) {
  char err[PCAP_ERRBUF_SIZE] = {};
  pcap_t* p = pcap_create(i.iface.c_str(), err);
  if (!p) return fail("capture on " + where(i) + ": " + err);
  Handle h{p, index, dir, LinkType::Ethernet};
  auto close_on_error = [&](Error e) -> Result<Handle> {
    pcap_close(p);
    return tl::unexpected(std::move(e));
  };
  pcap_set_snaplen(p, o.snaplen);
  pcap_set_promisc(p, 0);
  pcap_set_immediate_mode(p, 1);  // every frame as it comes, not a block at a time
  pcap_set_buffer_size(p, o.buffer_bytes);
  pcap_set_tstamp_precision(p, PCAP_TSTAMP_PRECISION_NANO);
  if (int rc = pcap_activate(p); rc < 0) return close_on_error(activate_error(i, p, rc));
  if (pcap_setdirection(p, dir == Direction::In ? PCAP_D_IN : PCAP_D_OUT) != 0)
    return close_on_error(Error{"capture on " + where(i) + ": set direction: " + pcap_geterr(p), 0, {}, {}});
  const int dlt = pcap_datalink(p);
  auto link = link_type_of_dlt(dlt);
  if (!link) {
    const char* name = pcap_datalink_val_to_name(dlt);
    return close_on_error(Error{fmt::format("capture on {}: link type {} is not one labctl decodes",
                                            where(i), name ? name : std::to_string(dlt)),
                                0, {}, "capture Ethernet (veth) or IP tunnel interfaces"});
  }
  h.link = *link;
  if (!o.filter.empty()) {
    bpf_program prog{};
    if (pcap_compile(p, &prog, o.filter.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0)
      return close_on_error(Error{"filter \"" + o.filter + "\": " + pcap_geterr(p), 0, {},
                                  "the filter uses tcpdump's syntax (man pcap-filter), e.g. "
                                  "\"tcp port 80\" or \"arp or icmp\""});
    const int rc = pcap_setfilter(p, &prog);
    pcap_freecode(&prog);
    if (rc != 0) return close_on_error(Error{"filter on " + where(i) + ": " + pcap_geterr(p), 0, {}, {}});
  }
  if (pcap_setnonblock(p, 1, err) != 0) return close_on_error(Error{"capture on " + where(i) + ": " + err, 0, {}, {}});
  return h;
}

}  // namespace

const char* to_string(Direction d) { return d == Direction::In ? "in" : "out"; }

struct PcapCapture::Impl {
  std::vector<CaptureIface> ifaces;
  std::vector<Handle> handles;
  pcap_dumper_t* dumper = nullptr;
  std::string dump_path;
  // A file path's pcap is written to a temporary file beside it and renamed over it when
  // the capture ends: root never writes through a symlink planted at the user's path.
  std::string dump_temp;
  int64_t armed_ns = 0;
  ~Impl() {
    if (dumper) pcap_dump_close(dumper);
    if (!dump_temp.empty()) ::unlink(dump_temp.c_str());
    for (auto& h : handles) pcap_close(h.p);
  }
  Status finish_dump() {
    if (!dumper) return {};
    pcap_dump_close(dumper);  // flushes: a complete file even after Ctrl-C
    dumper = nullptr;
    if (dump_temp.empty()) return {};
    const std::string temp = std::exchange(dump_temp, {});
    if (::rename(temp.c_str(), dump_path.c_str()) != 0) {
      int e = errno;
      ::unlink(temp.c_str());
      return fail_errno("write " + dump_path, e);
    }
    return {};
  }
};

PcapCapture::PcapCapture(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PcapCapture::PcapCapture(PcapCapture&&) noexcept = default;
PcapCapture& PcapCapture::operator=(PcapCapture&&) noexcept = default;
PcapCapture::~PcapCapture() = default;

Result<PcapCapture> PcapCapture::open(const std::vector<CaptureIface>& ifaces, const CaptureOptions& o) {
  auto impl = std::make_unique<Impl>();
  impl->ifaces = ifaces;
  for (size_t i = 0; i < ifaces.size(); ++i) {
    std::vector<Handle> made;
    Status st = run_in_netns(ifaces[i].ns_fd, [&]() -> Status {
      for (Direction d : {Direction::In, Direction::Out}) {
        TRY_ASSIGN(Handle h, open_one(ifaces[i], i, d, o));
        made.push_back(h);
      }
      return {};
    });
    for (auto& h : made) impl->handles.push_back(h);  // closed by ~Impl on any error
    if (!st) return tl::unexpected(st.error());
  }
  timespec now{};
  ::clock_gettime(CLOCK_REALTIME, &now);
  impl->armed_ns = int64_t{now.tv_sec} * 1'000'000'000 + now.tv_nsec;
  return PcapCapture(std::move(impl));
}

int64_t PcapCapture::armed_ns() const { return impl_->armed_ns; }

Status PcapCapture::write_pcap(const std::string& path) {
  if (impl_->handles.empty()) return fail("nothing to capture on");
  // Every handle here has the same link type when one interface is captured; a file holds
  // one link type, so mixing (Ethernet and tunl0's raw IP) is refused.
  for (const auto& h : impl_->handles)
    if (pcap_datalink(h.p) != pcap_datalink(impl_->handles[0].p))
      return fail("interfaces of different link types cannot share one pcap file",
                  "capture one interface per file");
  if (path == "-") {
    impl_->dumper = pcap_dump_open(impl_->handles[0].p, "-");
    if (!impl_->dumper)
      return fail(std::string("write pcap to standard output: ") + pcap_geterr(impl_->handles[0].p));
    impl_->dump_path = path;
    return {};
  }
  auto temp = make_temp_file_beside(path);
  if (!temp)
    return fail_errno("write " + path, temp.error().errnum, "give a writable file path, or - for standard output");
  // The mode is set on the descriptor now: a chmod by name later could follow a link.
  FILE* f = ::fchmod(temp->fd.get(), output_file_mode(path)) == 0 ? ::fdopen(temp->fd.get(), "wb") : nullptr;
  if (!f) {
    int e = errno;
    ::unlink(temp->path.c_str());
    return fail_errno("write " + path, e);
  }
  temp->fd.release();  // the FILE owns it now, and pcap_dump_close closes it
  impl_->dumper = pcap_dump_fopen(impl_->handles[0].p, f);
  if (!impl_->dumper) {
    std::fclose(f);
    ::unlink(temp->path.c_str());
    return fail("write " + path + ": " + pcap_geterr(impl_->handles[0].p));
  }
  impl_->dump_path = path;
  impl_->dump_temp = temp->path;
  return {};
}

Result<CaptureReport> PcapCapture::run(const CaptureLimits& limits,
                                       const std::function<void(const CapturedFrame&)>& on_frame) {
  CaptureReport rep;
  auto& hs = impl_->handles;
  std::vector<pollfd> fds;
  for (const auto& h : hs) fds.push_back({pcap_get_selectable_fd(h.p), POLLIN, 0});

  // Each handle's frames come in its own order; a round of polling gathers what every
  // ready handle has, then hands it on sorted by the kernel's timestamps, so lines, pcap
  // records and the count follow time across directions and interfaces.
  struct Pending {
    CapturedFrame frame;
    pcap_pkthdr hdr;
  };
  struct Ctx {
    const Handle* h = nullptr;
    std::vector<Pending> pending;
  };
  bool stop = false;  // done() said so: stop waiting, but still read what is queued
  auto reached = [&] { return limits.count && rep.frames >= *limits.count; };
  auto callback = [](u_char* user, const pcap_pkthdr* hdr, const u_char* bytes) {
    auto* c = reinterpret_cast<Ctx*>(user);
    CapturedFrame f;
    f.iface = c->h->iface;
    f.dir = c->h->dir;
    f.t_ns = int64_t{hdr->ts.tv_sec} * 1'000'000'000 + hdr->ts.tv_usec;  // nanosecond precision
    f.link = c->h->link;
    f.wire_len = hdr->len;
    f.data.assign(bytes, bytes + hdr->caplen);
    c->pending.push_back({std::move(f), *hdr});
  };
  Ctx ctx;
  auto deliver = [&] {
    std::stable_sort(ctx.pending.begin(), ctx.pending.end(),
                     [](const Pending& a, const Pending& b) { return a.frame.t_ns < b.frame.t_ns; });
    for (const auto& p : ctx.pending) {
      if (reached()) break;
      ++rep.frames;
      if (impl_->dumper) pcap_dump(reinterpret_cast<u_char*>(impl_->dumper), &p.hdr, p.frame.data.data());
      if (on_frame) on_frame(p.frame);
      if (limits.done && limits.done()) stop = true;
    }
    ctx.pending.clear();
  };
  auto drain = [&](size_t i) -> Status {
    ctx.h = &hs[i];
    const int n = pcap_dispatch(hs[i].p, -1, callback, reinterpret_cast<u_char*>(&ctx));
    if (n == PCAP_ERROR)
      return fail("capture on " + where(impl_->ifaces[hs[i].iface]) + ": " + pcap_geterr(hs[i].p),
                  "the interface may have gone away: is the lab still up?");
    return {};
  };
  Status result;
  while (!reached() && !stop) {
    if (limits.interrupted && limits.interrupted->load()) {
      rep.interrupted = true;
      break;
    }
    if (limits.finish && limits.finish->load()) break;
    const auto now = Clock::now();
    if (now >= limits.until) {
      rep.timed_out = true;
      break;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(limits.until - now);
    const int timeout = static_cast<int>(std::min<std::chrono::milliseconds>(left, kPollSlice).count()) + 1;
    const int ready = ::poll(fds.data(), fds.size(), timeout);
    if (ready < 0 && errno != EINTR) {
      result = fail_errno("poll the capture sockets", errno);
      break;
    }
    for (size_t i = 0; i < fds.size() && ready > 0; ++i)
      if (fds[i].revents & (POLLIN | POLLERR))
        if (Status st = drain(i); !st) {
          result = st;
          break;
        }
    deliver();
    if (!result) break;
  }
  // What is already queued when time is up or the caller has what it wanted still counts.
  if (result && !rep.interrupted && !reached()) {
    for (size_t i = 0; i < hs.size(); ++i) (void)drain(i);
    deliver();
  }
  for (const auto& h : hs) {
    pcap_stat s{};
    if (pcap_stats(h.p, &s) == 0) rep.dropped += s.ps_drop;
  }
  Status written = impl_->finish_dump();
  if (!result) return tl::unexpected(result.error());
  if (!written) return tl::unexpected(written.error());
  return rep;
}

}  // namespace labctl
