// Unit tier: ACK parsing, request errors and generic netlink family requests, from canned bytes.
#include "labctl/kernel/netlink.h"

#include <gtest/gtest.h>
#include <linux/genetlink.h>
#include <linux/rtnetlink.h>

#include <cerrno>
#include <cstring>

#include "tests/unit/nl_test_util.h"

namespace labctl {
namespace {

using test::MsgBuilder;

// An NLMSG_ERROR as a kernel with NETLINK_CAP_ACK and NETLINK_EXT_ACK sends it.
std::vector<uint8_t> capped_error(int err, uint32_t seq, const char* msg, uint32_t offs) {
  MsgBuilder b(NLMSG_ERROR, NLM_F_CAPPED | NLM_F_ACK_TLVS, seq);
  auto* e = b.extra<nlmsgerr>();
  e->error = -err;
  e->msg.nlmsg_len = 64;  // the original request's length; its payload is not echoed
  e->msg.nlmsg_type = RTM_NEWLINK;
  e->msg.nlmsg_seq = seq;
  if (msg) mnl_attr_put_strz(b.nlh(), NLMSGERR_ATTR_MSG, msg);
  if (offs) mnl_attr_put_u32(b.nlh(), NLMSGERR_ATTR_OFFS, offs);
  return b.bytes();
}

const nlmsghdr* hdr(const std::vector<uint8_t>& v) {
  return reinterpret_cast<const nlmsghdr*>(v.data());
}

TEST(NetlinkAck, CappedErrorCarriesErrnoMessageAndOffset) {
  auto buf = capped_error(EEXIST, 7, "File exists: device name in use", 32);
  auto ack = parse_ack(*hdr(buf));
  ASSERT_TRUE(ack) << ack.error().str();
  EXPECT_EQ(ack->errnum, EEXIST);
  EXPECT_EQ(ack->message, "File exists: device name in use");
  EXPECT_EQ(ack->offset, 32u);
  EXPECT_EQ(ack->seq, 7u);
}

TEST(NetlinkAck, PlainAckIsErrnoZero) {
  MsgBuilder b(NLMSG_ERROR, NLM_F_CAPPED, 3);
  b.extra<nlmsgerr>()->error = 0;
  auto buf = b.bytes();
  auto ack = parse_ack(*hdr(buf));
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->errnum, 0);
  EXPECT_TRUE(ack->message.empty());
}

TEST(NetlinkAck, UncappedErrorSkipsTheEchoedRequestBeforeTheTlvs) {
  // Without NETLINK_CAP_ACK the kernel copies our whole request (here 12 payload bytes that
  // look like an attribute, to catch a parser that reads them as TLVs).
  MsgBuilder b(NLMSG_ERROR, NLM_F_ACK_TLVS, 9);
  auto* e = b.extra<nlmsgerr>();
  e->error = -EINVAL;
  e->msg.nlmsg_len = NLMSG_HDRLEN + 12;
  uint8_t echoed[12] = {8, 0, NLMSGERR_ATTR_MSG, 0, 'b', 'a', 'd', 0, 0, 0, 0, 0};
  std::memcpy(mnl_nlmsg_put_extra_header(b.nlh(), sizeof echoed), echoed, sizeof echoed);
  mnl_attr_put_strz(b.nlh(), NLMSGERR_ATTR_MSG, "the real message");
  auto buf = b.bytes();
  auto ack = parse_ack(*hdr(buf));
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->errnum, EINVAL);
  EXPECT_EQ(ack->message, "the real message");
}

TEST(NetlinkAck, MissingAttributeIsReported) {
  MsgBuilder b(NLMSG_ERROR, NLM_F_CAPPED | NLM_F_ACK_TLVS, 1);
  b.extra<nlmsgerr>()->error = -EINVAL;
  mnl_attr_put_u32(b.nlh(), NLMSGERR_ATTR_MISS_TYPE, 3);
  auto buf = b.bytes();
  auto ack = parse_ack(*hdr(buf));
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->missing, 3u);
  Request req{{}, "add something", {}, 0};
  Error e = request_error(req, *ack, "");
  EXPECT_EQ(e.kernel, "required attribute 3 is missing");
}

TEST(NetlinkAck, DumpDoneWithErrorIsParsed) {
  MsgBuilder b(NLMSG_DONE, NLM_F_MULTI | NLM_F_ACK_TLVS, 5);
  *b.extra<int>() = -EOPNOTSUPP;
  mnl_attr_put_strz(b.nlh(), NLMSGERR_ATTR_MSG, "dump not supported");
  auto buf = b.bytes();
  auto ack = parse_ack(*hdr(buf));
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->errnum, EOPNOTSUPP);
  EXPECT_EQ(ack->message, "dump not supported");
}

TEST(NetlinkAck, TruncatedAndForeignMessagesAreRejected) {
  MsgBuilder b(NLMSG_ERROR);
  auto buf = b.bytes();  // no nlmsgerr payload at all
  EXPECT_FALSE(parse_ack(*hdr(buf)));
  MsgBuilder other(RTM_NEWLINK);
  auto buf2 = other.bytes();
  EXPECT_FALSE(parse_ack(*hdr(buf2)));
}

// The kernel probes (kernel/features.cc) read refusals through parse_ack too: a message
// without its NUL, or an attribute longer than the message, must not be read past its end.
TEST(NetlinkAck, MalformedExtendedAckTlvsAreNeverReadPastTheMessage) {
  MsgBuilder u(NLMSG_ERROR, NLM_F_CAPPED | NLM_F_ACK_TLVS, 1);
  u.extra<nlmsgerr>()->error = -EINVAL;
  mnl_attr_put(u.nlh(), NLMSGERR_ATTR_MSG, 4, "abcd");  // no NUL inside the attribute
  auto unterminated = u.bytes();
  auto a = parse_ack(*hdr(unterminated));
  ASSERT_TRUE(a);
  EXPECT_EQ(a->errnum, EINVAL);
  EXPECT_EQ(a->message, "") << "a string without its NUL is not taken";

  MsgBuilder b(NLMSG_ERROR, NLM_F_CAPPED | NLM_F_ACK_TLVS, 2);
  b.extra<nlmsgerr>()->error = -EPERM;
  mnl_attr_put_strz(b.nlh(), NLMSGERR_ATTR_MSG, "x");
  auto overlong = b.bytes();
  // An attribute header claiming 200 bytes where the message has 8 left.
  nlattr bad{};
  bad.nla_len = 200;
  bad.nla_type = NLMSGERR_ATTR_MSG;
  const size_t at = overlong.size();
  overlong.resize(at + 8, 'y');
  std::memcpy(overlong.data() + at, &bad, sizeof bad);
  reinterpret_cast<nlmsghdr*>(overlong.data())->nlmsg_len = static_cast<uint32_t>(overlong.size());
  auto o = parse_ack(*hdr(overlong));
  ASSERT_TRUE(o);
  EXPECT_EQ(o->errnum, EPERM);
  EXPECT_EQ(o->message, "x") << "the well-formed attribute before the bad one still counts";

  // An echoed request length past the end of the message: no TLV is read at all.
  MsgBuilder c(NLMSG_ERROR, NLM_F_ACK_TLVS, 3);
  auto* e = c.extra<nlmsgerr>();
  e->error = -ENOENT;
  e->msg.nlmsg_len = 100000;
  auto far = c.bytes();
  auto f = parse_ack(*hdr(far));
  ASSERT_TRUE(f);
  EXPECT_EQ(f->errnum, ENOENT);
  EXPECT_EQ(f->message, "");
}

TEST(NetlinkError, MessageNamesStepNamespaceKernelTextAndHint) {
  auto buf = capped_error(EEXIST, 1, "device exists", 0);
  auto ack = parse_ack(*hdr(buf));
  ASSERT_TRUE(ack);
  Request req{{},
              "create veth eth0 (peer eth1)",
              [](int e, const std::string& where) {
                return e == EEXIST ? "exists in " + where : std::string();
              },
              0};
  Error e = request_error(req, *ack, "lab-rs1");
  EXPECT_EQ(e.message, "create veth eth0 (peer eth1) in lab-rs1");
  EXPECT_EQ(e.errnum, EEXIST);
  EXPECT_EQ(e.kernel, "device exists");
  EXPECT_EQ(e.hint, "exists in lab-rs1");
  const std::string text = e.str();
  EXPECT_NE(text.find("device exists"), std::string::npos);
  EXPECT_NE(text.find("EEXIST"), std::string::npos);
}

TEST(NetlinkError, PermissionErrorsGetAGenericHint) {
  auto buf = capped_error(EPERM, 1, nullptr, 0);
  auto ack = parse_ack(*hdr(buf));
  ASSERT_TRUE(ack);
  Error e = request_error(Request{{}, "bring up eth0", {}, 0}, *ack, "");
  EXPECT_EQ(e.message, "bring up eth0");
  EXPECT_NE(e.hint.find("CAP_NET_ADMIN"), std::string::npos);
}

TEST(GenlFamily, RequestAsksTheControllerByName) {
  Request r = genl_family_request("IPVS");
  ASSERT_EQ(r.header()->nlmsg_len, r.bytes.size());
  EXPECT_EQ(r.header()->nlmsg_type, GENL_ID_CTRL);
  EXPECT_EQ(r.header()->nlmsg_flags & NLM_F_DUMP, 0);
  const auto* genl = static_cast<const genlmsghdr*>(mnl_nlmsg_get_payload(r.header()));
  EXPECT_EQ(genl->cmd, CTRL_CMD_GETFAMILY);
  auto attrs = test::attrs_of(r.header(), sizeof(genlmsghdr));
  ASSERT_TRUE(attrs.count(CTRL_ATTR_FAMILY_NAME));
  auto name = test::payload(attrs[CTRL_ATTR_FAMILY_NAME]);
  EXPECT_EQ(name, (std::vector<uint8_t>{'I', 'P', 'V', 'S', 0}));
}

TEST(GenlFamily, ReplyIdIsDecoded) {
  MsgBuilder b(GENL_ID_CTRL);
  b.extra<genlmsghdr>()->cmd = CTRL_CMD_NEWFAMILY;
  mnl_attr_put_strz(b.nlh(), CTRL_ATTR_FAMILY_NAME, "IPVS");
  mnl_attr_put_u16(b.nlh(), CTRL_ATTR_FAMILY_ID, 0x25);
  auto buf = b.bytes();
  auto id = parse_genl_family_id(*hdr(buf));
  ASSERT_TRUE(id) << id.error().str();
  EXPECT_EQ(*id, 0x25);

  MsgBuilder empty(GENL_ID_CTRL);
  empty.extra<genlmsghdr>();
  auto buf2 = empty.bytes();
  EXPECT_FALSE(parse_genl_family_id(*hdr(buf2)));
}

}  // namespace
}  // namespace labctl
