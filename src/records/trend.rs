//! `edgecert trend DB --out page.html`: the history as one self-contained page (inline CSS and
//! SVG, no script, nothing fetched) in any of the report languages. Per (model, chip), a plot of
//! p99 latency and of each accuracy check over the runs, in time order: the value, its 95 %
//! interval as a band, the limit as a dashed line, each point coloured by its verdict and
//! linking to its run's row below (which names the certificate and how to get it from the
//! records); a run whose verdict differs from the one before gets a vertical mark, and a
//! regression `diff`'s statistics found a red triangle with its detail.

use std::fmt::Write;

use super::history::{CheckEntry, History, RunEntry, SubjectHistory};
use crate::i18n::Catalog;
use crate::render::html_escape as esc;
use crate::vocab::Outcome;

const CSS: &str = r#"
body { margin: 0; padding: 12px; font: 10pt/1.4 "DejaVu Sans", "Noto Sans", "Noto Sans CJK SC", "Noto Sans Thai", Arial, sans-serif; color: #111; }
h1 { font-size: 15pt; } h2 { font-size: 12pt; border-bottom: 1px solid #bbb; margin-top: 18px; } h3 { font-size: 10.5pt; margin: 10px 0 2px; }
svg.trend { display: block; max-width: 100%; height: auto; }
svg.trend text { font-size: 10px; fill: #333; }
svg.trend .axis { stroke: #888; stroke-width: 1; }
svg.trend .grid { stroke: #e5e5e5; stroke-width: 1; }
svg.trend .band { fill: #9cc3e6; fill-opacity: 0.45; stroke: none; }
svg.trend .series { fill: none; stroke: #1f5f99; stroke-width: 1.5; }
svg.trend .limit { stroke: #a33; stroke-width: 1; stroke-dasharray: 5 3; }
svg.trend circle.point { stroke: #fff; stroke-width: 1; }
svg.trend circle.pass { fill: #2a7a2a; } svg.trend circle.fail { fill: #c0392b; } svg.trend circle.inconclusive { fill: #c98a00; }
svg.trend .verdict-change { stroke: #555; stroke-width: 1; stroke-dasharray: 2 2; }
svg.trend .regression { fill: #c0392b; }
.legend span { margin-right: 14px; font-size: 9pt; }
.legend .band { color: #9cc3e6; } .legend .limit { color: #a33; } .legend .regression { color: #c0392b; }
.legend .pass { color: #2a7a2a; } .legend .fail { color: #c0392b; } .legend .inconclusive { color: #c98a00; }
table.runs td:nth-child(-n+3) { white-space: nowrap; }
table.runs { border-collapse: collapse; width: 100%; font-size: 8.5pt; margin: 6px 0 10px; }
table.runs th, table.runs td { border: 1px solid #bbb; padding: 2px 5px; text-align: left; vertical-align: top; overflow-wrap: anywhere; }
table.runs th { background: #eee; }
table.runs tr:target { background: #fff3bf; }
.code { font-family: "DejaVu Sans Mono", monospace; font-size: 8pt; word-break: break-all; }
"#;

/// Plot size in SVG units; the page scales it to its width.
const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 210.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 36.0;

/// The page: one section per (model, chip), `database` naming where the records are.
pub fn trend_page(history: &History, database: &str, generated_at: &str, catalog: &Catalog) -> String {
    let mut body = String::new();
    let certificates: usize = history.subjects.iter().map(|s| s.runs.len()).sum();
    let _ = write!(
        body,
        "<h1>{}</h1>\n<p>{}</p>\n",
        esc(&catalog.text("trend-title")),
        esc(&catalog.format(
            "trend-source",
            &[
                ("db", database),
                ("count", &catalog.integer(certificates as u64)),
                ("date", &catalog.datetime(generated_at)),
            ]
        ))
    );
    if history.subjects.is_empty() {
        let _ = writeln!(body, "<p class=\"empty\">{}</p>", esc(&catalog.text("trend-none")));
    }
    for (index, subject) in history.subjects.iter().enumerate() {
        body.push_str(&subject_section(index, subject, database, catalog));
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"{lang}\">\n<head>\n<meta charset=\"utf-8\">\n<title>{title}</title>\n<style>{CSS}</style>\n</head>\n<body>\n{body}</body>\n</html>\n",
        lang = catalog.tag(),
        title = esc(&catalog.text("trend-title")),
    )
}

/// The checks a subject's plots show, in order: latency (p99), then each accuracy check.
fn plotted_checks(subject: &SubjectHistory) -> Vec<&str> {
    let mut names: Vec<&str> = Vec::new();
    for run in &subject.runs {
        for check in &run.checks {
            let wanted = check.name == "latency" || check.name.starts_with("accuracy");
            if wanted && !names.contains(&check.name.as_str()) {
                names.push(&check.name);
            }
        }
    }
    names.sort_by_key(|n| (*n != "latency", *n));
    names
}

fn subject_section(index: usize, subject: &SubjectHistory, database: &str, catalog: &Catalog) -> String {
    let mut out = String::new();
    let first = subject.runs.first().map_or(String::new(), |r| catalog.datetime(&r.issued_at));
    let last = subject.runs.last().map_or(String::new(), |r| catalog.datetime(&r.issued_at));
    let _ = write!(
        out,
        "<section class=\"subject\" data-model=\"{}\" data-chip=\"{}\">\n<h2>{}</h2>\n<p>{}</p>\n",
        esc(&subject.model),
        esc(&subject.chip),
        esc(&catalog.format("trend-subject", &[("model", &subject.model), ("chip", &subject.chip)])),
        esc(&catalog.format(
            "trend-runs",
            &[("count", &catalog.integer(subject.runs.len() as u64)), ("first", &first), ("last", &last)]
        )),
    );
    out.push_str(&legend(catalog));
    for name in plotted_checks(subject) {
        out.push_str(&plot(index, subject, name, catalog));
    }
    out.push_str(&runs_table(index, subject, database, catalog));
    out.push_str("</section>\n");
    out
}

fn legend(catalog: &Catalog) -> String {
    format!(
        "<p class=\"legend\"><span><b class=\"band\">▮</b> {}</span><span><b class=\"limit\">┄</b> {}</span><span><b class=\"regression\">▲</b> {}</span><span>┆ {}</span><span><b class=\"pass\">●</b> {} <b class=\"fail\">●</b> {} <b class=\"inconclusive\">●</b> {}</span></p>\n",
        esc(&catalog.text("trend-interval")),
        esc(&catalog.text("trend-limit")),
        esc(&catalog.text("trend-regression")),
        esc(&catalog.text("trend-verdict-change")),
        esc(&catalog.outcome(Outcome::Pass)),
        esc(&catalog.outcome(Outcome::Fail)),
        esc(&catalog.outcome(Outcome::Inconclusive)),
    )
}

/// One run's figure for the plotted check.
struct Point<'a> {
    run: &'a RunEntry,
    check: &'a CheckEntry,
    value: f64,
}

fn plot(index: usize, subject: &SubjectHistory, name: &str, catalog: &Catalog) -> String {
    let points: Vec<(usize, Point)> = subject
        .runs
        .iter()
        .enumerate()
        .filter_map(|(i, run)| {
            let check = run.checks.iter().find(|c| c.name == name)?;
            Some((i, Point { run, check, value: check.measured? }))
        })
        .collect();
    let unit =
        subject.runs.iter().flat_map(|r| &r.checks).find(|c| c.name == name).map_or("", |c| c.unit.as_str());
    let title = if name == "latency" {
        catalog.text("trend-latency")
    } else {
        catalog.format("trend-check", &[("check", name), ("unit", unit)])
    };
    let mut out = format!("<h3>{}</h3>\n", esc(&title));
    if points.is_empty() {
        let _ = writeln!(out, "<p>{}</p>", esc(&catalog.text("trend-no-figures")));
        return out;
    }
    let runs = subject.runs.len();
    let x = |i: usize| {
        if runs == 1 {
            LEFT + (WIDTH - LEFT - RIGHT) / 2.0
        } else {
            LEFT + (WIDTH - LEFT - RIGHT) * i as f64 / (runs - 1) as f64
        }
    };
    let (low, high) =
        value_range(points.iter().map(|(_, p)| p), points.iter().find_map(|(_, p)| p.check.limit));
    let y = |v: f64| TOP + (HEIGHT - TOP - BOTTOM) * (1.0 - (v - low) / (high - low));
    let _ = writeln!(
        out,
        "<svg class=\"trend\" data-check=\"{}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" width=\"{WIDTH}\" height=\"{HEIGHT}\" role=\"img\" aria-label=\"{}\">",
        esc(name),
        esc(&title)
    );
    axes(&mut out, low, high, &y, subject, &x, catalog);
    bands(&mut out, &points, &x, &y);
    let line: Vec<String> = points.iter().map(|(i, p)| format!("{:.1},{:.1}", x(*i), y(p.value))).collect();
    let _ = writeln!(out, "<polyline class=\"series\" points=\"{}\"/>", line.join(" "));
    if let Some(limit) = points.iter().find_map(|(_, p)| p.check.limit) {
        let _ = writeln!(
            out,
            "<line class=\"limit\" x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\"><title>{} {}</title></line>",
            WIDTH - RIGHT,
            y(limit),
            y(limit),
            esc(&catalog.text("trend-limit")),
            esc(&catalog.figure(limit))
        );
    }
    marks(&mut out, index, &points, name, &x, &y, catalog);
    out.push_str("</svg>\n");
    out
}

/// The plotted range: every value, interval end and the limit, with a margin.
fn value_range<'a>(points: impl Iterator<Item = &'a Point<'a>>, limit: Option<f64>) -> (f64, f64) {
    let mut values: Vec<f64> = Vec::new();
    for p in points {
        values.push(p.value);
        values.extend(p.check.ci_low);
        values.extend(p.check.ci_high);
    }
    values.extend(limit);
    let low = values.iter().copied().fold(f64::INFINITY, f64::min);
    let high = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let span = if high > low { high - low } else { low.abs().max(1.0) * 0.1 };
    (low - span * 0.08, high + span * 0.08)
}

#[allow(clippy::too_many_arguments)]
fn axes(
    out: &mut String,
    low: f64,
    high: f64,
    y: &dyn Fn(f64) -> f64,
    subject: &SubjectHistory,
    x: &dyn Fn(usize) -> f64,
    catalog: &Catalog,
) {
    let bottom = HEIGHT - BOTTOM;
    for step in 0..=4 {
        let v = low + (high - low) * step as f64 / 4.0;
        let _ = writeln!(
            out,
            "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            WIDTH - RIGHT,
            y(v),
            y(v),
            LEFT - 4.0,
            y(v) + 3.0,
            esc(&catalog.number(v, decimals_for(high - low)))
        );
    }
    let _ = writeln!(out, "<line class=\"axis\" x1=\"{LEFT}\" x2=\"{LEFT}\" y1=\"{TOP}\" y2=\"{bottom}\"/>");
    let _ = writeln!(
        out,
        "<line class=\"axis\" x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{bottom}\" y2=\"{bottom}\"/>",
        WIDTH - RIGHT
    );
    // Dates under at most eight runs, evenly spread, the first and the last among them.
    let runs = subject.runs.len();
    let every = runs.div_ceil(8).max(1);
    for (i, run) in subject.runs.iter().enumerate() {
        if i % every == 0 || i + 1 == runs {
            // The first and last labels align inward, so neither runs off the plot.
            let anchor = match i {
                0 if runs > 1 => "start",
                _ if i + 1 == runs && runs > 1 => "end",
                _ => "middle",
            };
            let _ = writeln!(
                out,
                "<text class=\"date\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">{}</text>",
                x(i),
                bottom + 14.0,
                esc(&catalog.date_of(&run.issued_at))
            );
        }
    }
}

/// Enough decimals that five ticks over `span` read apart.
fn decimals_for(span: f64) -> usize {
    if span <= 0.0 || !span.is_finite() {
        return 2;
    }
    (2.0 - span.log10().floor()).clamp(0.0, 6.0) as usize
}

/// The intervals as bands, one polygon per run of consecutive points that have both ends.
fn bands(out: &mut String, points: &[(usize, Point)], x: &dyn Fn(usize) -> f64, y: &dyn Fn(f64) -> f64) {
    let mut segment: Vec<(usize, f64, f64)> = Vec::new();
    let flush = |segment: &mut Vec<(usize, f64, f64)>, out: &mut String| {
        if segment.is_empty() {
            return;
        }
        let width = if segment.len() == 1 { 4.0 } else { 0.0 };
        let upper = segment.iter().map(|(i, _, h)| format!("{:.1},{:.1}", x(*i) - width, y(*h)));
        let lower = segment.iter().rev().map(|(i, l, _)| format!("{:.1},{:.1}", x(*i) + width, y(*l)));
        let _ = writeln!(
            out,
            "<polygon class=\"band\" points=\"{}\"/>",
            upper.chain(lower).collect::<Vec<_>>().join(" ")
        );
        segment.clear();
    };
    for (i, p) in points {
        match (p.check.ci_low, p.check.ci_high) {
            (Some(l), Some(h)) => segment.push((*i, l, h)),
            _ => flush(&mut segment, out),
        }
    }
    flush(&mut segment, out);
}

/// The points (each a link to its run's row), verdict changes and regressions.
fn marks(
    out: &mut String,
    index: usize,
    points: &[(usize, Point)],
    name: &str,
    x: &dyn Fn(usize) -> f64,
    y: &dyn Fn(f64) -> f64,
    catalog: &Catalog,
) {
    let mut previous: Option<Outcome> = None;
    for (i, p) in points {
        let verdict = p.check.verdict;
        if previous.is_some_and(|v| v != verdict) {
            let _ = writeln!(
                out,
                "<line class=\"verdict-change\" x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{TOP}\" y2=\"{1:.1}\"><title>{2}: {3} → {4}</title></line>",
                x(*i),
                HEIGHT - BOTTOM,
                esc(&catalog.text("trend-verdict-change")),
                esc(&catalog.outcome(previous.unwrap_or(verdict))),
                esc(&catalog.outcome(verdict)),
            );
        }
        previous = Some(verdict);
        let regressed = p.run.regressed_checks.iter().any(|c| c == name || c == "verdict");
        if regressed {
            let (cx, cy) = (x(*i), y(p.value) - 10.0);
            let detail = p.run.regressions.join("; ");
            let _ = writeln!(
                out,
                "<path class=\"regression\" d=\"M{:.1},{:.1} L{:.1},{:.1} L{:.1},{:.1} Z\"><title>{}: {}</title></path>",
                cx,
                cy - 6.0,
                cx - 5.0,
                cy + 3.0,
                cx + 5.0,
                cy + 3.0,
                esc(&catalog.text("trend-regression")),
                esc(&detail)
            );
        }
        let interval = match (p.check.ci_low, p.check.ci_high) {
            (Some(l), h) => format!(" {}", catalog.interval(l, h)),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "<a href=\"#{}\"><circle class=\"point {}\" data-certificate=\"{}\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\"><title>{} · {} · {}{} · {}</title></circle></a>",
            run_anchor(index, p.run),
            verdict.as_str().to_lowercase(),
            esc(&p.run.certificate_id),
            x(*i),
            y(p.value),
            esc(&catalog.datetime(&p.run.issued_at)),
            esc(p.run.label.as_deref().unwrap_or("")),
            esc(&catalog.figure(p.value)),
            esc(&interval),
            esc(&catalog.outcome(verdict)),
        );
    }
}

fn run_anchor(index: usize, run: &RunEntry) -> String {
    format!("run-{index}-{}", &run.certificate_id[..run.certificate_id.len().min(16)])
}

fn runs_table(index: usize, subject: &SubjectHistory, database: &str, catalog: &Catalog) -> String {
    let mut out = format!(
        "<table class=\"runs\"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>\n",
        esc(&catalog.text("show-issued")),
        esc(&catalog.text("trend-table-label")),
        esc(&catalog.text("table-verdict")),
        esc(&catalog.text("report-certificate-id")),
        esc(&catalog.text("trend-table-regressions")),
    );
    for run in &subject.runs {
        let regressions =
            if run.regressions.is_empty() { "-".to_string() } else { run.regressions.join("; ") };
        let _ = writeln!(
            out,
            "<tr id=\"{}\" class=\"run{}\"><td>{}</td><td>{}</td><td>{}</td><td class=\"code\" title=\"edgecert history {} --certificate {}\">{}</td><td>{}</td></tr>",
            run_anchor(index, run),
            if run.regressions.is_empty() { "" } else { " regressed" },
            esc(&catalog.datetime(&run.issued_at)),
            esc(run.label.as_deref().unwrap_or("")),
            esc(&catalog.outcome(run.verdict)),
            esc(database),
            esc(&run.certificate_id),
            esc(&run.certificate_id),
            esc(&regressions),
        );
    }
    out.push_str("</tbody></table>\n");
    let _ = writeln!(
        out,
        "<p>{}</p>",
        esc(&catalog.format(
            "trend-get-certificate",
            &[("command", &format!("edgecert history {database} --certificate ID"))]
        ))
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_decimals_follow_the_span() {
        assert_eq!(decimals_for(100.0), 0);
        assert_eq!(decimals_for(1.0), 2);
        assert_eq!(decimals_for(0.004), 5);
    }
}
