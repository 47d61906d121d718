//! The integration tests against the real server, as one test binary: each
//! file under `tests/` was once a binary of its own, every one linking all of
//! kith, so each change in `src/` relinked them all and the target directory
//! grew by a full link per file. One module per former file now; run one
//! file's tests with `cargo test --test api accounts::` (or
//! `cargo nextest run -E 'test(/^accounts::/)'`).
//!
//! Under `cargo test` the tests of every module share this process, so what
//! is process-wide (the metrics recorder above all) is shared with whatever
//! runs alongside. A test that asserts on it runs its body in a process of its
//! own: see [`common::in_own_process`].
//!
//! `services` tests the domain's rules with branches at the service level,
//! against a fresh SQLite database, without HTTP.

mod common;

mod accounts;
mod authz;
mod bad_input;
mod chat;
mod chat_events;
mod chat_races;
mod connections;
mod cost_soundness;
mod discovery;
mod events;
mod field_errors;
mod first_run;
mod fuzz_documents;
mod fuzz_frames;
mod groups;
mod groups_matrix;
mod groups_races;
mod limits;
mod media;
mod outage;
mod presence;
mod read_replica;
mod replicas;
mod schema;
mod send_batches;
mod services;
mod sign_in;
mod social;
mod social_races;
mod subscription_leaks;
mod transport;
mod websocket;
mod ws_protocol;
