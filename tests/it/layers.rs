//! The layers of `src/` only point down. Reads the `crate::` paths of every source file (the
//! code's own words, not a build graph), groups them by top-level module, and fails on an
//! import circle between top-level modules or an import from a layer above. The table below is
//! the architecture `docs/architecture.md` draws; a new top-level module must be placed in it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::common::root;

/// Bottom to top. A module may import from its own layer (no circle) and any layer below.
const LAYERS: &[(&str, &[&str])] = &[
    ("vocabulary", &["vocab"]),
    (
        "domain: what is measured, on what",
        &["config", "profile", "model", "engine", "metrics", "golden", "stats", "i18n", "power", "device"],
    ),
    ("how figures are obtained", &["emulator", "backend", "exec", "remote"]),
    ("checks", &["checks"]),
    ("the certificate", &["certificate"]),
    ("readers of models and certificates", &["diff", "render", "views", "analyze", "records"]),
    ("the run", &["run"]),
    ("the run's reporters", &["reporter"]),
    ("the commands as library calls", &["workflow"]),
    ("the command line", &["cli"]),
];

/// Which top-level module imports which, and the files that do it.
type Imports = BTreeMap<String, BTreeMap<String, BTreeSet<PathBuf>>>;

/// The top-level modules `lib.rs` declares.
fn top_level_modules(src: &Path) -> BTreeSet<String> {
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    lib.lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod ").or_else(|| l.trim().strip_prefix("mod ")))
        .map(|rest| rest.trim_end_matches(';').trim().to_string())
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without its `//` comments (a comment may name a module it does not use).
fn without_comments(text: &str) -> String {
    text.lines().map(|l| l.find("//").map_or(l, |i| &l[..i])).collect::<Vec<_>>().join("\n")
}

/// The first segment of every `crate::` path: `crate::a::b`, `crate::{a, b::c}`.
fn crate_paths(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let end = group
                .char_indices()
                .find(|&(_, c)| {
                    depth += match c {
                        '{' => 1,
                        '}' => -1,
                        _ => 0,
                    };
                    depth == 0
                })
                .map_or(group.len(), |(j, _)| j);
            let mut depth = 0;
            let mut item = String::new();
            for c in group[..end].chars().chain([',']) {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        found.insert(first_segment(&item));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                item.push(c);
            }
        } else {
            found.insert(first_segment(rest));
        }
    }
    found
}

fn first_segment(path: &str) -> String {
    path.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect()
}

fn imports(src: &Path) -> Imports {
    let modules = top_level_modules(src);
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut graph = Imports::new();
    for file in files {
        let relative = file.strip_prefix(src).unwrap();
        let first = relative.components().next().unwrap().as_os_str().to_string_lossy();
        let module = first.trim_end_matches(".rs").to_string();
        if !modules.contains(&module) {
            continue; // lib.rs, main.rs
        }
        let code = without_comments(&std::fs::read_to_string(&file).unwrap());
        for target in crate_paths(&code) {
            if target != module && modules.contains(&target) {
                graph
                    .entry(module.clone())
                    .or_default()
                    .entry(target)
                    .or_default()
                    .insert(relative.to_path_buf());
            }
        }
    }
    graph
}

/// Every circle, as the modules around it and the files of each step.
fn circles(graph: &Imports) -> Vec<String> {
    fn walk(
        graph: &Imports,
        at: &str,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
        out: &mut Vec<String>,
    ) {
        if let Some(i) = path.iter().position(|m| m == at) {
            let mut cycle = path[i..].to_vec();
            cycle.push(at.to_string());
            let steps: Vec<String> = cycle
                .windows(2)
                .map(|w| format!("{} -> {} ({})", w[0], w[1], files(graph, &w[0], &w[1])))
                .collect();
            out.push(steps.join("; "));
            return;
        }
        if done.contains(at) {
            return;
        }
        path.push(at.to_string());
        for next in graph.get(at).into_iter().flat_map(|m| m.keys()) {
            walk(graph, next, path, done, out);
        }
        path.pop();
        done.insert(at.to_string());
    }
    let (mut done, mut out) = (BTreeSet::new(), Vec::new());
    for start in graph.keys() {
        walk(graph, start, &mut Vec::new(), &mut done, &mut out);
    }
    out
}

fn files(graph: &Imports, from: &str, to: &str) -> String {
    graph[from][to].iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
}

/// Imports from a layer above, and modules the table does not place.
fn upward(graph: &Imports, modules: &BTreeSet<String>, layers: &[(&str, &[&str])]) -> Vec<String> {
    let layer = |m: &str| layers.iter().position(|(_, ms)| ms.contains(&m));
    let mut out: Vec<String> =
        modules.iter().filter(|m| layer(m).is_none()).map(|m| format!("{m} is in no layer")).collect();
    for (from, targets) in graph {
        for to in targets.keys() {
            if let (Some(a), Some(b)) = (layer(from), layer(to)) {
                if b > a {
                    out.push(format!(
                        "{from} ({}) imports {to} ({}), a layer above: {}",
                        layers[a].0,
                        layers[b].0,
                        files(graph, from, to)
                    ));
                }
            }
        }
    }
    out
}

#[test]
fn no_import_circle_between_top_level_modules() {
    let graph = imports(&root().join("src"));
    assert!(graph.len() > 10, "the source was read: {graph:?}");
    let found = circles(&graph);
    assert!(found.is_empty(), "import circles:\n{}", found.join("\n"));
}

#[test]
fn every_import_points_down_the_layers() {
    let src = root().join("src");
    let found = upward(&imports(&src), &top_level_modules(&src), LAYERS);
    assert!(found.is_empty(), "{}", found.join("\n"));
}

/// A source tree written for the negative controls: `lib.rs` and one file per module.
fn tree(modules: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let lib: String = modules.iter().map(|(m, _)| format!("pub mod {m};\n")).collect();
    std::fs::write(dir.path().join("lib.rs"), lib).unwrap();
    for (m, code) in modules {
        std::fs::write(dir.path().join(format!("{m}.rs")), code).unwrap();
    }
    dir
}

#[test]
fn a_planted_circle_and_an_upward_import_are_named_with_their_files() {
    let dir = tree(&[
        ("vocab", "// crate::run is only named in a comment\npub struct Outcome;"),
        ("stats", "use crate::{vocab::Outcome, checks::{self}};"),
        ("checks", "pub fn f() { crate::stats::g() }"),
        ("run", "use crate::vocab;"),
    ]);
    let graph = imports(dir.path());
    let found = circles(&graph);
    assert_eq!(found, ["checks -> stats (checks.rs); stats -> checks (stats.rs)"], "{graph:?}");
    let layers: &[(&str, &[&str])] = &[("bottom", &["vocab"]), ("middle", &["stats"]), ("top", &["checks"])];
    let modules = top_level_modules(dir.path());
    let found = upward(&graph, &modules, layers);
    assert_eq!(
        found,
        ["run is in no layer", "stats (middle) imports checks (top), a layer above: stats.rs"],
        "a comment naming crate::run is no import"
    );
}

#[test]
fn the_real_tree_is_read_in_full() {
    // Positive control of the reader: edges the code is known to have.
    let graph = imports(&root().join("src"));
    for (from, to) in [("run", "checks"), ("checks", "vocab"), ("cli", "workflow"), ("reporter", "run")] {
        assert!(graph.get(from).is_some_and(|t| t.contains_key(to)), "{from} -> {to} not found");
    }
}
