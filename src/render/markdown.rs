//! The report as Markdown: the same sections as the HTML, as text and tables; each plot is
//! replaced by its caption and text summary (percentiles, steady-state temperature).

use std::fmt::Write;

use super::document::{Badge, BadgeKind, Block, Cell, Document, Figure, Plot};

pub fn render(doc: &Document) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# {}\n", inline(&doc.title));
    let _ = writeln!(out, "*{}*\n", inline(&doc.running_header));
    let _ = writeln!(out, "> **{}** — {}\n", inline(&doc.verdict_label), inline(&doc.verdict_reason));
    for section in &doc.sections {
        let _ = writeln!(out, "## {}\n", inline(&section.heading));
        for block in &section.blocks {
            block_md(block, &mut out);
        }
    }
    let _ = writeln!(out, "---\n\n**{}**", inline(&doc.end_marker));
    out
}

fn badge_md(b: &Badge) -> String {
    match b.kind {
        BadgeKind::Verdict(_) => format!("**{}**", inline(&b.label)),
        BadgeKind::Emulated | BadgeKind::Deviation => format!("*[{}]*", inline(&b.label)),
    }
}

fn cell_md(cell: &Cell) -> String {
    let mut parts = Vec::new();
    if !cell.text.is_empty() {
        parts.push(match cell.kind {
            super::document::CellKind::Code => {
                format!("`{}`", cell.text.replace('`', "'").replace('|', "\\|"))
            }
            _ => inline(&cell.text),
        });
    }
    parts.extend(cell.badges.iter().map(badge_md));
    parts.join(" ")
}

fn row(cells: impl IntoIterator<Item = String>) -> String {
    let cells: Vec<String> = cells.into_iter().collect();
    format!("| {} |\n", cells.join(" | "))
}

fn block_md(block: &Block, out: &mut String) {
    match block {
        Block::Paragraph(text) => {
            let _ = writeln!(out, "{}\n", inline(text));
        }
        Block::Subheading(text) => {
            let _ = writeln!(out, "### {}\n", inline(text));
        }
        Block::List(items) => {
            for item in items {
                let _ = writeln!(out, "- {}", inline(item));
            }
            out.push('\n');
        }
        Block::Fields(rows) => {
            out.push_str(&row(["".to_string(), "".to_string()]));
            out.push_str("|---|---|\n");
            for (label, cell) in rows {
                out.push_str(&row([format!("**{}**", inline(label)), cell_md(cell)]));
            }
            out.push('\n');
        }
        Block::Table(table) => {
            out.push_str(&row(table.columns.iter().map(|c| inline(c))));
            out.push_str(&row(table.columns.iter().map(|_| "---".to_string())));
            for r in &table.rows {
                out.push_str(&row(r.iter().map(cell_md)));
            }
            out.push('\n');
        }
        Block::Figure(figure) => figure_md(figure, out),
    }
}

fn figure_md(figure: &Figure, out: &mut String) {
    let badges: Vec<String> = figure.badges.iter().map(badge_md).collect();
    let _ = writeln!(out, "*{}* {}\n", inline(&figure.caption), badges.join(" "));
    match &figure.plot {
        // The bars' numbers are in the table just above; the summary is all the text needs.
        Plot::PairedBars { .. } => {}
        Plot::Histogram { .. } | Plot::Curve { .. } => {
            let _ = writeln!(out, "{}\n", inline(&figure.summary));
        }
    }
}

/// Text safe inside a Markdown line and a table cell: no line breaks, no bare `|`, and no
/// HTML a viewer would render.
fn inline(s: &str) -> String {
    s.replace(['\n', '\r'], " ").replace('|', "\\|").replace('<', "&lt;").replace('>', "&gt;")
}
