//! Loading TOML input files (chip profiles, golden-set manifests) with errors that point at the
//! text: file, line, column, the key path and the offending line.
//!
//! Parsing has two stages, as in nextest: serde reads a raw struct (type errors, missing keys),
//! collecting *every* unknown key on the way (a typo must not silently drop a limit); then the
//! caller validates the values and reports all problems at once through [`Document::error`].

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use toml::de::{DeTable, DeValue};

pub use crate::vocab::Diagnostic;
use crate::vocab::{read_to_string, Error, Result};

/// A parsed TOML document that remembers where each key path sits in the text.
#[derive(Debug)]
pub struct Document {
    pub path: PathBuf,
    pub text: String,
    spans: HashMap<String, Range<usize>>,
}

impl Document {
    /// Builds a diagnostic for `field`, located at that key's value (or at the nearest enclosing
    /// table that exists, or the file start).
    pub fn error(&self, field: &str, message: impl Into<String>) -> Diagnostic {
        let span = self.span_of(field).unwrap_or(0..0);
        self.diagnostic_at(span.start, field, message.into())
    }

    /// This document with the value of `field` (which must exist) replaced by `literal`, as a
    /// TOML-literal string; the rest of the text, comments included, is kept.
    pub fn with_value(&self, field: &str, literal: &str) -> Option<Document> {
        let span = self.spans.get(field)?.clone();
        let text = format!("{}{literal}{}", &self.text[..span.start], &self.text[span.end..]);
        parse_toml::<toml::Table>(&self.path, text).ok().map(|(_, doc)| doc)
    }

    /// Whether this document writes `field` itself (not just an enclosing table).
    pub fn has(&self, field: &str) -> bool {
        self.spans.contains_key(field)
    }

    fn span_of(&self, field: &str) -> Option<Range<usize>> {
        let mut key = field;
        loop {
            if let Some(s) = self.spans.get(key) {
                return Some(s.clone());
            }
            key = &key[..key.rfind('.')?];
        }
    }

    fn diagnostic_at(&self, offset: usize, field: &str, message: String) -> Diagnostic {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        let source_line = self.text[line_start..].lines().next().unwrap_or("").to_string();
        Diagnostic { file: self.path.clone(), line, column, field: field.to_string(), message, source_line }
    }
}

/// A name that becomes part of check ids and report paths (`chip.name`, `family.name`): short,
/// lowercase, no separators or dots that could climb out of a folder.
pub fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && !s.starts_with('-')
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// Reads and deserializes a TOML file; unknown keys are errors, all reported at once.
pub fn load_toml<T: DeserializeOwned>(path: &Path) -> Result<(T, Document)> {
    let text = read_to_string(path)?;
    parse_toml(path, text)
}

pub fn parse_toml<T: DeserializeOwned>(path: &Path, text: String) -> Result<(T, Document)> {
    let mut doc = Document { path: path.to_path_buf(), text, spans: HashMap::new() };
    let table = match DeTable::parse(&doc.text) {
        Ok(t) => t,
        Err(e) => return Err(Error::Config(vec![toml_error(&doc, &e)])),
    };
    let mut spans = HashMap::new();
    index_table(table.get_ref(), "", &mut spans);
    doc.spans = spans;

    let deserializer = match toml::de::Deserializer::parse(&doc.text) {
        Ok(d) => d,
        Err(e) => return Err(Error::Config(vec![toml_error(&doc, &e)])),
    };
    let mut unknown = Vec::new();
    let parsed: std::result::Result<T, _> = serde_ignored::deserialize(deserializer, |p| {
        unknown.push(p.to_string().replace(".?", "").replace("?.", ""))
    });
    let mut diags: Vec<Diagnostic> = unknown
        .iter()
        .map(|field| doc.error(field, "unknown key (check the spelling: docs/profiles.md, docs/golden-sets.md and docs/devices.md give every key)"))
        .collect();
    match parsed {
        Ok(value) if diags.is_empty() => Ok((value, doc)),
        Ok(_) => Err(Error::Config(diags)),
        Err(e) => {
            diags.push(toml_error(&doc, &e));
            Err(Error::Config(diags))
        }
    }
}

fn toml_error(doc: &Document, e: &toml::de::Error) -> Diagnostic {
    let span = e.span().unwrap_or(0..0);
    let field = doc
        .spans
        .iter()
        .filter(|(_, s)| s.start <= span.start && span.start < s.end.max(s.start + 1))
        .min_by_key(|(_, s)| s.end - s.start)
        .map(|(k, _)| k.clone())
        .unwrap_or_default();
    doc.diagnostic_at(span.start, &field, e.message().trim().to_string())
}

fn index_table(table: &DeTable<'_>, prefix: &str, out: &mut HashMap<String, Range<usize>>) {
    for (key, value) in table.iter() {
        let path = join(prefix, key.get_ref());
        out.insert(path.clone(), value.span());
        index_value(value.get_ref(), &path, out);
    }
}

fn index_value(value: &DeValue<'_>, path: &str, out: &mut HashMap<String, Range<usize>>) {
    match value {
        DeValue::Table(t) => index_table(t, path, out),
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let p = join(path, &i.to_string());
                out.insert(p.clone(), item.span());
                index_value(item.get_ref(), &p, out);
            }
        }
        _ => {}
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)] // read only through Debug and the parser
    struct Sample {
        #[allow(dead_code)]
        name: String,
        inner: Inner,
    }
    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Inner {
        value: f64,
    }

    fn parse(text: &str) -> Result<(Sample, Document)> {
        parse_toml(Path::new("t.toml"), text.to_string())
    }

    #[test]
    fn every_unknown_key_is_reported_with_its_line() {
        let err = parse("name = 'a'\ntypo = 1\n[inner]\nvalue = 1.0\nvalu = 2\n").unwrap_err();
        let Error::Config(d) = err else { panic!("{err}") };
        let mut lines: Vec<_> = d.iter().map(|d| (d.line, d.field.clone())).collect();
        lines.sort();
        assert_eq!(lines, vec![(2, "typo".to_string()), (5, "inner.valu".to_string())]);
    }

    #[test]
    fn type_errors_name_the_line_and_field() {
        let err = parse("name = 'a'\n[inner]\nvalue = 'fast'\n").unwrap_err();
        let Error::Config(d) = err else { panic!("{err}") };
        assert_eq!(d[0].line, 3);
        assert_eq!(d[0].field, "inner.value");
    }

    #[test]
    fn syntax_errors_point_at_the_line() {
        let err = parse("name = 'a'\n[inner\nvalue = 1\n").unwrap_err();
        let Error::Config(d) = err else { panic!("{err}") };
        assert_eq!(d[0].line, 2);
    }

    #[test]
    fn validation_errors_locate_nested_fields() {
        let (_, doc) = parse("name = 'a'\n\n[inner]\nvalue = -1.0\n").unwrap();
        let d = doc.error("inner.value", "must be positive");
        assert_eq!((d.line, d.column), (4, 9));
        assert!(d.to_string().starts_with("t.toml:4:9: field `inner.value`: must be positive"));
    }
}
