//! Business rules, one module per domain, tested without HTTP. Resolvers call in here.

pub mod accounts;
pub mod chat;
pub mod compatibility;
pub mod discovery;
pub mod discovery_index;
pub mod events;
pub mod groups;
pub mod identity;
pub mod presence;
pub mod recommendations;
pub mod social;
pub mod usernames;
pub mod users;

/// The cached friend and block lists, social's own: their old path, for those
/// who still name it.
pub use social::graph;
