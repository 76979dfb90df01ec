//! The comparison as GitHub-flavoured Markdown, for a pull-request comment or a CI job
//! summary: a heading, the one-line verdict, a table of regressions, a table of verdict
//! changes, what changed or could not be compared, and the unchanged rest collapsed in a
//! `<details>` block so the comment stays short when nothing happened.

use std::fmt::Write;

use super::{Comparison, LatencyOutcome, VerdictChange};

pub(super) fn render(c: &Comparison) -> String {
    let mut md = String::from("## edgecert diff\n\n");
    let _ = writeln!(
        md,
        "**{}** — `{}` → `{}`, {} compared.\n",
        c.verdict_line(),
        cell(&c.old.display().to_string()),
        cell(&c.new.display().to_string()),
        plural(c.certificates.len(), "certificate pair"),
    );
    if !c.regressions.is_empty() {
        md.push_str("### Regressions\n\n| certificate | kind | what got worse |\n|---|---|---|\n");
        for r in &c.regressions {
            let _ = writeln!(
                md,
                "| {} | {} | {} |",
                cell(&r.certificate.to_string()),
                r.kind_name(),
                cell(&r.detail)
            );
        }
        md.push('\n');
    }
    if !c.verdict_changes.is_empty() {
        md.push_str("### Verdict changes\n\n| certificate | check | old | new |\n|---|---|---|---|\n");
        for v in &c.verdict_changes {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} |",
                cell(&v.certificate.to_string()),
                v.check.map_or("*certificate*".to_string(), |c| cell(c.name())),
                v.old.as_str(),
                new_verdict(v),
            );
        }
        md.push('\n');
    }
    if !c.artifact_changes.is_empty() {
        md.push_str("### Changed inputs\n\n");
        for a in &c.artifact_changes {
            let _ = writeln!(md, "- {}: {}", cell(&a.certificate.to_string()), cell(&a.sentence()));
        }
        md.push('\n');
    }
    let not_compared = not_compared(c);
    if !not_compared.is_empty() {
        md.push_str("### Not compared\n\n");
        for line in &not_compared {
            let _ = writeln!(md, "- {}", cell(line));
        }
        md.push('\n');
    }
    unchanged(c, &mut md);
    md
}

/// Beyond a few, lines of one kind become one line: a nightly run with no per-sample latencies
/// would otherwise list every certificate.
const LISTED_ONE_BY_ONE: usize = 3;

fn not_compared(c: &Comparison) -> Vec<String> {
    let mut lines = Vec::new();
    for (side, other, keys) in [("OLD", "NEW", &c.only_in_old), ("NEW", "OLD", &c.only_in_new)] {
        if !keys.is_empty() {
            let names: Vec<String> = keys.iter().map(ToString::to_string).collect();
            lines.push(format!(
                "{} only in {side}, not in {other}: {}",
                plural(keys.len(), "certificate"),
                names.join(", ")
            ));
        }
    }
    lines.extend(c.not_compared.iter().cloned());
    let latency: Vec<String> = c
        .latency
        .iter()
        .filter_map(|l| match &l.outcome {
            LatencyOutcome::NotCompared { reason } => {
                Some(format!("{}: latency not compared: {reason}", l.certificate))
            }
            LatencyOutcome::Compared(_) => None,
        })
        .collect();
    if latency.len() <= LISTED_ONE_BY_ONE {
        lines.extend(latency);
    } else {
        lines.push(format!(
            "latency not compared for {} certificate pairs, e.g. {} (each pair in the details below)",
            latency.len(),
            latency[0]
        ));
    }
    lines
}

/// The rows of every certificate pair, collapsed.
fn unchanged(c: &Comparison, md: &mut String) {
    let checks: usize = c.certificates.iter().map(|p| p.checks_unchanged).sum();
    let values: usize = c.certificates.iter().map(|p| p.values_held).sum();
    let latencies = c
        .latency
        .iter()
        .filter(|l| matches!(&l.outcome, LatencyOutcome::Compared(t) if !t.regression))
        .count();
    let _ = writeln!(
        md,
        "<details><summary>Unchanged: {}, {} within the baseline's interval, {} without a regression</summary>\n",
        plural(checks, "check verdict"),
        plural(values, "metric value"),
        plural(latencies, "latency distribution"),
    );
    md.push_str("| certificate | verdict | checks unchanged | metric values held | latency |\n|---|---|---|---|---|\n");
    for (pair, latency) in c.certificates.iter().zip(&c.latency) {
        let latency = match &latency.outcome {
            LatencyOutcome::Compared(t) => cell(&t.sentence()),
            LatencyOutcome::NotCompared { reason } => cell(&format!("not compared: {reason}")),
        };
        let _ = writeln!(
            md,
            "| {} | {} → {} | {} of {} | {} of {} | {latency} |",
            cell(&pair.certificate.to_string()),
            pair.old_verdict.as_str(),
            pair.new_verdict.as_str(),
            pair.checks_unchanged,
            pair.checks_compared,
            pair.values_held,
            pair.values_compared,
        );
    }
    md.push_str("\n</details>\n");
}

fn new_verdict(v: &VerdictChange) -> String {
    if v.worse {
        format!("**{}**", v.new.as_str())
    } else {
        v.new.as_str().to_string()
    }
}

/// Text from certificates inside a table cell or list item: a `|` would end the cell, a line
/// break the row, and `<` could open HTML in the comment.
fn cell(text: &str) -> String {
    text.replace('\\', "\\\\").replace('|', "\\|").replace('<', "&lt;").replace(['\n', '\r'], " ")
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_cannot_break_the_table_or_open_html() {
        assert_eq!(cell("a|b\nc <details>"), "a\\|b c &lt;details>");
    }
}
