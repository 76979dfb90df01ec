//! JUnit XML, the format CI dashboards read: one test suite per (family, chip), one test case
//! per check; FAIL and INCONCLUSIVE are failures.

use std::fmt::Write;

use super::Certificate;
use crate::stats::Outcome;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

pub fn junit_xml(certs: &[Certificate]) -> String {
    let total: usize = certs.iter().map(|c| c.checks.len()).sum();
    let failures: usize = certs.iter().flat_map(|c| &c.checks).filter(|v| v.verdict != Outcome::Pass).count();
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(x, "<testsuites name=\"edgecert\" tests=\"{total}\" failures=\"{failures}\">");
    for c in certs {
        let fails = c.checks.iter().filter(|v| v.verdict != Outcome::Pass).count();
        let suite = format!("{}::{}", c.golden.name, c.profile.name);
        let _ = writeln!(
            x,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{fails}\">",
            esc(&suite),
            c.checks.len()
        );
        for v in &c.checks {
            let _ = write!(x, "    <testcase classname=\"{}\" name=\"{}\"", esc(&suite), esc(&v.name));
            if v.verdict == Outcome::Pass {
                x.push_str("/>\n");
            } else {
                let _ = writeln!(
                    x,
                    ">\n      <failure type=\"{}\" message=\"{}\"/>\n    </testcase>",
                    v.verdict.as_str(),
                    esc(&v.reason)
                );
            }
        }
        x.push_str("  </testsuite>\n");
    }
    x.push_str("</testsuites>\n");
    x
}
