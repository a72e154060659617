//! `guichet migrate --from-sqlite` on a database the demo filled, then `guichet serve` on
//! PostgreSQL: the same open interactions (recovered, and answered through the API with the
//! admin token of the SQLite installation), the same tokens, IVR trees and indicators.
//! Needs `GUICHET_TEST_POSTGRES_URL` (see `pg_common`); skipped with one line saying so without.

use crate::api_common;

use std::process::Command;

use api_common::{pg_common, spec, Server, GUICHET};
use guichet::api::proto as pb;
use guichet::store::{SqliteStore, Store, StoreConfig};

/// What an installation holds that a move must keep.
#[derive(Debug, PartialEq)]
struct Holdings {
    open: Vec<String>,
    tokens: Vec<String>,
    trees: Vec<(String, Option<u32>)>,
    indicators: Vec<String>,
}

fn holdings(store: &Store) -> Holdings {
    let router = store.recover_router().expect("recover").router;
    let mut open: Vec<String> = router
        .interactions()
        .into_iter()
        .map(|v| v.spec.id.to_string())
        .collect();
    open.sort();
    let tokens = store
        .list_tokens()
        .expect("tokens")
        .into_iter()
        .map(|t| format!("{} {} {}", t.id, t.role, t.label))
        .collect();
    let trees = store
        .ivr_names()
        .expect("trees")
        .into_iter()
        .map(|n| {
            let active = store.ivr_active(&n).expect("active").map(|a| a.version);
            (n, active)
        })
        .collect();
    let indicators = store
        .indicator_days("0000-00-00", "9999-99-99")
        .expect("indicators")
        .into_iter()
        .map(|d| format!("{d:?}"))
        .collect();
    Holdings {
        open,
        tokens,
        trees,
        indicators,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demo_database_moved_to_postgres_serves_the_same() {
    let Some(db) = pg_common::PgDb::create() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("temporary directory");
    api_common::copy_demo_tree(tmp.path());
    let sqlite_dir = tmp.path().join("sqlite").join("data");
    let log = tmp.path().join("server.log");

    // The demo on SQLite: three requests, one answered and completed.
    let server = Server::start(&sqlite_dir, &log);
    let admin = std::fs::read_to_string(sqlite_dir.join("admin.token"))
        .expect("admin.token")
        .trim()
        .to_owned();
    let mut ids = Vec::new();
    for n in 0..3 {
        let created = server
            .interactions(&admin)
            .create(spec(
                "benefits",
                pb::Channel::Email,
                &format!("c{n}@example.org"),
                &format!("ref-{n}"),
            ))
            .await
            .expect("Create")
            .into_inner();
        ids.push(created.interaction.expect("interaction").id);
    }
    let mut server = server;
    assert!(server.terminate().success(), "SIGTERM");
    drop(server);
    let before = {
        let store =
            Store::from(SqliteStore::open(&StoreConfig::new(&sqlite_dir)).expect("open SQLite"));
        holdings(&store)
    };
    assert_eq!(before.open.len(), 3, "{before:?}");
    assert!(
        !before.tokens.is_empty() && !before.trees.is_empty(),
        "{before:?}"
    );

    // The move.
    let pg_dir = tmp.path().join("pg").join("data");
    std::fs::create_dir_all(&pg_dir).expect("pg data dir");
    api_common::copy_demo_tree(&tmp.path().join("pg"));
    std::fs::write(tmp.path().join("pg").join("postgres.url"), &db.url).expect("url");
    let config = api_common::backend_config(&pg_dir, &api_common::demo_config());
    let out = Command::new(GUICHET)
        .args(["migrate", "--from-sqlite"])
        .arg(&sqlite_dir)
        .arg("--config")
        .arg(&config)
        .output()
        .expect("run guichet migrate");
    assert!(
        out.status.success(),
        "migrate: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // Served on PostgreSQL: the same open interactions, through the same admin token.
    let server = Server::start(&pg_dir, &log);
    assert!(
        server
            .banner
            .iter()
            .any(|l| l.starts_with("recovered 3 open interaction(s)")),
        "{:?}",
        server.banner
    );
    assert!(
        !server.banner.iter().any(|l| l.contains("admin token")),
        "a new admin token was made: {:?}",
        server.banner
    );
    for id in &ids {
        let got = server
            .interactions(&admin)
            .get(pb::GetRequest {
                interaction_id: id.clone(),
            })
            .await
            .expect("Get with the SQLite installation's admin token")
            .into_inner();
        assert_eq!(&got.id, id);
    }
    let mut server = server;
    assert!(server.terminate().success(), "SIGTERM");
    drop(server);
    let after = {
        let store = Store::open(&db.store_config()).expect("open PostgreSQL");
        holdings(&store)
    };
    assert_eq!(before, after);
}
