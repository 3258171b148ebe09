// A small, self-contained HTML report (no JavaScript, no external files but the images it
// references): a title, paragraphs, a table of named scores, inline SVG bar charts comparing two
// length histograms (generated vs data), and a gallery of images or GIFs with captions.
//
//   io::HtmlReport r{.title = "eval: crossing shapes"};
//   r.scores.push_back({"valid fraction", 0.93, {io::NumberFormat::Style::percent, 1}});
//   r.histograms.push_back({.generated = gen_p, .data = data_p});
//   r.images.push_back({"gifs/sample_000.gif", "unconditional sample 0"});
//   io::write_html_report("out/report.html", r);
//
// Every piece of text is HTML-escaped; image paths are percent-encoded. Written atomically.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <filesystem>
#include <locale>
#include <map>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "flowception/core/errors.hpp"
#include "flowception/io/atomic_file.hpp"

namespace flowception::io {

namespace detail_media {
using detail::cat;
using detail::require;
}  // namespace detail_media

/// How a score is printed. fixed: 0.1235; scientific: 1.2346e-01; percent: value·100 with a `%`
/// (`12.35%`); integer: rounded to the nearest integer. `precision` = digits after the point.
/// NaN prints as "n/a", infinities as "inf" / "-inf". `unit` is appended after a space.
struct NumberFormat {
  /// The notation (examples above, for precision 4).
  enum class Style {
    fixed,       ///< 0.1235
    scientific,  ///< 1.2346e-01
    percent,     ///< `12.35%`
    integer,     ///< nearest integer
  };
  Style style = Style::fixed;  ///< the notation
  int precision = 4;  ///< digits after the point, 0 to 17 (format_number throws ConfigError otherwise)
  std::string unit;  ///< appended after a space when not empty
};

/// One row of the report's table of scores.
struct ReportScore {
  std::string name;  ///< first column: what is scored
  double value = 0.0;  ///< second column, printed with `format`
  NumberFormat format{};  ///< how `value` is printed
  std::string note;  ///< optional third column (what the score means, its target, ...)
};

/// An image or GIF shown in the report. `src` is the file's path relative to the report's folder
/// (or absolute), used as given apart from percent-encoding.
struct ReportImage {
  std::string src;  ///< path relative to the report's folder, or absolute
  std::string caption;  ///< shown under the image, and its alt text
};

/// Two length histograms, as probabilities per length, drawn as grouped bars: for every length in
/// either map, one bar per series (0 where a series lacks that length).
struct HistogramComparison {
  std::string title = "Length histogram";  ///< heading above the chart, and its accessible name
  std::map<std::size_t, double> generated;  ///< length → probability (finite, >= 0) of the generated videos
  std::map<std::size_t, double> data;  ///< length → probability (finite, >= 0) under the data
  std::string generated_label = "generated";  ///< legend of the generated series
  std::string data_label = "data";  ///< legend of the data series
  std::string x_label = "length";  ///< horizontal axis title
};

/// The content of an HTML report, rendered in this order: title, paragraphs, scores table,
/// histograms, image gallery (empty parts are left out).
struct HtmlReport {
  std::string title;  ///< page title and top heading
  std::vector<std::string> paragraphs;  ///< plain-text paragraphs (escaped)
  std::vector<ReportScore> scores;  ///< rows of the "Scores" table; no table when empty
  std::vector<HistogramComparison> histograms;  ///< one inline SVG chart each
  std::vector<ReportImage> images;  ///< the "Samples" gallery; none when empty
};

/// Escapes & < > " ' for use in HTML text and attribute values (and SVG).
inline std::string html_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size() + s.size() / 8);
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

/// Percent-encodes a path for a URL: every byte but A–Z a–z 0–9 - . _ ~ / becomes `%` and its two hex digits.
inline std::string url_path_escape(std::string_view s) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
        c == '_' || c == '~' || c == '/') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

/// Formats a number as NumberFormat says, independent of the global locale.
inline std::string format_number(double v, const NumberFormat& f = {}) {
  detail::require<ConfigError>(f.precision >= 0 && f.precision <= 17,
                                            "number format precision must be in [0, 17], not ", f.precision);
  std::string s;
  if (std::isnan(v)) {
    s = "n/a";
  } else if (std::isinf(v)) {
    s = v > 0 ? "inf" : "-inf";
  } else {
    std::ostringstream os;
    os.imbue(std::locale::classic());
    switch (f.style) {
      case NumberFormat::Style::fixed:
        os << std::fixed;
        os.precision(f.precision);
        os << v;
        break;
      case NumberFormat::Style::scientific:
        os << std::scientific;
        os.precision(f.precision);
        os << v;
        break;
      case NumberFormat::Style::percent:
        os << std::fixed;
        os.precision(f.precision);
        os << v * 100.0 << '%';
        break;
      case NumberFormat::Style::integer:
        os << std::fixed;
        os.precision(0);
        os << std::round(v);
        break;
    }
    s = os.str();
    if (!s.empty() && s[0] == '-' && s.find_first_not_of("-0.%") == std::string::npos)
      s.erase(0, 1);  // "-0.00" → "0.00"
  }
  if (!f.unit.empty()) s += " " + f.unit;
  return s;
}

namespace detail_media {

/// A coordinate for SVG: fixed, 2 decimals, classic locale.
inline std::string svg_num(double v) {
  std::ostringstream os;
  os.imbue(std::locale::classic());
  os << std::fixed;
  os.precision(2);
  os << v;
  return os.str();
}

}  // namespace detail_media

/// An inline SVG grouped bar chart of two length histograms (see HistogramComparison). Each bar
/// is `<rect class="bar generated|data" data-length=".." data-p="..">` with a `<title>` tooltip.
/// ConfigError for a negative or non-finite probability.
inline std::string svg_histogram(const HistogramComparison& h) {
  using detail_media::svg_num;
  std::map<std::size_t, std::pair<double, double>> bins;  // length → (generated, data)
  for (const auto& [len, p] : h.generated) {
    detail::require<ConfigError>(std::isfinite(p) && p >= 0.0, "histogram '", h.title,
                                              "': generated probability of length ", len, " is ", p,
                                              "; it must be finite and non-negative");
    bins[len].first = p;
  }
  for (const auto& [len, p] : h.data) {
    detail::require<ConfigError>(std::isfinite(p) && p >= 0.0, "histogram '", h.title,
                                              "': data probability of length ", len, " is ", p,
                                              "; it must be finite and non-negative");
    bins[len].second = p;
  }
  const double W = 720, H = 320, left = 56, right = 16, top = 40, bottom = 48;
  const double pw = W - left - right, ph = H - top - bottom;
  const char* colour_gen = "#e66100";
  const char* colour_data = "#5d3a9b";
  std::ostringstream os;
  os.imbue(std::locale::classic());
  os << "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"histogram\" width=\"" << W << "\" height=\"" << H
     << "\" viewBox=\"0 0 " << W << ' ' << H << "\" role=\"img\" aria-label=\"" << html_escape(h.title) << "\">\n";
  os << "<title>" << html_escape(h.title) << "</title>\n";
  // Legend.
  os << "<rect class=\"legend\" x=\"" << left << "\" y=\"12\" width=\"12\" height=\"12\" fill=\"" << colour_gen
     << "\"/><text x=\"" << left + 18 << "\" y=\"22\">" << html_escape(h.generated_label) << "</text>\n";
  os << "<rect class=\"legend\" x=\"" << left + 200 << "\" y=\"12\" width=\"12\" height=\"12\" fill=\"" << colour_data
     << "\"/><text x=\"" << left + 218 << "\" y=\"22\">" << html_escape(h.data_label) << "</text>\n";
  if (bins.empty()) {
    os << "<text x=\"" << W / 2 << "\" y=\"" << H / 2 << "\" text-anchor=\"middle\">no lengths</text>\n</svg>";
    return os.str();
  }
  // y axis: a 1-2-5 step giving at most 5 intervals.
  double ymax = 0.0;
  for (const auto& [len, pq] : bins) ymax = std::max({ymax, pq.first, pq.second});
  if (ymax <= 0.0) ymax = 1.0;
  const double raw = ymax / 5.0, mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = 10.0 * mag;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * mag >= raw) {
      step = m * mag;
      break;
    }
  const double ytop = std::ceil(ymax / step - 1e-9) * step;
  const auto ypix = [&](double p) { return top + ph * (1.0 - p / ytop); };
  const int ticks = static_cast<int>(std::lround(ytop / step));
  const NumberFormat tick_format{NumberFormat::Style::fixed,
                                 std::max(0, static_cast<int>(std::ceil(-std::log10(step) - 1e-9))), ""};
  for (int k = 0; k <= ticks; ++k) {
    const double t = step * k;
    os << "<line class=\"grid\" x1=\"" << left << "\" x2=\"" << left + pw << "\" y1=\"" << svg_num(ypix(t))
       << "\" y2=\"" << svg_num(ypix(t)) << "\" stroke=\"#ddd\"/><text x=\"" << left - 6 << "\" y=\""
       << svg_num(ypix(t) + 4) << "\" text-anchor=\"end\">" << format_number(t, tick_format) << "</text>\n";
  }
  // Bars, two per length.
  const double slot = pw / static_cast<double>(bins.size());
  const std::size_t label_every = std::max<std::size_t>(1, static_cast<std::size_t>(std::ceil(28.0 / slot)));
  std::size_t i = 0;
  for (const auto& [len, pq] : bins) {
    const double x0 = left + slot * static_cast<double>(i);
    const auto bar = [&](const char* cls, const std::string& label, const char* colour, double x, double p) {
      os << "<rect class=\"bar " << cls << "\" data-length=\"" << len << "\" data-p=\""
         << format_number(p, {NumberFormat::Style::fixed, 6, ""}) << "\" x=\"" << svg_num(x) << "\" y=\""
         << svg_num(ypix(p)) << "\" width=\"" << svg_num(slot * 0.4) << "\" height=\"" << svg_num(top + ph - ypix(p))
         << "\" fill=\"" << colour << "\"><title>" << html_escape(label) << ", " << html_escape(h.x_label) << ' ' << len
         << ": " << format_number(p) << "</title></rect>\n";
    };
    bar("generated", h.generated_label, colour_gen, x0 + slot * 0.1, pq.first);
    bar("data", h.data_label, colour_data, x0 + slot * 0.5, pq.second);
    if (i % label_every == 0)
      os << "<text x=\"" << svg_num(x0 + slot * 0.5) << "\" y=\"" << svg_num(top + ph + 16)
         << "\" text-anchor=\"middle\">" << len << "</text>\n";
    ++i;
  }
  os << "<line class=\"axis\" x1=\"" << left << "\" x2=\"" << left + pw << "\" y1=\"" << top + ph << "\" y2=\""
     << top + ph << "\" stroke=\"#333\"/>\n";
  os << "<text x=\"" << left + pw / 2 << "\" y=\"" << H - 10 << "\" text-anchor=\"middle\">" << html_escape(h.x_label)
     << "</text>\n";
  os << "<text x=\"14\" y=\"" << top + ph / 2 << "\" text-anchor=\"middle\" transform=\"rotate(-90 14 " << top + ph / 2
     << ")\">probability</text>\n</svg>";
  return os.str();
}

/// The whole report as one HTML document (UTF-8).
inline std::string render_html(const HtmlReport& r) {
  std::ostringstream os;
  os.imbue(std::locale::classic());
  os << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>" << html_escape(r.title)
     << "</title>\n<style>\n"
        "body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }\n"
        "table.scores { border-collapse: collapse; margin: 1em 0; }\n"
        "table.scores th, table.scores td { border: 1px solid #ccc; padding: 0.3em 0.8em; text-align: left; }\n"
        "table.scores td.value { text-align: right; font-variant-numeric: tabular-nums; }\n"
        "svg.histogram text { font-size: 12px; fill: #333; }\n"
        ".gallery { display: flex; flex-wrap: wrap; gap: 1em; }\n"
        ".gallery figure { margin: 0; }\n"
        ".gallery img { image-rendering: pixelated; border: 1px solid #ccc; }\n"
        "</style>\n</head>\n<body>\n";
  os << "<h1>" << html_escape(r.title) << "</h1>\n";
  for (const std::string& p : r.paragraphs) os << "<p>" << html_escape(p) << "</p>\n";
  if (!r.scores.empty()) {
    bool notes = false;
    for (const ReportScore& s : r.scores) notes = notes || !s.note.empty();
    os << "<h2>Scores</h2>\n<table class=\"scores\">\n<tr><th>score</th><th>value</th>"
       << (notes ? "<th>note</th>" : "") << "</tr>\n";
    for (const ReportScore& s : r.scores) {
      os << "<tr><td>" << html_escape(s.name) << "</td><td class=\"value\">"
         << html_escape(format_number(s.value, s.format)) << "</td>";
      if (notes) os << "<td>" << html_escape(s.note) << "</td>";
      os << "</tr>\n";
    }
    os << "</table>\n";
  }
  for (const HistogramComparison& h : r.histograms)
    os << "<h2>" << html_escape(h.title) << "</h2>\n<figure>\n" << svg_histogram(h) << "\n</figure>\n";
  if (!r.images.empty()) {
    os << "<h2>Samples</h2>\n<div class=\"gallery\">\n";
    for (const ReportImage& im : r.images)
      os << "<figure><img src=\"" << html_escape(url_path_escape(im.src)) << "\" alt=\"" << html_escape(im.caption)
         << "\"><figcaption>" << html_escape(im.caption) << "</figcaption></figure>\n";
    os << "</div>\n";
  }
  os << "</body>\n</html>\n";
  return os.str();
}

/// Renders the report and writes it atomically. IoError naming the path when it cannot.
inline void write_html_report(const std::filesystem::path& path, const HtmlReport& r) {
  write_file_atomically(path, render_html(r));
}

}  // namespace flowception::io
