#include "labctl/kernel/nft.h"

#include <nftables/libnftables.h>

#include <memory>

namespace labctl {
namespace {

struct CtxFree {
  void operator()(nft_ctx* c) const { nft_ctx_free(c); }
};

// nft's message without its trailing newline, the lines after the first indented so the
// error reads as one block under the step.
std::string tidy(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  std::string out;
  for (char c : text) {
    out += c;
    if (c == '\n') out += "    ";
  }
  return out;
}

}  // namespace

std::string nft_hint(const std::string& e) {
  auto has = [&](const char* s) { return e.find(s) != std::string::npos; };
  if (has("Operation not supported") || has("Protocol not supported") ||
      has("No such file or directory") || has("cannot open netlink socket") ||
      has("Address family not supported"))
    return "this kernel seems to lack nf_tables or a part the rules need (CONFIG_NF_TABLES, "
           "CONFIG_NF_TABLES_INET, the meta and payload expressions); run the lab in the "
           "micro-VM: labctl vm exec -- labctl up LAB";
  if (has("Operation not permitted") || has("Permission denied"))
    return "nftables needs CAP_NET_ADMIN: run labctl as root";
  if (has("syntax error") || has("Error:"))
    return "the ruleset comes from the topology's marks; `labctl up --dry-run` shows it as nft "
           "reads it";
  return "";
}

Status nft_apply(const std::string& ruleset, const std::string& what) {
  // The context opens its netlink socket in the current namespace: create, run and free
  // it here, inside the namespace the caller switched to.
  std::unique_ptr<nft_ctx, CtxFree> ctx(nft_ctx_new(NFT_CTX_DEFAULT));
  if (!ctx) return fail(what + ": libnftables could not make a context (out of memory?)");
  if (nft_ctx_buffer_output(ctx.get()) != 0 || nft_ctx_buffer_error(ctx.get()) != 0)
    return fail(what + ": libnftables could not buffer its messages");
  if (nft_run_cmd_from_buffer(ctx.get(), ruleset.c_str()) == 0) return {};
  const char* err = nft_ctx_get_error_buffer(ctx.get());
  std::string text = err ? err : "";
  if (text.empty()) text = "nft failed without a message";
  return fail(what + ": nft: " + tidy(text), nft_hint(text));
}

}  // namespace labctl
