//! The verdict table: one row per planned check of each certificate, from the certificate alone,
//! so the run that wrote a certificate and `edgecert show` reading it print the same table.

use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, Color, Table};

use super::schema::{Certificate, CheckStatus, Outcome};

fn fmt_num(x: Option<f64>) -> String {
    match x {
        None => "-".into(),
        Some(v) if v.abs() >= 1e5 => format!("{v:.3e}"),
        Some(v) if v == v.trunc() => format!("{v:.0}"),
        Some(v) => format!("{v:.4}"),
    }
}

fn outcome_cell(o: Outcome, status: CheckStatus) -> Cell {
    let color = match o {
        Outcome::Pass => Color::Green,
        Outcome::Fail => Color::Red,
        Outcome::Inconclusive => Color::Yellow,
    };
    let text = match status {
        CheckStatus::Ran => o.as_str().to_string(),
        CheckStatus::Error => format!("{} (error)", o.as_str()),
    };
    Cell::new(text).fg(color)
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
        let row_start =
            |check: &str| vec![Cell::new(&c.golden.name), Cell::new(&c.profile.name), Cell::new(check)];
        for v in &c.checks {
            let ci = v.ci.as_ref().map_or("-".to_string(), |ci| {
                let high = ci.high.map_or("∞".to_string(), |h| fmt_num(Some(h)));
                format!("[{}, {high}] {:.0}%", fmt_num(Some(ci.low)), ci.confidence * 100.0)
            });
            let mut row = row_start(&v.name);
            row.extend([
                outcome_cell(v.verdict, v.status),
                Cell::new(fmt_num(v.measured)),
                Cell::new(fmt_num(v.limit)),
                Cell::new(&v.unit),
                Cell::new(v.basis.as_str()),
                Cell::new(ci),
            ]);
            t.add_row(row);
        }
        for n in c.coverage.not_run.iter().filter(|n| !c.checks.iter().any(|v| v.name == n.check)) {
            let mut row = row_start(&n.check);
            row.push(Cell::new(format!("NOT RUN ({})", n.reason.as_str())).fg(Color::DarkGrey));
            row.extend((0..5).map(|_| Cell::new("-")));
            t.add_row(row);
        }
    }
    t
}
