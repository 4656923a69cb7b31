//! The house's layering, read from the source: every `crate::` path in a file of `src/`
//! names its own module or one in a layer below it, so no import runs up the order and
//! there is no import circle. And the domains' rule files stay free of HTTP and GraphQL:
//! only their `graphql.rs` or `graphql/` speaks GraphQL, and none speaks HTTP.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The layers, lowest first. A module may import from layers before its own; modules of
/// one layer do not import each other.
const LAYERS: &[&[&str]] = &[
    &["error"],
    &["config", "cache", "telemetry", "money", "text"],
    &["services"],
    &["db"],
    &["tenancy"],
    &["files", "mail"],
    &["jobs"],
    &["graphql::support"],
    &["auth"],
    &["settings"],
    &["leave"],
    &["time"],
    &["billing", "usage"],
    &["graphql"],
    &["http"],
    &["app"],
    &["cli"],
];

const DOMAINS: &[&str] = &["auth", "settings", "leave", "time", "billing", "usage"];

fn rank(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// The module a file of `src/` belongs to (`None` for the crate root and the binary).
fn module_of(relative: &Path) -> Option<String> {
    let parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().trim_end_matches(".rs").to_owned())
        .collect();
    match parts.as_slice() {
        [only] if only == "lib" || only == "main" => None,
        [first, second, ..] if first == "graphql" && second == "support" => {
            Some("graphql::support".to_owned())
        }
        [first, ..] => Some(first.clone()),
        [] => None,
    }
}

/// The code of a file without its comments (line comments are all this crate uses).
fn code(source: &str) -> String {
    source
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The module a path after `crate::` starts with, `graphql::support` told apart.
fn head(path: &str) -> String {
    let mut segments = path.split("::").map(|s| s.trim());
    let first = segments.next().unwrap_or_default().to_owned();
    if first == "graphql" && segments.next().is_some_and(|s| s.starts_with("support")) {
        "graphql::support".to_owned()
    } else {
        first
    }
}

/// Every module a file's code names through `crate::`, in `use` lines and in paths.
fn references(source: &str) -> BTreeSet<String> {
    let code = code(source);
    let mut found = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        let is_path_start = rest[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '$' || c == ':'));
        let after = &rest[at + "crate::".len()..];
        if is_path_start {
            if let Some(group) = after.strip_prefix('{') {
                // `crate::{a::b, c::{d, e}}`: the first segment of each top-level item.
                let mut depth = 0;
                let mut item = String::new();
                for c in group.chars() {
                    match c {
                        '{' => {
                            depth += 1;
                            item.push(c);
                        }
                        '}' if depth == 0 => break,
                        '}' => {
                            depth -= 1;
                            item.push(c);
                        }
                        ',' if depth == 0 => {
                            found.insert(head(&item));
                            item.clear();
                        }
                        _ => item.push(c),
                    }
                }
                if !item.trim().is_empty() {
                    found.insert(head(&item));
                }
            } else {
                let path: String = after
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                    .collect();
                found.insert(head(&path));
            }
        }
        rest = after;
    }
    found.retain(|m| !m.is_empty() && m != "self");
    found
}

/// What is wrong with one file of module `module`: each import that does not run down.
fn violations(module: &str, source: &str) -> Vec<String> {
    let Some(own) = rank(module) else {
        return vec![format!("module {module} has no layer: add it to LAYERS")];
    };
    references(source)
        .into_iter()
        .filter(|target| target != module)
        .filter_map(|target| match rank(&target) {
            Some(r) if r < own => None,
            Some(r) if r == own => Some(format!("imports {target}, of its own layer")),
            Some(_) => Some(format!("imports {target}, a layer above it")),
            None => Some(format!("imports {target}, which has no layer")),
        })
        .collect()
}

/// Whether a file of a domain is its GraphQL surface.
fn is_graphql_surface(relative: &Path) -> bool {
    relative.file_name().is_some_and(|name| name == "graphql.rs")
        || relative.components().any(|c| c.as_os_str() == "graphql")
}

/// What is wrong with a domain file that is not its GraphQL surface.
fn rule_file_violations(relative: &Path, source: &str) -> Vec<String> {
    let code = code(source);
    let mut wrong = Vec::new();
    if code.contains("axum::") {
        wrong.push("uses axum".to_owned());
    }
    if !is_graphql_surface(relative) && references(source).iter().any(|m| m.starts_with("graphql")) {
        wrong.push("imports graphql".to_owned());
    }
    wrong
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

#[test]
fn every_import_runs_down_the_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut wrong = Vec::new();
    let mut modules = BTreeSet::new();
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        let Some(module) = module_of(relative) else {
            continue;
        };
        let source = std::fs::read_to_string(file).unwrap();
        for problem in violations(&module, &source) {
            wrong.push(format!("src/{} ({module}) {problem}", relative.display()));
        }
        if DOMAINS.contains(&module.as_str()) {
            for problem in rule_file_violations(relative, &source) {
                wrong.push(format!("src/{} {problem}", relative.display()));
            }
        }
        modules.insert(module);
    }
    assert!(
        wrong.is_empty(),
        "imports against the layering:\n{}",
        wrong.join("\n")
    );
    // Every layer's modules exist, so a renamed module cannot slip out of the check.
    for module in LAYERS.iter().flat_map(|layer| layer.iter()) {
        assert!(modules.contains(*module), "no files of module {module} in src/");
    }
}

#[test]
fn the_layering_check_sees_imports_of_every_shape() {
    let source = "//! Uses crate::billing in prose only.\n\
        use crate::{auth::Actor, graphql::support::{NodeType, global_id}};\n\
        use crate::error::AppResult;\n\
        fn f() { crate::time::entries::amount(1, d, 2); let s = \"x\"; }\n\
        // crate::http in a comment\n";
    let found: Vec<String> = references(source).into_iter().collect();
    assert_eq!(found, ["auth", "error", "graphql::support", "time"]);
    // A job handler reaching into a domain, a domain into the schema, a same-layer pair.
    assert_eq!(
        violations("jobs", "use crate::billing::Invoice;"),
        ["imports billing, a layer above it"]
    );
    assert_eq!(
        violations("graphql::support", "use crate::graphql::schema::Node;"),
        ["imports graphql, a layer above it"]
    );
    assert_eq!(
        violations("files", "use crate::mail::Email;"),
        ["imports mail, of its own layer"]
    );
    assert!(violations("billing", "use crate::{time::X, graphql::support::Y};").is_empty());
    assert!(violations("graphql", "use crate::graphql::support::Y;").is_empty());
    assert_eq!(
        rule_file_violations(
            Path::new("time/entries.rs"),
            "use axum::body::Bytes;\nuse crate::graphql::support::X;"
        ),
        ["uses axum", "imports graphql"]
    );
    assert!(
        rule_file_violations(
            Path::new("time/graphql/catalog.rs"),
            "use crate::graphql::support::X;"
        )
        .is_empty()
    );
    assert_eq!(
        module_of(Path::new("graphql/support/ids.rs")).as_deref(),
        Some("graphql::support")
    );
    assert_eq!(
        module_of(Path::new("graphql/schema.rs")).as_deref(),
        Some("graphql")
    );
    assert_eq!(module_of(Path::new("lib.rs")), None);
}
