//! JUnit XML, the format CI dashboards read: one test suite per (family, chip), one test case
//! per planned check. FAIL and INCONCLUSIVE are failures (a CI gate must not go green on an
//! undecided check), a check stopped by an internal error is an error, and a planned check that
//! did not run is skipped.

use std::fmt::Write;

use crate::certificate::schema::{Certificate, CheckKind, CheckStatus, Outcome};

/// Escapes for an XML attribute; control characters (XML 1.0 forbids most of them, and panic
/// messages or node names may carry them) become spaces.
fn esc(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub fn junit_xml(certs: &[Certificate]) -> String {
    let not_passed = |c: &Certificate| c.checks.iter().filter(|v| v.verdict != Outcome::Pass).count();
    let skipped = |c: &Certificate| c.coverage.not_run.iter().filter(|n| !executed(c, n.check)).count();
    let total: usize = certs.iter().map(|c| c.checks.len() + skipped(c)).sum();
    let failures: usize = certs.iter().map(not_passed).sum();
    let skips: usize = certs.iter().map(skipped).sum();
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        x,
        "<testsuites name=\"edgecert\" tests=\"{total}\" failures=\"{failures}\" skipped=\"{skips}\">"
    );
    for c in certs {
        let suite = esc(&format!("{}::{}", c.golden.name, c.profile.name));
        let _ = writeln!(
            x,
            "  <testsuite name=\"{suite}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\">",
            c.checks.len() + skipped(c),
            not_passed(c),
            skipped(c)
        );
        for v in &c.checks {
            let _ = write!(x, "    <testcase classname=\"{suite}\" name=\"{}\"", esc(v.name.name()));
            let element = if v.status == CheckStatus::Error { "error" } else { "failure" };
            if v.verdict == Outcome::Pass {
                x.push_str("/>\n");
            } else {
                let _ = writeln!(
                    x,
                    ">\n      <{element} type=\"{}\" message=\"{}\"/>\n    </testcase>",
                    v.verdict.as_str(),
                    esc(&v.reason)
                );
            }
        }
        for n in c.coverage.not_run.iter().filter(|n| !executed(c, n.check)) {
            let _ = writeln!(
                x,
                "    <testcase classname=\"{suite}\" name=\"{}\">\n      <skipped message=\"{}: {}\"/>\n    </testcase>",
                esc(n.check.name()),
                n.reason.as_str(),
                esc(&n.detail)
            );
        }
        x.push_str("  </testsuite>\n");
    }
    x.push_str("</testsuites>\n");
    x
}

/// Checks stopped by an error are in `checks` and in `not_run`; they are reported once.
fn executed(c: &Certificate, check: CheckKind) -> bool {
    c.checks.iter().any(|v| v.name == check)
}
