#include "labctl/kernel/netlink.h"

#include <libmnl/libmnl.h>
#include <linux/genetlink.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <optional>

namespace labctl {
namespace {

// The kernel never builds a dump skb larger than 32 KiB for a reader whose buffer is at
// least that big (netlink_recvmsg caps max_recvmsg_len there); 64 KiB leaves room.
constexpr size_t kRecvBufferSize = 64 * 1024;
// Every ACK is queued on our receive buffer while the kernel is still inside our sendmsg,
// and the kernel drops ACKs that do not fit (netlink_ack sends MSG_DONTWAIT). An ACK skb
// costs well under 1 KiB of truesize, an echoed new link (NLM_F_ECHO) a few KiB, so 64
// outstanding requests stay below the 1 MiB we ask for.
constexpr size_t kMaxBatchRequests = 64;
constexpr size_t kMaxBatchBytes = 32 * 1024;

int attr_cb(const nlattr* attr, void* data) {
  auto* ack = static_cast<Ack*>(data);
  switch (mnl_attr_get_type(attr)) {
    case NLMSGERR_ATTR_MSG:
      if (mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) == 0) {
        ack->message = mnl_attr_get_str(attr);
        // The kernel's strings never end in a newline, but some drivers' do.
        while (!ack->message.empty() && ack->message.back() == '\n') ack->message.pop_back();
      }
      break;
    case NLMSGERR_ATTR_OFFS:
      if (mnl_attr_validate(attr, MNL_TYPE_U32) == 0) ack->offset = mnl_attr_get_u32(attr);
      break;
    case NLMSGERR_ATTR_MISS_TYPE:
      if (mnl_attr_validate(attr, MNL_TYPE_U32) == 0) ack->missing = mnl_attr_get_u32(attr);
      break;
    default:
      break;
  }
  return MNL_CB_OK;
}

std::string in_where(const std::string& where) { return where.empty() ? "" : " in " + where; }

// Copies the requests into one buffer, each padded to NLMSG_ALIGNTO, with our sequence
// numbers and flags stamped into the headers (the factories leave seq 0).
std::vector<uint8_t> pack(std::span<const Request> reqs, uint32_t first_seq, bool ack) {
  size_t total = 0;
  for (const auto& r : reqs) total += NLMSG_ALIGN(r.bytes.size());
  std::vector<uint8_t> out(total, 0);
  size_t off = 0;
  uint32_t seq = first_seq;
  for (const auto& r : reqs) {
    std::memcpy(out.data() + off, r.bytes.data(), r.bytes.size());
    auto* nlh = reinterpret_cast<nlmsghdr*>(out.data() + off);
    nlh->nlmsg_seq = seq++;
    nlh->nlmsg_pid = 0;
    nlh->nlmsg_flags |= NLM_F_REQUEST;
    if (ack) nlh->nlmsg_flags |= NLM_F_ACK;
    off += NLMSG_ALIGN(r.bytes.size());
  }
  return out;
}

bool valid_request(const Request& r) {
  return r.bytes.size() >= sizeof(nlmsghdr) && r.header()->nlmsg_len == r.bytes.size();
}

}  // namespace

Result<Ack> parse_ack(const nlmsghdr& nlh) {
  Ack ack;
  ack.seq = nlh.nlmsg_seq;
  const size_t payload = nlh.nlmsg_len >= NLMSG_HDRLEN ? nlh.nlmsg_len - NLMSG_HDRLEN : 0;
  size_t tlv_offset = 0;
  if (nlh.nlmsg_type == NLMSG_ERROR) {
    if (payload < sizeof(nlmsgerr)) return fail("truncated netlink error message");
    const auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(&nlh));
    ack.errnum = -err->error;
    tlv_offset = sizeof(nlmsgerr);
    // Without NLM_F_CAPPED the kernel echoes our whole request before the TLVs.
    if (!(nlh.nlmsg_flags & NLM_F_CAPPED) && err->msg.nlmsg_len > NLMSG_HDRLEN)
      tlv_offset += NLMSG_ALIGN(err->msg.nlmsg_len - NLMSG_HDRLEN);
  } else if (nlh.nlmsg_type == NLMSG_DONE) {
    // A dump ends with DONE carrying an int error, and TLVs when it failed.
    if (payload >= sizeof(int)) {
      int e = 0;
      std::memcpy(&e, mnl_nlmsg_get_payload(&nlh), sizeof e);
      ack.errnum = -e;
    }
    tlv_offset = sizeof(int);
  } else {
    return fail("netlink message type " + std::to_string(nlh.nlmsg_type) + " is not an ACK");
  }
  if ((nlh.nlmsg_flags & NLM_F_ACK_TLVS) && tlv_offset < payload)
    mnl_attr_parse(&nlh, static_cast<unsigned>(tlv_offset), attr_cb, &ack);
  return ack;
}

Error request_error(const Request& req, const Ack& ack, const std::string& where) {
  Error e;
  e.message = (req.what.empty() ? "netlink request" : req.what) + in_where(where);
  e.errnum = ack.errnum;
  e.kernel = ack.message;
  if (e.kernel.empty() && ack.missing != 0)
    e.kernel = "required attribute " + std::to_string(ack.missing) + " is missing";
  if (req.hint) e.hint = req.hint(ack.errnum, where);
  if (e.hint.empty() && (ack.errnum == EPERM || ack.errnum == EACCES))
    e.hint = "needs root (CAP_NET_ADMIN over the namespace)";
  return e;
}

Result<NetlinkSocket> NetlinkSocket::open(int protocol, std::string where) {
  const char* name = protocol == NETLINK_GENERIC     ? "generic netlink"
                     : protocol == NETLINK_NETFILTER ? "ctnetlink"
                                                     : "rtnetlink";
  Fd fd(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol));
  if (!fd) return fail_errno(std::string("open ") + name + " socket" + in_where(where), errno);
  int one = 1;
  // Extended ACKs carry the kernel's own explanation; capped ACKs keep our request out of
  // the error message. Both exist since Linux 4.12; without them errors only lose detail.
  (void)::setsockopt(fd.get(), SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
  (void)::setsockopt(fd.get(), SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
  // SO_RCVBUF is capped at net.core.rmem_max (208 KiB on a stock kernel); with
  // CAP_NET_ADMIN, SO_RCVBUFFORCE is not.
  int rcvbuf = 1 << 20;
  if (::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) != 0)
    (void)::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  sockaddr_nl addr{};
  addr.nl_family = AF_NETLINK;
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    return fail_errno(std::string("bind ") + name + " socket" + in_where(where), errno);
  socklen_t len = sizeof addr;
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0)
    return fail_errno(std::string("getsockname on ") + name + " socket", errno);
  return NetlinkSocket(std::move(fd), addr.nl_pid, std::move(where));
}

Status NetlinkSocket::send(std::span<const Request> reqs, uint32_t first_seq, bool ack) {
  for (const auto& r : reqs)
    if (!valid_request(r)) return fail(r.what + ": malformed netlink request (length mismatch)");
  std::vector<uint8_t> out = pack(reqs, first_seq, ack);
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  iovec iov{out.data(), out.size()};
  msghdr msg{};
  msg.msg_name = &kernel;
  msg.msg_namelen = sizeof kernel;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  ssize_t n;
  do n = ::sendmsg(fd_.get(), &msg, 0);
  while (n < 0 && errno == EINTR);
  if (n < 0) return fail_errno("send netlink request" + in_where(where_), errno);
  return {};
}

namespace {
// One receive buffer per thread, not per socket: a lab of 2000 namespaces has 2000 sockets,
// and a buffer each was 125 MiB of peak memory (and 32,000 page faults). A receive
// started inside another one's callback gets a buffer of its own.
struct RecvBuffer {
  std::vector<uint8_t> bytes;
  bool busy = false;
};
thread_local RecvBuffer t_recv;
}  // namespace

Status NetlinkSocket::receive(const std::function<Result<bool>(const nlmsghdr&)>& on_msg) {
  std::vector<uint8_t> nested;
  const bool shared = !t_recv.busy;
  std::vector<uint8_t>& buf = shared ? t_recv.bytes : nested;
  struct Release {
    bool shared;
    ~Release() {
      if (shared) t_recv.busy = false;
    }
  } release{shared};
  t_recv.busy = true;
  if (buf.size() < kRecvBufferSize) buf.resize(kRecvBufferSize);
  for (;;) {
    ssize_t n;
    do n = ::recv(fd_.get(), buf.data(), buf.size(), MSG_TRUNC);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
      int err = errno;
      return fail_errno(
          "receive netlink reply" + in_where(where_), err,
          err == ENOBUFS ? "the kernel dropped replies: too many requests at once" : "");
    }
    if (static_cast<size_t>(n) > buf.size())
      return fail("netlink reply of " + std::to_string(n) + " bytes truncated" + in_where(where_));
    int len = static_cast<int>(n);
    for (auto* nlh = reinterpret_cast<const nlmsghdr*>(buf.data()); mnl_nlmsg_ok(nlh, len);
         nlh = mnl_nlmsg_next(nlh, &len)) {
      if (nlh->nlmsg_pid != portid_ && nlh->nlmsg_pid != 0) continue;
      TRY_ASSIGN(bool done, on_msg(*nlh));
      if (done) return {};
    }
  }
}

Status NetlinkSocket::transact(const Request& req, const MessageFn& on_reply) {
  const uint32_t seq = ++seq_;
  TRY(send(std::span(&req, 1), seq, /*ack=*/true));
  std::optional<Error> reply_error;
  Status st = receive([&](const nlmsghdr& nlh) -> Result<bool> {
    if (nlh.nlmsg_seq != seq) return false;  // a stale answer to an abandoned request
    if (nlh.nlmsg_type == NLMSG_ERROR) {
      TRY_ASSIGN(Ack ack, parse_ack(nlh));
      if (ack.errnum != 0 && ack.errnum != req.ok_errno)
        return tl::unexpected(request_error(req, ack, where_));
      return true;
    }
    if (nlh.nlmsg_type == NLMSG_NOOP || nlh.nlmsg_type == NLMSG_DONE) return false;
    if (on_reply && !reply_error) {
      Status r = on_reply(nlh);
      if (!r) reply_error = std::move(r.error());
    }
    return false;
  });
  if (!st) return st;
  if (reply_error)
    return tl::unexpected(std::move(*reply_error).context(req.what + in_where(where_)));
  return {};
}

Status NetlinkSocket::dump(const Request& req, const MessageFn& fn) {
  const uint32_t seq = ++seq_;
  TRY(send(std::span(&req, 1), seq, /*ack=*/false));
  std::optional<Error> cb_error;
  bool interrupted = false;
  Status st = receive([&](const nlmsghdr& nlh) -> Result<bool> {
    if (nlh.nlmsg_seq != seq) return false;
    if (nlh.nlmsg_flags & NLM_F_DUMP_INTR) interrupted = true;
    if (nlh.nlmsg_type == NLMSG_ERROR || nlh.nlmsg_type == NLMSG_DONE) {
      TRY_ASSIGN(Ack ack, parse_ack(nlh));
      if (ack.errnum != 0) return tl::unexpected(request_error(req, ack, where_));
      return true;
    }
    if (nlh.nlmsg_type == NLMSG_NOOP) return false;
    if (!cb_error) {
      Status r = fn(nlh);
      if (!r) cb_error = std::move(r.error());
    }
    return false;
  });
  if (!st) return st;
  if (cb_error) return tl::unexpected(std::move(*cb_error).context(req.what + in_where(where_)));
  if (interrupted)
    return fail_errno(req.what + in_where(where_), EINTR,
                      "the table changed while it was being read; read it again");
  return {};
}

std::vector<Status> NetlinkSocket::batch_each(std::span<const Request> reqs,
                                              const MessageFn& on_reply) {
  std::vector<Status> out(reqs.size(), Status{});
  size_t start = 0;
  bool failed = false;
  while (start < reqs.size() && !failed) {
    size_t end = start;
    size_t bytes = 0;
    while (end < reqs.size() && end - start < kMaxBatchRequests &&
           (end == start || bytes + reqs[end].bytes.size() <= kMaxBatchBytes))
      bytes += NLMSG_ALIGN(reqs[end++].bytes.size());
    const uint32_t first_seq = seq_ + 1;
    seq_ += static_cast<uint32_t>(end - start);
    size_t pending = end - start;
    Status st = send(reqs.subspan(start, end - start), first_seq, /*ack=*/true);
    if (st) {
      st = receive([&](const nlmsghdr& nlh) -> Result<bool> {
        if (nlh.nlmsg_seq < first_seq || nlh.nlmsg_seq > seq_) return false;
        if (nlh.nlmsg_type != NLMSG_ERROR) {
          if (on_reply) (void)on_reply(nlh);
          return false;
        }
        const size_t index = start + (nlh.nlmsg_seq - first_seq);
        TRY_ASSIGN(Ack ack, parse_ack(nlh));
        if (ack.errnum != 0 && ack.errnum != reqs[index].ok_errno) {
          out[index] = tl::unexpected(request_error(reqs[index], ack, where_));
          failed = true;
        }
        return --pending == 0;
      });
    }
    if (!st) {  // the socket itself failed: whatever has no ACK shares its error
      for (size_t i = end - pending; i < end; ++i) out[i] = st;
      failed = true;
    }
    start = end;
  }
  for (size_t i = start; i < reqs.size(); ++i)
    out[i] = fail(reqs[i].what + ": not sent: an earlier request of its batch failed");
  return out;
}

Status first_failure(std::vector<Status> statuses) {
  size_t first = statuses.size(), later = 0;
  for (size_t i = 0; i < statuses.size(); ++i) {
    if (statuses[i]) continue;
    if (first == statuses.size()) first = i;
    else if (statuses[i].error().message.find(": not sent: ") == std::string::npos) ++later;
  }
  if (first == statuses.size()) return {};
  Error e = std::move(statuses[first]).error();
  if (statuses.size() > 1)
    e.message = "request " + std::to_string(first + 1) + " of " + std::to_string(statuses.size()) +
                ": " + e.message;
  if (later > 0)
    e.message += " (and " + std::to_string(later) + " later request" + (later > 1 ? "s" : "") +
                 " failed too)";
  return tl::unexpected(std::move(e));
}

Status NetlinkSocket::batch(std::span<const Request> reqs) { return first_failure(batch_each(reqs)); }

Request genl_family_request(const std::string& name) {
  std::vector<uint8_t> buf(MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(genlmsghdr)) + MNL_ATTR_HDRLEN +
                           MNL_ALIGN(name.size() + 1));
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  nlh->nlmsg_type = GENL_ID_CTRL;
  nlh->nlmsg_flags = NLM_F_REQUEST;
  auto* genl = static_cast<genlmsghdr*>(mnl_nlmsg_put_extra_header(nlh, sizeof(genlmsghdr)));
  genl->cmd = CTRL_CMD_GETFAMILY;
  genl->version = 1;
  mnl_attr_put_strz(nlh, CTRL_ATTR_FAMILY_NAME, name.c_str());
  buf.resize(nlh->nlmsg_len);
  return Request{std::move(buf), "resolve generic netlink family " + name, {}, 0};
}

Result<uint16_t> parse_genl_family_id(const nlmsghdr& nlh) {
  if (nlh.nlmsg_type != GENL_ID_CTRL || nlh.nlmsg_len < NLMSG_LENGTH(sizeof(genlmsghdr)))
    return fail("malformed generic netlink controller reply");
  uint16_t id = 0;
  mnl_attr_parse(
      &nlh, sizeof(genlmsghdr),
      [](const nlattr* a, void* data) {
        if (mnl_attr_get_type(a) == CTRL_ATTR_FAMILY_ID && mnl_attr_validate(a, MNL_TYPE_U16) == 0)
          *static_cast<uint16_t*>(data) = mnl_attr_get_u16(a);
        return MNL_CB_OK;
      },
      &id);
  if (id == 0) return fail("generic netlink controller reply without CTRL_ATTR_FAMILY_ID");
  return id;
}

Result<uint16_t> resolve_genl_family(NetlinkSocket& sock, const std::string& name) {
  std::optional<uint16_t> id;
  TRY(sock.transact(genl_family_request(name), [&](const nlmsghdr& nlh) -> Status {
    TRY_ASSIGN(id, parse_genl_family_id(nlh));
    return {};
  }));
  if (!id) return fail("resolve generic netlink family " + name + ": the kernel sent no reply");
  return *id;
}

}  // namespace labctl
