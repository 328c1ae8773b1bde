// labctl link LAB [--json]                      the lab's links, their state and impairments
// labctl link LAB NODE:IF down|up               cut a link, restore it
// labctl link LAB NODE:IF impair KEY=VALUE...   change its impairment live
// labctl link LAB NODE:IF clear                 remove it
#include <cstdio>

#include "labctl/cli/command.h"
#include "labctl/cli/load.h"
#include "labctl/lab/lifecycle.h"
#include "labctl/lab/live_edit.h"
#include "labctl/lab/state.h"

namespace labctl::cli {
namespace {

struct Flags {
  std::vector<std::string> args;
  bool json = false;
};

[[noreturn]] void usage(const std::string& what) {
  die(Error{what, 0, {}, "see `labctl link --help`"}, kExitInvalid);
}

void show(const std::string& what, const Result<std::string>& done, bool json) {
  if (!done) die(done.error());
  if (json) std::printf("%s\n", json_text({{"edit", what}, {"done", *done}}).c_str());
  else std::printf("%s\n", done->c_str());
}

void run(const Flags& f) {
  const auto& a = f.args;
  Topology t = running_lab_or_die(a[0]);
  if (a.size() == 1) {
    auto rows = read_links(t);
    if (f.json) std::printf("%s\n", json_text(links_json(rows)).c_str());
    else std::printf("%s", render_links(rows).c_str());
    return;
  }
  auto ep = parse_endpoint(a[1]);
  if (!ep) die(ep.error(), kExitInvalid);
  auto l = resolve_link(t, ep->first, ep->second);
  if (!l) die(l.error(), kExitInvalid);
  if (a.size() < 3) usage("link " + a[1] + ": expected down, up, impair KEY=VALUE... or clear");
  const std::string& verb = a[2];
  if (verb == "down" || verb == "up") {
    if (a.size() > 3) usage("link " + a[1] + " " + verb + ": unexpected '" + a[3] + "'");
    show("link-" + verb, set_link(t, *l, verb == "up"), f.json);
  } else if (verb == "impair") {
    auto imp = parse_impair_args({a.begin() + 3, a.end()});
    if (!imp) die(imp.error(), kExitInvalid);
    show("impair", impair_link(t, *l, *imp), f.json);
  } else if (verb == "clear") {
    if (a.size() > 3) usage("link " + a[1] + " clear: unexpected '" + a[3] + "'");
    show("clear", impair_link(t, *l, {}), f.json);
  } else {
    usage("link " + a[1] + ": '" + verb + "' is not down, up, impair or clear");
  }
}

void setup(CLI::App& app) {
  auto* cmd = app.add_subcommand("link", "List a running lab's links, cut, restore or impair one");
  cmd->footer(
      "  labctl link LAB                        every link: state (up, down, no-carrier) and\n"
      "                                         the impairment of its egress (root qdisc)\n"
      "  labctl link LAB NODE:IF down           cut the link, as a pulled cable does\n"
      "  labctl link LAB NODE:IF up             restore it\n"
      "  labctl link LAB NODE:IF impair KEY=VALUE...   replace NODE:IF's egress impairment\n"
      "  labctl link LAB NODE:IF clear          remove it (the kernel's default qdisc again)\n"
      "A cut sets the far end of the link down (a switch link's bridge port, a node-to-node\n"
      "link's peer interface): both ends lose carrier, NODE:IF stays up as NO-CARRIER and keeps\n"
      "its addresses and routes; `up` restores the far end (and a far node's addresses and\n"
      "routes, which the kernel drops when its interface goes down).\n"
      "Impairment keys, in tc's spellings (docs/topology.md): rate=10mbit delay=20ms\n"
      "jitter=5ms loss=1% duplicate=0.1% corrupt=0.1% reorder=25% limit=1000. A rate alone\n"
      "is a tbf; anything else needs netem (CONFIG_NET_SCH_NETEM; `up --vm=auto` has it).\n"
      "Edits are taken under the lab's lock, read back from the kernel, recorded in the lab's\n"
      "state and shown by `labctl status`; `labctl down` removes everything.\n"
      "Exit status: 0 done, 1 the kernel refused (its reason and a hint are shown), 2 bad\n"
      "names or usage (what exists is listed; nothing was changed).\n"
      "\n"
      "Examples: labctl link ha-demo\n"
      "          labctl link ha-demo lb1:eth0 down\n"
      "          labctl link ha-demo client:eth0 impair delay=50ms loss=5%");
  static Flags f;
  cmd->add_option("args", f.args, "LAB, or LAB NODE:IF down|up|impair KEY=VALUE...|clear")
      ->required();
  cmd->add_flag("--json", f.json, "Machine-readable output");
  cmd->callback([] { run(f); });
}

LABCTL_COMMAND(53, setup);

}  // namespace
}  // namespace labctl::cli
