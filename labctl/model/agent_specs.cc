#include "labctl/model/agent_spec.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "labctl/base/display.h"
#include "labctl/model/load_target.h"
#include "labctl/model/rules.h"

namespace labctl::topo {
namespace {

uint16_t port_or(AgentTable& t, uint16_t fallback) {
  return static_cast<uint16_t>(t.integer("port", 1, 65535).value_or(fallback));
}

void http(AgentTable& t, Agent& a) {
  a.port = port_or(t, 80);
  if (auto size = t.integer("size", 1, kMaxHttpBodySize)) a.params["size"] = std::to_string(*size);
  if (auto delay = t.integer("delay", 0, kMaxHttpDelayMs); delay && *delay) a.params["delay"] = std::to_string(*delay);
  if (auto closes = t.str("closes")) {
    if (*closes == "client")
      a.params["closes"] = "client";
    else if (*closes != "server")
      t.error(t.at("closes"), fmt::format("closes of {} is {}", t.where, shown(*closes)),
              "\"server\" (the default: the agent closes first and holds TIME_WAIT) or \"client\" (it waits for "
              "the client to close first)");
  }
}

void echo(AgentTable& t, Agent& a) {
  a.port = port_or(t, 7);
  auto proto = t.str("proto").value_or("tcp");
  if (proto != "tcp" && proto != "udp")
    t.error(t.at("proto"), fmt::format("proto of {} must be \"tcp\" or \"udp\"", t.where));
  a.params["proto"] = proto;
}

void load(AgentTable& t, Agent& a) {
  if (auto target = t.str("target", true)) {
    a.params["target"] = *target;
    if (auto parsed = parse_load_target(*target); !parsed)
      t.error(t.at("target"), fmt::format("{}: {}", t.where, parsed.error().message), parsed.error().hint);
  }
  a.params["seconds"] = std::to_string(t.integer("seconds", 1, kMaxLoadSeconds).value_or(kDefaultLoadSeconds));
  a.params["count"] = std::to_string(t.integer("count", 1, kMaxLoadCount).value_or(100));
  a.params["concurrency"] = std::to_string(t.integer("concurrency", 1, kMaxLoadConcurrency).value_or(1));
}

void command(AgentTable& t, Agent& a) {
  a.port = port_or(t, 0);
  if (auto proto = t.str("proto")) {
    if (*proto != "tcp" && *proto != "udp")
      t.error(t.at("proto"), fmt::format("proto of {} must be \"tcp\" or \"udp\"", t.where));
    else if (!a.port)
      t.error(t.at("proto"), fmt::format("{} has a proto but no port", t.where),
              "proto says how the agent listens on its port; give the port too");
    a.params["proto"] = *proto;
  }
  if (!t.has("argv")) {
    t.missing("argv", "e.g. argv = [\"python3\", \"-m\", \"http.server\", \"8080\"]");
  } else if (t.is_string("argv")) {
    t.error(t.at("argv"), fmt::format("argv of {} must be a list, not a string", t.where),
            fmt::format("labctl never runs a shell; split the command into words: argv = [\"{}\"]",
                        fmt::join(split_words(t.str("argv").value_or("")), "\", \"")));
  } else {
    auto words = t.strings("argv");
    for (const auto& [w, p] : words) a.argv.push_back(w);
    if (a.argv.empty() && t.is_array("argv")) t.error(t.at("argv"), fmt::format("argv of {} is empty", t.where));
    // execve takes C strings: a NUL would silently cut the word. Empty arguments are
    // fine (printf ""), an empty program is not.
    for (std::size_t w = 0; w < words.size(); ++w) {
      if (words[w].first.find('\0') != std::string::npos)
        t.error(words[w].second,
                fmt::format("argv[{}] of {} contains a NUL byte: {}", w, t.where, shown(words[w].first)),
                "a program's arguments cannot hold NUL");
      else if (w == 0 && words[w].first.empty())
        t.error(words[w].second, fmt::format("argv[0] of {} is empty: there is no program to run", t.where),
                "the first word is the program, e.g. argv = [\"python3\", \"-m\", \"http.server\"]");
    }
  }
}

void keepalived(AgentTable& t, Agent& a) { a.keepalived = t.keepalived(); }

void nginx(AgentTable& t, Agent& a) {
  a.port = port_or(t, 80);
  a.nginx = t.nginx();
}

}  // namespace

const std::vector<AgentKindSpec>& agent_kinds() {
  static const std::vector<AgentKindSpec> all = {
      {.name = "http", .keys = {"port", "size", "delay", "closes"}, .parse = http},
      {.name = "echo", .keys = {"port", "proto"}, .parse = echo},
      {.name = "load", .keys = {"target", "count", "concurrency", "seconds"}, .client = true, .parse = load},
      {.name = "command", .keys = {"argv", "port", "proto"}, .parse = command},
      {.name = "keepalived", .checks_own_keys = true, .parse = keepalived},
      {.name = "nginx", .checks_own_keys = true, .parse = nginx},
  };
  return all;
}

const AgentKindSpec* find_agent_kind(std::string_view name) {
  for (const auto& k : agent_kinds())
    if (k.name == name) return &k;
  return nullptr;
}

bool agent_is_client(const Agent& a) {
  const AgentKindSpec* k = find_agent_kind(a.kind);
  return k && k->client;
}

bool agent_listens(const Agent& a) { return a.port != 0 && !agent_is_client(a); }

}  // namespace labctl::topo
