//! The SQLite store: configuration tables and the event journal.
