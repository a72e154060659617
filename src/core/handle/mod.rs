//! `Router::handle`'s commands, one file per kind of request. `Router::dispatch` (in
//! `router.rs`) sends each command to its function here.

mod agents;
mod consults;
mod endings;
mod intake;
mod moves;
mod offers;
mod queues;
