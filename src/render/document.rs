//! The test report as a format-neutral document: sections of fields, tables, figures and notes,
//! built once from a certificate in one language (ISO/IEC 17025 §7.8.2.1 decides what is in it),
//! then laid out by the HTML and Markdown renderers. Renderers add no content of their own, so
//! the two formats always say the same thing.

use std::collections::BTreeSet;

use super::issuer::Issuer;
use crate::certificate::observations::LatencyObservations;
use crate::certificate::schema::{Basis, Certificate, CheckStatus, Outcome};
use crate::i18n::Catalog;
use crate::vocab::Timing;

/// A whole report.
pub struct Document {
    /// BCP 47 tag of the language it is written in.
    pub lang: String,
    /// The unique report number (the certificate id), shown on every page.
    pub report_id: String,
    pub title: String,
    pub running_header: String,
    /// "Page n of N" in the report's language, its numbers left to the printer (which alone
    /// knows them): the words, and where the page number and the page count go.
    pub page_of: Vec<PagePart>,
    pub end_marker: String,
    pub verdict: Outcome,
    pub verdict_label: String,
    pub verdict_reason: String,
    pub sections: Vec<Section>,
}

/// A piece of the "page n of N" line.
#[derive(Debug, Clone, PartialEq)]
pub enum PagePart {
    Text(String),
    Page,
    Pages,
}

/// The catalog's `report-page` split around its two numbers.
fn page_of(t: &Catalog) -> Vec<PagePart> {
    const PAGE: &str = "\u{E000}";
    const PAGES: &str = "\u{E001}";
    let line = t.format("report-page", &[("page", PAGE), ("pages", PAGES)]);
    let line: String = line.chars().filter(|c| !matches!(c, '\u{2068}' | '\u{2069}')).collect();
    let mut parts = Vec::new();
    for (i, piece) in line.split(PAGES).enumerate() {
        if i > 0 {
            parts.push(PagePart::Pages);
        }
        for (j, text) in piece.split(PAGE).enumerate() {
            if j > 0 {
                parts.push(PagePart::Page);
            }
            if !text.is_empty() {
                parts.push(PagePart::Text(text.to_string()));
            }
        }
    }
    parts
}

pub struct Section {
    /// A stable anchor (`results`, `latency`, ...): the same in every language.
    pub anchor: &'static str,
    pub heading: String,
    pub blocks: Vec<Block>,
}

pub enum Block {
    /// Label → value rows.
    Fields(Vec<(String, Cell)>),
    Table(Table),
    Figure(Figure),
    Paragraph(String),
    /// A heading within a section.
    Subheading(String),
    /// A list of items, each one sentence.
    List(Vec<String>),
}

pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
    /// Relative column widths (the HTML sets them; a digest column needs room).
    pub widths: Vec<u8>,
}

/// One value, with how to show it.
#[derive(Clone)]
pub struct Cell {
    pub text: String,
    pub kind: CellKind,
    /// Marks shown beside the text: verdicts, `emulated`.
    pub badges: Vec<Badge>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum CellKind {
    Text,
    /// A digest or path: monospace, breaks anywhere.
    Code,
    Number,
}

#[derive(Clone)]
pub struct Badge {
    pub kind: BadgeKind,
    pub label: String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum BadgeKind {
    Verdict(Outcome),
    Emulated,
    Deviation,
}

impl Cell {
    pub fn text(text: impl Into<String>) -> Cell {
        Cell { text: text.into(), kind: CellKind::Text, badges: Vec::new() }
    }
    pub fn code(text: impl Into<String>) -> Cell {
        Cell { text: text.into(), kind: CellKind::Code, badges: Vec::new() }
    }
    pub fn number(text: impl Into<String>) -> Cell {
        Cell { text: text.into(), kind: CellKind::Number, badges: Vec::new() }
    }
    fn badge(mut self, kind: BadgeKind, label: String) -> Cell {
        self.badges.push(Badge { kind, label });
        self
    }
}

/// A plot, with a caption and a text summary that stands in for it where plots are not drawn.
pub struct Figure {
    pub caption: String,
    pub summary: String,
    /// Shown beside the caption: `emulated` when the plotted figures are predictions.
    pub badges: Vec<Badge>,
    pub plot: Plot,
}

pub enum Plot {
    /// Bars of counts over value bins, with labelled vertical markers (p50, p90, p99).
    Histogram {
        bins: Vec<Bin>,
        markers: Vec<(String, f64)>,
        x_label: String,
        y_label: String,
        x_ticks: Vec<(f64, String)>,
    },
    /// A curve of (x, y) points with axis labels.
    Curve {
        points: Vec<(f64, f64)>,
        x_label: String,
        y_label: String,
        x_ticks: Vec<(f64, String)>,
        y_ticks: Vec<(f64, String)>,
    },
    /// Two bars per row (FP32, compressed), each with its interval.
    PairedBars { rows: Vec<PairedRow>, legend: (String, String), ticks: Vec<(f64, String)> },
}

pub struct Bin {
    pub low: f64,
    pub high: f64,
    pub count: usize,
}

pub struct PairedRow {
    pub label: String,
    pub fp32: (f64, f64, f64),
    pub compressed: (f64, f64, f64),
}

/// Everything the report is built from besides the certificate.
pub struct ReportInputs<'a> {
    pub certificate: &'a Certificate,
    pub issuer: Option<&'a Issuer>,
    /// The issuer came from `report --issuer`, not from the certificate: nothing binds it.
    pub issuer_unsealed: bool,
    pub latencies: &'a LatencyObservations,
    /// The report's revision, 1 for the first issue.
    pub revision: u32,
}

/// The report's number: the certificate it renders (its id's first 16 hex digits), the
/// revision and the language. A report re-rendered in another language, or revised, is another
/// report (ISO/IEC 17025 §7.8.8) and must not carry the same number.
pub fn report_number(certificate_id: &str, revision: u32, lang: &str) -> String {
    let head: String = certificate_id.chars().take(16).collect();
    format!("{head}-r{revision}-{lang}")
}

/// Builds the report of one certificate in the catalog's language.
pub fn build(inputs: &ReportInputs, t: &Catalog) -> Document {
    let c = inputs.certificate;
    let id = report_number(&c.certificate_id, inputs.revision, t.tag());
    let emulated_badge = || Badge { kind: BadgeKind::Emulated, label: t.text("basis-emulated") };
    let latency = latency_section(inputs.latencies, t, &emulated_badge);
    let mut sections = vec![
        summary_section(c, &id, inputs.revision, t),
        issuer_section(inputs.issuer, t),
        item_section(c, t),
        method_section(c, t),
        dates_section(c, t),
        sampling_section(c, t),
        Section {
            anchor: "scope",
            heading: t.text("section-scope"),
            blocks: vec![Block::Paragraph(t.text("scope-lead")), Block::Paragraph(c.statement.clone())],
        },
        results_section(c, t),
        decision_section(c, t),
    ];
    sections.push(latency.0);
    sections.push(thermal_section(c, t, &emulated_badge));
    sections.push(accuracy_section(c, t));
    sections.push(placement_section(c, t, &emulated_badge));
    sections.push(deviations_section(c, inputs, latency.1, t));
    sections.push(authorization_section(c, inputs.issuer, t));
    Document {
        lang: t.tag().to_string(),
        title: t.text("report-title"),
        running_header: t.format("report-running", &[("id", &id)]),
        page_of: page_of(t),
        end_marker: t.format("report-end", &[("id", &id)]),
        verdict: c.verdict,
        verdict_label: t.outcome(c.verdict),
        verdict_reason: c.verdict_reason.clone(),
        report_id: id,
        sections,
    }
}

fn summary_section(c: &Certificate, number: &str, revision: u32, t: &Catalog) -> Section {
    let verdict = Cell::text(t.outcome(c.verdict)).badge(BadgeKind::Verdict(c.verdict), t.outcome(c.verdict));
    let replaces = (revision > 1).then(|| {
        Block::Paragraph(t.format("report-revision-replaces", &[("previous", &(revision - 1).to_string())]))
    });
    Section {
        anchor: "summary",
        heading: t.text("section-summary"),
        blocks: std::iter::once(Block::Fields(vec![
            (t.text("report-id"), Cell::code(number)),
            (t.text("report-revision"), Cell::text(revision.to_string())),
            (t.text("report-certificate-id"), Cell::code(&c.certificate_id)),
            (t.text("summary-verdict"), Cell { text: String::new(), ..verdict }),
            (t.text("summary-reason"), Cell::text(&c.verdict_reason)),
            (t.text("summary-subject"), Cell::code(&c.subject.model)),
            (t.text("summary-chip"), Cell::text(format!("{} ({})", c.profile.display_name, c.profile.name))),
            (t.text("date-issue"), Cell::text(t.datetime(&c.issued_at))),
        ]))
        .chain(replaces)
        .collect(),
    }
}

fn issuer_section(issuer: Option<&Issuer>, t: &Catalog) -> Section {
    let not_stated = || Cell::text(t.text("issuer-not-stated"));
    let opt = |v: &Option<String>| v.as_ref().map_or_else(not_stated, Cell::text);
    let mut blocks = Vec::new();
    match issuer {
        None => {
            blocks.push(Block::Fields(vec![(
                t.text("issuer-name"),
                Cell::text(t.text("issuer-not-configured"))
                    .badge(BadgeKind::Deviation, t.text("deviation-issuer")),
            )]));
        }
        Some(i) => {
            blocks.push(Block::Fields(vec![
                (t.text("issuer-name"), Cell::text(&i.lab.name)),
                (t.text("issuer-address"), Cell::text(&i.lab.address)),
                (t.text("issuer-contact"), opt(&i.lab.contact)),
                (t.text("issuer-location"), opt(&i.lab.test_location)),
                (t.text("issuer-accreditation"), opt(&i.lab.accreditation)),
                (t.text("issuer-accreditation-scope"), opt(&i.lab.accreditation_scope)),
                (t.text("issuer-specification"), opt(&i.specification)),
            ]));
        }
    }
    let customer = match issuer.and_then(|i| i.customer.as_ref()) {
        None => Block::Paragraph(t.text("customer-not-stated")),
        Some(cu) => Block::Fields(vec![
            (t.text("customer-name"), Cell::text(&cu.name)),
            (t.text("customer-address"), opt(&cu.address)),
            (t.text("customer-contact"), opt(&cu.contact)),
        ]),
    };
    blocks.push(Block::Subheading(t.text("section-customer")));
    blocks.push(customer);
    Section { anchor: "issuer", heading: t.text("section-issuer"), blocks }
}

fn item_section(c: &Certificate, t: &Catalog) -> Section {
    let size = |bytes: u64| Cell::number(t.format("item-size-value", &[("value", &t.integer(bytes))]));
    let subject = vec![
        (t.text("item-path"), Cell::code(&c.subject.model)),
        (t.text("item-sha256"), Cell::code(&c.subject.sha256)),
        (t.text("item-size"), size(c.subject.size_bytes)),
        (t.text("item-quantization"), Cell::text(&c.subject.quantization)),
    ];
    let files = Table {
        columns: vec![t.text("item-file"), t.text("item-sha256"), t.text("item-size")],
        rows: c
            .subject
            .files
            .iter()
            .map(|f| vec![Cell::code(&f.path), Cell::code(&f.sha256), size(f.size_bytes)])
            .collect(),
        widths: vec![3, 5, 2],
    };
    let reference = vec![
        (t.text("item-path"), Cell::code(&c.reference.model)),
        (t.text("item-sha256"), Cell::code(&c.reference.sha256)),
        (t.text("item-size"), size(c.reference.size_bytes)),
        (t.text("item-quantization"), Cell::text(&c.reference.quantization)),
    ];
    let golden = vec![
        (t.text("item-path"), Cell::code(&c.golden.path)),
        (t.text("item-sha256"), Cell::code(&c.golden.sha256)),
        (t.text("item-samples"), Cell::number(t.integer(c.golden.samples as u64))),
        (t.text("item-metric"), Cell::text(&c.golden.metric)),
    ];
    let mut profile = vec![
        (t.text("item-display-name"), Cell::text(format!("{} ({})", c.profile.display_name, c.profile.name))),
        (t.text("item-path"), Cell::code(&c.profile.path)),
        (t.text("item-sha256"), Cell::code(&c.profile.sha256)),
    ];
    if let Some(mode) = &c.profile.npu_mode {
        profile.push((t.text("item-npu-mode"), Cell::text(mode)));
    }
    Section {
        anchor: "item",
        heading: t.text("section-item"),
        blocks: vec![
            Block::Subheading(t.text("item-subject")),
            Block::Fields(subject),
            Block::Subheading(t.text("item-files")),
            Block::Table(files),
            Block::Subheading(t.text("item-reference")),
            Block::Fields(reference),
            Block::Subheading(t.text("item-golden")),
            Block::Fields(golden),
            Block::Subheading(t.text("item-profile")),
            Block::Fields(profile),
            Block::Paragraph(t.text("item-condition")),
        ],
    }
}

fn method_section(c: &Certificate, t: &Catalog) -> Section {
    let backend = match c.backend.kind.as_str() {
        _ if c.backend.emulated => Cell::text(format!("{}: {}", c.backend.kind, t.text("method-emulated")))
            .badge(BadgeKind::Emulated, t.text("basis-emulated")),
        "host" => Cell::text(format!("{}: {}", c.backend.kind, t.text("method-measured-host"))),
        _ => Cell::text(format!("{}: {}", c.backend.kind, t.text("method-measured"))),
    };
    // ISO/IEC 17025 §7.8.2.1 p: a device or a vendor runtime outside edgecert produced the
    // compressed model's outputs and times; an emulated or host run produced everything here.
    let external = match c.backend.kind.as_str() {
        "remote" => t.format("method-external-device", &[("engine", &c.tool.engine)]),
        "exec" => t.format("method-external-runtime", &[("engine", &c.tool.engine)]),
        _ => t.text("method-external-none"),
    };
    let mut fields = vec![
        (t.text("method-tool"), Cell::text(format!("{} {}", c.tool.name, c.tool.version))),
        (t.text("method-engine"), Cell::text(&c.tool.engine)),
        (t.text("method-backend"), backend),
        (t.text("method-note"), Cell::text(&c.backend.note)),
    ];
    if let Some(x) = &c.cross_check {
        fields.push((t.text("method-cross-check"), Cell::text(cross_check_text(x, t))));
    }
    fields.push((t.text("method-external"), Cell::text(external)));
    if let Some(e) = &c.environment {
        fields.push((t.text("method-host"), Cell::text(host_text(e, t))));
        if let Some(ambient) = e.ambient_c {
            fields.push((t.text("method-ambient"), Cell::text(format!("{} °C", t.figure(ambient)))));
        }
        if let Some(d) = &e.device {
            fields.push((t.text("method-device"), Cell::text(device_text(d, t))));
        }
    }
    Section { anchor: "method", heading: t.text("section-method"), blocks: vec![Block::Fields(fields)] }
}

/// The second engine, what the verdicts rest on, and the weakest top-1 agreement of any output.
fn cross_check_text(x: &crate::certificate::schema::CrossCheckReport, t: &Catalog) -> String {
    let lowest = x
        .agreement
        .iter()
        .flat_map(|o| &o.statistics)
        .filter(|s| s.statistic == "top1_agreement" && s.value.is_finite())
        .map(|s| s.value)
        .reduce(f64::min);
    let agreement = lowest.map_or_else(|| t.text("value-none"), |v| t.figure(v));
    t.format(
        "method-cross-check-value",
        &[("engine", &x.engine), ("verdict", &x.verdict_engine), ("agreement", &agreement)],
    )
}

/// When the test ran: from the run's start to this certificate's checks' end, where the
/// certificate records them; else the day it was issued.
fn test_period(c: &Certificate, t: &Catalog) -> String {
    match &c.environment {
        Some(e) => t.format(
            "date-test-period",
            &[("start", &t.datetime(&e.started_at)), ("end", &t.datetime(&e.finished_at))],
        ),
        None => t.date_of(&c.issued_at),
    }
}

/// The test host's line, each figure it could not read shown as not available.
fn host_text(e: &crate::certificate::schema::TestEnvironment, t: &Catalog) -> String {
    let none = t.text("value-none");
    let or_none = |v: &Option<String>| v.clone().unwrap_or_else(|| none.clone());
    t.format(
        "method-host-value",
        &[
            ("os", &e.os),
            ("kernel", &or_none(&e.kernel)),
            ("arch", &e.arch),
            ("cpu", &or_none(&e.cpu)),
            ("cores", &t.integer(e.cores as u64)),
            ("governor", &or_none(&e.governor)),
        ],
    )
}

/// The device's facts as reported, `name = value`, by whom (names are the certificate's keys).
fn device_text(d: &crate::certificate::schema::DeviceEnvironment, t: &Catalog) -> String {
    let facts = match d.facts.is_empty() {
        true => t.text("value-none"),
        false => d.facts.iter().map(|(k, v)| format!("{k} = {v}")).collect::<Vec<_>>().join("; "),
    };
    t.format("method-device-value", &[("facts", &facts), ("source", &d.reported_by)])
}

fn dates_section(c: &Certificate, t: &Catalog) -> Section {
    Section {
        anchor: "dates",
        heading: t.text("section-dates"),
        blocks: vec![Block::Fields(vec![
            (t.text("date-issue"), Cell::text(t.datetime(&c.issued_at))),
            (t.text("date-test"), Cell::text(test_period(c, t))),
            (t.text("date-receipt"), Cell::text(t.text("date-receipt-not-recorded"))),
        ])],
    }
}

/// The confidence levels of the certificate's intervals (0.95 when none has one).
fn confidences(c: &Certificate) -> Vec<f64> {
    let mut levels: Vec<f64> = Vec::new();
    for ci in c.checks.iter().filter_map(|k| k.ci.as_ref()) {
        if ci.confidence.is_finite() && !levels.iter().any(|l| (l - ci.confidence).abs() < 1e-9) {
            levels.push(ci.confidence);
        }
    }
    if levels.is_empty() {
        levels.push(0.95);
    }
    levels.sort_by(f64::total_cmp);
    levels
}

fn sampling_section(c: &Certificate, t: &Catalog) -> Section {
    let levels: Vec<String> = confidences(c).iter().map(|l| t.percent(*l)).collect();
    Section {
        anchor: "sampling",
        heading: t.text("section-sampling"),
        blocks: vec![
            Block::Fields(vec![
                (t.text("sampling-golden"), Cell::text(&c.golden.name)),
                (t.text("sampling-samples"), Cell::number(t.integer(c.golden.samples as u64))),
                (t.text("sampling-confidence"), Cell::text(levels.join(", "))),
            ]),
            Block::Paragraph(t.text("sampling-plan")),
        ],
    }
}

fn basis_label(basis: Basis, t: &Catalog) -> String {
    t.text(match basis {
        Basis::Measured => "basis-measured",
        Basis::Emulated => "basis-emulated",
        Basis::Static => "basis-static",
    })
}

fn results_section(c: &Certificate, t: &Catalog) -> Section {
    let dash = || Cell::number(t.text("value-none"));
    let mut rows = Vec::new();
    for k in &c.checks {
        let verdict_text = match k.status {
            CheckStatus::Ran => t.outcome(k.verdict),
            CheckStatus::Error => t.format("status-error", &[("verdict", &t.outcome(k.verdict))]),
        };
        // An emulated figure carries the badge itself, so it stands out in every row.
        let basis = if k.basis == Basis::Emulated {
            Cell::text("").badge(BadgeKind::Emulated, basis_label(k.basis, t))
        } else {
            Cell::text(basis_label(k.basis, t))
        };
        let interval = match &k.ci {
            Some(ci) => Cell::number(format!("{} {}", t.interval(ci.low, ci.high), t.percent(ci.confidence))),
            None => Cell::text(t.text("interval-none")),
        };
        rows.push(vec![
            Cell::code(k.name.name()),
            Cell::text("").badge(BadgeKind::Verdict(k.verdict), verdict_text),
            k.measured.map_or_else(dash, |v| Cell::number(t.figure(v))),
            k.limit.map_or_else(dash, |v| Cell::number(t.figure(v))),
            Cell::text(t.unit(&k.unit)),
            basis,
            interval,
        ]);
    }
    let results = Table {
        columns: [
            "col-check",
            "col-verdict",
            "col-measured",
            "col-limit",
            "col-unit",
            "col-basis",
            "col-interval",
        ]
        .iter()
        .map(|id| t.text(id))
        .collect(),
        rows,
        widths: vec![4, 4, 3, 3, 3, 3, 5],
    };
    // The interval method sits with the reasons: the results table must fit an A4 page.
    let reasons = Table {
        columns: vec![t.text("col-check"), t.text("col-method"), t.text("col-reason")],
        rows: c
            .checks
            .iter()
            .map(|k| {
                let method =
                    k.ci.as_ref()
                        .map_or_else(|| Cell::text(t.text("value-none")), |ci| Cell::text(&ci.method));
                vec![Cell::code(k.name.name()), method, Cell::text(&k.reason)]
            })
            .collect(),
        widths: vec![2, 2, 5],
    };
    Section {
        anchor: "results",
        heading: t.text("section-results"),
        blocks: vec![Block::Table(results), Block::Paragraph(t.text("reasons-note")), Block::Table(reasons)],
    }
}

fn decision_section(c: &Certificate, t: &Catalog) -> Section {
    let level = confidences(c).into_iter().next().unwrap_or(0.95);
    let risk = t.format(
        "decision-risk-text",
        &[("confidence", &t.percent(level)), ("risk", &t.percent((1.0 - level) / 2.0))],
    );
    let rows = c
        .checks
        .iter()
        .map(|k| {
            let rule = match (&k.ci, k.limit, k.measured) {
                (Some(ci), Some(_), _) => match k.systematic_error {
                    Some(e) => t.format(
                        "rule-interval-systematic",
                        &[("confidence", &t.percent(ci.confidence)), ("error", &t.percent(e))],
                    ),
                    None => t.format("rule-interval", &[("confidence", &t.percent(ci.confidence))]),
                },
                (None, _, Some(_)) if k.verdict != Outcome::Inconclusive => t.text("rule-exact"),
                _ => t.text("rule-undecided"),
            };
            vec![Cell::code(k.name.name()), Cell::text(rule)]
        })
        .collect();
    Section {
        anchor: "decision",
        heading: t.text("section-decision"),
        blocks: vec![
            Block::Fields(vec![
                (t.text("decision-rule"), Cell::text(&c.decision_rule)),
                (t.text("decision-risk"), Cell::text(risk)),
            ]),
            Block::Table(Table {
                columns: vec![t.text("col-check"), t.text("col-rule")],
                rows,
                widths: vec![1, 3],
            }),
        ],
    }
}

/// The latency section, and the deviation to list when latencies are missing.
fn latency_section(
    obs: &LatencyObservations,
    t: &Catalog,
    emulated: &dyn Fn() -> Badge,
) -> (Section, Option<String>) {
    let section = |blocks| Section { anchor: "latency", heading: t.text("section-latency"), blocks };
    let timing: &Timing = match obs {
        LatencyObservations::Present(timing) => timing,
        other => {
            let text = match other {
                LatencyObservations::Unreadable { path, error } => {
                    t.format("latency-unreadable", &[("path", &path.display().to_string()), ("error", error)])
                }
                LatencyObservations::NotRecorded => t.text("latency-not-recorded"),
                _ => t.text("latency-unavailable"),
            };
            return (section(vec![Block::Paragraph(text.clone())]), Some(text));
        }
    };
    // MLPerf's percentile at 0 and 1 is the least and the greatest figure.
    let [p50, p90, p99, min, max] =
        crate::vocab::percentiles(&timing.latencies_ms, [0.5, 0.9, 0.99, 0.0, 1.0]);
    let ms = |v: f64| t.number(v, 3);
    let count = t.integer(timing.latencies_ms.len() as u64);
    let summary = t.format(
        "latency-summary",
        &[
            ("p50", &ms(p50)),
            ("p90", &ms(p90)),
            ("p99", &ms(p99)),
            ("min", &ms(min)),
            ("max", &ms(max)),
            ("count", &count),
        ],
    );
    let badges = if timing.basis == Basis::Measured { vec![] } else { vec![emulated()] };
    let figure = Figure {
        caption: t.format("latency-caption", &[("count", &count), ("what", &timing.what)]),
        summary,
        badges,
        plot: Plot::Histogram {
            x_ticks: tick_labels(ticks(min, max), t),
            bins: histogram(&timing.latencies_ms, (min, max)),
            markers: vec![("p50".into(), p50), ("p90".into(), p90), ("p99".into(), p99)],
            x_label: t.text("axis-latency"),
            y_label: t.text("axis-count"),
        },
    };
    (section(vec![Block::Figure(figure)]), None)
}

/// Equal-width bins over the values between `low` and `high`: about √n of them, between 5 and 40.
fn histogram(values: &[f64], (low, high): (f64, f64)) -> Vec<Bin> {
    let n_bins = ((values.len() as f64).sqrt().round() as usize).clamp(5, 40);
    let width = if high > low { (high - low) / n_bins as f64 } else { 1.0 };
    let mut bins: Vec<Bin> = (0..n_bins)
        .map(|i| Bin { low: low + i as f64 * width, high: low + (i + 1) as f64 * width, count: 0 })
        .collect();
    for v in values {
        let i = (((v - low) / width) as usize).min(n_bins - 1);
        bins[i].count += 1;
    }
    bins
}

/// About five round tick values covering [low, high].
pub fn ticks(low: f64, high: f64) -> Vec<f64> {
    let span = (high - low).max(1e-9);
    let raw = span / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * magnitude).find(|s| span / s <= 6.0).unwrap_or(raw);
    let mut out = Vec::new();
    let mut v = (low / step).ceil() * step;
    while v <= high + step * 1e-6 && out.len() < 20 {
        out.push(v);
        v += step;
    }
    out
}

fn tick_labels(values: Vec<f64>, t: &Catalog) -> Vec<(f64, String)> {
    let step = if values.len() > 1 { values[1] - values[0] } else { 1.0 };
    let decimals = if step >= 1.0 { 0 } else { (-step.log10().floor()) as usize };
    values.into_iter().map(|v| (v, t.number(v, decimals))).collect()
}

fn thermal_section(c: &Certificate, t: &Catalog, emulated: &dyn Fn() -> Badge) -> Section {
    let section = |blocks| Section { anchor: "thermal", heading: t.text("section-thermal"), blocks };
    let Some(th) = c.thermal.as_ref().filter(|th| th.curve.len() >= 2) else {
        return section(vec![Block::Paragraph(t.text("thermal-absent"))]);
    };
    let points: Vec<(f64, f64)> =
        th.curve.iter().copied().filter(|(x, y)| x.is_finite() && y.is_finite()).collect();
    let (x_max, y_min, y_max) =
        points.iter().fold((0f64, f64::INFINITY, f64::NEG_INFINITY), |(xm, lo, hi), (x, y)| {
            (xm.max(*x), lo.min(*y), hi.max(*y))
        });
    let figure = Figure {
        caption: t.format(
            "thermal-caption",
            &[("power", &t.number(th.power_w, 2)), ("ambient", &t.number(th.ambient_c, 1))],
        ),
        summary: t.format(
            "thermal-summary",
            &[
                ("steady", &t.number(th.steady_state_c, 1)),
                ("peak", &t.number(th.peak_c, 1)),
                ("share", &t.percent(th.throttled_share)),
            ],
        ),
        badges: vec![emulated()],
        plot: Plot::Curve {
            x_ticks: tick_labels(ticks(0.0, x_max), t),
            y_ticks: tick_labels(ticks(y_min.min(th.ambient_c), y_max), t),
            points,
            x_label: t.text("axis-time"),
            y_label: t.text("axis-temperature"),
        },
    };
    section(vec![Block::Figure(figure)])
}

fn metric_label(key: &str, t: &Catalog) -> String {
    match key.split_once('.') {
        None if key == "primary" => t.text("metric-primary"),
        Some(("slice", name)) => t.format("metric-slice", &[("name", name)]),
        Some(("recall", name)) => t.format("metric-recall", &[("name", name)]),
        Some(("ap", name)) => t.format("metric-ap", &[("name", name)]),
        _ => key.to_string(),
    }
}

fn accuracy_section(c: &Certificate, t: &Catalog) -> Section {
    let section = |blocks| Section { anchor: "accuracy", heading: t.text("section-accuracy"), blocks };
    let Some(m) = c.metrics.as_ref().filter(|m| !m.values.is_empty()) else {
        return section(vec![Block::Paragraph(t.text("accuracy-absent"))]);
    };
    let mut blocks = vec![Block::Paragraph(t.format(
        "accuracy-metric",
        &[
            ("metric", &m.metric),
            ("unit", &t.unit(&m.unit)),
            ("direction", &t.text(if m.higher_is_better { "accuracy-higher" } else { "accuracy-lower" })),
        ],
    ))];
    if let Some(slice) = &m.hardest_slice {
        blocks.push(Block::Paragraph(t.format("accuracy-hardest", &[("slice", slice)])));
    }
    // The overall value first, then per class and per slice in key order.
    let mut keys: Vec<&String> = m.values.keys().collect();
    keys.sort_by_key(|k| (k.as_str() != "primary", k.starts_with("slice."), k.to_string()));
    let with_ci = |v: f64, ci: &crate::certificate::schema::Interval| {
        if v.is_finite() {
            format!("{} {}", t.figure(v), t.interval(ci.low, ci.high))
        } else {
            t.text("value-none")
        }
    };
    let rows = keys
        .iter()
        .map(|k| {
            let v = &m.values[*k];
            vec![
                Cell::text(metric_label(k, t)),
                Cell::number(with_ci(v.fp32, &v.fp32_ci)),
                Cell::number(with_ci(v.compressed, &v.compressed_ci)),
            ]
        })
        .collect();
    blocks.push(Block::Table(Table {
        columns: vec![t.text("col-value"), t.text("col-fp32"), t.text("col-compressed")],
        rows,
        widths: vec![2, 3, 3],
    }));
    let finite = |x: f64| if x.is_finite() { x } else { 0.0 };
    let triple = |v: f64, ci: &crate::certificate::schema::Interval| {
        (finite(v), finite(ci.low), finite(ci.high.unwrap_or(v)))
    };
    let rows: Vec<PairedRow> = keys
        .iter()
        .map(|k| {
            let v = &m.values[*k];
            PairedRow {
                label: metric_label(k, t),
                fp32: triple(v.fp32, &v.fp32_ci),
                compressed: triple(v.compressed, &v.compressed_ci),
            }
        })
        .collect();
    let top =
        rows.iter().flat_map(|r| [r.fp32.0, r.fp32.2, r.compressed.0, r.compressed.2]).fold(0f64, f64::max);
    let level = m.values.values().next().map_or(0.95, |v| v.fp32_ci.confidence);
    blocks.push(Block::Figure(Figure {
        caption: t.format("accuracy-caption", &[("confidence", &t.percent(level))]),
        summary: String::new(),
        badges: vec![],
        plot: Plot::PairedBars {
            rows,
            legend: (t.text("col-fp32"), t.text("col-compressed")),
            ticks: tick_labels(ticks(0.0, if top > 0.0 { top } else { 1.0 }), t),
        },
    }));
    section(blocks)
}

fn placement_section(c: &Certificate, t: &Catalog, emulated: &dyn Fn() -> Badge) -> Section {
    let section = |blocks| Section { anchor: "placement", heading: t.text("section-placement"), blocks };
    let Some(e) = &c.estimate else {
        return section(vec![Block::Paragraph(t.text("placement-absent"))]);
    };
    let share = e.npu_time_share.map_or(t.text("value-none"), |s| t.percent(s));
    let summary = t.format(
        "placement-summary",
        &[
            ("nodes", &t.integer(e.nodes.len() as u64)),
            ("share", &share),
            ("boundaries", &t.integer(e.boundaries as u64)),
            ("policy", &e.fallback_policy),
        ],
    );
    let emulated = emulated();
    let rows = e
        .nodes
        .iter()
        .map(|n| {
            let time = n.time_ms.map_or(Cell::number(t.text("value-none")), |v| Cell::number(t.number(v, 4)));
            let mut time = time;
            time.badges.push(emulated.clone());
            vec![
                Cell::code(&n.node),
                Cell::code(&n.op_type),
                Cell::text(&n.unit),
                time,
                Cell::text(&n.reason),
            ]
        })
        .collect();
    let mut fields =
        vec![(t.text("placement-label"), Cell::text(summary).badge(emulated.kind, emulated.label.clone()))];
    if let Some(conversion) = &e.conversion {
        fields.push((t.text("conversion-label"), Cell::text(conversion)));
    }
    if !e.calibration.is_empty() {
        fields.push((t.text("calibration-label"), Cell::text(e.calibration.join("; "))));
    }
    section(vec![
        Block::Fields(fields),
        Block::Table(Table {
            columns: ["col-node", "col-op", "col-unit-placed", "col-time", "col-reason"]
                .iter()
                .map(|id| t.text(id))
                .collect(),
            rows,
            widths: vec![3, 2, 1, 2, 4],
        }),
    ])
}

fn deviations_section(
    c: &Certificate,
    inputs: &ReportInputs,
    latencies: Option<String>,
    t: &Catalog,
) -> Section {
    let mut items = Vec::new();
    if inputs.issuer.is_none() {
        items.push(t.text("issuer-not-configured"));
    }
    if inputs.issuer_unsealed {
        items.push(t.text("deviation-issuer-unsealed"));
    }
    for n in &c.coverage.not_run {
        let reason = t.text(match n.reason {
            crate::certificate::schema::NotRunReason::Filtered => "not-run-filtered",
            crate::certificate::schema::NotRunReason::Skipped => "not-run-skipped",
            crate::certificate::schema::NotRunReason::Error => "not-run-error",
        });
        items.push(t.format(
            "deviation-not-run",
            &[("check", n.check.name()), ("reason", &reason), ("detail", &n.detail)],
        ));
    }
    for k in &c.checks {
        if k.status == CheckStatus::Error {
            items.push(t.format("deviation-error", &[("check", k.name.name()), ("reason", &k.reason)]));
        } else if k.verdict == Outcome::Inconclusive {
            // A limit or figure the chip profile does not give is the profile's gap, not the model's.
            let id = if k.profile_gap.is_some() { "deviation-profile" } else { "deviation-inconclusive" };
            items.push(t.format(id, &[("check", k.name.name()), ("reason", &k.reason)]));
        }
    }
    let emulated: BTreeSet<&str> =
        c.checks.iter().filter(|k| k.basis == Basis::Emulated).map(|k| k.name.name()).collect();
    if !emulated.is_empty() {
        let list = emulated.into_iter().collect::<Vec<_>>().join(", ");
        items.push(t.format("deviation-emulated", &[("checks", &list)]));
    }
    if let Some(text) = latencies {
        items.push(t.format("deviation-latencies", &[("text", &text)]));
    }
    let blocks = if items.is_empty() {
        vec![Block::Paragraph(t.text("deviations-none"))]
    } else {
        vec![Block::List(items)]
    };
    Section { anchor: "deviations", heading: t.text("section-deviations"), blocks }
}

fn authorization_section(c: &Certificate, issuer: Option<&Issuer>, t: &Catalog) -> Section {
    let authoriser = match issuer.and_then(|i| i.authoriser.as_ref()) {
        Some(a) => t.format("auth-authoriser", &[("name", &a.name), ("role", &a.role)]),
        None => t.text("auth-no-authoriser"),
    };
    let mut blocks = vec![Block::Paragraph(authoriser)];
    blocks.extend(match &c.signature {
        Some(s) => vec![Block::Fields(vec![
            (
                t.text("section-authorization"),
                Cell::text(t.format(
                    "auth-signed",
                    &[("algorithm", &s.algorithm), ("fingerprint", &s.key_fingerprint)],
                )),
            ),
            (t.text("auth-public-key"), Cell::code(&s.public_key)),
        ])],
        None => vec![Block::Paragraph(t.text("auth-unsigned"))],
    });
    blocks.push(Block::Paragraph(
        t.format("report-generated-by", &[("tool", &c.tool.name), ("version", &c.tool.version)]),
    ));
    Section { anchor: "authorization", heading: t.text("section-authorization"), blocks }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The page number and count go where each language puts them, not where English does.
    #[test]
    fn page_n_of_n_keeps_each_language_s_word_order() {
        let parts = |tag: &str| page_of(&Catalog::load(tag).unwrap());
        let text = |s: &str| PagePart::Text(s.to_string());
        assert_eq!(parts("en"), [text("Page "), PagePart::Page, text(" of "), PagePart::Pages]);
        assert_eq!(
            parts("zh-CN"),
            [text("第 "), PagePart::Page, text(" 页，共 "), PagePart::Pages, text(" 页")]
        );
    }
}
