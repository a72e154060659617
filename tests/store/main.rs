//! The store: the journal and its tables on SQLite and PostgreSQL, and schema upgrades. One test
//! binary, one module per subject (`.ci/run` runs `postgres::` and `tables::` alone with a
//! PostgreSQL server). Support: `pg_common` (a throwaway database when
//! `GUICHET_TEST_POSTGRES_URL` is set).

#[path = "../pg_common/mod.rs"]
mod pg_common;

mod journal;
mod postgres;
mod tables;
mod upgrade;
