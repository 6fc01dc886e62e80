//! Keeps the layers of ARCHITECTURE.md true: dependencies point down only
//! (`http -> api -> engine -> retrieval, code_interpreter, webhooks -> model -> store, queue, llm`),
//! and the files of one layer do not import each other in a circle (a knot). It reads the
//! sources rather than the compiled crate, so it is fast and needs no tool: every
//! `crate::x` and `super::x` path in a file (in `use` lines or inline, grouped or not) is an
//! import; comments are skipped.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level modules that may name `api` and `http`: those above them, and the binary.
const ABOVE_API: &[&str] = &["http", "api", "app", "functions", "main", "lib", "bin"];

/// Whether a top-level module may name `engine`: the engine itself, the api (which starts
/// and streams runs), and what sits above the api.
fn above_engine(module: &str) -> bool {
    module == "engine" || ABOVE_API.contains(&module)
}

/// What each lower layer must not name (besides `api` and `http`, which none of them may).
const FORBIDDEN_BELOW: &[(&str, &[&str])] = &[
    (
        "model",
        &[
            "engine",
            "retrieval",
            "code_interpreter",
            "context",
            "webhooks",
        ],
    ),
    (
        "store",
        &[
            "model",
            "engine",
            "retrieval",
            "code_interpreter",
            "context",
            "queue",
            "llm",
            "webhooks",
        ],
    ),
    (
        "queue",
        &[
            "model",
            "engine",
            "retrieval",
            "code_interpreter",
            "context",
            "webhooks",
        ],
    ),
    (
        "llm",
        &[
            "model",
            "engine",
            "retrieval",
            "code_interpreter",
            "context",
            "queue",
            "webhooks",
        ],
    ),
    // Beside retrieval, below the engine: it names model, store, queue and the context.
    ("webhooks", &["engine", "retrieval", "code_interpreter"]),
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The source without `//` comments (doc comments included).
fn code_of(text: &str) -> String {
    text.lines()
        .map(|line| match line.find("//") {
            Some(i) => &line[..i],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn ident_at(s: &str) -> String {
    s.chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

/// The first segments of the paths that follow `prefix` (e.g. `crate::`): `crate::a::b`
/// gives `a`, `crate::{a, b::c}` gives `a` and `b`.
fn names_after(code: &str, prefix: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find(prefix) {
        // `foo_crate::` or `xsuper::` are not the keyword.
        let before = rest[..i].chars().last();
        rest = &rest[i + prefix.len()..];
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let mut item_start = true;
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    ',' if depth == 1 => item_start = true,
                    c if c.is_whitespace() => {}
                    _ if item_start && depth == 1 => {
                        let name = ident_at(&group[j..]);
                        if !name.is_empty() {
                            names.push(name);
                        }
                        item_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            let name = ident_at(rest);
            if !name.is_empty() {
                names.push(name);
            }
        }
    }
    names
}

/// The top-level module a file belongs to: `src/api/runs.rs` is `api`, `src/ids.rs` is `ids`.
fn top_module(file: &Path) -> String {
    let rel = file.strip_prefix(src()).unwrap_or(file);
    let first = rel
        .components()
        .next()
        .map(|c| c.as_os_str().to_string_lossy().to_string());
    let first = first.unwrap_or_default();
    first.trim_end_matches(".rs").to_string()
}

fn all_files() -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    files.sort();
    assert!(files.len() > 50, "found only {} source files", files.len());
    files
        .into_iter()
        .map(|f| {
            let text = std::fs::read_to_string(&f).unwrap_or_default();
            (f, code_of(&text))
        })
        .collect()
}

/// Every upward import: `file names crate::x` where its layer may not.
fn upward_imports(files: &[(PathBuf, String)]) -> Vec<String> {
    let mut found = Vec::new();
    for (file, code) in files {
        let module = top_module(file);
        let named: BTreeSet<String> = names_after(code, "crate::").into_iter().collect();
        let mut forbidden: Vec<&str> = Vec::new();
        if !ABOVE_API.contains(&module.as_str()) {
            forbidden.extend(["api", "http"]);
        }
        if !above_engine(&module) {
            forbidden.push("engine");
        }
        for (below, names) in FORBIDDEN_BELOW {
            if *below == module {
                forbidden.extend(names.iter());
            }
        }
        for name in named.iter().filter(|n| forbidden.contains(&n.as_str())) {
            found.push(format!("{} names crate::{name}", file.display()));
        }
    }
    found
}

#[test]
fn dependencies_point_down_only() {
    let found = upward_imports(&all_files());
    assert!(found.is_empty(), "upward imports:\n{}", found.join("\n"));
}

#[test]
fn the_check_sees_an_upward_import() {
    // The same check on a planted file: it must fail on it, in each written form.
    for planted in [
        "use crate::api::Ctx;",
        "use crate::{error::ApiError, api::runs};",
        "fn f() { crate::http::router(); }",
    ] {
        let file = (src().join("engine").join("planted.rs"), code_of(planted));
        assert_eq!(upward_imports(&[file]).len(), 1, "{planted}");
    }
    let commented = (
        src().join("model").join("planted.rs"),
        code_of("//! see crate::api"),
    );
    assert!(upward_imports(&[commented]).is_empty());
    let engine_in_model = (
        src().join("model").join("x.rs"),
        code_of("use crate::engine::Engine;"),
    );
    assert_eq!(upward_imports(&[engine_in_model]).len(), 1);
}

/// The sibling modules each file of `layer/` imports: `runs.rs` naming `super::threads` or
/// `crate::api::threads` is `runs -> threads`. Left out: `mod.rs` (the layer's interface)
/// and `schemas` (schema-only types for the OpenAPI document: the records point at them in
/// `#[schema]` attributes and they name the records' constant lists, by design; nothing in
/// them is constructed).
fn sibling_edges(files: &[(PathBuf, String)], layer: &str) -> BTreeMap<String, BTreeSet<String>> {
    let dir = src().join(layer);
    let mut siblings = BTreeSet::new();
    for (file, _) in files {
        if let Ok(rel) = file.strip_prefix(&dir) {
            let first = rel
                .components()
                .next()
                .map(|c| c.as_os_str().to_string_lossy().to_string());
            if let Some(first) = first {
                let name = first.trim_end_matches(".rs").to_string();
                if name != "mod" && name != "schemas" {
                    siblings.insert(name);
                }
            }
        }
    }
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (file, code) in files {
        let Ok(rel) = file.strip_prefix(&dir) else {
            continue;
        };
        let parts: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().to_string())
            .collect();
        let from = parts[0].trim_end_matches(".rs").to_string();
        if from == "mod" || from == "schemas" {
            continue;
        }
        // `super::` from `layer/x.rs` or `layer/x/mod.rs` is the layer; deeper it is not.
        let super_is_layer = parts.len() == 1 || (parts.len() == 2 && parts[1] == "mod.rs");
        let mut named = names_after(code, &format!("crate::{layer}::"));
        if super_is_layer {
            named.extend(names_after(code, "super::"));
        } else if parts.len() == 2 {
            named.extend(names_after(code, "super::super::"));
        }
        for to in named {
            if to != from && siblings.contains(&to) {
                edges.entry(from.clone()).or_default().insert(to);
            }
        }
    }
    edges
}

/// The knots (strongly connected sets of more than one module) of a graph, each sorted.
fn knots(edges: &BTreeMap<String, BTreeSet<String>>) -> BTreeSet<Vec<String>> {
    let reach = |from: &str| {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.to_string()];
        while let Some(n) = todo.pop() {
            for next in edges.get(&n).into_iter().flatten() {
                if seen.insert(next.clone()) {
                    todo.push(next.clone());
                }
            }
        }
        seen
    };
    let reached: BTreeMap<&String, BTreeSet<String>> =
        edges.keys().map(|k| (k, reach(k))).collect();
    let mut out = BTreeSet::new();
    for (a, from_a) in &reached {
        let knot: Vec<String> = std::iter::once((*a).clone())
            .chain(
                from_a
                    .iter()
                    .filter(|b| *b != *a && reached.get(b).is_some_and(|r| r.contains(*a)))
                    .cloned(),
            )
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if knot.len() > 1 {
            out.insert(knot);
        }
    }
    out
}

#[test]
fn no_knots_inside_a_layer() {
    // `api/` had knots when this test came (issue #19 step 2 untied them); none is left.
    let files = all_files();
    for layer in ["api", "model", "retrieval", "store", "queue", "llm"] {
        let found = knots(&sibling_edges(&files, layer));
        assert!(found.is_empty(), "knots in {layer}/: {found:?}");
    }
}

#[test]
fn the_check_sees_a_knot() {
    let edges: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec!["a"]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.into_iter().map(String::from).collect()))
    .collect();
    let found = knots(&edges);
    assert_eq!(found.len(), 1);
    assert!(found.contains(&vec!["a".to_string(), "b".to_string(), "c".to_string()]));
    let planted = vec![
        (
            src().join("model").join("x.rs"),
            code_of("use super::{y, values::Tool};"),
        ),
        (
            src().join("model").join("y.rs"),
            code_of("fn f() { crate::model::x::g(); }"),
        ),
    ];
    assert_eq!(knots(&sibling_edges(&planted, "model")).len(), 1);
}
