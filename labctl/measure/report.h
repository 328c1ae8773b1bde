// `labctl measure`'s result in words: the side-by-side table (ratios to the first target),
// its JSON, the progress line, and the gnuplot data and script of its picture, all pure
// (the words are made from the figures at the end); and write_svg, which runs gnuplot.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "labctl/base/error.h"
#include "labctl/measure/measure.h"

namespace labctl {

/// The targets side by side, a row per figure, the lab's figures after the load's.
[[nodiscard]] std::string measure_table(const MeasureReport& r);
[[nodiscard]] nlohmann::json measure_json(const MeasureReport& r);
/// "round 2/6: nat 812 req/s, 81.2mbit, p99 12.3ms, 0 errors".
[[nodiscard]] std::string progress_line(const MeasureReport& r);

/// What gnuplot is given: the data (a row per target) and the script that reads
/// `data_path` and writes an SVG to `svg_path`.
struct PlotFiles {
  std::string data, script;
};
[[nodiscard]] PlotFiles gnuplot_files(const MeasureReport& r, const std::string& data_path, const std::string& svg_path);

/// Writes the picture of `r` to `svg_path` with gnuplot (no shell; its script and data in a
/// private folder). Without gnuplot, writes SVG_PATH.dat and SVG_PATH.gp beside it and
/// says in `note` how to render them; `note` is "" when the SVG was written.
[[nodiscard]] Status write_svg(const MeasureReport& r, const std::string& svg_path, std::string& note);

}  // namespace labctl
