#include "labctl/measure/report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <set>

#include "labctl/base/file.h"
#include "labctl/kernel/process.h"
#include "labctl/model/bounds.h"

namespace labctl {

namespace {

double rps(const TargetResult& t) {
  return t.load.seconds > 0 ? static_cast<double>(t.load.answered) / t.load.seconds : 0;
}
double body_bps(const TargetResult& t) {
  return t.load.seconds > 0 ? static_cast<double>(t.load.body_bytes) * 8 / t.load.seconds : 0;
}
double pct_seconds(const TargetResult& t, double p) { return static_cast<double>(t.load.latency.percentile(p)) / 1e9; }
double min_seconds(const TargetResult& t) { return static_cast<double>(t.load.latency.min()) / 1e9; }
double max_seconds(const TargetResult& t) { return static_cast<double>(t.load.latency.max()) / 1e9; }

std::string bytes_text(double b) {
  if (b >= 1 << 30) return fmt::format("{:.3g} GiB", b / (1 << 30));
  if (b >= 1 << 20) return fmt::format("{:.3g} MiB", b / (1 << 20));
  if (b >= 1 << 10) return fmt::format("{:.3g} KiB", b / (1 << 10));
  return fmt::format("{:.0f} B", b);
}

std::string count_text(double v) {
  if (v >= 100) return fmt::format("{:.0f}", v);
  return fmt::format("{:.3g}", v);
}

std::string ratio(double v, double first) {
  if (!(first > 0)) return "";
  const double x = v / first;
  return x < 100 ? fmt::format(" (x{:.2f})", x) : fmt::format(" (x{:.3g})", x);
}

std::string errors_text(const LoadFigures& f) {
  if (f.errors.empty()) return "0";
  std::string s;
  for (const auto& [k, n] : f.errors) s += fmt::format("{}{} {}", s.empty() ? "" : ", ", k, n);
  return s;
}

std::string mode_text(const MeasureOptions& o) {
  std::string s = o.new_connections ? "a connection per request" : "keep-alive";
  s += fmt::format(", concurrency {}", o.concurrency);
  if (o.rate) s += fmt::format(", open loop at {:g} req/s", *o.rate);
  if (o.requests) s += fmt::format(", {} requests", *o.requests);
  else s += fmt::format(", {:g} s", o.seconds.value_or(MeasureBounds::kDefaultSeconds));
  return s + " per target";
}

struct Table {
  std::vector<std::vector<std::string>> rows;
  void add(std::vector<std::string> row) { rows.push_back(std::move(row)); }
  [[nodiscard]] std::string text() const {
    std::vector<size_t> width;
    for (const auto& r : rows)
      for (size_t i = 0; i < r.size(); ++i) {
        if (width.size() <= i) width.push_back(0);
        width[i] = std::max(width[i], r[i].size());
      }
    std::string out;
    for (const auto& r : rows) {
      std::string line;
      for (size_t i = 0; i < r.size(); ++i)
        line += i + 1 < r.size() ? fmt::format("{:<{}}  ", r[i], width[i]) : r[i];
      while (!line.empty() && line.back() == ' ') line.pop_back();
      out += line + "\n";
    }
    return out;
  }
};

}  // namespace

std::string measure_table(const MeasureReport& r) {
  std::string out = fmt::format("labctl measure {} from {}: {}, {} round{} each\n", r.lab, r.from, mode_text(r.options),
                                rounds_of(r.options), rounds_of(r.options) == 1 ? "" : "s");
  if (r.interrupted)
    out += fmt::format("interrupted in round {} of {}: the figures are of what was measured until then\n",
                       r.rounds_done + 1, r.rounds_planned);
  if (r.results.empty()) return out;
  const TargetResult& first = r.results.front();
  Table t;
  auto row = [&](const std::string& name, auto cell) {
    std::vector<std::string> cells{name};
    for (size_t i = 0; i < r.results.size(); ++i) cells.push_back(cell(r.results[i], i));
    t.add(std::move(cells));
  };
  // A figure with the ratio of target i to the first after it.
  auto figure = [&](const std::string& name, auto value, auto text) {
    row(name, [&](const TargetResult& x, size_t i) {
      return text(value(x)) + (i == 0 ? "" : ratio(value(x), value(first)));
    });
  };
  row("", [](const TargetResult& x, size_t) { return x.target.label; });
  row("target", [](const TargetResult& x, size_t) { return x.target.url; });
  figure("requests/s", rps, count_text);
  figure("body bits/s", body_bps, [](double v) { return format_measure(v, Measure::Rate); });
  row("answered", [](const TargetResult& x, size_t) { return std::to_string(x.load.answered); });
  row("errors", [](const TargetResult& x, size_t) { return errors_text(x.load); });
  auto time_text = [](double v) { return format_measure(v, Measure::Time); };
  figure("latency min", min_seconds, time_text);
  for (double p : {50.0, 90.0, 99.0})
    figure(fmt::format("latency p{:g}", p), [p](const TargetResult& x) { return pct_seconds(x, p); }, time_text);
  figure("latency max", max_seconds, time_text);
  row("load connections", [](const TargetResult& x, size_t) { return std::to_string(x.load.connections); });
  row("load client CPU", [](const TargetResult& x, size_t) { return fmt::format("{:.2f} s", x.load.cpu_seconds); });
  std::set<std::string> directors, nodes;
  for (const auto& x : r.results) {
    for (const auto& [n, d] : x.directors) directors.insert(n);
    for (const auto& [n, f] : x.nodes)
      if (f.passive_opens || f.active_opens || f.sockets || f.time_wait || f.cpu_seconds >= 0.005) nodes.insert(n);
  }
  for (const auto& d : directors) {
    auto get = [d](const TargetResult& x) { auto it = x.directors.find(d); return it == x.directors.end() ? DirectorFigures{} : it->second; };
    figure(d + " IPVS in", [&](const TargetResult& x) { return static_cast<double>(get(x).inbytes); },
           [](double v) { return bytes_text(v); });
    row(d + " IPVS in packets", [&](const TargetResult& x, size_t) { return std::to_string(get(x).inpkts); });
    figure(d + " IPVS out", [&](const TargetResult& x) { return static_cast<double>(get(x).outbytes); },
           [](double v) { return bytes_text(v); });
    row(d + " IPVS out packets", [&](const TargetResult& x, size_t) { return std::to_string(get(x).outpkts); });
    row(d + " IPVS connections", [&](const TargetResult& x, size_t) { return std::to_string(get(x).conns); });
  }
  for (const auto& n : nodes) {
    auto get = [n](const TargetResult& x) { auto it = x.nodes.find(n); return it == x.nodes.end() ? NodeFigures{} : it->second; };
    row(n + " TCP opens", [&](const TargetResult& x, size_t) {
      return fmt::format("{} active, {} passive", get(x).active_opens, get(x).passive_opens);
    });
    row(n + " TCP sockets", [&](const TargetResult& x, size_t) {
      return fmt::format("{} ({} TIME_WAIT)", get(x).sockets, get(x).time_wait);
    });
    row(n + " CPU", [&](const TargetResult& x, size_t) { return fmt::format("{:.2f} s", get(x).cpu_seconds); });
  }
  out += t.text();
  for (const auto& x : r.results)
    for (const auto& note : x.notes) out += "note: " + x.target.label + ": " + note + "\n";
  return out;
}

nlohmann::json measure_json(const MeasureReport& r) {
  nlohmann::json j;
  j["lab"] = r.lab;
  j["from"] = r.from;
  j["interrupted"] = r.interrupted;
  j["rounds_done"] = r.rounds_done;
  j["rounds_planned"] = r.rounds_planned;
  const MeasureOptions& o = r.options;
  nlohmann::json opts = {{"concurrency", o.concurrency}, {"new_connections", o.new_connections}, {"rounds", rounds_of(o)}};
  if (o.requests) opts["requests"] = *o.requests;
  else opts["seconds"] = o.seconds.value_or(MeasureBounds::kDefaultSeconds);
  opts["rate"] = o.rate ? nlohmann::json(*o.rate) : nlohmann::json(nullptr);
  j["options"] = opts;
  j["targets"] = nlohmann::json::array();
  for (const auto& x : r.results) {
    const auto& f = x.load;
    nlohmann::json t = {
        {"name", x.target.label},
        {"url", x.target.url},
        {"director", x.target.director.empty() ? nlohmann::json(nullptr) : nlohmann::json(x.target.director)},
        {"rounds", x.rounds},
        {"requests", f.requests},
        {"answered", f.answered},
        {"interrupted", f.interrupted},
        {"seconds", f.seconds},
        {"requests_per_second", rps(x)},
        {"body_bytes", f.body_bytes},
        {"body_bits_per_second", body_bps(x)},
        {"connections", f.connections},
        {"load_cpu_seconds", f.cpu_seconds},
        {"served", f.served},
        {"errors", f.errors},
        {"latency_seconds",
         {{"count", f.latency.count()},
          {"min", min_seconds(x)},
          {"p50", pct_seconds(x, 50)},
          {"p90", pct_seconds(x, 90)},
          {"p99", pct_seconds(x, 99)},
          {"max", max_seconds(x)},
          {"relative_error", Histogram::kRelativeError}}},
    };
    const TargetResult& first = r.results.front();
    auto rel = [](double v, double base) { return base > 0 ? nlohmann::json(v / base) : nlohmann::json(nullptr); };
    t["ratio_to_first"] = {{"requests_per_second", rel(rps(x), rps(first))},
                           {"body_bits_per_second", rel(body_bps(x), body_bps(first))},
                           {"p99", rel(pct_seconds(x, 99), pct_seconds(first, 99))}};
    t["directors"] = nlohmann::json::object();
    for (const auto& [n, d] : x.directors)
      t["directors"][n] = {{"conns", d.conns}, {"inpkts", d.inpkts}, {"outpkts", d.outpkts},
                           {"inbytes", d.inbytes}, {"outbytes", d.outbytes}};
    t["nodes"] = nlohmann::json::object();
    for (const auto& [n, nf] : x.nodes)
      t["nodes"][n] = {{"active_opens", nf.active_opens}, {"passive_opens", nf.passive_opens}, {"sockets", nf.sockets},
                       {"time_wait", nf.time_wait}, {"cpu_seconds", nf.cpu_seconds}};
    t["notes"] = x.notes;
    j["targets"].push_back(std::move(t));
  }
  return j;
}

std::string progress_line(const MeasureReport& r) {
  std::string s = fmt::format("round {}/{}", r.rounds_done, r.rounds_planned);
  for (const auto& x : r.results) {
    if (x.rounds == 0) continue;
    s += fmt::format("{} {}: {} req/s, {}, p99 {}, {} error{}", s.find(':') == std::string::npos ? ":" : ";",
                     x.target.label, count_text(rps(x)), format_measure(body_bps(x), Measure::Rate),
                     format_measure(pct_seconds(x, 99), Measure::Time), x.load.failed(), x.load.failed() == 1 ? "" : "s");
  }
  return s;
}

namespace {

// A string in gnuplot's single quotes (only ' itself is special there: doubled).
std::string gp_quoted(const std::string& s) {
  std::string out = "'";
  for (char ch : s) out += ch == '\'' ? std::string("''") : std::string(1, ch);
  return out + "'";
}

// A label in a data file's double quotes: no quote or line break can end it early.
std::string data_label(const std::string& s) {
  std::string out;
  for (char ch : s) out += (ch == '"' || ch == '\n' || ch == '\r' || ch == '\\') ? '_' : ch;
  return "\"" + out + "\"";
}

}  // namespace

PlotFiles gnuplot_files(const MeasureReport& r, const std::string& data_path, const std::string& svg_path) {
  PlotFiles p;
  p.data = "# target requests/s body_mbit/s director_in_MiB director_out_MiB p50_ms p90_ms p99_ms max_ms\n";
  for (const auto& x : r.results) {
    double in = 0, out = 0;
    for (const auto& [n, d] : x.directors) in += static_cast<double>(d.inbytes), out += static_cast<double>(d.outbytes);
    p.data += fmt::format("{} {:.3f} {:.3f} {:.3f} {:.3f} {:.4f} {:.4f} {:.4f} {:.4f}\n", data_label(x.target.label), rps(x),
                          body_bps(x) / 1e6, in / (1 << 20), out / (1 << 20), pct_seconds(x, 50) * 1e3,
                          pct_seconds(x, 90) * 1e3, pct_seconds(x, 99) * 1e3, max_seconds(x) * 1e3);
  }
  const std::string d = gp_quoted(data_path);
  std::string s;
  s += "# labctl measure " + r.lab + ": render with `gnuplot THIS_FILE`\n";
  s += "set terminal svg size 1000,760 dynamic enhanced font 'sans,11'\n";
  s += "set output " + gp_quoted(svg_path) + "\n";
  s += "set datafile separator whitespace\n";
  s += "set style data histograms\nset style histogram clustered gap 1\nset style fill solid 0.8 border -1\n";
  s += "set boxwidth 0.9\nset grid ytics\nset yrange [0:*]\nset key top left noenhanced\nset xtics noenhanced\n";
  s += "set multiplot layout 2,2 title " + gp_quoted("labctl measure " + r.lab + " from " + r.from) + " noenhanced\n";
  s += "set title 'throughput (requests/s)'\nplot " + d + " using 2:xtic(1) title 'requests/s' lc rgb '#4477aa'\n";
  s += "set title 'response bodies (Mbit/s)'\nplot " + d + " using 3:xtic(1) title 'Mbit/s' lc rgb '#228833'\n";
  s += "set title 'bytes through the directors (MiB)'\nplot " + d + " using 4:xtic(1) title 'in' lc rgb '#ccbb44', " + d +
       " using 5 title 'out' lc rgb '#ee6677'\n";
  s += "set title 'latency (ms)'\nset style histogram clustered gap 1\nplot " + d + " using 6:xtic(1) title 'p50', " + d +
       " using 7 title 'p90', " + d + " using 8 title 'p99', " + d + " using 9 title 'max'\n";
  s += "unset multiplot\nset output\n";
  p.script = std::move(s);
  return p;
}

Status write_svg(const MeasureReport& r, const std::string& svg_path, std::string& note) {
  note.clear();
  auto gnuplot = resolve_program("gnuplot");
  if (!gnuplot) {
    // The data and script beside the picture that was asked for, to render elsewhere.
    const std::string data = svg_path + ".dat", script = svg_path + ".gp";
    const PlotFiles f = gnuplot_files(r, std::filesystem::path(data).filename(), std::filesystem::path(svg_path).filename());
    TRY(write_text(data, f.data, output_file_mode(data)));
    TRY(write_text(script, f.script, output_file_mode(script)));
    note = "gnuplot is not installed (Debian: apt-get install gnuplot-nox): wrote " + data + " and " + script +
           "; render them with: cd " + std::filesystem::path(svg_path).parent_path().string() + " && gnuplot " +
           std::filesystem::path(script).filename().string();
    if (std::filesystem::path(svg_path).parent_path().empty())
      note = "gnuplot is not installed (Debian: apt-get install gnuplot-nox): wrote " + data + " and " + script +
             "; render them with: gnuplot " + script;
    return {};
  }
  // gnuplot reads and writes only in a private folder; the SVG is then put in place.
  std::string tmpl = (std::filesystem::temp_directory_path() / "labctl-measure.XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) return fail_errno("create a private folder for gnuplot", errno);
  const std::string dir = tmpl;
  struct Cleanup {
    std::string dir;
    ~Cleanup() {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  } cleanup{dir};
  const PlotFiles f = gnuplot_files(r, dir + "/data", dir + "/plot.svg");
  TRY(write_text(dir + "/data", f.data));
  TRY(write_text(dir + "/plot.gp", f.script));
  const std::vector<std::string> argv{*gnuplot, dir + "/plot.gp"};
  TRY_ASSIGN(Captured ran, run_captured(argv, std::chrono::steady_clock::now() + std::chrono::seconds(30), nullptr,
                                        std::chrono::seconds(2)));
  if (ran.exit_code != 0)
    return fail("gnuplot failed (exit " + std::to_string(ran.exit_code) + "): " + ran.err.substr(0, 400),
                "its script: labctl measure writes it with the data when gnuplot is missing");
  TRY_ASSIGN(std::string svg, read_regular_file(dir + "/plot.svg", 16 << 20));
  return write_text(svg_path, svg, output_file_mode(svg_path));
}

}  // namespace labctl
