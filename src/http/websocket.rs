//! GraphQL subscriptions over WebSocket, in both the `graphql-transport-ws` and the
//! legacy `graphql-ws` protocols. The token comes in `connection_init`; a bad one
//! refuses the connection, as does one over the per-user socket cap, and a socket
//! that sends no `connection_init` in time is dropped. Sockets read into small
//! buffers: tungstenite's default 128 KiB per socket would dominate memory with
//! many idle subscribers. When the server stops, every socket is closed with
//! 1001 (going away), which clients take as "reconnect".

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use async_graphql::{Data, http::ALL_WEBSOCKET_PROTOCOLS};
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::{
    extract::{
        ConnectInfo, FromRequestParts, State,
        ws::{CloseFrame, Message, WebSocketUpgrade, close_code},
    },
    http::request::Parts,
    response::{IntoResponse, Response},
};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{Notify, watch};

use crate::{app::HttpState, auth::RequestAuth, graphql::documents::Documents, http};

const READ_BUFFER_BYTES: usize = 1024;

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
            let mut stopping = state.sockets.stopping.clone();
            let _open = OpenSocket::count(&state.sockets);
            // The sink stays here, so a close frame can still be sent when the
            // server stops.
            let (mut sink, stream) = socket.split();
            let signed_in = Arc::new(std::sync::OnceLock::new());
            // The documents go only where there are writers to mark.
            let writers =
                (state.recent_writers.clone()).map(|writers| (writers, state.documents.clone()));
            let stream = mark_writers(stream, writers, signed_in.clone());
            let settings = state.settings();
            let max_sockets = settings.ws_max_sockets_per_user;
            let init_timeout = Duration::from_millis(settings.ws_init_timeout_millis);
            let initialised = Arc::new(Notify::new());
            let serve = GraphQLWebSocket::new_with_pair(
                &mut sink,
                stream,
                state.socket_executor.clone(),
                protocol,
            )
            .on_connection_init({
                let (initialised, state) = (initialised.clone(), state.clone());
                move |payload| async move {
                    let (accounts, presence) = (&state.app.accounts, &state.app.presence);
                    let auth = RequestAuth::for_socket(init_token(&payload));
                    // Checked now, so a bad token refuses the socket outright.
                    let viewer = auth.viewer(accounts).await?;
                    let mut data = Data::default();
                    if let Some(viewer) = viewer {
                        // A signed-in socket keeps its user online while the
                        // connection's data lives, that is, as long as the socket.
                        let Some(online) = presence.try_connect(viewer.user_id, max_sockets).await
                        else {
                            return Err(async_graphql::Error::new(format!(
                                "too many open connections (at most {max_sockets} per user)"
                            )));
                        };
                        data.insert(online);
                        let _ = signed_in.set(viewer.user_id);
                    }
                    data.insert(Arc::new(auth));
                    data.insert(client);
                    initialised.notify_one();
                    Ok(data)
                }
            })
            .serve();
            // A socket that never says hello is dropped, rather than holding a
            // connection slot (and its memory) forever.
            let hello_or_timeout = async {
                if tokio::time::timeout(init_timeout, initialised.notified())
                    .await
                    .is_ok()
                {
                    std::future::pending::<()>().await;
                }
            };
            let going_away = tokio::select! {
                () = serve => false,
                () = hello_or_timeout => {
                    tracing::debug!("closed a socket that sent no connection_init in time");
                    false
                }
                _ = stopping.wait_for(|stopping| *stopping) => true,
            };
            if going_away {
                let close = CloseFrame {
                    code: close_code::AWAY,
                    reason: "server shutting down".into(),
                };
                let _ = tokio::time::timeout(
                    Duration::from_secs(1),
                    sink.send(Message::Close(Some(close))),
                )
                .await;
            }
        })
}

/// The token in a `connection_init` payload, under any of the keys clients use.
fn init_token(payload: &serde_json::Value) -> Option<&str> {
    ["authorization", "Authorization", "token", "authToken"]
        .iter()
        .find_map(|key| payload.get(key)?.as_str())
}

/// The open sockets, and word that the server is stopping.
#[derive(Clone)]
pub struct Sockets {
    stop: Arc<watch::Sender<bool>>,
    stopping: watch::Receiver<bool>,
    open: Arc<AtomicUsize>,
}

impl Default for Sockets {
    fn default() -> Self {
        let (stop, stopping) = watch::channel(false);
        Self {
            stop: Arc::new(stop),
            stopping,
            open: Arc::default(),
        }
    }
}

impl Sockets {
    /// Closes every socket, now and as they open, with "going away".
    pub fn close_all(&self) {
        self.stop.send_replace(true);
    }

    /// Waits, at most `patience`, until every socket has closed.
    pub async fn closed(&self, patience: Duration) {
        let deadline = tokio::time::Instant::now() + patience;
        while self.open.load(Ordering::Relaxed) > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// With a read replica: a mutation sent over the socket marks its user as a
/// writer as it arrives (before it runs), so their next queries over HTTP read
/// it back from the primary.
fn mark_writers<S>(
    stream: S,
    writers: Option<(http::reads::RecentWriters, Documents)>,
    signed_in: Arc<std::sync::OnceLock<uuid::Uuid>>,
) -> impl futures_util::Stream<Item = S::Item> + Unpin + Send + 'static
where
    S: futures_util::Stream<Item = Result<Message, axum::Error>> + Unpin + Send + 'static,
{
    stream.inspect(move |message| {
        let (Some((writers, documents)), Some(&user_id), Ok(Message::Text(text))) =
            (&writers, signed_in.get(), message)
        else {
            return;
        };
        if starts_mutation(documents, text.as_str()) {
            tokio::spawn(writers.user_wrote(user_id));
        }
    })
}

/// Whether a client message (either protocol) starts an operation that
/// selects a mutation.
fn starts_mutation(documents: &Documents, text: &str) -> bool {
    #[derive(serde::Deserialize)]
    struct Start {
        r#type: String,
        payload: Option<async_graphql::Request>,
    }
    match serde_json::from_str::<Start>(text) {
        Ok(Start {
            r#type,
            payload: Some(request),
        }) if r#type == "subscribe" || r#type == "start" => {
            http::graphql::selects_mutation(documents, &request)
        }
        _ => false,
    }
}

/// Keeps the open-socket count and gauge right however the socket ends.
struct OpenSocket(Arc<AtomicUsize>);

impl OpenSocket {
    fn count(sockets: &Sockets) -> Self {
        sockets.open.fetch_add(1, Ordering::Relaxed);
        metrics::gauge!("kith_websocket_connections").increment(1.0);
        Self(sockets.open.clone())
    }
}

impl Drop for OpenSocket {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
        metrics::gauge!("kith_websocket_connections").decrement(1.0);
    }
}
