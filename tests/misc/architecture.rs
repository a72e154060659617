//! The layers of `docs/architecture.md`: every `crate::` path in `src/` (outside comments)
//! points to the module's own layer or one below, except the imports listed there as known
//! exceptions, each with its reason. A new upward import fails here; so does an exception
//! that no longer exists (the list in the docs must be kept true).

use std::collections::BTreeSet;
use std::path::Path;

/// The layer of a `crate::` path, from its first segments.
fn layer_of(path: &str) -> Option<u8> {
    if path.starts_with("obs::metrics::names") {
        return Some(1);
    }
    let top = path.split("::").next()?;
    Some(match top {
        "core" => 0,
        "ivr" | "listen" => 1,
        "store" => 2,
        "engine" | "reconcile" => 3,
        "channels" | "notify" | "survey" => 4,
        "api" | "http" | "signin" | "console" | "obs" => 5,
        "config" | "server" | "ha" | "cli" | "sim" | "init_logging" => 6,
        _ => return None,
    })
}

/// The layer of a source file.
fn file_layer(file: &str) -> u8 {
    let rel = file.trim_start_matches("src/");
    let top = rel.split('/').next().unwrap_or(rel).trim_end_matches(".rs");
    match top {
        "main" | "lib" => 6,
        other => layer_of(other).unwrap_or(6),
    }
}

/// Known upward imports: (file prefix, target module), as listed in docs/architecture.md.
const EXCEPTIONS: &[(&str, &str)] = &[
    ("src/channels/chat/page.rs", "http"),
    ("src/channels/voice/", "http"),
    ("src/channels/sms/mod.rs", "http"),
    ("src/channels/chat/page.rs", "obs"),
    ("src/survey/", "obs"),
    ("src/http/", "config"),
];

/// Every `crate::a::b` path on the lines of `text` that are not comments, grouped imports
/// (`use crate::{a::x, b::y}`) included.
fn crate_paths(text: &str) -> Vec<String> {
    let mut paths = Vec::new();
    let mut in_group = false;
    for line in text.lines() {
        let code = line.trim_start();
        if code.starts_with("//") {
            continue;
        }
        let code = code.split(" //").next().unwrap_or(code);
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                in_group = true;
                rest = group;
                break;
            }
            let path: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            paths.push(path);
        }
        if in_group {
            for item in rest.split(',') {
                let item = item.trim().trim_start_matches('{');
                let path: String = item
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                    .collect();
                if !path.is_empty() && path != "self" {
                    paths.push(path);
                }
            }
            if code.contains("};") {
                in_group = false;
            }
        }
    }
    paths
}

fn sources(dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).expect("src/ readable") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path.to_string_lossy().replace('\\', "/"));
        }
    }
}

#[test]
fn imports_point_down_the_layers_except_the_documented_ones() {
    let mut files = Vec::new();
    sources(Path::new("src"), &mut files);
    files.sort();
    let mut upward = Vec::new();
    let mut used = BTreeSet::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("source");
        let own = file_layer(file);
        for path in crate_paths(&text) {
            let Some(target) = layer_of(&path) else {
                continue;
            };
            if target <= own {
                continue;
            }
            let top = path.split("::").next().unwrap_or(&path).to_string();
            let known = EXCEPTIONS
                .iter()
                .position(|(f, t)| file.starts_with(f) && top == *t);
            match known {
                Some(i) => {
                    used.insert(i);
                }
                None => upward.push(format!("{file} -> crate::{path}")),
            }
        }
    }
    upward.sort();
    upward.dedup();
    assert!(
        upward.is_empty(),
        "imports running up the layers of docs/architecture.md (move the code down, invert \
         with a trait, or list the exception there and in EXCEPTIONS): {upward:#?}"
    );
    let stale: Vec<_> = EXCEPTIONS
        .iter()
        .enumerate()
        .filter(|(i, _)| !used.contains(i))
        .map(|(_, e)| e)
        .collect();
    assert!(
        stale.is_empty(),
        "exceptions that no longer exist: remove them here and in docs/architecture.md: {stale:?}"
    );
    let docs = std::fs::read_to_string("docs/architecture.md").expect("docs");
    for (file, target) in EXCEPTIONS {
        let short = file.trim_start_matches("src/");
        assert!(
            docs.contains(short) && docs.contains(&format!("`{target}")),
            "docs/architecture.md lists the exception {file} -> {target}"
        );
    }
}
