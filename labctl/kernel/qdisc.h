// A link's root qdisc as an Impairment (model/impair.h): set, replaced, cleared and read
// back over rtnetlink, never by running tc. A rate alone is a tbf; anything else a netem
// (needs_netem). Requests are built by libnl-route's qdisc API (rtnl_qdisc_*, rtnl_netem_*,
// rtnl_qdisc_tbf_*) plus the attributes libnl 3.7 cannot express (qdisc.cc says which and
// why), as Request values (netlink.h); replies are decoded with libmnl. All of it acts in
// the namespace the Rtnl socket was opened in.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "labctl/base/error.h"
#include "labctl/kernel/netlink.h"
#include "labctl/kernel/rtnl.h"
#include "labctl/model/impair.h"

namespace labctl {

/// A root qdisc as a dump shows it.
struct QdiscInfo {
  int ifindex = 0;
  uint32_t handle = 0;
  uint32_t parent = 0;
  std::string kind;  ///< "netem", "tbf", "noqueue", "fq_codel" ...
  /// A netem's or tbf's parameters as an Impairment, in canonical() form (netem's default
  /// limit and zero values dropped; a tbf is its rate); nullopt for any other kind.
  std::optional<Impairment> impairment;
};

/// As `tc qdisc add` and `tc qdisc replace`: Add fails (EEXIST) when the link has a root
/// qdisc of its own already; Replace changes a root of the same kind in place (every
/// parameter, its queue kept) and puts a new qdisc in place of one of another kind.
enum class QdiscChange { Add, Replace };

namespace qdisc {

// Factories: one Request each, no kernel involved. `mtu` sizes tbf's bucket (tbf_shape).
/// RTM_NEWQDISC at the root of `ifindex`: netem or tbf as needs_netem(imp) says. An empty
/// impairment is refused (clear it instead).
[[nodiscard]] Result<Request> set_request(int ifindex, const std::string& dev,
                                          const Impairment& imp, QdiscChange change, int mtu = 0);
/// RTM_DELQDISC of the root: the link falls back to its default qdisc. Clearing a link that
/// has none of its own succeeds (ENOENT is the request's ok_errno).
[[nodiscard]] Result<Request> clear_request(int ifindex, const std::string& dev);
/// RTM_GETQDISC dump of every qdisc in the namespace.
[[nodiscard]] Request dump_request();

/// Decodes one RTM_NEWQDISC message (a dump's reply, or a request of set_request).
[[nodiscard]] Result<QdiscInfo> parse(const nlmsghdr& nlh);

/// The hint for a refused netem (CONFIG_NET_SCH_NETEM, `up --vm=auto`) or tbf request.
[[nodiscard]] std::string netem_hint(int errnum, const std::string& where);
[[nodiscard]] std::string tbf_hint(int errnum, const std::string& where);

}  // namespace qdisc

/// Applies `imp` as the root qdisc of `dev` (one round trip once dev's ifindex is known).
[[nodiscard]] Status set_impairment(Rtnl& rtnl, const std::string& dev, const Impairment& imp,
                                    QdiscChange change = QdiscChange::Replace, int mtu = 0);
/// Removes `dev`'s root qdisc, if it has one of its own.
[[nodiscard]] Status clear_impairment(Rtnl& rtnl, const std::string& dev);
/// `dev`'s root qdisc; kind "" when the dump shows none for it (a link that was never up
/// has none; an up veth without one of its own shows "noqueue").
[[nodiscard]] Result<QdiscInfo> root_qdisc(Rtnl& rtnl, const std::string& dev);

}  // namespace labctl
