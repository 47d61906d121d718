//! kith: one GraphQL server for social, dating and messaging apps.
//!
//! - `app`: wiring and serving        - `config`: settings
//! - `auth`: tokens, passwords        - `domain`: business rules, per domain
//! - `graphql`: the schema            - `http`: endpoints around it
//! - `infra`: adapters (limits, pub/sub)  - `error`: the error type and codes
//! - `seed`: demo data

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
