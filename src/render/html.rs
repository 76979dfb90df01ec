//! The report as one self-contained HTML file: inline CSS and inline SVG, no scripts, no
//! external URLs, laid out to print on A4. The report number runs on every printed page in a
//! `position: fixed` header and footer (Chromium repeats those per page), with a layout table
//! whose repeated head and foot keep the content clear of them; "page n of N" with the report
//! number is an `@page` margin box (Chromium draws those since version 131), the one place that
//! knows the page count.

use std::fmt::Write;

use super::document::{Badge, BadgeKind, Block, Cell, CellKind, Document, Figure, PagePart, Plot, Table};
use crate::certificate::schema::Outcome;

const CSS: &str = r#"
@page { size: A4; margin: 12mm 14mm; }
* { box-sizing: border-box; }
html { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
body { margin: 0; font: 9.5pt/1.4 "DejaVu Sans", "Noto Sans", "Noto Sans CJK SC", "Noto Sans Thai", Arial, sans-serif; font-variant-ligatures: none; color: #111; max-width: 100%; }
.running { font-size: 7.5pt; color: #444; overflow-wrap: anywhere; word-break: break-all; }
header.running { border-bottom: 0.5pt solid #999; padding-bottom: 1mm; }
footer.running { border-top: 0.5pt solid #999; padding-top: 1mm; }
.layout { width: 100%; border-collapse: collapse; table-layout: fixed; }
.layout > thead > tr > td, .layout > tfoot > tr > td, .layout > tbody > tr > td { padding: 0; border: 0; }
.space { display: none; }
@media print {
  header.running { position: fixed; top: 0; left: 0; right: 0; }
  footer.running { position: fixed; bottom: 0; left: 0; right: 0; }
  .space { display: block; height: 9mm; }
}
@media screen { body { padding: 8px; } }
h1 { font-size: 15pt; margin: 2mm 0 3mm; }
h2 { font-size: 11.5pt; margin: 5mm 0 2mm; border-bottom: 0.5pt solid #bbb; break-after: avoid; }
h3 { font-size: 10pt; margin: 3mm 0 1mm; break-after: avoid; }
p { margin: 1.5mm 0; overflow-wrap: anywhere; }
table.data, table.fields { width: 100%; border-collapse: collapse; table-layout: fixed; margin: 1.5mm 0 3mm; }
table.data th, table.data td, table.fields th, table.fields td { border: 0.5pt solid #bbb; padding: 1mm 1.5mm; vertical-align: top; text-align: left; overflow-wrap: anywhere; }
table.data { font-size: 8pt; }
table.data th { background: #eee; font-weight: 600; }
table.fields th { width: 30%; background: #f5f5f5; font-weight: 600; }
table.data tr { break-inside: avoid; }
td.code, span.code { font-family: "DejaVu Sans Mono", monospace; font-size: 8pt; word-break: break-all; }
td.num { font-variant-numeric: tabular-nums; }
.badge { display: inline-block; border-radius: 2pt; padding: 0 1.2mm; font-size: 7.5pt; font-weight: 700; margin-left: 0.8mm; overflow-wrap: anywhere; }
.badge.pass { background: #1b7f3b; color: #fff; }
.badge.fail { background: #b3261e; color: #fff; }
.badge.inconclusive { background: #c98a00; color: #fff; }
.badge.emulated { background: #fff; color: #6a3fb5; border: 0.8pt solid #6a3fb5; }
.badge.deviation { background: #fff; color: #b3261e; border: 0.8pt solid #b3261e; }
.verdict { border: 1.2pt solid #999; padding: 2.5mm 3mm; margin: 2mm 0 4mm; break-inside: avoid; }
.verdict.pass { border-color: #1b7f3b; } .verdict.fail { border-color: #b3261e; } .verdict.inconclusive { border-color: #c98a00; }
.verdict .word { font-size: 14pt; font-weight: 700; }
figure { margin: 2mm 0 4mm; break-inside: avoid; }
figure svg { width: 100%; height: auto; display: block; }
figcaption { font-size: 8.5pt; color: #333; margin-top: 1mm; }
ul { margin: 1mm 0; padding-left: 5mm; } li { margin: 0.8mm 0; overflow-wrap: anywhere; }
.end { text-align: center; font-weight: 700; margin: 6mm 0 2mm; }
"#;

/// The whole report as HTML.
pub fn render(doc: &Document) -> String {
    let mut out = String::new();
    let id = esc(&doc.report_id);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"{}\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width\">\n<title>{} — {id}</title>\n<style>{CSS}{}</style>\n</head>\n<body>\n",
        esc(&doc.lang),
        esc(&doc.title),
        page_numbers_css(doc),
    );
    let running = esc(&doc.running_header);
    let _ = writeln!(out, "<header class=\"running\" id=\"running-header\">{running}</header>");
    out.push_str("<table class=\"layout\"><thead><tr><td><div class=\"space\"></div></td></tr></thead>\n");
    out.push_str("<tfoot><tr><td><div class=\"space\"></div></td></tr></tfoot>\n<tbody><tr><td>\n<main>\n");
    let _ = writeln!(out, "<h1>{}</h1>", esc(&doc.title));
    let class = outcome_class(doc.verdict);
    let _ = writeln!(
        out,
        "<div class=\"verdict {class}\" id=\"verdict\"><span class=\"word\">{}</span><p>{}</p></div>",
        esc(&doc.verdict_label),
        esc(&doc.verdict_reason)
    );
    for section in &doc.sections {
        let _ = writeln!(out, "<section id=\"{}\">\n<h2>{}</h2>", section.anchor, esc(&section.heading));
        for block in &section.blocks {
            block_html(block, &mut out);
        }
        out.push_str("</section>\n");
    }
    let _ = writeln!(out, "<p class=\"end\" id=\"end-of-report\">{}</p>", esc(&doc.end_marker));
    out.push_str("</main>\n</td></tr></tbody></table>\n");
    let _ = writeln!(out, "<footer class=\"running\" id=\"running-footer\">{running}</footer>");
    out.push_str("</body>\n</html>\n");
    out
}

/// The `@page` rule numbering each printed page: the report number, then "page n of N" in the
/// report's words, with the printer's counters where the numbers go.
fn page_numbers_css(doc: &Document) -> String {
    let quoted = |text: &str| {
        let escaped: String = text
            .chars()
            .map(|c| match c {
                '"' | '\\' => format!("\\{c}"),
                '<' | '>' | '&' => format!("\\{:x} ", c as u32),
                c => c.to_string(),
            })
            .collect();
        format!("\"{escaped}\"")
    };
    let mut content = vec![quoted(&format!("{} · ", doc.report_id))];
    for part in &doc.page_of {
        content.push(match part {
            PagePart::Text(text) => quoted(text),
            PagePart::Page => "counter(page)".into(),
            PagePart::Pages => "counter(pages)".into(),
        });
    }
    format!(
        "\n@page {{ @bottom-right {{ content: {}; font: 7pt \"DejaVu Sans Mono\", monospace; color: #444; font-variant-ligatures: none; font-feature-settings: \"liga\" 0, \"clig\" 0; }} }}\n",
        content.join(" ")
    )
}

fn outcome_class(o: Outcome) -> &'static str {
    match o {
        Outcome::Pass => "pass",
        Outcome::Fail => "fail",
        Outcome::Inconclusive => "inconclusive",
    }
}

fn badges_html(badges: &[Badge]) -> String {
    badges
        .iter()
        .map(|b| {
            let class = match b.kind {
                BadgeKind::Verdict(o) => outcome_class(o),
                BadgeKind::Emulated => "emulated",
                BadgeKind::Deviation => "deviation",
            };
            format!("<span class=\"badge {class}\">{}</span>", esc(&b.label))
        })
        .collect()
}

fn cell_html(tag: &str, cell: &Cell) -> String {
    let class = match cell.kind {
        CellKind::Code => " class=\"code\"",
        CellKind::Number => " class=\"num\"",
        CellKind::Text => "",
    };
    format!("<{tag}{class}>{}{}</{tag}>", esc(&cell.text), badges_html(&cell.badges))
}

fn block_html(block: &Block, out: &mut String) {
    match block {
        Block::Paragraph(text) => {
            let _ = writeln!(out, "<p>{}</p>", esc(text));
        }
        Block::Subheading(text) => {
            let _ = writeln!(out, "<h3>{}</h3>", esc(text));
        }
        Block::List(items) => {
            out.push_str("<ul>\n");
            for item in items {
                let _ = writeln!(out, "<li>{}</li>", esc(item));
            }
            out.push_str("</ul>\n");
        }
        Block::Fields(rows) => {
            out.push_str("<table class=\"fields\">\n");
            for (label, cell) in rows {
                let _ = writeln!(out, "<tr><th>{}</th>{}</tr>", esc(label), cell_html("td", cell));
            }
            out.push_str("</table>\n");
        }
        Block::Table(table) => table_html(table, out),
        Block::Figure(figure) => figure_html(figure, out),
    }
}

fn table_html(table: &Table, out: &mut String) {
    let total: u32 = table.widths.iter().map(|w| u32::from(*w)).sum::<u32>().max(1);
    out.push_str("<table class=\"data\">\n<colgroup>");
    for w in &table.widths {
        let _ = write!(out, "<col style=\"width:{:.1}%\">", f64::from(*w) * 100.0 / f64::from(total));
    }
    out.push_str("</colgroup>\n<thead><tr>");
    for c in &table.columns {
        let _ = write!(out, "<th>{}</th>", esc(c));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for row in &table.rows {
        out.push_str("<tr>");
        for cell in row {
            out.push_str(&cell_html("td", cell));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table>\n");
}

const W: f64 = 640.0;

fn figure_html(figure: &Figure, out: &mut String) {
    let svg = match &figure.plot {
        Plot::Histogram { bins, markers, x_label, y_label, x_ticks } => {
            histogram_svg(bins, markers, x_label, y_label, x_ticks)
        }
        Plot::Curve { points, x_label, y_label, x_ticks, y_ticks } => {
            curve_svg(points, x_label, y_label, x_ticks, y_ticks)
        }
        Plot::PairedBars { rows, legend, ticks } => paired_svg(rows, legend, ticks),
    };
    let _ = writeln!(
        out,
        "<figure>\n{svg}\n<figcaption>{}{}{}</figcaption>\n</figure>",
        esc(&figure.caption),
        badges_html(&figure.badges),
        if figure.summary.is_empty() { String::new() } else { format!("<br>{}", esc(&figure.summary)) }
    );
}

/// Plot area margins inside the SVG's viewBox (left, right, top, bottom).
const LEFT: f64 = 56.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 30.0;
const BOTTOM: f64 = 40.0;

fn axes(out: &mut String, h: f64, x_label: &str, y_label: &str) {
    let (x0, y0, x1) = (LEFT, h - BOTTOM, W - RIGHT);
    let _ = write!(
        out,
        "<line class=\"axis\" x1=\"{x0}\" y1=\"{y0}\" x2=\"{x1}\" y2=\"{y0}\" stroke=\"#333\"/><line class=\"axis\" x1=\"{x0}\" y1=\"{TOP}\" x2=\"{x0}\" y2=\"{y0}\" stroke=\"#333\"/>\
<text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\">{}</text>\
<text x=\"12\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\" transform=\"rotate(-90 12 {})\">{}</text>",
        (x0 + x1) / 2.0,
        h - 6.0,
        esc(x_label),
        (TOP + y0) / 2.0,
        (TOP + y0) / 2.0,
        esc(y_label)
    );
}

fn scale(v: f64, lo: f64, hi: f64, a: f64, b: f64) -> f64 {
    if hi > lo {
        a + (v - lo) / (hi - lo) * (b - a)
    } else {
        (a + b) / 2.0
    }
}

fn histogram_svg(
    bins: &[super::document::Bin],
    markers: &[(String, f64)],
    x_label: &str,
    y_label: &str,
    x_ticks: &[(f64, String)],
) -> String {
    let h = 260.0;
    let mut out = format!("<svg class=\"histogram\" viewBox=\"0 0 {W} {h}\" role=\"img\">");
    axes(&mut out, h, x_label, y_label);
    let lo = bins.first().map_or(0.0, |b| b.low);
    let hi = bins.last().map_or(1.0, |b| b.high);
    let top = bins.iter().map(|b| b.count).max().unwrap_or(1).max(1) as f64;
    let (y0, x1) = (h - BOTTOM, W - RIGHT);
    for b in bins {
        let xa = scale(b.low, lo, hi, LEFT, x1);
        let xb = scale(b.high, lo, hi, LEFT, x1);
        let bar_h = b.count as f64 / top * (y0 - TOP);
        let _ = write!(
            out,
            "<rect class=\"bar\" x=\"{:.2}\" y=\"{:.2}\" width=\"{:.2}\" height=\"{:.2}\" fill=\"#5b7db1\"><title>{}</title></rect>",
            xa + 0.5,
            y0 - bar_h,
            (xb - xa - 1.0).max(0.5),
            bar_h,
            b.count
        );
    }
    for (v, label) in x_ticks.iter().filter(|(v, _)| *v >= lo && *v <= hi) {
        let x = scale(*v, lo, hi, LEFT, x1);
        let _ = write!(
            out,
            "<text x=\"{x:.1}\" y=\"{}\" font-size=\"10\" text-anchor=\"middle\">{}</text>",
            y0 + 13.0,
            esc(label)
        );
    }
    let _ = write!(
        out,
        "<text x=\"{}\" y=\"{}\" font-size=\"10\" text-anchor=\"end\">{top}</text>",
        LEFT - 4.0,
        TOP + 4.0
    );
    // Percentile markers sit close together on a tight distribution: stagger their labels.
    for (i, (label, v)) in markers.iter().enumerate() {
        let x = scale(*v, lo, hi, LEFT, x1);
        let y = TOP - 18.0 + (i as f64) * 9.0;
        let _ = write!(
            out,
            "<line class=\"marker\" x1=\"{x:.2}\" y1=\"{y:.1}\" x2=\"{x:.2}\" y2=\"{y0}\" stroke=\"#b3261e\" stroke-dasharray=\"3 2\"/><text class=\"marker-label\" x=\"{:.2}\" y=\"{:.1}\" font-size=\"9\" fill=\"#b3261e\" text-anchor=\"{}\">{}</text>",
            x + 2.0,
            y + 7.0,
            if x > W - 80.0 { "end" } else { "start" },
            esc(label)
        );
    }
    out.push_str("</svg>");
    out
}

fn curve_svg(
    points: &[(f64, f64)],
    x_label: &str,
    y_label: &str,
    x_ticks: &[(f64, String)],
    y_ticks: &[(f64, String)],
) -> String {
    let h = 260.0;
    let mut out = format!("<svg class=\"curve\" viewBox=\"0 0 {W} {h}\" role=\"img\">");
    axes(&mut out, h, x_label, y_label);
    let (y0, x1) = (h - BOTTOM, W - RIGHT);
    let x_lo = 0.0;
    let x_hi = x_ticks.last().map_or(1.0, |t| t.0).max(points.iter().map(|p| p.0).fold(0.0, f64::max));
    let y_lo =
        y_ticks.first().map_or(0.0, |t| t.0).min(points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min));
    let y_hi =
        y_ticks.last().map_or(1.0, |t| t.0).max(points.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max));
    for (v, label) in x_ticks {
        let x = scale(*v, x_lo, x_hi, LEFT, x1);
        let _ = write!(out, "<line x1=\"{x:.1}\" y1=\"{y0}\" x2=\"{x:.1}\" y2=\"{}\" stroke=\"#333\"/><text x=\"{x:.1}\" y=\"{}\" font-size=\"10\" text-anchor=\"middle\">{}</text>", y0 + 4.0, y0 + 14.0, esc(label));
    }
    for (v, label) in y_ticks {
        let y = scale(*v, y_lo, y_hi, y0, TOP);
        let _ = write!(out, "<line x1=\"{}\" y1=\"{y:.1}\" x2=\"{x1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/><text x=\"{}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"end\">{}</text>", LEFT, LEFT - 4.0, y + 3.5, esc(label));
    }
    let pts: Vec<String> = points
        .iter()
        .map(|(x, y)| format!("{:.2},{:.2}", scale(*x, x_lo, x_hi, LEFT, x1), scale(*y, y_lo, y_hi, y0, TOP)))
        .collect();
    let _ = write!(
        out,
        "<polyline class=\"thermal\" fill=\"none\" stroke=\"#b3261e\" stroke-width=\"2\" points=\"{}\"/>",
        pts.join(" ")
    );
    out.push_str("</svg>");
    out
}

fn paired_svg(
    rows: &[super::document::PairedRow],
    legend: &(String, String),
    ticks: &[(f64, String)],
) -> String {
    let row_h = 26.0;
    let label_w = 170.0;
    let h = TOP + rows.len() as f64 * row_h + BOTTOM;
    let (x0, x1, y_end) = (label_w, W - RIGHT, TOP + rows.len() as f64 * row_h);
    let hi = ticks
        .last()
        .map_or(1.0, |t| t.0)
        .max(rows.iter().flat_map(|r| [r.fp32.2, r.compressed.2]).fold(0.0, f64::max));
    let mut out = format!("<svg class=\"paired\" viewBox=\"0 0 {W} {h}\" role=\"img\">");
    let _ = write!(
        out,
        "<rect x=\"{x0}\" y=\"6\" width=\"10\" height=\"10\" fill=\"#a9c1e6\"/><text x=\"{}\" y=\"15\" font-size=\"10\">{}</text><rect x=\"{}\" y=\"6\" width=\"10\" height=\"10\" fill=\"#274b82\"/><text x=\"{}\" y=\"15\" font-size=\"10\">{}</text>",
        x0 + 14.0,
        esc(&legend.0),
        x0 + 200.0,
        x0 + 214.0,
        esc(&legend.1)
    );
    for (v, label) in ticks {
        let x = scale(*v, 0.0, hi, x0, x1);
        let _ = write!(out, "<line x1=\"{x:.1}\" y1=\"{TOP}\" x2=\"{x:.1}\" y2=\"{y_end}\" stroke=\"#ddd\"/><text x=\"{x:.1}\" y=\"{}\" font-size=\"10\" text-anchor=\"middle\">{}</text>", y_end + 13.0, esc(label));
    }
    for (i, r) in rows.iter().enumerate() {
        let y = TOP + i as f64 * row_h;
        let _ = write!(
            out,
            "<text x=\"{}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"end\">{}</text>",
            x0 - 4.0,
            y + 16.0,
            esc(&truncate(&r.label, 30))
        );
        for (j, (v, lo, up), color) in [(0, r.fp32, "#a9c1e6"), (1, r.compressed, "#274b82")] {
            let by = y + 3.0 + j as f64 * 10.0;
            let w = (scale(v.max(0.0), 0.0, hi, x0, x1) - x0).max(0.0);
            let _ = write!(out, "<rect class=\"pair-bar\" x=\"{x0}\" y=\"{by:.1}\" width=\"{w:.2}\" height=\"9\" fill=\"{color}\"/>");
            let (xl, xu) = (scale(lo.max(0.0), 0.0, hi, x0, x1), scale(up.max(0.0), 0.0, hi, x0, x1));
            let _ = write!(
                out,
                "<line x1=\"{xl:.2}\" y1=\"{:.1}\" x2=\"{xu:.2}\" y2=\"{:.1}\" stroke=\"#111\"/>",
                by + 4.5,
                by + 4.5
            );
        }
    }
    let _ = write!(out, "<line x1=\"{x0}\" y1=\"{TOP}\" x2=\"{x0}\" y2=\"{y_end}\" stroke=\"#333\"/>");
    out.push_str("</svg>");
    out
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        s.chars().take(max - 1).collect::<String>() + "…"
    }
}

/// Escapes text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
