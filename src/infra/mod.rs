//! Adapters behind small traits, chosen once in `state.rs` (the services)
//! and `app.rs` (the database connection).

pub mod cache;
pub mod db;
pub mod event_sink;
pub mod identity_providers;
pub mod media_cache;
pub mod media_store;
pub mod pubsub;
pub mod ratelimit;
pub mod redis;
pub mod sms;
pub mod sql;
pub mod statements;
pub mod webhook;
