// labctl_impair_bench: what an impairment step costs (issue 23: at most 0.1 ms each at
// `up`), as a ratio against bringing a link up, measured in the same run. Needs root;
// each round works in a namespace of its own ("bench-impair-<pid>") with --links fresh
// veth pairs and removes it. It sends, as `up` does (one batch, an ACK each): every link's
// netem (where the kernel has one) and tbf while the links are down, as `up` can order
// them; then every link "up" (the baseline); then, as live edits on links that are up,
// netem, tbf and a clear. See docs/bench.md.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "labctl/kernel/features.h"
#include "labctl/kernel/netns.h"
#include "labctl/kernel/qdisc.h"
#include "labctl/kernel/rtnl.h"
#include "bench/median.h"

namespace labctl {
namespace {

using Clock = std::chrono::steady_clock;

void die_on(const Status& st, const char* what) {
  if (st) return;
  std::fprintf(stderr, "labctl_impair_bench: %s: %s\n", what, st.error().str().c_str());
  std::exit(1);
}

std::string dev(int i) { return "bi" + std::to_string(i); }

// One batch of one request per link (`add` builds link i's), sent and timed: microseconds
// per request.
double per_link_us(Rtnl& rtnl, int links, const std::function<Status(RtnlBatch&, int)>& add,
                   const char* what) {
  RtnlBatch b = rtnl.batch();
  for (int i = 0; i < links; ++i) die_on(add(b, i), what);
  const auto t0 = Clock::now();
  die_on(b.commit(), what);
  return std::chrono::duration<double, std::micro>(Clock::now() - t0).count() / links;
}

struct Round {
  double up = 0;        ///< link up, per link (the baseline)
  double tbf_down = 0;  ///< tbf on a link that is down, as `up` can order it
  double netem_down = 0;
  double tbf_live = 0;  ///< tbf replaced on a link that is up: a live edit
  double netem_live = 0;
  double clear_live = 0;
  double tbf_first_live = 0;  ///< tbf on an up link that has none: the kernel grafts it
};

// One round in a namespace of its own with `links` fresh veths, down until the baseline
// brings them up.
Round round(int links, bool netem) {
  const std::string ns = "bench-impair-" + std::to_string(::getpid());
  die_on(create_netns(ns), "create the namespace");
  std::optional<Rtnl> rtnl;
  {
    auto fd = open_netns(ns);
    die_on(fd ? Status{} : tl::unexpected(fd.error()), "open the namespace");
    die_on(run_in_netns(fd->get(),
                        [&]() -> Status {
                          TRY_ASSIGN(Rtnl r, Rtnl::open(ns));
                          rtnl.emplace(std::move(r));
                          return {};
                        }),
           "open rtnetlink in the namespace");
  }
  std::vector<int> index(static_cast<size_t>(links));
  {
    RtnlBatch b = rtnl->batch();
    for (int i = 0; i < links; ++i)
      die_on(b.create_veth(dev(i), "bp" + std::to_string(i), -1, 0, "", ""), "create veths");
    die_on(b.commit(), "create veths");
    for (int i = 0; i < links; ++i) {
      auto idx = rtnl->ifindex(dev(i));
      die_on(idx ? Status{} : tl::unexpected(idx.error()), "find a veth");
      index[static_cast<size_t>(i)] = *idx;
    }
  }
  Impairment rate;
  rate.rate = 1250000;  // 10mbit
  Impairment delay;
  delay.delay = std::chrono::milliseconds(20);
  delay.loss = Probability::from_percent(1);
  auto set = [&](const Impairment& imp) {
    return [&, imp](RtnlBatch& b, int i) {
      return b.add(
          qdisc::set_request(index[static_cast<size_t>(i)], dev(i), imp, QdiscChange::Replace));
    };
  };
  auto clear = [&](RtnlBatch& b, int i) {
    return b.add(qdisc::clear_request(index[static_cast<size_t>(i)], dev(i)));
  };
  Round r;
  if (netem) r.netem_down = per_link_us(*rtnl, links, set(delay), "set netem on a down link");
  r.tbf_down = per_link_us(*rtnl, links, set(rate), "set tbf on a down link");
  r.up = per_link_us(
      *rtnl, links, [](RtnlBatch& b, int i) { return b.link_up(dev(i)); }, "link up");
  if (netem) r.netem_live = per_link_us(*rtnl, links, set(delay), "set netem on an up link");
  r.tbf_live = per_link_us(*rtnl, links, set(rate), "set tbf on an up link");
  r.clear_live = per_link_us(*rtnl, links, clear, "clear an up link");
  r.tbf_first_live = per_link_us(*rtnl, links, set(rate), "set tbf on an up link without one");
  rtnl.reset();
  die_on(delete_netns(ns), "remove the namespace");
  return r;
}

int run(int links, int rounds) {
  if (::geteuid() != 0) {
    std::fprintf(stderr, "labctl_impair_bench: needs root (it makes a namespace and links)\n");
    return 1;
  }
  const bool netem = static_cast<bool>(probe_netem());
  std::vector<Round> rs;
  for (int i = 0; i < rounds; ++i) rs.push_back(round(links, netem));
  auto med = [&](double Round::*f) {
    std::vector<double> v;
    for (const auto& r : rs) v.push_back(r.*f);
    return median(v);
  };
  const double base = med(&Round::up);
  std::printf(
      "impairment steps on %d fresh veths, median of %d rounds, each a batch as up sends it:\n",
      links, rounds);
  std::printf("  %-44s %7.1f us per link (baseline)\n", "link up", base);
  auto row = [&](const char* what, double Round::*f, bool goal) {
    const double m = med(f);
    std::printf("  %-44s %7.1f us per link  %6.2fx link up%s\n", what, m, m / base,
                !goal      ? ""
                : m <= 100 ? "  (goal <= 100 us: met)"
                           : "  (goal <= 100 us: MISSED)");
  };
  row("tbf rate 10mbit, link down (at up)", &Round::tbf_down, true);
  if (netem) row("netem delay 20ms loss 1%, link down (at up)", &Round::netem_down, true);
  row("tbf replaced, link up (a live edit)", &Round::tbf_live, false);
  if (netem) row("netem for tbf, link up (a live edit)", &Round::netem_live, false);
  row("clear, link up (a live edit)", &Round::clear_live, false);
  row("tbf where none was, link up (a live edit)", &Round::tbf_first_live, false);
  if (!netem) std::printf("  netem: not measured, this kernel has none (run it in the micro-VM)\n");
  return 0;
}

}  // namespace
}  // namespace labctl

int main(int argc, char** argv) {
  CLI::App app{"labctl_impair_bench: impairment steps against link-up steps (docs/bench.md)"};
  int links = 200;
  int rounds = 7;
  app.add_option("--links", links, "veth pairs to impair")->check(CLI::Range(1, 4000));
  app.add_option("--rounds", rounds, "rounds (the median is reported)")->check(CLI::Range(1, 100));
  CLI11_PARSE(app, argc, argv);
  return labctl::run(links, rounds);
}
