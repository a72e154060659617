//! In-process tests that belong to no larger family: the configuration (`check-config`, the
//! notification sections, every key documented under `docs/`), the layers of `src/`, the fuzzed
//! parsers, the figures' fold and outbound email. One test binary, one module per subject
//! (`cargo test --test misc -- fuzz_parsers::` runs one).

#[path = "../notify_common/mod.rs"]
mod notify_common;

mod architecture;
mod config_check;
mod docs_config_keys;
mod fuzz_parsers;
mod notify_config;
mod notify_email;
mod obs_figures;
