//! Adapters behind small traits, chosen once in `app.rs`.

pub mod pubsub;
pub mod ratelimit;
pub mod sql;
