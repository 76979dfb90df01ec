//! The plan: every (family, profile, check) the inputs call for, each with a stable
//! [`CheckId`], and whether the name filters select it. The plan is data: `certify --list`
//! prints it, `edgecert plan --json` writes it, and the runner executes it.
//!
//! Filters follow libtest's syntax, which scripts already know: a check runs when its id
//! contains any positional filter (equals it with `--exact`) and contains no `--skip` pattern.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::inputs::Inputs;
use super::shard::{Shard, ShardBy};
use crate::certificate::schema::NotRunReason;
use crate::checks::CheckKind;

/// Version of the plan's JSON layout.
pub const PLAN_SCHEMA_VERSION: u32 = 1;

/// A check of one family on one chip: `family::profile::check`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CheckId {
    pub family: String,
    pub profile: String,
    pub check: CheckKind,
}

impl fmt::Display for CheckId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}::{}::{}", self.family, self.profile, self.check)
    }
}

/// Which planned checks run: libtest's filters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selection {
    /// A check runs if its id contains any of these (all run when empty).
    pub filters: Vec<String>,
    /// Filters must equal the id rather than be contained in it.
    pub exact: bool,
    /// A check whose id contains any of these does not run.
    pub skip: Vec<String>,
    /// Only this shard runs (`--shard K/N`): its (family, chip) units, or its sample ranges.
    pub shard: Option<Shard>,
    #[serde(default)]
    pub shard_by: ShardBy,
}

impl Selection {
    /// `None` when the check runs; otherwise why not and which pattern said so.
    fn exclusion(&self, id: &str) -> Option<(NotRunReason, String)> {
        let matches = |f: &String| if self.exact { id == f } else { id.contains(f.as_str()) };
        if !self.filters.is_empty() && !self.filters.iter().any(matches) {
            let filters = self.filters.iter().map(|f| format!("`{f}`")).collect::<Vec<_>>().join(", ");
            return Some((NotRunReason::Filtered, format!("not selected by the filter {filters}")));
        }
        let skip =
            self.skip.iter().find(|s| if self.exact { id == s.as_str() } else { id.contains(s.as_str()) })?;
        Some((NotRunReason::Skipped, format!("excluded by --skip `{skip}`")))
    }
}

/// One check in the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedCheck {
    /// `family::profile::check`, the name filters match.
    pub name: String,
    pub id: CheckId,
    /// `None`: selected to run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_run: Option<Exclusion>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Exclusion {
    pub reason: NotRunReason,
    pub detail: String,
}

impl PlannedCheck {
    pub fn selected(&self) -> bool {
        self.not_run.is_none()
    }
}

/// An input the plan names, with the digest it was planned against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedInput {
    pub name: String,
    pub path: String,
    pub sha256: String,
}

/// Every check the inputs call for, in run order: family by family, chip by chip, checks in
/// report order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub schema_version: u32,
    /// Golden sets (with the compressed model each certifies).
    pub families: Vec<PlannedFamily>,
    pub profiles: Vec<PlannedInput>,
    pub checks: Vec<PlannedCheck>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedFamily {
    pub golden: PlannedInput,
    pub model: PlannedInput,
    pub reference: PlannedInput,
}

impl Plan {
    /// Builds the plan of `inputs` under `selection`.
    pub fn build(inputs: &Inputs, selection: &Selection) -> Plan {
        let mut checks = Vec::new();
        let units = inputs.families.iter().flat_map(|f| inputs.profiles.iter().map(move |p| (f, p)));
        for (unit, (family, profile)) in units.enumerate() {
            let other_shard = selection
                .shard
                .filter(|s| selection.shard_by == ShardBy::Units && !s.includes(unit))
                .map(|s| Exclusion { reason: NotRunReason::Filtered, detail: format!("not in shard {s}") });
            {
                for check in CheckKind::ALL.into_iter().filter(|c| c.applies_to(&family.golden.manifest)) {
                    let id = CheckId {
                        family: family.golden.name().to_string(),
                        profile: profile.profile.chip.name.clone(),
                        check,
                    };
                    let name = id.to_string();
                    let not_run = other_shard.clone().or_else(|| {
                        selection.exclusion(&name).map(|(reason, detail)| Exclusion { reason, detail })
                    });
                    checks.push(PlannedCheck { name, id, not_run });
                }
            }
        }
        Plan {
            schema_version: PLAN_SCHEMA_VERSION,
            families: inputs.families.iter().map(|f| f.planned()).collect(),
            profiles: inputs
                .profiles
                .iter()
                .map(|p| PlannedInput {
                    name: p.profile.chip.name.clone(),
                    path: p.path.display().to_string(),
                    sha256: p.sha256.clone(),
                })
                .collect(),
            checks,
        }
    }

    pub fn selected(&self) -> impl Iterator<Item = &PlannedCheck> {
        self.checks.iter().filter(|c| c.selected())
    }

    /// The planned checks of one (family, profile), in order.
    pub fn unit<'a>(&'a self, family: &'a str, profile: &'a str) -> impl Iterator<Item = &'a PlannedCheck> {
        self.checks.iter().filter(move |c| c.id.family == family && c.id.profile == profile)
    }

    /// The plan as pretty JSON with a final newline.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a plan is plain data") + "\n"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn selection(filters: &[&str], exact: bool, skip: &[&str]) -> Selection {
        Selection {
            filters: filters.iter().map(|s| s.to_string()).collect(),
            exact,
            skip: skip.iter().map(|s| s.to_string()).collect(),
            shard: None,
            shard_by: ShardBy::Units,
        }
    }

    #[test]
    fn filters_select_by_substring_and_exact_by_equality() {
        let s = selection(&["rk3588::lat"], false, &[]);
        assert_eq!(s.exclusion("shapes::rk3588::latency"), None);
        let (reason, detail) = s.exclusion("shapes::qcs6490::latency").unwrap();
        assert_eq!(reason, NotRunReason::Filtered);
        assert!(detail.contains("`rk3588::lat`"), "{detail}");
        let exact = selection(&["shapes::rk3588::size"], true, &[]);
        assert_eq!(exact.exclusion("shapes::rk3588::size"), None);
        assert!(exact.exclusion("shapes::rk3588::size_extra").is_some());
    }

    #[test]
    fn skip_wins_over_a_matching_filter_and_names_the_pattern() {
        let s = selection(&["shapes"], false, &["accuracy"]);
        let (reason, detail) = s.exclusion("shapes::rk3588::accuracy_vs_fp32").unwrap();
        assert_eq!(reason, NotRunReason::Skipped);
        assert_eq!(detail, "excluded by --skip `accuracy`");
        assert_eq!(s.exclusion("shapes::rk3588::size"), None);
    }

    #[test]
    fn check_ids_print_as_family_profile_check() {
        let id = CheckId {
            family: "smt".into(),
            profile: "rk3588".into(),
            check: CheckKind::AccuracyHardestSlice,
        };
        assert_eq!(id.to_string(), "smt::rk3588::accuracy_hardest_slice");
    }
}
