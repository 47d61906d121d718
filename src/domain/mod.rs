//! Business rules, one module per domain, tested without HTTP. Resolvers call in here.

pub mod accounts;
pub mod chat;
pub mod chat_batch;
pub mod chat_send;
pub mod chat_shapes;
pub mod discovery;
pub mod events;
pub mod graph;
pub mod groups;
pub mod presence;
pub mod social;
pub mod users;
