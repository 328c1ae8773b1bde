#include "labctl/kernel/qdisc.h"

#include <fmt/format.h>
#include <libmnl/libmnl.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <netlink/attr.h>
#include <netlink/errno.h>
#include <netlink/msg.h>
#include <netlink/route/qdisc.h>
#include <netlink/route/qdisc/netem.h>
#include <netlink/route/qdisc/tbf.h>
#include <netlink/route/tc.h>

#include <climits>
#include <cstring>
#include <limits>
#include <memory>

namespace labctl {
namespace qdisc {
namespace {

using std::chrono::nanoseconds;

struct QdiscPut {
  void operator()(rtnl_qdisc* q) const { rtnl_qdisc_put(q); }
};
struct MsgFree {
  void operator()(nl_msg* m) const { nlmsg_free(m); }
};
using QdiscPtr = std::unique_ptr<rtnl_qdisc, QdiscPut>;
using MsgPtr = std::unique_ptr<nl_msg, MsgFree>;

std::string in_where(const std::string& where) { return where.empty() ? "" : " in " + where; }

Error libnl_error(const std::string& what, int nlerr) {
  return Error{what + ": libnl could not build the request: " + nl_geterror(nlerr), 0, {}, {}};
}

Request to_request(const nl_msg* msg, std::string what, HintFn hint) {
  const nlmsghdr* nlh = nlmsg_hdr(const_cast<nl_msg*>(msg));
  const auto* p = reinterpret_cast<const uint8_t*>(nlh);
  return Request{std::vector<uint8_t>(p, p + nlh->nlmsg_len), std::move(what), std::move(hint), 0};
}

// Puts an attribute libnl has no setter for inside TCA_OPTIONS of a message libnl built.
// libnl ends both kinds' messages with TCA_OPTIONS: tbf's is a nest; netem's is its
// tc_netem_qopt followed by its attributes, with a length that runs to the end of the
// message (libnl's netem_msg_fill_raw stretches it so). Either way an attribute appended to
// the message belongs inside once TCA_OPTIONS's length is stretched over it too.
Status put_option(nl_msg* msg, int type, const void* data, size_t len, const std::string& what) {
  nlmsghdr* nlh = nlmsg_hdr(msg);
  nlattr* opts = nlmsg_find_attr(nlh, sizeof(tcmsg), TCA_OPTIONS);
  if (!opts) return fail(what + ": libnl built no TCA_OPTIONS");
  const auto offset = reinterpret_cast<char*>(opts) - reinterpret_cast<char*>(nlh);
  if (static_cast<size_t>(offset) + NLA_ALIGN(opts->nla_len) != NLMSG_ALIGN(nlh->nlmsg_len))
    return fail(what + ": TCA_OPTIONS is not the last attribute of libnl's message");
  if (int e = nla_put(msg, type, static_cast<int>(len), data); e < 0)
    return tl::unexpected(libnl_error(what, e));
  nlh = nlmsg_hdr(msg);
  opts = reinterpret_cast<nlattr*>(reinterpret_cast<char*>(nlh) + offset);
  opts->nla_len = static_cast<uint16_t>(nlh->nlmsg_len - static_cast<uint32_t>(offset));
  return {};
}

// libnl 3.7's netem_msg_fill_raw stretches TCA_OPTIONS over the attributes after the qopt
// (correlation, reorder, corrupt) and then adds that stretch to nlmsg_len once more, though
// those attributes were counted when they were put: the message would end in as many zero
// bytes, which the kernel skips with a "bytes leftover after parsing attributes" warning.
// Cuts the message back to the end of TCA_OPTIONS.
Status trim_after_options(nl_msg* msg, const std::string& what) {
  nlmsghdr* nlh = nlmsg_hdr(msg);
  nlattr* opts = nlmsg_find_attr(nlh, sizeof(tcmsg), TCA_OPTIONS);
  if (!opts) return fail(what + ": libnl built no TCA_OPTIONS");
  const auto end =
      static_cast<size_t>(reinterpret_cast<char*>(opts) - reinterpret_cast<char*>(nlh)) +
      NLA_ALIGN(opts->nla_len);
  if (end > nlh->nlmsg_len)
    return fail(what + ": TCA_OPTIONS runs past the end of libnl's message");
  nlh->nlmsg_len = static_cast<uint32_t>(end);
  return {};
}

template <class T>
Status put_option(nl_msg* msg, int type, const T& value, const std::string& what) {
  return put_option(msg, type, &value, sizeof value, what);
}

int clamp_int(uint64_t v) { return static_cast<int>(std::min<uint64_t>(v, INT_MAX)); }

// libnl's netem delay and jitter are whole microseconds turned into 64 ns ticks, and its
// reorder check wants a delay that is not 0 ticks: never less than 1 us here. The exact
// values go in TCA_NETEM_LATENCY64/JITTER64, which the kernel prefers.
int libnl_us(nanoseconds t) {
  return t.count() <= 0 ? 0 : std::max(1, clamp_int(static_cast<uint64_t>(t.count()) / 1000));
}

// ---- the two kinds -------------------------------------------------------------------------

struct KindOps {
  const char* name;
  /// Sets what libnl can express on a qdisc whose kind is `name`.
  Status (*configure)(rtnl_qdisc* q, const Impairment& imp, int mtu);
  /// Adds what it cannot to the message it built.
  Status (*extend)(nl_msg* msg, const Impairment& imp, int mtu, const std::string& what);
  /// TCA_OPTIONS of a dumped qdisc of this kind to an Impairment.
  Result<Impairment> (*decode)(const nlattr* options);
  std::string (*hint)(int errnum, const std::string& where);
};

Status netem_configure(rtnl_qdisc* q, const Impairment& imp, int) {
  // Unset, libnl sends netem's default limit (1000 packets), as tc does.
  if (imp.limit) rtnl_netem_set_limit(q, clamp_int(*imp.limit));
  if (imp.delay) rtnl_netem_set_delay(q, libnl_us(*imp.delay));
  if (imp.jitter) rtnl_netem_set_jitter(q, libnl_us(*imp.jitter));
  // libnl takes netem's u32 probabilities as int and stores them as uint32_t again.
  auto raw = [](const std::optional<Probability>& p) { return static_cast<int>(p->scaled); };
  if (imp.loss) rtnl_netem_set_loss(q, raw(imp.loss));
  if (imp.duplicate) rtnl_netem_set_duplicate(q, raw(imp.duplicate));
  if (imp.corrupt) rtnl_netem_set_corruption_probability(q, raw(imp.corrupt));
  if (imp.reorder)
    rtnl_netem_set_reorder_probability(q, raw(imp.reorder));  // libnl adds gap 1, as tc
  return {};
}

// libnl 3.7 has no netem rate (TCA_NETEM_RATE, RATE64) and only 64 ns ticks of at most
// 2^32 for delay and jitter; the kernel takes nanoseconds from TCA_NETEM_LATENCY64 and
// JITTER64 over the ticks, as tc sends them. Every one goes out even when it is 0, and so do
// reorder and corrupt (libnl leaves those out when 0): a replace changes a netem in place,
// and netem_change keeps whatever the request leaves out, so without them a replaced
// "reorder 25%" or "rate 10mbit" would stay.
Status netem_extend(nl_msg* msg, const Impairment& imp, int, const std::string& what) {
  TRY(trim_after_options(msg, what));
  TRY(put_option(msg, TCA_NETEM_LATENCY64,
                 static_cast<int64_t>(imp.delay.value_or(nanoseconds(0)).count()), what));
  TRY(put_option(msg, TCA_NETEM_JITTER64,
                 static_cast<int64_t>(imp.jitter.value_or(nanoseconds(0)).count()), what));
  auto zero = [](const std::optional<Probability>& p) { return !p || p->scaled == 0; };
  if (zero(imp.reorder)) TRY(put_option(msg, TCA_NETEM_REORDER, tc_netem_reorder{}, what));
  if (zero(imp.corrupt)) TRY(put_option(msg, TCA_NETEM_CORRUPT, tc_netem_corrupt{}, what));
  // As tc: rates of 2^32 bytes/s and more go in RATE64, the u32 field saturated.
  const uint64_t r = imp.rate.value_or(0);
  const bool wide = r > std::numeric_limits<uint32_t>::max();
  tc_netem_rate rate{};
  rate.rate = wide ? std::numeric_limits<uint32_t>::max() : static_cast<uint32_t>(r);
  TRY(put_option(msg, TCA_NETEM_RATE, rate, what));
  if (wide) TRY(put_option(msg, TCA_NETEM_RATE64, r, what));
  return {};
}

Result<Impairment> netem_decode(const nlattr* options) {
  tc_netem_qopt q{};
  const size_t len = mnl_attr_get_payload_len(options);
  if (len < sizeof q) return fail("malformed netem options: shorter than tc_netem_qopt");
  const auto* payload = static_cast<const uint8_t*>(mnl_attr_get_payload(options));
  std::memcpy(&q, payload, sizeof q);
  Impairment imp;
  imp.limit = q.limit;
  imp.loss = Probability{q.loss};
  imp.duplicate = Probability{q.duplicate};
  // Ticks of 64 ns (PSCHED_SHIFT 6), where the kernel sent no 64-bit times.
  imp.delay = nanoseconds(int64_t{q.latency} << 6);
  imp.jitter = nanoseconds(int64_t{q.jitter} << 6);
  AttrTable<TCA_NETEM_MAX + 1> tb;
  if (len > NLA_ALIGN(sizeof q) &&
      mnl_attr_parse_payload(payload + NLA_ALIGN(sizeof q), len - NLA_ALIGN(sizeof q),
                             decltype(tb)::cb, &tb) < 0)
    return fail("malformed netem options: bad attributes");
  auto get = [&](unsigned type, auto& out) {
    const nlattr* a = tb[type];
    if (!a || mnl_attr_get_payload_len(a) < sizeof out) return false;
    std::memcpy(&out, mnl_attr_get_payload(a), sizeof out);
    return true;
  };
  int64_t t = 0;
  if (get(TCA_NETEM_LATENCY64, t)) imp.delay = nanoseconds(t);
  if (get(TCA_NETEM_JITTER64, t)) imp.jitter = nanoseconds(t);
  tc_netem_reorder reorder{};
  if (get(TCA_NETEM_REORDER, reorder)) imp.reorder = Probability{reorder.probability};
  tc_netem_corrupt corrupt{};
  if (get(TCA_NETEM_CORRUPT, corrupt)) imp.corrupt = Probability{corrupt.probability};
  tc_netem_rate rate{};
  if (get(TCA_NETEM_RATE, rate)) imp.rate = rate.rate;
  uint64_t rate64 = 0;
  if (get(TCA_NETEM_RATE64, rate64)) imp.rate = rate64;
  return canonical(imp);
}

Status tbf_configure(rtnl_qdisc* q, const Impairment& imp, int mtu) {
  const TbfShape s = tbf_shape(imp.rate.value_or(0), mtu);
  // libnl takes int bytes/s (under 2^31); a faster rate goes in TCA_TBF_RATE64 (tbf_extend).
  rtnl_qdisc_tbf_set_rate(q, clamp_int(s.rate), clamp_int(s.burst), 0);
  // tbf's limit is a u32 that libnl takes as int and stores as uint32_t again.
  rtnl_qdisc_tbf_set_limit(q, static_cast<int>(s.limit));
  return {};
}

// libnl 3.7 sends no TCA_TBF_BURST and no TCA_TBF_RATE64: it gives the bucket as ticks of
// its time at a rate of at most 2^31-1 bytes/s. With both, the kernel takes the bucket in
// bytes at the real rate.
Status tbf_extend(nl_msg* msg, const Impairment& imp, int mtu, const std::string& what) {
  const TbfShape s = tbf_shape(imp.rate.value_or(0), mtu);
  TRY(put_option(msg, TCA_TBF_BURST, s.burst, what));
  if (s.rate > static_cast<uint64_t>(INT_MAX)) TRY(put_option(msg, TCA_TBF_RATE64, s.rate, what));
  return {};
}

Result<Impairment> tbf_decode(const nlattr* options) {
  AttrTable<TCA_TBF_MAX + 1> tb;
  if (mnl_attr_parse_nested(options, decltype(tb)::cb, &tb) < 0)
    return fail("malformed tbf options");
  tc_tbf_qopt parms{};
  if (!tb[TCA_TBF_PARMS] || mnl_attr_get_payload_len(tb[TCA_TBF_PARMS]) < sizeof parms)
    return fail("malformed tbf options: no TCA_TBF_PARMS");
  std::memcpy(&parms, mnl_attr_get_payload(tb[TCA_TBF_PARMS]), sizeof parms);
  Impairment imp;
  imp.rate = parms.rate.rate;
  if (tb[TCA_TBF_RATE64] && mnl_attr_get_payload_len(tb[TCA_TBF_RATE64]) >= sizeof(uint64_t))
    imp.rate = mnl_attr_get_u64(tb[TCA_TBF_RATE64]);
  return canonical(imp);
}

const KindOps kNetem{"netem", netem_configure, netem_extend, netem_decode, netem_hint};
const KindOps kTbf{"tbf", tbf_configure, tbf_extend, tbf_decode, tbf_hint};

const KindOps* ops_named(std::string_view kind) {
  for (const KindOps* k : {&kNetem, &kTbf})
    if (kind == k->name) return k;
  return nullptr;
}

std::string qdisc_hint(int errnum, const std::string& where, const std::string& kind) {
  switch (errnum) {
    case EEXIST:
      return "the interface has a root qdisc of its own already" + in_where(where) +
             ": replace it, or clear it first";
    case ENODEV:
      return "no interface of that name" + in_where(where) + " (names are per namespace)";
    case EINVAL:
      return "the kernel refused a " + kind + " parameter: its message says which";
    default:
      return "";
  }
}

}  // namespace

std::string netem_hint(int errnum, const std::string& where) {
  // qdisc_create answers ENOENT ("Specified qdisc kind is unknown") when no "netem" qdisc is
  // registered and sch_netem could not be loaded.
  if (errnum == ENOENT)
    return "this kernel has no netem (CONFIG_NET_SCH_NETEM, module sch_netem); only a rate alone "
           "(tbf) works here. `labctl up --vm=auto LAB` runs the lab in a micro-VM whose kernel "
           "has it (docs/vm.md)";
  return qdisc_hint(errnum, where, "netem");
}

std::string tbf_hint(int errnum, const std::string& where) {
  if (errnum == ENOENT)
    return "this kernel has no tbf (CONFIG_NET_SCH_TBF, module sch_tbf). `labctl up --vm=auto LAB` "
           "runs the lab in a micro-VM whose kernel has it (docs/vm.md)";
  return qdisc_hint(errnum, where, "tbf");
}

Result<Request> set_request(int ifindex, const std::string& dev, const Impairment& imp,
                            QdiscChange change, int mtu) {
  const KindOps& ops = needs_netem(imp) ? kNetem : kTbf;
  const std::string what =
      fmt::format("{} {} on {} ({})", change == QdiscChange::Add ? "add" : "replace", ops.name, dev,
                  impairment_summary(imp));
  if (imp.empty())
    return fail(what + ": the impairment is empty", "clear the interface's impairment instead");
  if (auto problems = impairment_problems(imp); !problems.empty())
    return fail(fmt::format("{}: '{}' {}", what, problems[0].key, problems[0].message),
                problems[0].hint);

  QdiscPtr q(rtnl_qdisc_alloc());
  if (!q) return tl::unexpected(libnl_error(what, -NLE_NOMEM));
  rtnl_tc* tc = TC_CAST(q.get());
  rtnl_tc_set_ifindex(tc, ifindex);
  rtnl_tc_set_parent(tc, TC_H_ROOT);
  // No handle: the kernel picks one, so that Replace never meets a handle of ours on a
  // qdisc of the other kind ("Invalid qdisc name").
  if (int e = rtnl_tc_set_kind(tc, ops.name); e < 0) return tl::unexpected(libnl_error(what, e));
  TRY(ops.configure(q.get(), imp, mtu));
  // As tc: add is NLM_F_CREATE|NLM_F_EXCL (EEXIST when the root has a qdisc of its own),
  // replace NLM_F_CREATE|NLM_F_REPLACE, which changes a root of the same kind in place
  // (its queue kept) and grafts a new qdisc over one of another kind.
  const int flags = NLM_F_CREATE | (change == QdiscChange::Add ? NLM_F_EXCL : NLM_F_REPLACE);
  nl_msg* raw = nullptr;
  if (int e = rtnl_qdisc_build_add_request(q.get(), flags, &raw); e < 0)
    return tl::unexpected(libnl_error(what, e));
  MsgPtr msg(raw);
  TRY(ops.extend(msg.get(), imp, mtu, what));
  return to_request(msg.get(), what, ops.hint);
}

Result<Request> clear_request(int ifindex, const std::string& dev) {
  const std::string what = "clear the impairment of " + dev + " (delete its root qdisc)";
  QdiscPtr q(rtnl_qdisc_alloc());
  if (!q) return tl::unexpected(libnl_error(what, -NLE_NOMEM));
  rtnl_tc_set_ifindex(TC_CAST(q.get()), ifindex);
  rtnl_tc_set_parent(TC_CAST(q.get()), TC_H_ROOT);
  nl_msg* raw = nullptr;
  if (int e = rtnl_qdisc_build_delete_request(q.get(), &raw); e < 0)
    return tl::unexpected(libnl_error(what, e));
  MsgPtr msg(raw);
  Request r = to_request(msg.get(), what, [](int errnum, const std::string& where) {
    return qdisc_hint(errnum, where, "qdisc");
  });
  // tc_get_qdisc answers ENOENT ("Cannot delete qdisc with handle of zero") for the default
  // qdisc a link has when nothing was set: nothing to clear.
  r.ok_errno = ENOENT;
  return r;
}

Request dump_request() {
  std::vector<uint8_t> buf(MNL_ALIGN(sizeof(nlmsghdr)) + MNL_ALIGN(sizeof(tcmsg)), 0);
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  nlh->nlmsg_type = RTM_GETQDISC;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  auto* tcm = static_cast<tcmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(tcmsg)));
  tcm->tcm_family = AF_UNSPEC;
  buf.resize(nlh->nlmsg_len);
  return Request{std::move(buf), "list qdiscs", nullptr, 0};
}

Result<QdiscInfo> parse(const nlmsghdr& nlh) {
  if (nlh.nlmsg_type != RTM_NEWQDISC || nlh.nlmsg_len < NLMSG_LENGTH(sizeof(tcmsg)))
    return fail("malformed RTM_NEWQDISC message");
  const auto* tcm = static_cast<const tcmsg*>(mnl_nlmsg_get_payload(&nlh));
  QdiscInfo info;
  info.ifindex = tcm->tcm_ifindex;
  info.handle = tcm->tcm_handle;
  info.parent = tcm->tcm_parent;
  AttrTable<TCA_MAX + 1> tb;
  if (mnl_attr_parse(&nlh, sizeof(tcmsg), decltype(tb)::cb, &tb) < 0)
    return fail("malformed attributes in RTM_NEWQDISC message");
  if (tb[TCA_KIND] && mnl_attr_validate(tb[TCA_KIND], MNL_TYPE_NUL_STRING) == 0)
    info.kind = mnl_attr_get_str(tb[TCA_KIND]);
  if (const KindOps* ops = ops_named(info.kind); ops && tb[TCA_OPTIONS]) {
    TRY_ASSIGN(Impairment imp, ops->decode(tb[TCA_OPTIONS]));
    info.impairment = std::move(imp);
  }
  return info;
}

}  // namespace qdisc

Status set_impairment(Rtnl& rtnl, const std::string& dev, const Impairment& imp, QdiscChange change,
                      int mtu) {
  TRY_ASSIGN(int index, rtnl.ifindex(dev));
  TRY_ASSIGN(Request req, qdisc::set_request(index, dev, imp, change, mtu));
  return rtnl.socket().transact(req);
}

Status clear_impairment(Rtnl& rtnl, const std::string& dev) {
  TRY_ASSIGN(int index, rtnl.ifindex(dev));
  TRY_ASSIGN(Request req, qdisc::clear_request(index, dev));
  return rtnl.socket().transact(req);
}

Result<QdiscInfo> root_qdisc(Rtnl& rtnl, const std::string& dev) {
  TRY_ASSIGN(int index, rtnl.ifindex(dev));
  QdiscInfo root;
  root.ifindex = index;
  // One dump of the namespace, filtered here: a lab namespace has a handful of links.
  TRY(rtnl.socket().dump(qdisc::dump_request(), [&](const nlmsghdr& nlh) -> Status {
    TRY_ASSIGN(QdiscInfo q, qdisc::parse(nlh));
    if (q.ifindex == index && q.parent == TC_H_ROOT) root = std::move(q);
    return {};
  }));
  return root;
}

}  // namespace labctl
