//! GraphQL subscriptions over WebSocket, in both the `graphql-transport-ws` and the
//! legacy `graphql-ws` protocols. The token comes in `connection_init`; a bad one
//! refuses the connection. Sockets read into small buffers: tungstenite's default
//! 128 KiB per socket would dominate memory with many idle subscribers.

use std::{net::SocketAddr, sync::Arc};

use async_graphql::{Data, http::ALL_WEBSOCKET_PROTOCOLS};
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::{
    extract::{ConnectInfo, FromRequestParts, State, ws::WebSocketUpgrade},
    http::request::Parts,
    response::{IntoResponse, Response},
};

use crate::{app::HttpState, auth::RequestAuth, http};

const READ_BUFFER_BYTES: usize = 4096;

/// `GET /graphql/ws`.
pub async fn handler(
    State(state): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ws: WebSocketUpgrade,
    request: axum::extract::Request,
) -> Response {
    let (parts, _) = request.into_parts();
    upgrade(state, ws, &parts, peer).await
}

/// Upgrades a request already known to ask for a WebSocket.
pub async fn upgrade(
    state: HttpState,
    upgrade: WebSocketUpgrade,
    parts: &Parts,
    peer: SocketAddr,
) -> Response {
    let mut parts = parts.clone();
    let protocol = match GraphQLProtocol::from_request_parts(&mut parts, &()).await {
        Ok(protocol) => protocol,
        Err(rejection) => return rejection.into_response(),
    };
    let client = http::client_info(&parts.headers, peer, state.settings().trust_forwarded_for);
    let max_message = state.settings().ws_max_message_bytes;
    upgrade
        .read_buffer_size(READ_BUFFER_BYTES)
        .max_message_size(max_message)
        .max_frame_size(max_message)
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| async move {
            let accounts = state.app.accounts.clone();
            let presence = state.app.presence.clone();
            let _open = OpenSocket::count();
            GraphQLWebSocket::new(socket, state.schema.clone(), protocol)
                .on_connection_init(move |payload| async move {
                    let auth = RequestAuth::for_socket(init_token(&payload));
                    // Checked now, so a bad token refuses the socket outright.
                    let viewer = auth.viewer(&accounts).await?;
                    let mut data = Data::default();
                    // A signed-in socket keeps its user online while the
                    // connection's data lives, that is, as long as the socket.
                    if let Some(viewer) = viewer {
                        data.insert(presence.connect(viewer.user_id));
                    }
                    data.insert(Arc::new(auth));
                    data.insert(client);
                    Ok(data)
                })
                .serve()
                .await;
        })
}

/// The token in a `connection_init` payload, under any of the keys clients use.
fn init_token(payload: &serde_json::Value) -> Option<&str> {
    ["authorization", "Authorization", "token", "authToken"]
        .iter()
        .find_map(|key| payload.get(key)?.as_str())
}

/// Keeps the open-socket gauge right however the socket ends.
struct OpenSocket;

impl OpenSocket {
    fn count() -> Self {
        metrics::gauge!("kith_websocket_connections").increment(1.0);
        Self
    }
}

impl Drop for OpenSocket {
    fn drop(&mut self) {
        metrics::gauge!("kith_websocket_connections").decrement(1.0);
    }
}
