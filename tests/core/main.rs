//! The routing core, pure and in-process: its rules, consultations, fairness, forced assignment
//! and the property tests replaying every event. One test binary, one module per subject. The
//! memory test stays in `tests/core_memory.rs`, a binary of its own: it installs a counting global
//! allocator. Support: `core_common` (a router on a settable clock with a replay check).

#[path = "../core_common/mod.rs"]
mod core_common;

mod consult;
mod fairness;
mod force_assign;
mod properties;
mod rules;
