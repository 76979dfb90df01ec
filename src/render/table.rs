//! The verdict table: one row per planned check of each certificate, from the certificate alone,
//! so the run that wrote a certificate and `edgecert show` reading it print the same table.
//! Headers, verdict words and decimal separators come from a language's catalog (English for
//! the run itself; `show --lang` picks another).

use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, Color, Table};

use crate::certificate::schema::{Basis, Certificate, CheckStatus, NotRunReason, Outcome};
use crate::i18n::Catalog;

fn fmt_num(x: Option<f64>, t: &Catalog) -> String {
    let text = match x {
        None => return "-".into(),
        Some(v) if v.abs() >= 1e5 => format!("{v:.3e}"),
        Some(v) if v == v.trunc() => format!("{v:.0}"),
        Some(v) => format!("{v:.4}"),
    };
    // Digits stay ungrouped here (columns stay narrow); only the decimal separator follows
    // the locale.
    text.replacen('.', &t.text("number-decimal-separator"), 1)
}

fn outcome_cell(o: Outcome, status: CheckStatus, t: &Catalog) -> Cell {
    let color = match o {
        Outcome::Pass => Color::Green,
        Outcome::Fail => Color::Red,
        Outcome::Inconclusive => Color::Yellow,
    };
    let text = match status {
        CheckStatus::Ran => t.outcome(o),
        CheckStatus::Error => t.format("status-error", &[("verdict", &t.outcome(o))]),
    };
    Cell::new(text).fg(color)
}

/// The verdict table in English, as the run prints it.
pub fn verdict_table(certs: &[Certificate]) -> Table {
    verdict_table_in(certs, &Catalog::english())
}

/// The verdict table in the catalog's language.
pub fn verdict_table_in(certs: &[Certificate], lang: &Catalog) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(
        ["family", "chip", "check", "verdict", "measured", "limit", "unit", "basis", "interval"]
            .map(|h| lang.text(&format!("table-{h}"))),
    );
    for c in certs {
        let row_start =
            |check: &str| vec![Cell::new(&c.golden.name), Cell::new(&c.profile.name), Cell::new(check)];
        for v in &c.checks {
            let ci = v.ci.as_ref().map_or("-".to_string(), |ci| {
                let high = ci.high.map_or("∞".to_string(), |h| fmt_num(Some(h), lang));
                let interval =
                    lang.format("interval", &[("low", &fmt_num(Some(ci.low), lang)), ("high", &high)]);
                format!("{interval} {}", lang.percent(ci.confidence))
            });
            let mut row = row_start(v.name.name());
            row.extend([
                outcome_cell(v.verdict, v.status, lang),
                Cell::new(fmt_num(v.measured, lang)),
                Cell::new(fmt_num(v.limit, lang)),
                Cell::new(lang.unit(&v.unit)),
                Cell::new(basis_word(v.basis, lang)),
                Cell::new(ci),
            ]);
            t.add_row(row);
        }
        for n in c.coverage.not_run.iter().filter(|n| !c.checks.iter().any(|v| v.name == n.check)) {
            let mut row = row_start(n.check.name());
            let reason = lang.text(match n.reason {
                NotRunReason::Filtered => "not-run-filtered",
                NotRunReason::Skipped => "not-run-skipped",
                NotRunReason::Error => "not-run-error",
            });
            row.push(Cell::new(lang.format("table-not-run", &[("reason", &reason)])).fg(Color::DarkGrey));
            row.extend((0..5).map(|_| Cell::new("-")));
            t.add_row(row);
        }
    }
    t
}

fn basis_word(basis: Basis, lang: &Catalog) -> String {
    lang.text(match basis {
        Basis::Measured => "basis-measured",
        Basis::Emulated => "basis-emulated",
        Basis::Static => "basis-static",
    })
}
