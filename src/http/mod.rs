//! HTTP endpoints around the schema: GraphQL over HTTP and WebSocket, GraphiQL,
//! health, metrics, and the bytes of stored media.

pub mod cors;
pub mod graphiql;
pub mod graphql;
pub mod health;
pub mod media;
pub mod metrics;
pub mod multipart;
pub mod reads;
pub mod router;
pub mod serve;
pub mod state;
pub mod websocket;
pub mod ws_connection;
pub mod ws_protocol;

use std::net::{IpAddr, SocketAddr};

use axum::http::{HeaderMap, header};

pub use self::{
    router::router,
    state::{HttpServices, HttpState},
};
use crate::domain::accounts::ClientInfo;

/// The client's address and user agent; behind a trusted proxy, the address is
/// the last `X-Forwarded-For` entry (the one the proxy itself appended).
pub fn client_info(headers: &HeaderMap, peer: SocketAddr, trust_forwarded_for: bool) -> ClientInfo {
    let forwarded = trust_forwarded_for
        .then(|| headers.get("x-forwarded-for")?.to_str().ok())
        .flatten()
        .and_then(|value| value.rsplit(',').next())
        .and_then(|last| last.trim().parse::<IpAddr>().ok());
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|ua| ua.chars().take(256).collect());
    ClientInfo {
        ip: Some(forwarded.unwrap_or(peer.ip())),
        user_agent,
    }
}
