// Unit tier: root qdisc requests (kernel/qdisc.h) as libnl builds them plus the attributes
// labctl adds, taken apart byte by byte and decoded back into the Impairment they carry.
#include "labctl/kernel/qdisc.h"

#include <gtest/gtest.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>

#include <cerrno>
#include <cstring>

#include "tests/support/impair_print.h"
#include "tests/unit/nl_test_util.h"

namespace labctl {
namespace {

using namespace std::chrono_literals;
using test::Attrs;

Impairment netem_all() { return every_key_set(500); }

const tcmsg& tcm_of(const Request& r) {
  return *static_cast<const tcmsg*>(mnl_nlmsg_get_payload(r.header()));
}

// netem's TCA_OPTIONS: its tc_netem_qopt, then attributes.
struct NetemOpts {
  tc_netem_qopt qopt{};
  Attrs attrs;
};
NetemOpts netem_opts(const Request& r) {
  Attrs top = test::attrs_of(r.header(), sizeof(tcmsg));
  NetemOpts out;
  const nlattr* o = top.at(TCA_OPTIONS);
  const auto* p = static_cast<const uint8_t*>(mnl_attr_get_payload(o));
  std::memcpy(&out.qopt, p, sizeof out.qopt);
  mnl_attr_parse_payload(p + NLA_ALIGN(sizeof out.qopt),
                         mnl_attr_get_payload_len(o) - NLA_ALIGN(sizeof out.qopt),
                         test::collect_attr, &out.attrs);
  return out;
}

template <class T>
T get(const nlattr* a) {
  T v{};
  EXPECT_EQ(mnl_attr_get_payload_len(a), sizeof v);
  std::memcpy(&v, mnl_attr_get_payload(a), sizeof v);
  return v;
}

TEST(QdiscRequest, NetemCarriesEveryKeyAndDecodesBack) {
  auto r = qdisc::set_request(7, "eth0", netem_all(), QdiscChange::Replace);
  ASSERT_TRUE(r) << r.error().str();
  EXPECT_EQ(r->header()->nlmsg_type, RTM_NEWQDISC);
  EXPECT_EQ(r->header()->nlmsg_len, r->bytes.size());
  EXPECT_EQ(r->header()->nlmsg_flags & (NLM_F_CREATE | NLM_F_EXCL | NLM_F_REPLACE),
            NLM_F_CREATE | NLM_F_REPLACE);
  EXPECT_EQ(tcm_of(*r).tcm_ifindex, 7);
  EXPECT_EQ(tcm_of(*r).tcm_parent, TC_H_ROOT);
  EXPECT_EQ(tcm_of(*r).tcm_handle, 0u) << "the kernel picks the handle";
  EXPECT_EQ(r->what,
            "replace netem on eth0 (10mbit, delay 20ms ±5ms, loss 1%, duplicate 0.1%, corrupt "
            "0.1%, reorder 25%, limit 500)");

  // TCA_OPTIONS ends the message exactly: no trailing bytes (libnl 3.7 counts the
  // attributes after netem's qopt twice in nlmsg_len; set_request trims that).
  const nlattr* opts = test::attrs_of(r->header(), sizeof(tcmsg)).at(TCA_OPTIONS);
  EXPECT_EQ(reinterpret_cast<const uint8_t*>(opts) - r->bytes.data() + NLA_ALIGN(opts->nla_len),
            r->bytes.size());

  NetemOpts o = netem_opts(*r);
  EXPECT_EQ(o.qopt.limit, 500u);
  EXPECT_EQ(o.qopt.loss, 42949673u);
  EXPECT_EQ(o.qopt.duplicate, 4294967u);
  EXPECT_EQ(o.qopt.gap, 1u) << "reorder without a gap is no reorder; tc and libnl send 1";
  EXPECT_EQ(o.qopt.latency, 312500u) << "libnl's 64 ns ticks";
  ASSERT_TRUE(o.attrs.count(TCA_NETEM_LATENCY64));
  EXPECT_EQ(get<int64_t>(o.attrs[TCA_NETEM_LATENCY64]), 20000000);
  EXPECT_EQ(get<int64_t>(o.attrs[TCA_NETEM_JITTER64]), 5000000);
  EXPECT_EQ(get<tc_netem_rate>(o.attrs[TCA_NETEM_RATE]).rate, 1250000u);
  EXPECT_FALSE(o.attrs.count(TCA_NETEM_RATE64));
  EXPECT_EQ(get<tc_netem_reorder>(o.attrs[TCA_NETEM_REORDER]).probability, 1073741824u);
  EXPECT_EQ(get<tc_netem_corrupt>(o.attrs[TCA_NETEM_CORRUPT]).probability, 4294967u);

  auto info = qdisc::parse(*r->header());
  ASSERT_TRUE(info) << info.error().str();
  EXPECT_EQ(info->kind, "netem");
  EXPECT_EQ(info->ifindex, 7);
  EXPECT_EQ(info->parent, TC_H_ROOT);
  ASSERT_TRUE(info->impairment);
  EXPECT_EQ(*info->impairment, canonical(netem_all()));
}

TEST(QdiscRequest, NetemExactBeyondLibnlsUnits) {
  Impairment i;
  i.delay = 1us;  // not a whole 64 ns tick: libnl's qopt says 960 ns
  i.jitter = 3us;
  i.rate = 12500000000;  // 100gbit: over 2^32 bytes/s
  auto r = qdisc::set_request(3, "eth1", i, QdiscChange::Add);
  ASSERT_TRUE(r) << r.error().str();
  EXPECT_EQ(r->header()->nlmsg_flags & (NLM_F_CREATE | NLM_F_EXCL | NLM_F_REPLACE),
            NLM_F_CREATE | NLM_F_EXCL);
  NetemOpts o = netem_opts(*r);
  EXPECT_EQ(o.qopt.latency, 15u) << "libnl's ticks: 960 ns";
  EXPECT_EQ(get<int64_t>(o.attrs.at(TCA_NETEM_LATENCY64)), 1000) << "what the kernel takes";
  EXPECT_EQ(o.qopt.limit, kNetemDefaultLimit);
  EXPECT_EQ(get<tc_netem_rate>(o.attrs[TCA_NETEM_RATE]).rate, 0xFFFFFFFFu);
  EXPECT_EQ(get<uint64_t>(o.attrs[TCA_NETEM_RATE64]), 12500000000u);
  auto info = qdisc::parse(*r->header());
  ASSERT_TRUE(info) << info.error().str();
  EXPECT_EQ(*info->impairment, i);
}

TEST(QdiscRequest, WhatIsUnsetGoesOutAsZero) {
  // A replace changes a netem in place and netem keeps what a request leaves out: every
  // value labctl can set goes out, 0 when unset.
  Impairment i;
  i.loss = Probability{0xFFFFFFFF};  // 100%: over INT_MAX, through libnl's int
  auto r = qdisc::set_request(3, "eth1", i, QdiscChange::Replace);
  ASSERT_TRUE(r) << r.error().str();
  NetemOpts o = netem_opts(*r);
  EXPECT_EQ(o.qopt.loss, 0xFFFFFFFFu);
  EXPECT_EQ(o.qopt.latency, 0u);
  EXPECT_EQ(o.qopt.gap, 0u);
  EXPECT_EQ(get<int64_t>(o.attrs.at(TCA_NETEM_LATENCY64)), 0);
  EXPECT_EQ(get<int64_t>(o.attrs.at(TCA_NETEM_JITTER64)), 0);
  EXPECT_EQ(get<tc_netem_rate>(o.attrs.at(TCA_NETEM_RATE)).rate, 0u);
  EXPECT_EQ(get<tc_netem_reorder>(o.attrs.at(TCA_NETEM_REORDER)).probability, 0u);
  EXPECT_EQ(get<tc_netem_corrupt>(o.attrs.at(TCA_NETEM_CORRUPT)).probability, 0u);
  EXPECT_FALSE(o.attrs.count(TCA_NETEM_RATE64));
  EXPECT_EQ(*qdisc::parse(*r->header())->impairment, i);

  i.reorder = Probability{0};  // written as "0%": libnl leaves it out, labctl does not
  i.delay = std::chrono::milliseconds(1);
  // The decoded attributes point into the request: it must outlive them.
  auto again = qdisc::set_request(3, "eth1", i, QdiscChange::Replace);
  ASSERT_TRUE(again) << again.error().str();
  o = netem_opts(*again);
  EXPECT_EQ(get<tc_netem_reorder>(o.attrs.at(TCA_NETEM_REORDER)).probability, 0u);
}

TEST(QdiscRequest, RateAloneIsTbfWithBurstAndLimit) {
  Impairment i;
  i.rate = 1250000;
  auto r = qdisc::set_request(9, "eth0", i, QdiscChange::Replace, 1500);
  ASSERT_TRUE(r) << r.error().str();
  EXPECT_EQ(r->what, "replace tbf on eth0 (10mbit)");
  Attrs top = test::attrs_of(r->header(), sizeof(tcmsg));
  EXPECT_EQ(test::str(top.at(TCA_KIND)), "tbf");
  Attrs tbf = test::nested(top.at(TCA_OPTIONS));
  auto parms = get<tc_tbf_qopt>(tbf.at(TCA_TBF_PARMS));
  EXPECT_EQ(parms.rate.rate, 1250000u);
  EXPECT_EQ(parms.limit, 137500u);
  EXPECT_EQ(get<uint32_t>(tbf.at(TCA_TBF_BURST)), 12500u);
  EXPECT_TRUE(tbf.count(TCA_TBF_RTAB));
  EXPECT_FALSE(tbf.count(TCA_TBF_RATE64));
  auto info = qdisc::parse(*r->header());
  ASSERT_TRUE(info) << info.error().str();
  EXPECT_EQ(info->kind, "tbf");
  EXPECT_EQ(*info->impairment, i);
}

TEST(QdiscRequest, TbfBeyondLibnlsIntRate) {
  Impairment i;
  i.rate = 5000000000;  // 40gbit
  auto r = qdisc::set_request(9, "eth0", i, QdiscChange::Replace);
  ASSERT_TRUE(r) << r.error().str();
  Attrs tbf = test::nested(test::attrs_of(r->header(), sizeof(tcmsg)).at(TCA_OPTIONS));
  EXPECT_EQ(get<uint64_t>(tbf.at(TCA_TBF_RATE64)), 5000000000u);
  EXPECT_EQ(get<uint32_t>(tbf.at(TCA_TBF_BURST)), 50000000u);
  EXPECT_EQ(*qdisc::parse(*r->header())->impairment, i);
}

TEST(QdiscRequest, RefusesWhatNetemWouldRefuse) {
  EXPECT_FALSE(qdisc::set_request(1, "eth0", Impairment{}, QdiscChange::Replace));
  Impairment i;
  i.reorder = Probability{1073741824};
  auto r = qdisc::set_request(1, "eth0", i, QdiscChange::Replace);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message,
            "replace netem on eth0 (reorder 25%): 'reorder' needs a 'delay' (above 0)");
}

TEST(QdiscRequest, ClearDeletesTheRootAndToleratesNone) {
  auto r = qdisc::clear_request(4, "eth2");
  ASSERT_TRUE(r) << r.error().str();
  EXPECT_EQ(r->header()->nlmsg_type, RTM_DELQDISC);
  EXPECT_EQ(tcm_of(*r).tcm_ifindex, 4);
  EXPECT_EQ(tcm_of(*r).tcm_parent, TC_H_ROOT);
  EXPECT_EQ(r->ok_errno, ENOENT);
}

TEST(QdiscRequest, DumpAndOtherKinds) {
  Request d = qdisc::dump_request();
  EXPECT_EQ(d.header()->nlmsg_type, RTM_GETQDISC);
  EXPECT_TRUE(d.header()->nlmsg_flags & NLM_F_DUMP);
  test::MsgBuilder b(RTM_NEWQDISC);
  auto* t = b.extra<tcmsg>();
  t->tcm_ifindex = 2;
  t->tcm_parent = TC_H_ROOT;
  mnl_attr_put_strz(b.nlh(), TCA_KIND, "noqueue");
  auto info = qdisc::parse(*b.nlh());
  ASSERT_TRUE(info);
  EXPECT_EQ(info->kind, "noqueue");
  EXPECT_FALSE(info->impairment);
}

TEST(QdiscHint, MissingNetemNamesTheConfigAndTheVm) {
  std::string h = qdisc::netem_hint(ENOENT, "lab-a");
  EXPECT_NE(h.find("CONFIG_NET_SCH_NETEM"), std::string::npos) << h;
  EXPECT_NE(h.find("up --vm=auto"), std::string::npos) << h;
  EXPECT_NE(qdisc::tbf_hint(ENOENT, "").find("CONFIG_NET_SCH_TBF"), std::string::npos);
  EXPECT_NE(qdisc::netem_hint(EEXIST, "lab-a").find("clear it first"), std::string::npos);
}

}  // namespace
}  // namespace labctl
