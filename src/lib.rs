//! kith: one GraphQL server for social, dating and messaging apps.
//!
//! Layers, each of which names only those below it (`.ci/layers` checks):
//!
//! - `app`: connecting, migrating, serving; `seed`: demo data
//! - `http`: endpoints around the schema
//! - `graphql`: the schema
//! - `state`: the services every request shares, wired from settings
//! - `domain`: business rules, a folder per domain
//! - `auth`: passwords and tokens; `infra`: adapters (database, Redis,
//!   pub/sub, caches, limits)
//! - `config`: settings; `error`: the error type and codes; `telemetry`

pub mod app;
pub mod auth;
pub mod config;
pub mod domain;
pub mod error;
pub mod graphql;
pub mod http;
pub mod infra;
pub mod seed;
pub mod state;
pub mod telemetry;
