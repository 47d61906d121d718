//! Adapters behind small traits, chosen once in `app.rs`.

pub mod cache;
pub mod db;
pub mod pubsub;
pub mod ratelimit;
pub mod redis;
pub mod sql;
pub mod statements;
