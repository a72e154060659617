//! IVR trees that cannot break production, against the real `guichet serve`: a tree naming an
//! unknown queue is refused by PutIvrVersion and ValidateIvrTree, unreachable nodes come back as
//! warnings, GetIvrVersion returns what was put with its author and comment, a rollback works
//! after a restart, a queue an active tree names cannot be removed; and a schema-7 database
//! opens upgraded with its trees.

use crate::api_common;

use api_common::Workspace;
use guichet::api::proto as pb;
use serde_json::{json, Value};
use tonic::Code;

const DEMO_TREE: &str = include_str!("../../config/ivr/demo_tree.json");
const TREE: &str = "accueil-service-public";

fn demo() -> Value {
    serde_json::from_str(DEMO_TREE).expect("demo tree")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ivr_changes_are_checked_recorded_and_survive_a_restart() {
    let ws = Workspace::new();
    let mut server = ws.start();
    let (token, _) = ws.token("supervisor", None);
    let mut sup = server.supervisor(&token);

    // A queue node naming a queue that does not exist: refused by validation and by put.
    let mut bad = demo();
    bad["nodes"]["queue_tax"]["queue"] = json!("taxes");
    let checked = sup
        .validate_ivr_tree(pb::ValidateIvrTreeRequest {
            tree_json: bad.to_string(),
        })
        .await
        .expect("ValidateIvrTree")
        .into_inner();
    assert!(!checked.valid);
    assert_eq!(checked.problems.len(), 1, "{:?}", checked.problems);
    assert_eq!(checked.problems[0].node, "queue_tax");
    assert!(
        checked.problems[0]
            .reason
            .contains("queue `taxes`, which does not exist"),
        "{:?}",
        checked.problems
    );
    let err = sup
        .put_ivr_version(pb::PutIvrVersionRequest {
            tree_json: bad.to_string(),
            activate: true,
            comment: "typo".into(),
        })
        .await
        .expect_err("unknown queue refused");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("node `queue_tax`") && err.message().contains("taxes"),
        "{}",
        err.message()
    );

    // An unreachable branch is accepted, with a warning.
    let mut cut = demo();
    for field in ["options", "speech"] {
        cut["nodes"]["topic_menu"][field]
            .as_object_mut()
            .expect("options and speech keywords")
            .retain(|_, target| target != "topic_tax");
    }
    cut["nodes"]["welcome"]["prompt"]["text"]["fr-FR"] = json!("Bienvenue (version 2).");
    let put = sup
        .put_ivr_version(pb::PutIvrVersionRequest {
            tree_json: cut.to_string(),
            activate: true,
            comment: "impôts fermé cet après-midi".into(),
        })
        .await
        .expect("PutIvrVersion with an unreachable branch")
        .into_inner();
    assert_eq!((put.version, put.active), (2, true));
    assert_eq!(put.author, "api test (supervisor token)");
    assert_eq!(put.comment, "impôts fermé cet après-midi");
    let warned: Vec<&str> = put.warnings.iter().map(|w| w.node.as_str()).collect();
    assert!(warned.contains(&"topic_tax"), "{warned:?}");
    assert!(put.warnings[0].reason.contains("cannot be reached"));

    // GetIvrVersion returns the tree as put, to edit it; version 0 is the active one.
    let got = sup
        .get_ivr_version(pb::GetIvrVersionRequest {
            name: TREE.into(),
            version: 0,
        })
        .await
        .expect("GetIvrVersion")
        .into_inner();
    let info = got.version.expect("version");
    assert_eq!((info.version, info.active), (2, true));
    assert_eq!(info.comment, "impôts fermé cet après-midi");
    let mut returned: Value = serde_json::from_str(&got.tree_json).expect("JSON");
    returned.as_object_mut().expect("object").remove("version");
    let expected: guichet::ivr::IvrTree = serde_json::from_value(cut.clone()).expect("tree");
    let returned: guichet::ivr::IvrTree = serde_json::from_value(returned).expect("tree");
    assert_eq!(returned, expected);
    let first = sup
        .get_ivr_version(pb::GetIvrVersionRequest {
            name: TREE.into(),
            version: 1,
        })
        .await
        .expect("GetIvrVersion 1")
        .into_inner();
    assert_eq!(
        first.version.expect("v1").author,
        "configuration file",
        "the seeded version names its origin"
    );
    let missing = sup
        .get_ivr_version(pb::GetIvrVersionRequest {
            name: TREE.into(),
            version: 9,
        })
        .await
        .expect_err("no version 9");
    assert_eq!(missing.code(), Code::NotFound);

    // A queue an active tree sends calls to cannot be removed.
    let refused = sup
        .remove_queue(pb::RemoveQueueRequest {
            queue_id: "general".into(),
        })
        .await
        .expect_err("general is used by the active tree");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused.message().contains(TREE) && refused.message().contains("queue_general"),
        "{}",
        refused.message()
    );

    // After a restart, the history is there and rollback goes back to version 1.
    server.terminate();
    let server = ws.start();
    let mut sup = server.supervisor(&token);
    let list = sup
        .list_ivr_versions(pb::ListIvrVersionsRequest {
            name: TREE.into(),
            ..Default::default()
        })
        .await
        .expect("ListIvrVersions")
        .into_inner()
        .versions;
    let summary: Vec<(u32, bool, &str)> = list
        .iter()
        .map(|v| (v.version, v.active, v.author.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            (1, false, "configuration file"),
            (2, true, "api test (supervisor token)")
        ]
    );
    let back = sup
        .rollback_ivr(pb::RollbackIvrRequest { name: TREE.into() })
        .await
        .expect("rollback after a restart")
        .into_inner();
    assert_eq!((back.version, back.active), (1, true));
    let again = sup
        .rollback_ivr(pb::RollbackIvrRequest { name: TREE.into() })
        .await
        .expect_err("nothing before version 1");
    assert_eq!(again.code(), Code::FailedPrecondition);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_7_database_opens_upgraded_with_its_trees() {
    if api_common::skip_on_postgres("a schema 7 guichet.db fixture") {
        return;
    }
    let ws = Workspace::new();
    std::fs::create_dir_all(ws.data_dir()).expect("data dir");
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/schema_v7_ivr.db"
        ),
        ws.data_dir().join(guichet::store::DATABASE_FILE),
    )
    .expect("copy the fixture");
    let store = guichet::store::Store::open(&guichet::store::StoreConfig {
        data_dir: ws.data_dir(),
        ..Default::default()
    })
    .expect("open the schema-7 database");
    assert_eq!(store.found_schema_version(), 7);
    let versions = store.ivr_versions(TREE).expect("versions");
    let summary: Vec<(u32, bool, &str, &str)> = versions
        .iter()
        .map(|v| (v.version, v.active, v.author.as_str(), v.comment.as_str()))
        .collect();
    assert_eq!(summary, [(1, false, "", ""), (2, true, "", "")]);
    let active = store.ivr_active(TREE).expect("active").expect("one");
    assert_eq!((active.version, active.previous.clone()), (2, Vec::new()));
    drop(store);

    // The server starts on it: the stored tree answers, its history is listed.
    let server = ws.start();
    let (token, _) = ws.token("supervisor", None);
    let mut sup = server.supervisor(&token);
    let got = sup
        .get_ivr_version(pb::GetIvrVersionRequest {
            name: TREE.into(),
            version: 2,
        })
        .await
        .expect("GetIvrVersion on the upgraded database")
        .into_inner();
    assert!(got.tree_json.contains("queue_general"));
    let none = sup
        .rollback_ivr(pb::RollbackIvrRequest { name: TREE.into() })
        .await
        .expect_err("no activation history before schema 8");
    assert_eq!(none.code(), Code::FailedPrecondition);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_version_naming_a_removed_queue_cannot_come_back() {
    let ws = Workspace::new();
    let server = ws.start();
    let (token, _) = ws.token("supervisor", None);
    let mut sup = server.supervisor(&token);
    // Version 2 has no tax branch at all; once active, the tax queue can go.
    let mut no_tax = demo();
    let nodes = no_tax["nodes"].as_object_mut().expect("nodes");
    for node in ["topic_tax", "require_tax", "hold_tax", "queue_tax"] {
        nodes.remove(node);
    }
    for field in ["options", "speech"] {
        no_tax["nodes"]["topic_menu"][field]
            .as_object_mut()
            .expect("options and speech keywords")
            .retain(|_, target| target != "topic_tax");
    }
    let put = sup
        .put_ivr_version(pb::PutIvrVersionRequest {
            tree_json: no_tax.to_string(),
            activate: true,
            comment: "no more tax line".into(),
        })
        .await
        .expect("PutIvrVersion without tax")
        .into_inner();
    assert!(put.warnings.is_empty(), "{:?}", put.warnings);
    sup.remove_queue(pb::RemoveQueueRequest {
        queue_id: "tax".into(),
    })
    .await
    .expect("tax is no longer named by the active tree");

    // Version 1 sends calls to tax: neither rollback nor activation may bring it back.
    for refused in [
        sup.rollback_ivr(pb::RollbackIvrRequest { name: TREE.into() })
            .await
            .expect_err("rollback to a version naming a removed queue"),
        sup.activate_ivr_version(pb::ActivateIvrVersionRequest {
            name: TREE.into(),
            version: 1,
        })
        .await
        .expect_err("activation of a version naming a removed queue"),
    ] {
        assert_eq!(refused.code(), Code::InvalidArgument);
        assert!(
            refused
                .message()
                .contains("queue `tax`, which does not exist"),
            "{}",
            refused.message()
        );
    }
    let active = sup
        .get_ivr_version(pb::GetIvrVersionRequest {
            name: TREE.into(),
            version: 0,
        })
        .await
        .expect("active version")
        .into_inner();
    assert_eq!(active.version.expect("info").version, 2, "still version 2");
}
