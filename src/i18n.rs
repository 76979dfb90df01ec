//! Languages of the human-readable output (reports and `show`): Fluent message catalogs embedded
//! from `i18n/<tag>.ftl` by `build.rs`, and locale formatting of numbers and dates. The number
//! and date formats are messages of the catalog too, so a new language is one file and no code.
//! Certificates themselves are never translated.

use std::collections::BTreeSet;

use fluent_bundle::{FluentArgs, FluentBundle, FluentResource, FluentValue};
use fluent_syntax::ast;

use crate::vocab::{Error, Outcome, Result};

include!(concat!(env!("OUT_DIR"), "/catalogs.rs"));

/// The language every catalog is compared with, and the default.
pub const DEFAULT_LANGUAGE: &str = "en";

/// The BCP 47 tags of the embedded catalogs, sorted.
pub fn available() -> Vec<&'static str> {
    CATALOGS.iter().map(|(tag, _)| *tag).collect()
}

/// One language: its messages and its number and date conventions.
pub struct Catalog {
    tag: &'static str,
    bundle: FluentBundle<FluentResource>,
    decimal: String,
    group: String,
    group_min_digits: usize,
}

impl Catalog {
    /// The catalog of a BCP 47 tag (`en`, `zh-CN`, ...; case-insensitive); an unknown tag is a
    /// usage error listing the available ones.
    pub fn load(tag: &str) -> Result<Catalog> {
        let (tag, source) = CATALOGS.iter().find(|(t, _)| t.eq_ignore_ascii_case(tag)).ok_or_else(|| {
            Error::Usage(format!("unknown language `{tag}`; available: {}", available().join(", ")))
        })?;
        let broken = |what: String| Error::Usage(format!("i18n/{tag}.ftl (embedded): {what}"));
        let langid = tag.parse().map_err(|e| broken(format!("not a language tag: {e}")))?;
        let resource = FluentResource::try_new(source.to_string())
            .map_err(|(_, errors)| broken(format!("{} syntax error(s): {errors:?}", errors.len())))?;
        let mut bundle = FluentBundle::new(vec![langid]);
        // Isolation marks (U+2068/U+2069) around every placeable would end up in terminals,
        // Markdown and tests; reports are laid out one direction per language anyway.
        bundle.set_use_isolating(false);
        bundle.add_resource(resource).map_err(|errors| broken(format!("{errors:?}")))?;
        let mut catalog =
            Catalog { tag, bundle, decimal: String::new(), group: String::new(), group_min_digits: 4 };
        catalog.decimal = catalog.text("number-decimal-separator");
        catalog.group = catalog.text("number-group-separator");
        catalog.group_min_digits = catalog.text("number-group-min-digits").trim().parse().unwrap_or(4);
        Ok(catalog)
    }

    pub fn english() -> Catalog {
        Catalog::load(DEFAULT_LANGUAGE).expect("the English catalog is embedded and valid")
    }

    pub fn tag(&self) -> &'static str {
        self.tag
    }

    pub fn has(&self, id: &str) -> bool {
        self.bundle.has_message(id)
    }

    /// A message without arguments.
    pub fn text(&self, id: &str) -> String {
        self.format(id, &[])
    }

    /// A message with string arguments. A message the catalog lacks shows as its id, so a
    /// gap in a translation is visible rather than fatal (the catalog tests catch it first).
    pub fn format(&self, id: &str, args: &[(&str, &str)]) -> String {
        let Some(pattern) = self.bundle.get_message(id).and_then(|m| m.value()) else {
            return id.to_string();
        };
        let mut fluent_args = FluentArgs::new();
        for (name, value) in args {
            fluent_args.set(*name, FluentValue::from(*value));
        }
        let mut errors = Vec::new();
        self.bundle.format_pattern(pattern, Some(&fluent_args), &mut errors).into_owned()
    }

    /// `value` with `decimals` digits after the separator, digits grouped per the locale.
    /// NaN and infinities are written as the symbols they are.
    pub fn number(&self, value: f64, decimals: usize) -> String {
        if !value.is_finite() {
            return if value.is_nan() {
                "NaN".into()
            } else if value > 0.0 {
                "∞".into()
            } else {
                "−∞".into()
            };
        }
        let plain = format!("{:.*}", decimals, value.abs());
        let (int, frac) = plain.split_once('.').unwrap_or((&plain, ""));
        let mut out = String::new();
        if value < 0.0 && plain.bytes().any(|b| b.is_ascii_digit() && b != b'0') {
            out.push('-');
        }
        out.push_str(&self.group_digits(int));
        if !frac.is_empty() {
            out.push_str(&self.decimal);
            out.push_str(frac);
        }
        out
    }

    /// A figure as the reports show it: integers whole, others with a precision that suits
    /// their size.
    pub fn figure(&self, value: f64) -> String {
        if value.is_finite() && value == value.trunc() && value.abs() < 1e15 {
            self.number(value, 0)
        } else if value.abs() >= 1000.0 {
            self.number(value, 1)
        } else {
            self.number(value, 4)
        }
    }

    pub fn integer(&self, value: u64) -> String {
        self.group_digits(&value.to_string())
    }

    /// A share (0.95) as a percentage per the locale (`95%`, `95 %`).
    pub fn percent(&self, share: f64) -> String {
        let pct = share * 100.0;
        let digits = if (pct - pct.round()).abs() < 1e-9 { 0 } else { 1 };
        self.format("percent", &[("value", &self.number(pct, digits))])
    }

    /// An interval `[low, high]`; an unbounded high end is `∞`.
    pub fn interval(&self, low: f64, high: Option<f64>) -> String {
        let high = high.map_or("∞".to_string(), |h| self.figure(h));
        self.format("interval", &[("low", &self.figure(low)), ("high", &high)])
    }

    /// The date of an RFC 3339 timestamp (`2026-11-25T09:58:30Z`) per the locale, with its UTC
    /// time; anything else is shown as written.
    pub fn datetime(&self, rfc3339: &str) -> String {
        match split_rfc3339(rfc3339) {
            Some((year, month, day, time)) => {
                let date = self.date(year, month, day);
                self.format("datetime-format", &[("date", &date), ("time", time)])
            }
            None => rfc3339.to_string(),
        }
    }

    /// The date alone of an RFC 3339 timestamp per the locale.
    pub fn date_of(&self, rfc3339: &str) -> String {
        split_rfc3339(rfc3339)
            .map_or(rfc3339.to_string(), |(year, month, day, _)| self.date(year, month, day))
    }

    fn date(&self, year: &str, month: u32, day: u32) -> String {
        let month_name = self.text(&format!("month-{month}"));
        // Every name in DATE_VARIABLES.
        self.format(
            "date-format",
            &[
                ("day", &day.to_string()),
                ("month", &month.to_string()),
                ("month-name", &month_name),
                ("year", year),
            ],
        )
    }

    pub fn outcome(&self, outcome: Outcome) -> String {
        self.text(match outcome {
            Outcome::Pass => "verdict-pass",
            Outcome::Fail => "verdict-fail",
            Outcome::Inconclusive => "verdict-inconclusive",
        })
    }

    /// A certificate's unit in this language when the catalog names it (`unit-bytes`, `unit-ratio-to-fp32`),
    /// else as written (`ms`, `W`, `°C` need no translation).
    pub fn unit(&self, unit: &str) -> String {
        let slug: String = unit
            .to_ascii_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let id = format!("unit-{}", slug.trim_matches('-'));
        if slug.chars().any(|c| c.is_ascii_alphabetic()) && self.has(&id) {
            self.text(&id)
        } else {
            unit.to_string()
        }
    }

    fn group_digits(&self, int: &str) -> String {
        if int.len() < self.group_min_digits.max(1) {
            return int.to_string();
        }
        let mut out = String::new();
        for (i, c) in int.chars().enumerate() {
            if i > 0 && (int.len() - i).is_multiple_of(3) {
                out.push_str(&self.group);
            }
            out.push(c);
        }
        out
    }
}

fn split_rfc3339(s: &str) -> Option<(&str, u32, u32, &str)> {
    let (date, rest) = s.split_once('T')?;
    let mut parts = date.split('-');
    let year = parts.next().filter(|y| y.len() == 4 && y.bytes().all(|b| b.is_ascii_digit()))?;
    let month: u32 = parts.next()?.parse().ok().filter(|m| (1..=12).contains(m))?;
    let day: u32 = parts.next()?.parse().ok().filter(|d| (1..=31).contains(d))?;
    let time = rest.trim_end_matches('Z');
    let time = time.get(..8).unwrap_or(time);
    Some((year, month, day, time))
}

/// The variables `date-format` is given (English uses only some).
const DATE_VARIABLES: [&str; 4] = ["day", "month", "month-name", "year"];

/// What is wrong with one catalog measured against English: message ids it lacks or adds,
/// placeholders it uses that English does not pass, and messages that fail to format.
/// Empty when the catalog is complete. Used by the tests and by translators.
pub fn catalog_problems(tag: &str) -> Vec<String> {
    let Some((_, source)) = CATALOGS.iter().find(|(t, _)| *t == tag) else {
        return vec![format!("no catalog {tag}")];
    };
    let english = CATALOGS.iter().find(|(t, _)| *t == DEFAULT_LANGUAGE).expect("English is embedded").1;
    let mut problems = Vec::new();
    let parse = |source: &str, problems: &mut Vec<String>| match FluentResource::try_new(source.to_string()) {
        Ok(r) => Some(r),
        Err((_, errors)) => {
            problems.push(format!("syntax errors: {errors:?}"));
            None
        }
    };
    let (Some(en), Some(this)) = (parse(english, &mut Vec::new()), parse(source, &mut problems)) else {
        return problems;
    };
    let en_messages = messages(&en);
    let these = messages(&this);
    let en_ids: BTreeSet<_> = en_messages.iter().map(|(id, _)| id.clone()).collect();
    let ids: BTreeSet<_> = these.iter().map(|(id, _)| id.clone()).collect();
    for id in en_ids.difference(&ids) {
        problems.push(format!("missing message `{id}` (English has it)"));
    }
    for id in ids.difference(&en_ids) {
        problems.push(format!("message `{id}` is not in English"));
    }
    for (id, vars) in &these {
        if let Some((_, en_vars)) = en_messages.iter().find(|(en_id, _)| en_id == id) {
            // `date-format` is passed every part of the date; a language picks the ones it needs.
            let passed: BTreeSet<String> = if id == "date-format" {
                DATE_VARIABLES.iter().map(|v| v.to_string()).collect()
            } else {
                en_vars.clone()
            };
            for var in vars.difference(&passed) {
                problems.push(format!("`{id}` uses ${var}, which English does not pass"));
            }
        }
    }
    match Catalog::load(tag) {
        Err(e) => problems.push(e.to_string()),
        Ok(catalog) => {
            let mut all_vars: BTreeSet<String> =
                en_messages.iter().flat_map(|(_, v)| v.iter().cloned()).collect();
            all_vars.extend(DATE_VARIABLES.iter().map(|v| v.to_string()));
            let mut args = FluentArgs::new();
            for var in &all_vars {
                args.set(var.clone(), FluentValue::from("x"));
            }
            for id in &ids {
                let Some(pattern) = catalog.bundle.get_message(id).and_then(|m| m.value()) else {
                    problems.push(format!("`{id}` has no value"));
                    continue;
                };
                let mut errors = Vec::new();
                let text = catalog.bundle.format_pattern(pattern, Some(&args), &mut errors);
                // A separator may be a lone (narrow no-break) space, so only empty is wrong.
                if !errors.is_empty() || text.is_empty() {
                    problems.push(format!("`{id}` does not format: {errors:?}"));
                }
            }
        }
    }
    problems
}

/// Every message of a resource with the variables its value refers to.
fn messages(resource: &FluentResource) -> Vec<(String, BTreeSet<String>)> {
    resource
        .entries()
        .filter_map(|entry| match entry {
            ast::Entry::Message(m) => {
                let mut vars = BTreeSet::new();
                if let Some(p) = &m.value {
                    pattern_variables(p, &mut vars);
                }
                Some((m.id.name.to_string(), vars))
            }
            _ => None,
        })
        .collect()
}

fn pattern_variables(pattern: &ast::Pattern<&str>, vars: &mut BTreeSet<String>) {
    for element in &pattern.elements {
        if let ast::PatternElement::Placeable { expression } = element {
            expression_variables(expression, vars);
        }
    }
}

fn expression_variables(expression: &ast::Expression<&str>, vars: &mut BTreeSet<String>) {
    match expression {
        ast::Expression::Inline(inline) => inline_variables(inline, vars),
        ast::Expression::Select { selector, variants } => {
            inline_variables(selector, vars);
            for v in variants {
                pattern_variables(&v.value, vars);
            }
        }
    }
}

fn inline_variables(inline: &ast::InlineExpression<&str>, vars: &mut BTreeSet<String>) {
    match inline {
        ast::InlineExpression::VariableReference { id } => {
            vars.insert(id.name.to_string());
        }
        ast::InlineExpression::Placeable { expression } => expression_variables(expression, vars),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_follow_the_locale_separators_and_grouping() {
        let en = Catalog::load("en").unwrap();
        assert_eq!(en.number(0.97412, 3), "0.974");
        assert_eq!(en.number(2312993.0, 0), "2,312,993");
        assert_eq!(en.number(-1234.5, 1), "-1,234.5");
        assert_eq!(en.datetime("2026-11-25T09:58:30Z"), "November 25, 2026, 09:58:30 UTC");
    }

    #[test]
    fn every_language_writes_dates_and_numbers_its_own_way() {
        let expected = [
            ("en", "November 25, 2026", "0.974", "2,312,993", "95%"),
            ("zh-CN", "2026年11月25日", "0.974", "2,312,993", "95%"),
            ("es", "25 de noviembre de 2026", "0,974", "2.312.993", "95\u{a0}%"),
            ("pt-BR", "25 de novembro de 2026", "0,974", "2.312.993", "95%"),
            ("fr", "25 novembre 2026", "0,974", "2\u{202f}312\u{202f}993", "95\u{202f}%"),
            ("vi", "ngày 25 tháng 11 năm 2026", "0,974", "2.312.993", "95%"),
            ("id", "25 November 2026", "0,974", "2.312.993", "95%"),
            ("th", "25 พฤศจิกายน ค.ศ. 2026", "0.974", "2,312,993", "95%"),
        ];
        for (tag, date, decimal, grouped, percent) in expected {
            let t = Catalog::load(tag).unwrap();
            assert_eq!(t.date_of("2026-11-25T09:58:30Z"), date, "{tag}");
            assert_eq!(t.number(0.97412, 3), decimal, "{tag}");
            assert_eq!(t.integer(2312993), grouped, "{tag}");
            assert_eq!(t.percent(0.95), percent, "{tag}");
        }
        // Spanish leaves four-digit numbers ungrouped.
        assert_eq!(Catalog::load("es").unwrap().integer(9261), "9261");
    }

    /// English words a reviewer found left in translated catalogs (a terminologist's pass): none
    /// may appear in a non-English message, placeables (`{ $engine }`) aside.
    const UNTRANSLATED: [&str; 5] = ["fallback", "digest", "engine", "toolchain", "backend"];

    /// The deny-listed words in `message`'s text, placeables removed.
    fn english_left_in(message: &str) -> Vec<&'static str> {
        let mut text = String::new();
        let mut depth = 0;
        for c in message.chars() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                c if depth == 0 => text.push(c.to_ascii_lowercase()),
                _ => {}
            }
        }
        let words: Vec<&str> = text.split(|c: char| !c.is_alphanumeric()).collect();
        UNTRANSLATED.into_iter().filter(|w| words.contains(w)).collect()
    }

    #[test]
    fn no_translated_catalog_leaves_a_deny_listed_english_word_in() {
        assert_eq!(english_left_in("kebijakan fallback { $policy }"), ["fallback"], "the check finds one");
        assert!(english_left_in("motor { $engine }").is_empty(), "a placeable is not text");
        let mut found = Vec::new();
        for (tag, source) in CATALOGS.iter().filter(|(tag, _)| *tag != DEFAULT_LANGUAGE) {
            for line in source.lines().filter(|l| !l.starts_with('#')) {
                let Some((id, message)) = line.split_once(" = ") else { continue };
                for word in english_left_in(message) {
                    found.push(format!("{tag} {id}: `{word}`"));
                }
            }
        }
        assert!(found.is_empty(), "English left in translated catalogs:\n{}", found.join("\n"));
    }

    /// `i18n/glossary.md`: each row names a message and its text per language; the catalogs
    /// must say exactly that.
    #[test]
    fn every_catalog_follows_the_glossary() {
        let glossary = include_str!("../i18n/glossary.md");
        let rows: Vec<Vec<&str>> = glossary
            .lines()
            .filter(|l| l.starts_with("| ") && l.contains("| `"))
            .map(|l| l.trim_matches('|').split(" | ").map(str::trim).collect())
            .collect();
        let header: Vec<&str> = glossary
            .lines()
            .find(|l| l.starts_with("| notion"))
            .unwrap()
            .trim_matches('|')
            .split(" | ")
            .map(str::trim)
            .collect();
        assert!(rows.len() >= 15, "{} rows", rows.len());
        let mut differ = Vec::new();
        for row in &rows {
            let id = row[1].trim_matches('`');
            for (tag, term) in header[2..].iter().zip(&row[2..]) {
                let catalog = Catalog::load(tag).unwrap();
                let said = catalog.text(id);
                if said != term.replace("\\|", "|") {
                    differ.push(format!("{tag} {id}: catalog `{said}`, glossary `{term}`"));
                }
            }
        }
        assert!(differ.is_empty(), "catalogs and i18n/glossary.md differ:\n{}", differ.join("\n"));
    }

    #[test]
    fn an_unknown_language_lists_the_available_ones() {
        let e = Catalog::load("xx").err().unwrap().to_string();
        assert!(e.contains("unknown language `xx`") && e.contains("zh-CN"), "{e}");
    }
}
