//! GraphQL subscriptions over WebSocket, in both the `graphql-transport-ws` and the
//! legacy `graphql-ws` protocols: the upgrade, the close the server owes a
//! client, and the count of open sockets. The protocol's rules are
//! `ws_protocol`; one socket's life (its `connection_init`, operations and
//! reasons to close) is `ws_connection`. Sockets read into small buffers:
//! tungstenite's default 128 KiB per socket would dominate memory with many idle
//! subscribers. When the server stops, every socket is closed with 1001 (going
//! away), which clients take as "reconnect".

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{
    extract::{
        ConnectInfo, State,
        ws::{CloseFrame, Message, WebSocketUpgrade},
    },
    http::{StatusCode, request::Parts},
    response::{IntoResponse, Response},
};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::watch;

use super::{
    ws_connection::{self, Socket},
    ws_protocol::Protocol,
};
use crate::{graphql::documents::Documents, http, http::HttpState};

const READ_BUFFER_BYTES: usize = 1024;

/// How long a closing socket waits for the client's close frame: reading it
/// before the connection drops lets the client read ours (a connection
/// dropped with unread input is reset, and the reset can overtake the frame).
const CLOSE_PATIENCE: Duration = Duration::from_secs(1);

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
    let Some(protocol) = Protocol::negotiate(&parts.headers) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let client = http::client_info(&parts.headers, peer, state.settings().trust_forwarded_for);
    let max_message = state.settings().ws_max_message_bytes;
    upgrade
        .read_buffer_size(READ_BUFFER_BYTES)
        .max_message_size(max_message)
        .max_frame_size(max_message)
        .protocols([protocol.name()])
        .on_upgrade(move |socket| async move {
            let _open = OpenSocket::count(&state.sockets);
            // The sink stays here, so the close frame goes out however the
            // socket ends.
            let (mut sink, stream) = socket.split();
            let signed_in = Arc::new(std::sync::OnceLock::new());
            // The documents go only where there are writers to mark.
            let writers =
                (state.recent_writers.clone()).map(|writers| (writers, state.documents.clone()));
            let mut stream = mark_writers(stream, writers, signed_in.clone());
            let stopping = state.sockets.stopping.clone();
            let socket = Socket {
                state,
                protocol,
                client,
                signed_in,
            };
            let Some(close) = ws_connection::serve(socket, stopping, &mut sink, &mut stream).await
            else {
                return;
            };
            let frame = CloseFrame {
                code: close.code,
                reason: close.reason.as_ref().into(),
            };
            let _ = tokio::time::timeout(CLOSE_PATIENCE, async {
                if sink.send(Message::Close(Some(frame))).await.is_ok() {
                    while let Some(Ok(message)) = stream.next().await {
                        if let Message::Close(_) = message {
                            break;
                        }
                    }
                }
            })
            .await;
        })
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
