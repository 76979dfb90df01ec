//! The terminal summary: one row per (family, chip, check).

use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, Color, Table};

use super::Certificate;
use crate::stats::Outcome;

fn fmt_num(x: Option<f64>) -> String {
    match x {
        None => "-".into(),
        Some(v) if v.abs() >= 1e5 => format!("{v:.3e}"),
        Some(v) if v == v.trunc() => format!("{v:.0}"),
        Some(v) => format!("{v:.4}"),
    }
}

fn outcome_cell(o: Outcome) -> Cell {
    let color = match o {
        Outcome::Pass => Color::Green,
        Outcome::Fail => Color::Red,
        Outcome::Inconclusive => Color::Yellow,
    };
    Cell::new(o.as_str()).fg(color)
}

pub fn verdict_table(certs: &[Certificate]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(vec![
        "family",
        "chip",
        "check",
        "verdict",
        "measured",
        "limit",
        "unit",
        "basis",
        "95% interval",
    ]);
    for c in certs {
        for v in &c.checks {
            let ci = v.ci.map_or("-".to_string(), |ci| {
                format!("[{}, {}]", fmt_num(Some(ci.low)), fmt_num(ci.high).replace('-', "∞"))
            });
            t.add_row(vec![
                Cell::new(&c.golden.name),
                Cell::new(&c.profile.name),
                Cell::new(&v.name),
                outcome_cell(v.verdict),
                Cell::new(fmt_num(v.measured)),
                Cell::new(fmt_num(v.limit)),
                Cell::new(&v.unit),
                Cell::new(format!("{:?}", v.basis).to_lowercase()),
                Cell::new(ci),
            ]);
        }
    }
    t
}
