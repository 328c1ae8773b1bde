// labagent_bench: labagent's HTTP load client and HTTP server against wrk and busybox httpd,
// as ratios measured in the same run, in a lab of two nodes (a veth pair) on this host.
// Needs root, wrk and busybox; touches only the lab "benchag" it creates and removes.
// See docs/bench.md.
//
//   load   `labagent load` against `wrk`, both from the client node to the same
//          `labagent http` on the server node, same connections and duration:
//          requests per second of each and labagent/wrk (goal >= 0.90); once with a
//          connection per request, once with keep-alive (`labagent load --keep-alive`
//          against `wrk -H 'Connection: keep-alive'`, which the http agent honours).
//   server `wrk` against `labagent http` and against `busybox httpd -f` serving a file of
//          the same size: requests per second of each and labagent/busybox (goal >= 1.0).
//
// Every round runs the five in turn (wrk->labagent, load->labagent, wrk->busybox, then
// both clients with keep-alive), so slow and fast minutes of a shared machine hit all of
// them; the ratios are medians of each round's own ratio. Without keep-alive both servers
// close the connection after each answer (HTTP/1.0, Connection: close), so both clients
// pay a TCP connection per request; the bench counts the client node's TCP active opens
// per answer to show that it is so for each of them (and about 0 with keep-alive).
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "labctl/kernel/netns.h"
#include "labctl/kernel/process.h"
#include "labctl/lab/lifecycle.h"
#include "labctl/plan/agent.h"
#include "labctl/plan/planner.h"
#include "bench/median.h"

namespace labctl {
namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kLab = "benchag";
constexpr const char* kServerIp = "10.99.0.2";
constexpr int kLabagentPort = 80;
constexpr int kBusyboxPort = 8080;

[[noreturn]] void fail(const std::string& what, const std::string& hint = "") {
  std::fprintf(stderr, "labagent_bench: %s\n", what.c_str());
  if (!hint.empty()) std::fprintf(stderr, "  hint: %s\n", hint.c_str());
  (void)lab_down(kLab);
  std::exit(1);
}

template <class T>
void die_on(const Result<T>& st, const char* what) {
  if (!st) fail(std::string(what) + ": " + st.error().str());
}

Interface link(const std::string& peer, const std::string& cidr) {
  Interface i;
  i.name = "eth0";
  i.peer_node = peer;
  i.peer_ifname = "eth0";
  i.addresses = {*IpPrefix::parse(cidr)};
  return i;
}

// client 10.99.0.1 <-- veth --> server 10.99.0.2 (labagent http on 80, busybox on 8080).
Topology bench_lab(const std::string& www) {
  Topology t;
  t.name = kLab;
  Node client, server;
  client.name = "client";
  client.interfaces = {link("server", "10.99.0.1/24")};
  // Connection-per-request runs make ~100,000 connections per run: the whole port range
  // and reuse of TIME_WAIT ports keep either client from running out (the same for both).
  client.sysctls = {{"net.ipv4.ip_local_port_range", "1024 65535", {}},
                    {"net.ipv4.tcp_tw_reuse", "1", {}}};
  server.name = "server";
  server.interfaces = {link("client", std::string(kServerIp) + "/24")};
  Agent http;
  http.name = "web";
  http.kind = "http";
  http.port = kLabagentPort;
  Agent bb;
  bb.name = "busybox";
  bb.kind = "command";
  bb.port = kBusyboxPort;
  bb.argv = {"busybox", "httpd", "-f", "-p", std::to_string(kBusyboxPort), "-h", www};
  server.agents = {http, bb};
  t.nodes = {client, server};
  return t;
}

// The client node's TCP active opens so far (its namespace's /proc/net/snmp).
long active_opens(int client_fd) {
  long opens = -1;
  Status st = run_in_netns(client_fd, [&]() -> Status {
    std::ifstream snmp("/proc/thread-self/net/snmp");
    std::string names, values;
    while (std::getline(snmp, names) && std::getline(snmp, values)) {
      if (names.rfind("Tcp:", 0) != 0) continue;
      std::istringstream n(names), v(values);
      std::string name, value;
      while (n >> name && v >> value)
        if (name == "ActiveOpens") opens = std::atol(value.c_str());
    }
    return {};
  });
  return st ? opens : -1;
}

// Waits until something accepts on the server's port, seen from the client (at most 5 s).
void wait_listening(int client_fd, int port) {
  for (auto end = Clock::now() + std::chrono::seconds(5); Clock::now() < end;) {
    bool up = false;
    (void)run_in_netns(client_fd, [&]() -> Status {
      int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in sa{};
      sa.sin_family = AF_INET;
      sa.sin_port = htons(static_cast<uint16_t>(port));
      ::inet_pton(AF_INET, kServerIp, &sa.sin_addr);
      up = ::connect(s, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
      ::close(s);
      return {};
    });
    if (up) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  fail("nothing listens on " + std::string(kServerIp) + ":" + std::to_string(port) +
           " in the lab after 5 s",
       "is busybox-static installed (scripts/setup.sh)? `labctl logs` / the agent log says more");
}

struct Run {
  std::string output;
  double wall_s = 0;
  double cpu_s = 0;  ///< The client's user + system time.
  long answers = 0;  ///< Successful responses.
  long errors = 0;
  long opens = 0;  ///< TCP connections the client node opened during the run.
  [[nodiscard]] double rps() const { return wall_s > 0 ? static_cast<double>(answers) / wall_s : 0; }
};

// Runs argv in the client node, timed from fork to exit, with its output captured.
Run run_client(int client_fd, const std::vector<std::string>& argv) {
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) fail("pipe failed");
  Run r;
  const long opens_before = active_opens(client_fd);
  const auto t0 = Clock::now();
  pid_t pid = ::fork();
  if (pid < 0) fail("fork failed");
  if (pid == 0) {
    ::dup2(pipefd[1], 1);
    ::dup2(pipefd[1], 2);
    Error e = exec_in_netns(client_fd, argv, {});
    std::fprintf(stderr, "%s\n", e.str().c_str());
    ::_exit(127);
  }
  ::close(pipefd[1]);
  char buf[4096];
  for (ssize_t n; (n = ::read(pipefd[0], buf, sizeof buf)) > 0;) r.output.append(buf, static_cast<size_t>(n));
  ::close(pipefd[0]);
  int status = 0;
  rusage ru{};
  ::wait4(pid, &status, 0, &ru);
  r.wall_s = std::chrono::duration<double>(Clock::now() - t0).count();
  r.opens = active_opens(client_fd) - opens_before;
  r.cpu_s = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
            static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  if (!WIFEXITED(status) || (WEXITSTATUS(status) != 0 && WEXITSTATUS(status) != 1))
    fail(argv[0] + " failed (status " + std::to_string(status) + "):\n" + r.output);
  return r;
}

// wrk's "N requests in ..." minus "Non-2xx or 3xx responses: M"; socket errors as errors.
Run parse_wrk(Run r) {
  std::smatch m;
  if (!std::regex_search(r.output, m, std::regex(R"((\d+) requests in)")))
    fail("cannot read wrk's output:\n" + r.output);
  r.answers = std::stol(m[1]);
  if (std::regex_search(r.output, m, std::regex(R"(Non-2xx or 3xx responses: (\d+))"))) {
    r.answers -= std::stol(m[1]);
    r.errors += std::stol(m[1]);
  }
  if (std::regex_search(r.output, m, std::regex(R"(connect (\d+), read (\d+), write (\d+), timeout (\d+))")))
    for (int i = 1; i <= 4; ++i) r.errors += std::stol(m[i]);
  return r;
}

// labagent load prints "NAME COUNT" per server that answered and "failed COUNT".
Run parse_load(Run r) {
  std::istringstream in(r.output);
  std::string who;
  long n = 0;
  bool any = false;
  while (in >> who >> n) {
    any = true;
    (who == "failed" ? r.errors : r.answers) += n;
  }
  if (!any) fail("cannot read labagent load's output:\n" + r.output);
  return r;
}

void print_run(const char* what, const Run& r) {
  std::printf("    %-24s %9.0f req/s %8ld answers %5ld errors %6.1f us CPU/req %5.2f conn/req\n",
              what, r.rps(), r.answers, r.errors,
              r.answers ? r.cpu_s * 1e6 / static_cast<double>(r.answers) : 0.0,
              r.answers ? static_cast<double>(r.opens) / static_cast<double>(r.answers) : 0.0);
  std::fflush(stdout);
}

struct Options {
  int rounds = 5;
  int connections = 8;
  int seconds = 5;
  int wrk_threads = 2;
  std::string load_agent;  ///< The labagent whose load client runs; "": the lab's own.
};

void bench(const Options& o) {
  for (const char* tool : {"wrk", "busybox"})
    if (std::system(("command -v " + std::string(tool) + " >/dev/null 2>&1").c_str()) != 0)
      fail(std::string(tool) + " not found in PATH",
           "scripts/setup.sh installs it (Debian packages wrk and busybox-static)");
  // A private folder (mkdtemp, 0700): the bench runs as root, and a name others can predict
  // could be a link they planted.
  char folder[] = "/tmp/labagent-bench-www.XXXXXX";
  if (!::mkdtemp(folder)) fail("cannot create a folder in /tmp", "check that /tmp is writable");
  const std::string www = folder;
  // The same body as labagent's answer on node "server": its name and a newline.
  std::ofstream(www + "/index.html") << "server\n";

  Topology t = bench_lab(www);
  (void)lab_down(kLab);  // a crashed earlier run's lab
  die_on(lab_up(t, make_plan(t), {}), "up of the bench lab");
  auto client = open_netns(netns_name(kLab, "client"));
  die_on(client, "open the client's namespace");
  const int cfd = client->get();
  wait_listening(cfd, kLabagentPort);
  wait_listening(cfd, kBusyboxPort);

  const std::string secs = std::to_string(o.seconds), conns = std::to_string(o.connections);
  auto wrk = [&](int port, bool keep_alive = false) {
    std::vector<std::string> argv{"wrk", "-t", std::to_string(std::min(o.wrk_threads, o.connections)),
                                  "-c", conns, "-d", secs + "s"};
    if (keep_alive) argv.insert(argv.end(), {"-H", "Connection: keep-alive"});
    argv.push_back("http://" + std::string(kServerIp) + ":" + std::to_string(port) + "/");
    return argv;
  };
  // A count it cannot reach: --seconds ends the run, as -d does wrk's.
  const std::vector<std::string> load{o.load_agent.empty() ? find_labagent() : o.load_agent, "load", "--target",
                                      std::string(kServerIp) + ":" + std::to_string(kLabagentPort),
                                      "--count", "1000000", "--concurrency", conns, "--seconds", secs};
  std::vector<std::string> load_kept = load;
  load_kept.emplace_back("--keep-alive");

  std::printf("labagent load and http agent, %d connections, %d s per run, %d rounds "
              "(wrk -t %d threads; labagent load: one thread per CPU, at most one per connection):\n",
              o.connections, o.seconds, o.rounds, std::min(o.wrk_threads, o.connections));
  std::printf("  http agent: %s\n  load client: %s\n", find_labagent().c_str(), load[0].c_str());
  std::vector<double> wrk_lab, load_lab, wrk_bb, load_ratio, server_ratio, wrk_cpu, load_cpu;
  std::vector<double> wrk_kept, load_kept_rps, kept_ratio;
  for (int i = 0; i < o.rounds; ++i) {
    std::printf("  round %d\n", i + 1);
    Run a = parse_wrk(run_client(cfd, wrk(kLabagentPort)));
    print_run("wrk -> labagent http", a);
    Run b = parse_load(run_client(cfd, load));
    print_run("labagent load -> http", b);
    Run c = parse_wrk(run_client(cfd, wrk(kBusyboxPort)));
    print_run("wrk -> busybox httpd", c);
    Run d = parse_wrk(run_client(cfd, wrk(kLabagentPort, true)));
    print_run("wrk keep-alive -> http", d);
    Run e = parse_load(run_client(cfd, load_kept));
    print_run("load --keep-alive -> http", e);
    wrk_kept.push_back(d.rps());
    load_kept_rps.push_back(e.rps());
    kept_ratio.push_back(e.rps() / d.rps());
    wrk_lab.push_back(a.rps());
    load_lab.push_back(b.rps());
    wrk_bb.push_back(c.rps());
    load_ratio.push_back(b.rps() / a.rps());
    server_ratio.push_back(a.rps() / c.rps());
    wrk_cpu.push_back(a.cpu_s * 1e6 / static_cast<double>(std::max(a.answers, 1L)));
    load_cpu.push_back(b.cpu_s * 1e6 / static_cast<double>(std::max(b.answers, 1L)));
  }
  die_on(lab_down(kLab), "down of the bench lab");
  std::filesystem::remove_all(www);

  std::printf("medians of %d rounds:\n", o.rounds);
  std::printf("  load client: labagent load %8.0f req/s (%5.1f us CPU/req), wrk %8.0f req/s "
              "(%5.1f us CPU/req): ratio %.2f (goal >= 0.90)\n",
              median(load_lab), median(load_cpu), median(wrk_lab), median(wrk_cpu), median(load_ratio));
  std::printf("  keep-alive:  labagent load %8.0f req/s, wrk %8.0f req/s: ratio %.2f (goal >= 0.90)\n",
              median(load_kept_rps), median(wrk_kept), median(kept_ratio));
  std::printf("  http server: labagent http %8.0f req/s, busybox httpd %8.0f req/s (both under wrk): "
              "ratio %.2f (goal >= 1.00)\n",
              median(wrk_lab), median(wrk_bb), median(server_ratio));
}

}  // namespace
}  // namespace labctl

int main(int argc, char** argv) {
  CLI::App app{"labagent_bench: labagent load against wrk, labagent http against busybox httpd, "
               "in a two-node lab (ratios measured in the same run)"};
  labctl::Options o;
  app.add_option("--rounds", o.rounds, "Rounds of the five runs")->default_val(5)->check(CLI::Range(1, 100));
  app.add_option("--connections", o.connections, "Concurrent connections of each client")
      ->default_val(8)->check(CLI::Range(1, 256));
  app.add_option("--seconds", o.seconds, "Length of each run")->default_val(5)->check(CLI::Range(1, 60));
  app.add_option("--wrk-threads", o.wrk_threads, "wrk's threads (-t)")->default_val(2)->check(CLI::Range(1, 64));
  app.add_option("--load-agent", o.load_agent,
                 "The labagent binary whose load client to measure (default: the one the lab's "
                 "servers run: $LABCTL_AGENT, else this build's), e.g. an older build for before/after")
      ->check(CLI::ExistingFile);
  CLI11_PARSE(app, argc, argv);
  if (auto st = labctl::check_privileges(); !st) {
    std::fprintf(stderr, "labagent_bench: %s\n", st.error().str().c_str());
    return 1;
  }
  labctl::bench(o);
  return 0;
}
