//! Registry: versioning, activation, rollback, number binding, persistence, and calls that keep
//! the version they started with.

use crate::ivr_common;

use std::sync::Arc;

use ivr_common::{now, outcome, said, tree};
use serde_json::{json, Value};

use guichet::ivr::{
    CallSession, Input, IvrRegistry, IvrTree, Outcome, Problem, RegistryError, SessionState,
};

/// A tree whose greeting and queue name carry a marker, so versions are told apart.
fn tree_with(name: &str, marker: &str) -> IvrTree {
    tree(json!({
        "name": name, "languages": ["fr-FR"], "default_language": "fr-FR",
        "timezone": "Europe/Paris", "entry": "menu",
        "nodes": {
            "menu": {"type": "menu", "prompt": {"text": {"fr-FR": format!("Menu {marker}")}},
                     "options": {"1": "next"}, "on_fail": "q"},
            "next": {"type": "say", "prompt": {"text": {"fr-FR": format!("Suite {marker}")}}, "next": "q"},
            "q": {"type": "queue", "queue": format!("queue-{marker}")}
        }
    }))
}

fn invalid(name: &str) -> IvrTree {
    let mut v: Value = serde_json::to_value(tree_with(name, "x")).expect("serialises");
    v["entry"] = json!("missing");
    tree(v)
}

#[test]
fn drafts_are_validated_and_versioned_per_tree() {
    let mut reg = IvrRegistry::new();
    let errs = reg
        .put_draft(invalid("accueil"))
        .expect_err("invalid draft");
    assert!(errs
        .iter()
        .any(|e| matches!(e.reason, Problem::MissingEntry { .. })));
    assert!(matches!(
        reg.versions("accueil"),
        Err(RegistryError::UnknownTree { .. })
    ));

    let mut draft = tree_with("accueil", "a");
    draft.version = 42; // ignored: the registry numbers versions
    assert_eq!(reg.put_draft(draft), Ok(1));
    assert_eq!(reg.put_draft(tree_with("accueil", "b")), Ok(2));
    assert_eq!(reg.put_draft(tree_with("impots", "c")), Ok(1));
    assert_eq!(reg.put_draft(tree_with("accueil", "d")), Ok(3));
    assert_eq!(reg.versions("accueil"), Ok(vec![1, 2, 3]));
    assert_eq!(reg.versions("impots"), Ok(vec![1]));
    assert_eq!(
        reg.tree_names().collect::<Vec<_>>(),
        vec!["accueil", "impots"]
    );

    let v1 = reg.get("accueil", 1).expect("version 1");
    assert_eq!(v1.version, 1);
    assert_eq!(v1.nodes.len(), 3);
    assert!(matches!(
        reg.get("accueil", 9),
        Err(RegistryError::UnknownVersion { version: 9, .. })
    ));
}

#[test]
fn stored_versions_are_immutable() {
    let mut reg = IvrRegistry::new();
    reg.put_draft(tree_with("accueil", "a")).expect("valid");
    let before = reg.get("accueil", 1).expect("v1");
    reg.put_draft(tree_with("accueil", "b")).expect("valid");
    reg.activate("accueil", 2).expect("activates");
    let after = reg.get("accueil", 1).expect("v1");
    assert_eq!(before, after);
    assert!(Arc::ptr_eq(&before, &after));
    assert_eq!(
        reg.restore(tree_with("accueil", "z")),
        Err(RegistryError::VersionConflict {
            name: "accueil".into(),
            version: 0
        })
    );
    let mut clash = tree_with("accueil", "z");
    clash.version = 1;
    assert!(matches!(
        reg.restore(clash),
        Err(RegistryError::VersionConflict { version: 1, .. })
    ));
}

#[test]
fn activation_and_rollback() {
    let mut reg = IvrRegistry::new();
    assert!(matches!(
        reg.activate("accueil", 1),
        Err(RegistryError::UnknownTree { .. })
    ));
    for marker in ["a", "b", "c"] {
        reg.put_draft(tree_with("accueil", marker)).expect("valid");
    }
    assert!(reg.active("accueil").is_none());
    assert!(matches!(
        reg.rollback("accueil"),
        Err(RegistryError::NothingToRollBack { .. })
    ));
    assert!(matches!(
        reg.activate("accueil", 4),
        Err(RegistryError::UnknownVersion { version: 4, .. })
    ));

    reg.activate("accueil", 1).expect("activates");
    reg.activate("accueil", 3).expect("activates");
    reg.activate("accueil", 3)
        .expect("re-activating is a no-op");
    reg.activate("accueil", 2).expect("activates");
    assert_eq!(reg.active_version("accueil"), Some(2));
    assert_eq!(reg.active("accueil").map(|t| t.version), Some(2));

    assert_eq!(reg.rollback("accueil"), Ok(3));
    assert_eq!(reg.active_version("accueil"), Some(3));
    assert_eq!(reg.rollback("accueil"), Ok(1));
    assert_eq!(reg.active_version("accueil"), Some(1));
    assert!(matches!(
        reg.rollback("accueil"),
        Err(RegistryError::NothingToRollBack { .. })
    ));
    assert_eq!(reg.active_version("accueil"), Some(1));
}

#[test]
fn numbers_are_normalised_and_resolve_to_the_active_tree() {
    let mut reg = IvrRegistry::new();
    assert!(matches!(
        reg.bind_number("+33 1 00 00 00 00", "accueil"),
        Err(RegistryError::UnknownTree { .. })
    ));
    reg.put_draft(tree_with("accueil", "a")).expect("valid");
    reg.put_draft(tree_with("impots", "b")).expect("valid");
    reg.bind_number("+33 1 00 00 00 00", "accueil")
        .expect("binds");
    reg.bind_number(" 0800-123-456 ", "impots").expect("binds");
    assert!(matches!(
        reg.bind_number("   ", "accueil"),
        Err(RegistryError::InvalidNumber { .. })
    ));

    assert_eq!(reg.tree_name_for_number("+33100000000"), Ok("accueil"));
    assert_eq!(reg.tree_name_for_number("+33 1 00 00 00 00"), Ok("accueil"));
    assert_eq!(reg.tree_name_for_number("0800123456"), Ok("impots"));
    assert_eq!(
        reg.tree_for_number("+33100000000").map(|t| t.version),
        Err(RegistryError::NoActiveVersion {
            name: "accueil".into()
        })
    );
    reg.activate("accueil", 1).expect("activates");
    assert_eq!(
        reg.tree_for_number("+33100000000").map(|t| t.name.clone()),
        Ok("accueil".to_owned())
    );
    assert_eq!(
        reg.tree_for_number("+33199999999").map(|t| t.version),
        Err(RegistryError::UnknownNumber {
            number: "+33199999999".into()
        })
    );
    assert_eq!(
        reg.numbers().collect::<Vec<_>>(),
        vec![("+33100000000", "accueil"), ("0800123456", "impots")]
    );

    // Rebinding moves the number; unbinding removes it.
    reg.bind_number("+33100000000", "impots").expect("rebinds");
    assert_eq!(reg.tree_name_for_number("+33 1 00 00 00 00"), Ok("impots"));
    assert_eq!(
        reg.unbind_number("+33 1 00 00 00 00"),
        Ok("impots".to_owned())
    );
    assert!(matches!(
        reg.tree_name_for_number("+33100000000"),
        Err(RegistryError::UnknownNumber { .. })
    ));
}

#[test]
fn a_call_keeps_its_version_after_another_is_activated() {
    let mut reg = IvrRegistry::new();
    reg.put_draft(tree_with("accueil", "v1")).expect("valid");
    reg.bind_number("+33100000000", "accueil").expect("binds");
    reg.activate("accueil", 1).expect("activates");

    let tree = reg.tree_for_number("+33 1 00 00 00 00").expect("bound");
    let (call, step) = CallSession::start(tree, "+33612345678", "+33100000000", now());
    assert_eq!(said(&step), vec!["Menu v1"]);
    let stored = serde_json::to_string(call.state()).expect("serialises");

    // A supervisor publishes and activates version 2 while the caller listens.
    reg.put_draft(tree_with("accueil", "v2")).expect("valid");
    reg.activate("accueil", 2).expect("activates");
    let (_, fresh) = CallSession::start(
        reg.tree_for_number("+33100000000").expect("bound"),
        "+33699999999",
        "+33100000000",
        now(),
    );
    assert_eq!(said(&fresh), vec!["Menu v2"], "new calls get version 2");

    // The next webhook request re-attaches the call to the version it started on.
    let state: SessionState = serde_json::from_str(&stored).expect("deserialises");
    let tree = reg
        .get(&state.tree_name, state.tree_version)
        .expect("version 1 is still stored");
    let mut call = CallSession::resume(tree, state).expect("resumes");
    let step = call.input(Input::Digits("1".into()), now());
    assert_eq!(said(&step), vec!["Suite v1"]);
    match outcome(&step) {
        Outcome::Queue { queue, .. } => assert_eq!(queue, "queue-v1"),
        other => panic!("expected version 1's queue, got {other:?}"),
    }
}

#[test]
fn a_live_session_keeps_its_tree_when_the_registry_changes() {
    let mut reg = IvrRegistry::new();
    reg.put_draft(tree_with("accueil", "v1")).expect("valid");
    reg.activate("accueil", 1).expect("activates");
    let (mut call, _) = CallSession::start(
        reg.active("accueil").expect("active"),
        "+33612345678",
        "+33100000000",
        now(),
    );
    reg.put_draft(tree_with("accueil", "v2")).expect("valid");
    reg.activate("accueil", 2).expect("activates");
    let step = call.input(Input::Digits("1".into()), now());
    match outcome(&step) {
        Outcome::Queue { queue, prompts, .. } => {
            assert_eq!(queue, "queue-v1");
            assert_eq!(prompts.len(), 1);
        }
        other => panic!("expected version 1's queue, got {other:?}"),
    }
    assert_eq!(call.tree().version, 1);
}

#[test]
fn registry_round_trips_through_json() {
    let mut reg = IvrRegistry::new();
    reg.put_draft(tree_with("accueil", "a")).expect("valid");
    reg.put_draft(tree_with("accueil", "b")).expect("valid");
    reg.activate("accueil", 1).expect("activates");
    reg.activate("accueil", 2).expect("activates");
    reg.bind_number("+33100000000", "accueil").expect("binds");

    let text = serde_json::to_string(&reg).expect("serialises");
    let mut back: IvrRegistry = serde_json::from_str(&text).expect("deserialises");
    assert_eq!(back, reg);
    assert_eq!(back.rollback("accueil"), Ok(1), "rollback history survives");
}

#[test]
fn inconsistent_records_are_refused() {
    let mut reg = IvrRegistry::new();
    reg.put_draft(tree_with("accueil", "a")).expect("valid");
    reg.activate("accueil", 1).expect("activates");
    reg.bind_number("+33100000000", "accueil").expect("binds");
    let good = serde_json::to_value(&reg).expect("serialises");

    let mut bad = good.clone();
    bad["trees"]["accueil"]["active"] = json!(5);
    assert!(serde_json::from_value::<IvrRegistry>(bad).is_err());

    let mut bad = good.clone();
    bad["numbers"]["+33100000000"] = json!("ghost");
    assert!(serde_json::from_value::<IvrRegistry>(bad).is_err());

    let mut bad = good;
    bad["trees"]["accueil"]["versions"]["1"]["version"] = json!(2);
    assert!(serde_json::from_value::<IvrRegistry>(bad).is_err());
}

#[test]
fn registry_rebuilds_from_tree_and_active_version_records() {
    let mut original = IvrRegistry::new();
    original
        .put_draft(tree_with("accueil", "a"))
        .expect("valid");
    original
        .put_draft(tree_with("accueil", "b"))
        .expect("valid");
    original.activate("accueil", 2).expect("activates");

    // What a store would keep: each stored version, and the active one.
    let rows: Vec<IvrTree> = original
        .versions("accueil")
        .expect("known")
        .into_iter()
        .map(|v| (*original.get("accueil", v).expect("stored")).clone())
        .collect();
    let active = original.active_version("accueil").expect("active");

    let mut rebuilt = IvrRegistry::new();
    for row in rows {
        rebuilt.restore(row).expect("restores");
    }
    rebuilt.activate("accueil", active).expect("activates");
    assert_eq!(rebuilt.versions("accueil"), Ok(vec![1, 2]));
    assert_eq!(rebuilt.active("accueil"), original.active("accueil"));
    // New drafts continue the numbering.
    assert_eq!(rebuilt.put_draft(tree_with("accueil", "c")), Ok(3));
}
