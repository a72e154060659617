//! Throwaway PostgreSQL databases for the tests that run the store on PostgreSQL.
//!
//! The runs need a server: `GUICHET_TEST_POSTGRES_URL` names a database on it that the tests
//! may connect to and whose user may create databases (`.ci/run` starts such a cluster). Each
//! test gets a database of its own, created here and dropped when its [`PgDb`] goes. Without
//! the variable, [`PgDb::create`] returns `None` and prints once, visibly, why the PostgreSQL
//! runs are skipped.

#![allow(dead_code)]

use std::io::Write;
use std::str::FromStr;
use std::sync::Once;

use guichet::store::{Backend, StoreConfig};

/// The environment variable naming the test server's database.
pub const URL_VAR: &str = "GUICHET_TEST_POSTGRES_URL";

static SKIPPED: Once = Once::new();

/// A database created for one test, dropped at the end.
pub struct PgDb {
    admin: String,
    pub name: String,
    pub url: String,
}

impl PgDb {
    /// A new empty database, or `None` (after one line on stderr) without a test server.
    /// Safe to call from an async test: the synchronous driver runs on a thread of its own.
    pub fn create() -> Option<PgDb> {
        std::thread::scope(|s| {
            s.spawn(PgDb::create_here)
                .join()
                .expect("create the database")
        })
    }

    fn create_here() -> Option<PgDb> {
        let Ok(admin) = std::env::var(URL_VAR) else {
            SKIPPED.call_once(|| {
                // Written to the real stderr (not through eprintln!, which the test harness
                // captures), so that `cargo test` shows it.
                let _ = writeln!(
                    std::io::stderr().lock(),
                    "PostgreSQL runs skipped: {URL_VAR} is not set (`.ci/run` starts a throwaway \
                     PostgreSQL and sets it; see docs/storage.md)"
                );
            });
            return None;
        };
        let name = format!("guichet_t_{}", ulid::Ulid::new().to_string().to_lowercase());
        let mut client = connect(&admin);
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create the test database");
        let mut config = postgres::Config::from_str(&admin).expect("test URL");
        config.dbname(&name);
        let url = url_of(&config);
        Some(PgDb { admin, name, url })
    }

    /// A store configuration on this database.
    pub fn store_config(&self) -> StoreConfig {
        StoreConfig {
            backend: Backend::Postgres,
            url: Some(self.url.clone()),
            ..StoreConfig::default()
        }
    }

    /// A plain connection to this database.
    pub fn client(&self) -> postgres::Client {
        connect(&self.url)
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let (admin, name) = (&self.admin, &self.name);
        std::thread::scope(|s| {
            s.spawn(|| {
                let mut client = connect(admin);
                let _ =
                    client.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            });
        });
    }
}

fn connect(url: &str) -> postgres::Client {
    postgres::Client::connect(url, postgres::NoTls).expect("connect to the test server")
}

/// `config` back as a URL (the tests' server needs no password).
fn url_of(config: &postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(h)) => h.clone(),
        _ => "127.0.0.1".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "postgres://{}@{host}:{port}/{}",
        config.get_user().unwrap_or("postgres"),
        config.get_dbname().unwrap_or("postgres")
    )
}
