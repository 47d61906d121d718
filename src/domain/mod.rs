//! Business rules, one module per domain, tested without HTTP. Resolvers call in here.

pub mod accounts;
pub mod chat;
pub mod discovery;
pub mod events;
pub mod groups;
pub mod media;
pub mod outbox;
pub mod presence;
pub mod social;
pub mod users;
