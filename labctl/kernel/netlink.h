// Netlink requests as values and one socket that exchanges them with the kernel.
//
// A Request is the bytes of one complete netlink message (nlmsghdr + payload), built by a
// small factory function (rtnl.h, ipvs.h) without touching the kernel, so encoders are
// unit-tested byte for byte. NetlinkSocket stamps the sequence number and the
// NLM_F_REQUEST/NLM_F_ACK flags when sending, then reads the answer:
//
//   transact(req)     one request, wait for its ACK (replies, if any, go to a callback)
//   dump(req, fn)     one NLM_F_DUMP request, every reply message to fn until NLMSG_DONE
//   batch(reqs)       many requests in one sendmsg, then every ACK; the first failure wins
//
// A socket stays bound to the network namespace it was opened in: open it on a thread that
// is inside the target namespace (run_in_netns) and use it from anywhere afterwards.
#pragma once

#include <libmnl/libmnl.h>
#include <linux/netlink.h>

#include <array>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "labctl/base/error.h"
#include "labctl/base/fd.h"

namespace labctl {

/// Chooses the hint for a failed request from its errno ("" when there is nothing to add).
/// `where` is the socket's label (e.g. the namespace name), possibly empty.
using HintFn = std::function<std::string(int errnum, const std::string& where)>;

struct Request {
  std::vector<uint8_t> bytes;  ///< One netlink message; nlmsg_len == bytes.size().
  std::string what;            ///< For errors: "create veth eth0 (peer eth1)".
  HintFn hint = nullptr;
  int ok_errno = 0;  ///< An errno that means "already done" (e.g. EEXIST for ensure_ipip).

  [[nodiscard]] const nlmsghdr* header() const {
    return reinterpret_cast<const nlmsghdr*>(bytes.data());
  }
};

/// What an NLMSG_ERROR message says: errno (positive, 0 for an ACK) and the extended ACK.
struct Ack {
  int errnum = 0;
  std::string message;   ///< NLMSGERR_ATTR_MSG, "" when absent.
  uint32_t offset = 0;   ///< NLMSGERR_ATTR_OFFS: byte offset of the bad attribute, 0 if none.
  uint32_t missing = 0;  ///< NLMSGERR_ATTR_MISS_TYPE: a required attribute that was absent.
  uint32_t seq = 0;      ///< Sequence number of the request it answers.
};

/// Decodes an NLMSG_ERROR message (with or without NLM_F_CAPPED / NLM_F_ACK_TLVS).
[[nodiscard]] Result<Ack> parse_ack(const nlmsghdr& nlh);

/// The Error for a request that the kernel refused with `ack`.
[[nodiscard]] Error request_error(const Request& req, const Ack& ack, const std::string& where);

/// Called for each reply message; returning an error stops the exchange with that error
/// (after the socket has been drained, so it stays usable).
using MessageFn = std::function<Status(const nlmsghdr&)>;

class NetlinkSocket {
 public:
  /// Opens a NETLINK_ROUTE or NETLINK_GENERIC socket in the calling thread's network
  /// namespace, with extended ACKs on. `where` labels errors ("in <where>").
  static Result<NetlinkSocket> open(int protocol, std::string where = {});

  NetlinkSocket(NetlinkSocket&&) noexcept = default;
  NetlinkSocket& operator=(NetlinkSocket&&) noexcept = default;

  /// Sends one request with NLM_F_ACK and waits for its ACK; reply messages that arrive
  /// before the ACK (a "get" that answers) go to on_reply.
  [[nodiscard]] Status transact(const Request& req, const MessageFn& on_reply = {});
  /// Sends one dump request (the factory set NLM_F_DUMP) and feeds every reply to fn.
  [[nodiscard]] Status dump(const Request& req, const MessageFn& fn);
  /// Sends all requests with as few sendmsg calls as possible (the kernel handles them in
  /// order) and collects every ACK: one status per request. Within one sendmsg the kernel
  /// goes on past a failed request; after a sendmsg with a failure nothing more is sent,
  /// and the requests left over fail as "not sent". Replies other than ACKs (a request
  /// with NLM_F_ECHO) go to on_reply; its errors are ignored.
  [[nodiscard]] std::vector<Status> batch_each(std::span<const Request> reqs,
                                               const MessageFn& on_reply = {});
  /// batch_each, summed up: the first failure, named "request 3 of 40" and followed by how
  /// many later requests failed too.
  [[nodiscard]] Status batch(std::span<const Request> reqs);

  [[nodiscard]] const std::string& where() const { return where_; }
  [[nodiscard]] int fd() const { return fd_.get(); }

 private:
  NetlinkSocket(Fd fd, uint32_t portid, std::string where)
      : fd_(std::move(fd)), portid_(portid), where_(std::move(where)) {}
  Status send(std::span<const Request> reqs, uint32_t first_seq, bool ack);
  // Reads messages until `done(nlh)` says so; every message is passed to `on_msg`.
  Status receive(const std::function<Result<bool>(const nlmsghdr&)>& on_msg);

  Fd fd_;
  uint32_t portid_ = 0;
  uint32_t seq_ = 0;
  std::string where_;
};

/// The first failure among per-request statuses, as batch() reports it ("request k of n:
/// ...", "(and 2 later requests failed too)"); requests that were never sent do not count.
[[nodiscard]] Status first_failure(std::vector<Status> statuses);

/// Collects the attributes of one message (or nest) into a table indexed by type, for
/// mnl_attr_parse / mnl_attr_parse_nested: `AttrTable<IFLA_MAX + 1> tb; mnl_attr_parse(nlh,
/// hdrlen, decltype(tb)::cb, &tb)`.
template <size_t N>
struct AttrTable {
  std::array<const nlattr*, N> at{};
  static int cb(const nlattr* attr, void* data) {
    auto* t = static_cast<AttrTable*>(data);
    const unsigned type = mnl_attr_get_type(attr);
    if (type < N) t->at[type] = attr;
    return MNL_CB_OK;
  }
  const nlattr* operator[](unsigned type) const { return type < N ? at[type] : nullptr; }
};

/// CTRL_CMD_GETFAMILY for a generic netlink family name ("IPVS").
[[nodiscard]] Request genl_family_request(const std::string& name);
/// The CTRL_ATTR_FAMILY_ID in a CTRL_CMD_NEWFAMILY reply.
[[nodiscard]] Result<uint16_t> parse_genl_family_id(const nlmsghdr& nlh);
/// Resolves a generic netlink family id over `sock` (ENOENT when the kernel has no such
/// family). Ids are global: the same in every namespace.
[[nodiscard]] Result<uint16_t> resolve_genl_family(NetlinkSocket& sock, const std::string& name);

}  // namespace labctl
