// Host tier: the nginx agent kind on this kernel (no IPVS needed). A client -> nginx -> apps
// lab: requests are split by path (which app answers which path, as `http` checks), the
// proxy's access log names the upstream server that answered, upstream keep-alive on vs off
// is seen in how many connections the apps accepted (their access logs name each request's
// source port), a config nginx rejects fails `up` with nginx's own message and leaves
// nothing, and no nginx process, temp folder or log remains outside the lab's state. The
// handshakes check counts exactly who took part in a TCP handshake, with and without
// upstream keep-alive, and a proxy out of source ports (TIME_WAIT against a narrow
// ip_local_port_range) answers 502 with the cause named.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <set>

#include "labctl/kernel/netns.h"
#include "labctl/lab/state.h"
#include "tests/host/host_test.h"
#include "tests/support/kill_sweep.h"

namespace labctl {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

const std::string kLabctl = LABCTL_BINARY_DIR "/labctl/labctl";

std::string run(const std::string& cmd) { return test::run_capture(cmd); }

// client -> proxy (nginx on port 80: /cart to app3, the rest to app1 and app2) on one switch.
std::string topology(const std::string& lab, const std::string& nginx_keys, const std::string& app_keys = "",
                     const std::string& proxy_sysctls = "") {
  std::string t = "version = 1\nname = \"" + lab + "\"\n[switches.lan]\n"
                  "[nodes.client]\ninterfaces.eth0 = { switch = \"lan\", addresses = [\"10.81.0.10/24\"] }\n"
                  "[nodes.proxy]\ninterfaces.eth0 = { switch = \"lan\", addresses = [\"10.81.0.2/24\"] }\n" +
                  (proxy_sysctls.empty() ? "" : "sysctl = { " + proxy_sysctls + " }\n") +
                  "[nodes.proxy.agents.web]\nkind = \"nginx\"\n" + nginx_keys + "\n";
  for (int i = 1; i <= 3; ++i)
    t += "[nodes.app" + std::to_string(i) + "]\ninterfaces.eth0 = { switch = \"lan\", addresses = [\"10.81.0.1" +
         std::to_string(i) + "/24\"] }\nagents.app = { kind = \"http\", port = 8080" + app_keys + " }\n";
  return t;
}

const std::string kSplit =
    "upstreams.apps = [\"app1:8080\", \"app2:8080\"]\nupstreams.cart = [\"app3:8080\"]\n"
    "routes = { \"/cart\" = \"cart\", \"/\" = \"apps\" }\n";

const std::string kChecks =
    "[checks.cart-to-app3]\nkind = \"http\"\nfrom = \"client\"\nto = \"10.81.0.2\"\nport = 80\npath = "
    "\"/cart/items\"\nexpect = [\"app3\"]\n"
    "[checks.rest-to-apps]\nkind = \"http\"\nfrom = \"client\"\nto = \"10.81.0.2\"\nport = 80\npath = "
    "\"/index\"\nexpect = [\"app1\", \"app2\"]\n";

// A file's size and modification time, or none: to see that nginx never wrote it.
std::string stamp(const std::string& path) {
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0) return "absent";
  return std::to_string(st.st_size) + "@" + std::to_string(st.st_mtim.tv_sec) + "." +
         std::to_string(st.st_mtim.tv_nsec);
}

// What nginx would touch outside the lab with its compiled-in paths.
std::string outside_stamps() {
  std::string s;
  for (const char* p : {"/var/lib/nginx", "/var/lib/nginx/body", "/var/lib/nginx/proxy", "/var/log/nginx/access.log",
                        "/var/log/nginx/error.log", "/run/nginx.pid"})
    s += std::string(p) + "=" + stamp(p) + "\n";
  return s;
}

int nginx_processes() { return std::stoi("0" + run("pgrep -c -x nginx || true")); }

class HostNginx : public ::testing::Test {
 protected:
  void SetUp() override {
    LABCTL_REQUIRE_ROOT();
    if (::access("/usr/sbin/nginx", X_OK) != 0) GTEST_SKIP() << "nginx is not installed (apt-get install nginx)";
    lab_ = "ng" + std::to_string(::getpid() % 10000) + "x" + std::to_string(std::random_device{}() % 100000);
    file_ = "/tmp/" + lab_ + ".toml";
    outside_ = outside_stamps();
    nginx_before_ = nginx_processes();
  }
  void TearDown() override {
    if (lab_.empty()) return;
    std::string out = run(kLabctl + " down " + lab_ + " 2>&1");
    for (const auto& ns : list_netns()) EXPECT_NE(ns.rfind(lab_ + "-", 0), 0u) << ns << "\n" << out;
    EXPECT_FALSE(fs::exists(state_dir(lab_)));
    // No nginx master or worker of the lab remains, and nothing outside the lab was written.
    EXPECT_EQ(nginx_processes(), nginx_before_) << run("pgrep -a nginx");
    EXPECT_EQ(outside_stamps(), outside_);
    std::remove(file_.c_str());
  }
  std::string up(const std::string& text) {
    std::ofstream(file_) << text;
    return run(kLabctl + " up " + file_ + " 2>&1; echo rc=$?");
  }
  std::string logs(const std::string& node, const std::string& agent) {
    return run(kLabctl + " logs " + lab_ + " " + node + " " + agent + " 2>&1");
  }
  // n sequential HTTP/1.1 requests from the client through the proxy (curl, as a browser).
  void requests(int n, const std::string& path) {
    for (int i = 0; i < n; ++i)
      EXPECT_THAT(run("ip netns exec " + lab_ + "-client curl -sS -m 5 http://10.81.0.2" + path + " 2>&1"),
                  HasSubstr("app"));
  }
  // How many connections the app accepted from the proxy: distinct source ports in its log.
  std::size_t connections_from_proxy(const std::string& app) {
    std::string log = logs(app, "app");
    std::set<std::string> ports;
    std::regex line("10\\.81\\.0\\.2:([0-9]+) \"GET ");
    for (auto it = std::sregex_iterator(log.begin(), log.end(), line); it != std::sregex_iterator(); ++it)
      ports.insert((*it)[1]);
    return ports.size();
  }
  std::size_t requests_from_proxy(const std::string& app) {
    std::string log = logs(app, "app");
    std::size_t n = 0;
    for (size_t at = log.find("10.81.0.2:"); at != std::string::npos; at = log.find("10.81.0.2:", at + 1)) ++n;
    return n;
  }
  std::string lab_, file_, outside_;
  int nginx_before_ = 0;
};

TEST_F(HostNginx, SplitsByPathAndLogsTheUpstreamThatAnswered) {
  std::string out = up(topology(lab_, kSplit) + kChecks);
  ASSERT_THAT(out, HasSubstr("rc=0")) << out;
  std::string checks = run(kLabctl + " check " + lab_ + " 2>&1; echo rc=$?");
  EXPECT_THAT(checks, HasSubstr("rc=0")) << checks;
  // Its files are in its own folder of the lab's state: config, pid, temp folders.
  const std::string dir = agent_dir(lab_, "proxy", "web", "nginx");
  for (const char* f : {"nginx.conf", "nginx.pid", "client_body_temp", "proxy_temp", "scgi_temp"})
    EXPECT_TRUE(fs::exists(dir + "/" + f)) << f;
  EXPECT_EQ(fs::status(dir).permissions() & fs::perms::all, fs::perms::owner_all);
  // The access log names the upstream server that answered each request.
  std::string log = logs("proxy", "web");
  EXPECT_THAT(log, HasSubstr("\"GET /cart/items HTTP/1.0\" 200 upstream=10.81.0.13:8080")) << log;
  EXPECT_TRUE(std::regex_search(log, std::regex("\"GET /index HTTP/1.0\" 200 upstream=10\\.81\\.0\\.1[12]:8080")))
      << log;
  // Only the cart went to app3.
  EXPECT_GE(requests_from_proxy("app3"), 1u);
  EXPECT_THAT(logs("app3", "app"), Not(HasSubstr("GET /index")));
}

TEST_F(HostNginx, WithoutKeepaliveEveryRequestIsANewUpstreamConnection) {
  std::string out = up(topology(lab_, kSplit));
  ASSERT_THAT(out, HasSubstr("rc=0")) << out;
  requests(10, "/cart");
  EXPECT_EQ(requests_from_proxy("app3"), 10u);
  EXPECT_EQ(connections_from_proxy("app3"), 10u) << logs("app3", "app");
}

TEST_F(HostNginx, WithKeepaliveRequestsReuseUpstreamConnections) {
  std::string out = up(topology(lab_, kSplit + "keepalive = 4\n"));
  ASSERT_THAT(out, HasSubstr("rc=0")) << out;
  requests(10, "/cart");
  EXPECT_EQ(requests_from_proxy("app3"), 10u);
  // One worker, requests one after another: one connection carries them all.
  EXPECT_EQ(connections_from_proxy("app3"), 1u) << logs("app3", "app");
}

// `handshakes` over `n` requests to the cart (app3) through the proxy: its --json result.
const std::string kHandshakes =
    "[checks.shakes]\nkind = \"handshakes\"\nfrom = \"client\"\nto = \"10.81.0.2\"\nport = 80\npath = "
    "\"/cart/items\"\nrequests = 12\n";

TEST_F(HostNginx, HandshakesCountsOnePerRequestAtEachTierWithoutKeepalive) {
  std::string out = up(topology(lab_, kSplit) + kHandshakes);
  ASSERT_THAT(out, HasSubstr("rc=0")) << out;
  std::string r = run(kLabctl + " check " + lab_ + " shakes 2>&1; echo rc=$?");
  EXPECT_THAT(r, HasSubstr("rc=0")) << r;
  // The table: the client opened 12, the proxy accepted 12 and opened 12, app3 accepted them.
  EXPECT_THAT(r, HasSubstr("client: passive +0, active +12")) << r;
  EXPECT_THAT(r, HasSubstr("proxy (L7 proxy): passive +12, active +12")) << r;
  EXPECT_THAT(r, HasSubstr("app3 (app): passive +12, active +0")) << r;
  EXPECT_THAT(r, HasSubstr("the apps accepted 12 for the proxies' 12")) << r;
  // app1 and app2 serve other paths: not on this one.
  EXPECT_THAT(r, Not(HasSubstr("app1"))) << r;
}

TEST_F(HostNginx, HandshakesSeesUpstreamKeepaliveSaveTheProxysHandshakes) {
  std::string out = up(topology(lab_, kSplit + "keepalive = 4\n") + kHandshakes);
  ASSERT_THAT(out, HasSubstr("rc=0")) << out;
  std::string r = run(kLabctl + " check " + lab_ + " shakes 2>&1; echo rc=$?");
  EXPECT_THAT(r, HasSubstr("rc=0")) << r;
  // One worker, one request at a time: one upstream connection carries all twelve.
  EXPECT_TRUE(std::regex_search(r, std::regex("proxy \\(L7 proxy\\): passive \\+12, active \\+1[,;\\n]"))) << r;
  EXPECT_TRUE(std::regex_search(r, std::regex("app3 \\(app\\): passive \\+1, active \\+0"))) << r;
  EXPECT_THAT(r, HasSubstr("upstream keep-alive saved 11 handshakes")) << r;
}

TEST_F(HostNginx, AProxyOutOfSourcePortsAnswers502AndTheCheckNamesTheRange) {
  // The apps leave closing to the proxy, so the proxy holds TIME_WAIT; 6 ports for 12 requests.
  std::string out = up(topology(lab_, kSplit, ", closes = \"client\"",
                                "\"net.ipv4.ip_local_port_range\" = \"40000 40005\"") +
                       kHandshakes);
  ASSERT_THAT(out, HasSubstr("rc=0")) << out;
  std::string r = run(kLabctl + " check " + lab_ + " shakes 2>&1; echo rc=$?");
  EXPECT_THAT(r, HasSubstr("rc=1")) << r;
  EXPECT_THAT(r, HasSubstr("request 7 failed")) << r;
  EXPECT_THAT(r, HasSubstr("502")) << r;
  EXPECT_THAT(r, HasSubstr("proxy holds 6 connections to 10.81.0.13:8080 in TIME_WAIT")) << r;
  EXPECT_THAT(r, HasSubstr("ip_local_port_range 40000-40005 gives it 6 source ports")) << r;
  EXPECT_THAT(r, HasSubstr("net.ipv4.ip_local_port_range = \"32768 60999\"")) << r;
  EXPECT_THAT(logs("proxy", "web"), HasSubstr("Cannot assign requested address"));
  // The fix, as a student would make it by hand: a wide range, and the rush is served.
  run("ip netns exec " + lab_ + "-proxy sysctl -qw net.ipv4.ip_local_port_range='32768 60999'");
  r = run(kLabctl + " check " + lab_ + " shakes 2>&1; echo rc=$?");
  EXPECT_THAT(r, HasSubstr("rc=0")) << r;
}

TEST_F(HostNginx, AnAppsDelayIsTheTimeEachRequestTakesThroughTheProxy) {
  std::string out = up(topology(lab_, kSplit + "keepalive = 4\n", ", delay = 400"));
  ASSERT_THAT(out, HasSubstr("rc=0")) << out;
  for (int i = 0; i < 2; ++i) {
    std::string t = run("ip netns exec " + lab_ + "-client curl -sS -m 5 -o /dev/null -w '%{time_total}' "
                        "http://10.81.0.2/cart 2>&1");
    EXPECT_GE(std::stod("0" + t), 0.4) << t;
    EXPECT_LT(std::stod("0" + t), 2.0) << t;
  }
}

// trace through the L7 tier: the request ends at the proxy, which opens a connection of its
// own (its own address, a new port) to an app; the walk follows it, the app's answer back
// and the proxy's answer to the client. The app's access log names the same source port.
// With --all both connections are followed to their close.
TEST_F(HostNginx, TraceFollowsTheRequestThroughTheProxyToTheApp) {
  std::string out = up(topology(lab_, kSplit));
  ASSERT_THAT(out, HasSubstr("rc=0")) << out;
  out = run(kLabctl + " trace " + lab_ + " --from client --to 10.81.0.2:80 --all --json 2>&1");
  nlohmann::json j;
  ASSERT_NO_THROW(j = nlohmann::json::parse(out)) << out;
  EXPECT_TRUE(j["ok"]) << out;
  EXPECT_EQ(j["real_server"], "proxy");
  ASSERT_TRUE(j.contains("upstream")) << out;
  ASSERT_EQ(j["upstream"].size(), 1u) << out;
  const auto& leg = j["upstream"][0];
  EXPECT_EQ(leg["proxy"], "proxy");
  EXPECT_EQ(leg["src"], "10.81.0.2");
  EXPECT_NE(leg["sport"], j["client_port"]);
  EXPECT_EQ(leg["dport"], 8080);
  const std::string app = leg["server"];
  ASSERT_TRUE(app == "app1" || app == "app2") << out;  // "/" goes to the apps group
  EXPECT_EQ(leg["dst"], app == "app1" ? "10.81.0.11" : "10.81.0.12");
  EXPECT_TRUE(leg["answered"]);
  ASSERT_EQ(leg["request"].size(), 2u) << out;
  EXPECT_EQ(leg["request"][0]["node"], "proxy");
  EXPECT_EQ(leg["request"][1]["node"], app);
  EXPECT_EQ(leg["reply"][1]["node"], "proxy");
  EXPECT_EQ(leg["server_answer"]["src"], leg["dst"]);
  EXPECT_EQ(leg["server_answer"]["node"], "proxy");
  EXPECT_EQ(leg["proxy_answer"]["dst"], "10.81.0.10");
  EXPECT_EQ(leg["proxy_answer"]["dport"], j["client_port"]);
  EXPECT_GT(leg["proxy_answer"]["t_us"].get<double>(), leg["server_answer"]["t_us"].get<double>());
  EXPECT_THAT(logs(app, "app"), HasSubstr("10.81.0.2:" + std::to_string(leg["sport"].get<int>()) + " \"GET "));
  // Both connections to their close: nginx answers HTTP/1.0 and closes, so the proxy
  // holds TIME_WAIT of the client's; of its own, whoever closed first does.
  const auto& life = j["lifecycle"];
  EXPECT_TRUE(life["closed"]) << out;
  EXPECT_EQ(life["server"]["node"], "proxy");
  EXPECT_EQ(life["time_wait_node"], "proxy") << out;
  EXPECT_EQ(life["sockets"][1]["state"], "TIME_WAIT") << out;
  const auto& up_life = leg["lifecycle"];
  EXPECT_EQ(up_life["seen_at"], "proxy:eth0");
  EXPECT_TRUE(up_life["closed"]) << out;
  EXPECT_EQ(up_life["time_wait_node"], up_life["closed_first_node"]);
  const int holder = up_life["closed_first"] == "client" ? 0 : 1;
  EXPECT_EQ(up_life["sockets"][holder]["state"], "TIME_WAIT") << out;

  const std::string text = run(kLabctl + " trace " + lab_ + " --from client --to 10.81.0.2:80 2>&1");
  EXPECT_THAT(text, HasSubstr("proxy's own connection onward (TCP SYN 10.81.0.2:")) << text;
  EXPECT_THAT(text, HasSubstr("a new source address and port")) << text;
  EXPECT_THAT(text, HasSubstr("proxy answered its own client at +")) << text;
}

TEST_F(HostNginx, AConfigNginxRejectsFailsUpWithItsMessageAndLeavesNothing) {
  const std::string config =
      "config = \"\"\"\ndaemon off;\npid nginx.pid;\nevents {}\nhttp {\n  access_log /dev/stdout;\n"
      "  client_body_temp_path b;\n  proxy_temp_path p;\n  fastcgi_temp_path f;\n  uwsgi_temp_path u;\n"
      "  scgi_temp_path s;\n  bogus_directive on;\n  server { listen 80; }\n}\n\"\"\"\n";
  // validate has nothing against it: only nginx knows its directives.
  std::ofstream(file_) << topology(lab_, config);
  std::string v = run(kLabctl + " validate " + file_ + " 2>&1; echo rc=$?");
  ASSERT_THAT(v, HasSubstr("rc=0")) << v;
  std::string out = up(topology(lab_, config));
  EXPECT_THAT(out, Not(HasSubstr("rc=0")));
  EXPECT_THAT(out, HasSubstr("unknown directive \"bogus_directive\"")) << out;
  EXPECT_THAT(out, HasSubstr("nginx.conf:11")) << out;
  // Rolled back: no namespace, no state (TearDown checks the processes and outside files).
  for (const auto& ns : list_netns()) EXPECT_NE(ns.rfind(lab_ + "-", 0), 0u) << ns;
  EXPECT_FALSE(fs::exists(state_dir(lab_)));
}

}  // namespace
}  // namespace labctl
