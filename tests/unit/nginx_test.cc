// Unit tier: nginx agents. The nginx.conf generated for every key (compared with golden
// files in tests/data/nginx; LABCTL_UPDATE_GOLDEN=1 rewrites them), a verbatim config as
// given, upstream nodes resolved to addresses, and the plan: the agent runs under
// supervision as `labagent nginx --dir ... --config TEXT`, ready once listening on its port.
#include "labctl/plan/nginx.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <variant>

#include "labctl/base/file.h"
#include "labctl/model/load.h"
#include "labctl/model/nginx.h"
#include "labctl/plan/agent.h"
#include "labctl/plan/plan.h"
#include "labctl/plan/planner.h"
#include "tests/unit/diagnostics_text.h"

namespace labctl {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

const std::string kDir = std::string(LABCTL_TEST_DATA) + "/nginx/";

using test::diagnostics_text;

Topology l7() {
  auto r = load_topology(kDir + "l7.toml");
  EXPECT_TRUE(r.ok()) << diagnostics_text(r);
  Topology t = r.topology ? *r.topology : Topology{};
  t.source = "tests/data/nginx/l7.toml";  // the golden files' first line, whatever the checkout
  return t;
}

const Agent& agent_of(const Topology& t, const std::string& node, const std::string& agent) {
  for (const auto& a : t.node(node)->agents)
    if (a.name == agent) return a;
  throw std::runtime_error("no agent " + node + ":" + agent);
}

void expect_golden(const std::string& name, const std::string& actual) {
  const std::string path = kDir + name;
  if (const char* u = std::getenv("LABCTL_UPDATE_GOLDEN"); u && std::string(u) == "1") {
    ASSERT_TRUE(write_text(path, actual, 0644));
    return;
  }
  auto want = read_regular_file(path, 1 << 20);
  ASSERT_TRUE(want) << want.error().str();
  EXPECT_EQ(actual, *want) << "golden file " << path << " differs; LABCTL_UPDATE_GOLDEN=1 rewrites it";
}

TEST(Nginx, EveryKeyIsRead) {
  Topology t = l7();
  const Agent& a = agent_of(t, "proxy", "web");
  ASSERT_TRUE(a.nginx);
  const NginxSpec& k = *a.nginx;
  EXPECT_EQ(a.port, 8000);
  ASSERT_TRUE(k.address);
  EXPECT_EQ(k.address->str(), "10.0.0.2");
  ASSERT_EQ(k.upstreams.size(), 2u);
  EXPECT_EQ(k.upstreams[0].name, "apps");
  ASSERT_EQ(k.upstreams[0].servers.size(), 2u);
  // A node is resolved to its first address; an address stays as written.
  EXPECT_EQ(k.upstreams[0].servers[0].target, "app1");
  EXPECT_EQ(k.upstreams[0].servers[0].addr.str(), "10.0.0.11");
  EXPECT_EQ(k.upstreams[0].servers[1].addr.str(), "10.0.0.12");
  EXPECT_EQ(k.upstreams[1].servers[0].addr.str(), "10.0.0.13");
  ASSERT_EQ(k.routes.size(), 2u);
  EXPECT_EQ(k.routes[0].path, "/cart");  // in the order written
  EXPECT_EQ(k.routes[0].upstream, "cart");
  EXPECT_EQ(k.keepalive, 16);
  EXPECT_EQ(k.method, "least_conn");
  EXPECT_EQ(k.worker_processes, 2);
  EXPECT_EQ(k.name_path, "/whoami");
}

TEST(Nginx, DefaultsOfAPlainProxy) {
  Topology t = l7();
  const Agent& a = agent_of(t, "proxy", "plain");
  ASSERT_TRUE(a.nginx);
  EXPECT_EQ(a.port, 80);
  EXPECT_FALSE(a.nginx->address);
  EXPECT_EQ(a.nginx->keepalive, 0);
  EXPECT_EQ(a.nginx->method, "round_robin");
  EXPECT_EQ(a.nginx->worker_processes, 1);
  EXPECT_EQ(a.nginx->name_path, "");  // nginx answers no path itself
  // One upstream and no routes: everything goes to it.
  ASSERT_EQ(a.nginx->routes.size(), 1u);
  EXPECT_EQ(a.nginx->routes[0].path, "/");
  EXPECT_EQ(a.nginx->routes[0].upstream, "apps");
}

TEST(Nginx, GeneratedConfigsMatchTheirGoldenFiles) {
  Topology t = l7();
  const Node& proxy = *t.node("proxy");
  for (const char* name : {"web", "hashed", "plain", "given"})
    expect_golden(std::string("l7-proxy-") + name + ".conf", nginx_config(t, proxy, agent_of(t, "proxy", name)));
}

TEST(Nginx, KeepaliveOffSendsConnectionCloseUpstream) {
  Topology t = l7();
  const std::string plain = nginx_config(t, *t.node("proxy"), agent_of(t, "proxy", "plain"));
  EXPECT_THAT(plain, Not(HasSubstr("keepalive")));
  EXPECT_THAT(plain, Not(HasSubstr("proxy_http_version 1.1")));
  const std::string web = nginx_config(t, *t.node("proxy"), agent_of(t, "proxy", "web"));
  EXPECT_THAT(web, HasSubstr("    keepalive 16;\n"));
  EXPECT_THAT(web, HasSubstr("proxy_http_version 1.1;\n      proxy_set_header Connection \"keep-alive\";"));
}

TEST(Nginx, EveryPathStaysInTheAgentsFolder) {
  Topology t = l7();
  for (const char* name : {"web", "hashed", "plain"}) {
    const std::string conf = nginx_config(t, *t.node("proxy"), agent_of(t, "proxy", name));
    EXPECT_TRUE(nginx_config_lacks(conf).empty()) << name;
    EXPECT_THAT(conf, Not(HasSubstr("/var/")));
    EXPECT_THAT(conf, Not(HasSubstr("/etc/")));
  }
  EXPECT_THAT(nginx_command("/usr/sbin/nginx", "/run/x/nginx/proxy/web"),
              ElementsAre("/usr/sbin/nginx", "-c", "/run/x/nginx/proxy/web/nginx.conf", "-p",
                          "/run/x/nginx/proxy/web/", "-e", "stderr"));
  EXPECT_THAT(nginx_command("nginx", "/d", true),
              ElementsAre("nginx", "-t", "-q", "-c", "/d/nginx.conf", "-p", "/d/", "-e", "stderr"));
}

TEST(Nginx, ConfigLacksFindsDirectivesNotWords) {
  EXPECT_THAT(nginx_config_lacks("daemon off; pid x;\n# access_log is missing\n"),
              ElementsAre("access_log", "client_body_temp_path", "proxy_temp_path", "fastcgi_temp_path",
                          "uwsgi_temp_path", "scgi_temp_path"));
  EXPECT_TRUE(nginx_config_lacks("daemon off;pid p;http{access_log off;client_body_temp_path a;\n"
                                 "  proxy_temp_path b; fastcgi_temp_path c; uwsgi_temp_path d; scgi_temp_path e;}")
                  .empty());
}

TEST(Nginx, PlanRunsItSupervisedWithItsConfigInArgv) {
  Topology t = l7();
  Plan p = make_plan(t);
  const step::StartAgent* start = nullptr;
  for (const auto& s : p.steps)
    if (const auto* a = std::get_if<step::StartAgent>(&s.step); a && a->node == "proxy" && a->agent.name == "web") start = a;
  ASSERT_NE(start, nullptr);
  Agent run = start->agent;
  ASSERT_TRUE(agent_needs_dir(run));
  EXPECT_EQ(agent_dir_name(run), "nginx");
  run.params["dir"] = "/state/nginx/proxy/web";
  auto argv = agent_argv(run, "proxy", "labagent");
  ASSERT_EQ(argv.size(), 6u);
  EXPECT_THAT(std::vector<std::string>(argv.begin(), argv.begin() + 5),
              ElementsAre("labagent", "nginx", "--dir", "/state/nginx/proxy/web", "--config"));
  EXPECT_EQ(argv[5], nginx_config(t, *t.node("proxy"), agent_of(t, "proxy", "web")));
  EXPECT_EQ(agent_listen_spec(run), "tcp:8000");
  // The dry-run script keeps its folder beside the agent's log and pid file.
  EXPECT_THAT(start->shell(), HasSubstr("labagent nginx --dir /run/labctl-script/l7/proxy/web.nginx --config"));
}

}  // namespace
}  // namespace labctl
