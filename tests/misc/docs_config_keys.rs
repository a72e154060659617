//! Every key of the demo configuration (`config/guichet.toml`), including the keys shown in its
//! commented-out sections, is documented under `docs/`: as `` `[section] key` ``, or as
//! `` `key` `` (or a `key = ...` line of an example) in pages that also name the `[section]`.

use std::collections::BTreeSet;

/// `(section, key)` for every key line, live or commented out, of a TOML file written as the demo
/// configuration is (one key per line; inline tables stay on their line).
fn keys_of(text: &str) -> BTreeSet<(String, String)> {
    let mut section = String::new();
    let mut keys = BTreeSet::new();
    for raw in text.lines() {
        let line = raw.trim_start();
        let line = line.strip_prefix('#').map(str::trim_start).unwrap_or(line);
        if let Some(rest) = line.strip_prefix('[') {
            let rest = rest.trim_start_matches('[');
            if let Some(end) = rest.find(']') {
                let name = &rest[..end];
                if !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c == '.' || c == '_')
                {
                    section = name.to_string();
                }
            }
            continue;
        }
        let Some(eq) = line.find('=') else { continue };
        let key = line[..eq].trim();
        let is_key = !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            && key.starts_with(|c: char| c.is_ascii_lowercase());
        if is_key && !section.is_empty() {
            keys.insert((section.clone(), key.to_string()));
        }
    }
    keys
}

fn docs_text() -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir("docs").expect("docs/ exists") {
        let path = entry.expect("readable docs/ entry").path();
        if path.extension().is_some_and(|e| e == "md") {
            text.push_str(&std::fs::read_to_string(&path).expect("readable doc page"));
            text.push('\n');
        }
    }
    text
}

/// Sections whose keys are data (the operator's own names), not settings: their section is
/// documented, each of their keys cannot be.
const DATA_SECTIONS: &[&str] = &["chat.topic_labels"];

#[test]
fn every_demo_config_key_is_documented() {
    let config = std::fs::read_to_string("config/guichet.toml").expect("demo config");
    let keys = keys_of(&config);
    assert!(keys.len() > 50, "the parser found only {} keys", keys.len());
    let docs = docs_text();
    for section in DATA_SECTIONS {
        assert!(
            docs.contains(&format!("[{section}]")),
            "the data section [{section}] is documented under docs/"
        );
    }
    let mut missing = Vec::new();
    for (section, key) in &keys {
        if DATA_SECTIONS.contains(&section.as_str()) {
            continue;
        }
        let qualified = [
            format!("`[{section}] {key}`"),
            format!("`[[{section}]] {key}`"),
        ];
        if qualified.iter().any(|q| docs.contains(q.as_str())) {
            continue;
        }
        let section_named = docs.contains(&format!("`[{section}]"))
            || docs.contains(&format!("`[[{section}]]"))
            || docs.contains(&format!("\n[{section}]\n"));
        let key_named = docs.contains(&format!("`{key}`"))
            || docs
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("{key} =")));
        if !(section_named && key_named) {
            missing.push(format!("[{section}] {key}"));
        }
    }
    assert!(
        missing.is_empty(),
        "keys of config/guichet.toml not documented under docs/: {missing:?}"
    );
}

#[test]
fn the_key_reader_sees_commented_sections() {
    let keys = keys_of("[server]\nhttp_addr = \"x\"\n# [surveys]\n# enabled = true  # on\n[[queues]]\nid = \"a\"\n\"a@b\" = \"q\"\n");
    let expected: BTreeSet<(String, String)> = [
        ("server", "http_addr"),
        ("surveys", "enabled"),
        ("queues", "id"),
    ]
    .into_iter()
    .map(|(s, k)| (s.to_string(), k.to_string()))
    .collect();
    assert_eq!(keys, expected);
}
