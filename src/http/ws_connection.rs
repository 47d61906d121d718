//! One GraphQL WebSocket from `connection_init` to its close: the protocol's
//! rules (`ws_protocol`) applied to what the client sends, the socket's
//! operations run through the socket executor and polled in one map, and the
//! reasons a server ends a socket: a refused or missing `connection_init`, a
//! broken rule, the session ending, an idle anonymous socket, shutdown.
//!
//! Everything runs in the socket's one task; a signed-in socket adds only its
//! session's watcher task. What a socket keeps while idle is this loop's
//! state, its operations' streams and the connection's data: the setup
//! (token check, presence, the watch) is boxed so its future is freed after.

use std::{
    collections::HashMap,
    sync::{Arc, OnceLock},
    task::Poll,
    time::Duration,
};

use async_graphql::{Data, Executor, Response, ServerError};
use axum::extract::ws::{Message, WebSocket};
use futures_util::{
    SinkExt, Stream, StreamExt, future::poll_fn, stream::BoxStream, stream::SplitSink,
};
use serde_json::Value;
use tokio::{sync::watch, time::Instant};

use super::ws_protocol::{self as protocol, ClientMessage, Close, Protocol, close};
use crate::{
    domain::{accounts::ClientInfo, presence::SocketPresence},
    error::{AppError, DATABASE_RETRY_AFTER_SECS},
    graphql::{
        error_codes,
        live::{self, SessionEnd, SessionWatch},
        viewer::RequestAuth,
    },
    http::HttpState,
};

type Sink = SplitSink<WebSocket, Message>;

/// The socket's running operations by the client's id.
type Operations = HashMap<String, Operation>;

struct Operation {
    responses: BoxStream<'static, Response>,
    /// Whether a response went out: only the first can say that the
    /// operation failed at setup.
    answered: bool,
}

/// What an acknowledged connection holds.
struct Connected {
    data: Arc<Data>,
    /// A socket without a viewer is closed when idle.
    anonymous: bool,
    /// Keeps the user online, and the socket counted against the per-user
    /// cap, until the socket closes.
    _online: Option<SocketPresence>,
    /// Ends when a signed-in socket's session does.
    session: Option<SessionWatch>,
}

/// A `connection_init` refused: the close code, and what the legacy
/// protocol's `connection_error` says.
struct Refusal {
    code: u16,
    error: ServerError,
}

impl From<AppError> for Refusal {
    fn from(err: AppError) -> Self {
        // The token could not be checked (the database did not answer, or
        // failed): the client may well try again.
        let code = match err {
            AppError::Internal(_) | AppError::Unavailable { .. } => close::TRY_AGAIN_LATER,
            _ => close::FORBIDDEN,
        };
        // An error of the connection, not of a place in a document: no
        // `locations`.
        let error = err.into_request_error();
        Self { code, error }
    }
}

/// What to do after a message or a response.
enum Step {
    Continue,
    Close(Close),
    /// The client left (or cannot be written to): nothing more to send.
    End,
}

/// The socket's settings and what it needs from the app.
pub struct Socket {
    pub state: HttpState,
    pub protocol: Protocol,
    /// Moved into the connection's data at `connection_init`.
    pub client: ClientInfo,
    /// Set to the viewer's id once a signed-in socket is acknowledged.
    pub signed_in: Arc<OnceLock<uuid::Uuid>>,
}

/// Serves the socket until it ends (or `stopping` turns true); the close the
/// server owes the client, if any, is returned for the caller to send.
pub async fn serve(
    socket: Socket,
    mut stopping: watch::Receiver<bool>,
    sink: &mut Sink,
    mut stream: impl Stream<Item = Result<Message, axum::Error>> + Unpin,
) -> Option<Close> {
    let settings = socket.state.settings();
    let init_deadline = Instant::now() + Duration::from_millis(settings.ws_init_timeout_millis);
    let idle = Duration::from_millis(settings.ws_anonymous_idle_millis);
    let mut conn = Conn {
        socket,
        sink,
        operations: Operations::new(),
        connected: None,
        idle_since: Instant::now(),
    };
    loop {
        let deadline = match &conn.connected {
            None => Some(init_deadline),
            Some(connected) if connected.anonymous && conn.operations.is_empty() => {
                Some(conn.idle_since + idle)
            }
            Some(_) => None,
        };
        let session = conn.connected.as_mut().and_then(|c| c.session.as_mut());
        let step = tokio::select! {
            biased;
            // The guard `wait_for` returns is not `Send`: dropped here.
            () = async { let _ = stopping.wait_for(|stopping| *stopping).await; } => {
                Step::Close(Close::new(close::GOING_AWAY, "server shutting down"))
            }
            end = async { match session { Some(watch) => watch.await, None => std::future::pending().await } } => {
                conn.session_ended(end).await
            }
            () = tokio::time::sleep_until(deadline.unwrap_or(init_deadline)), if deadline.is_some() => {
                if conn.connected.is_none() {
                    tracing::debug!("closed a socket that sent no connection_init in time");
                    Step::Close(Close::new(close::INIT_TIMEOUT, "Connection initialisation timeout"))
                } else {
                    Step::Close(Close::new(close::NORMAL, "idle"))
                }
            }
            message = stream.next() => conn.on_frame(message).await,
            (id, response) = next_response(&mut conn.operations) => {
                conn.on_response(id, response).await
            }
        };
        match step {
            Step::Continue => {}
            Step::Close(close) => return Some(close),
            Step::End => return None,
        }
    }
}

/// The next response of any operation (`None` when it ended), with its id.
/// Pending while there is none.
fn next_response(
    operations: &mut Operations,
) -> impl Future<Output = (String, Option<Response>)> + '_ {
    poll_fn(move |cx| {
        for (id, operation) in operations.iter_mut() {
            if let Poll::Ready(response) = operation.responses.poll_next_unpin(cx) {
                return Poll::Ready((id.clone(), response));
            }
        }
        Poll::Pending
    })
}

struct Conn<'a> {
    socket: Socket,
    sink: &'a mut Sink,
    operations: Operations,
    connected: Option<Connected>,
    /// When the last operation ended (or the socket was acknowledged).
    idle_since: Instant,
}

impl Conn<'_> {
    fn legacy(&self) -> bool {
        self.socket.protocol == Protocol::Legacy
    }

    async fn send(&mut self, text: String) -> Step {
        match self.sink.send(Message::Text(text.into())).await {
            Ok(()) => Step::Continue,
            Err(_) => Step::End,
        }
    }

    /// Closes with `code`; the legacy protocol says why in a
    /// `connection_error` first.
    async fn refuse(&mut self, code: u16, error: ServerError) -> Step {
        if self.legacy() {
            let text = protocol::connection_error(&error);
            if let Step::End = self.send(text).await {
                return Step::End;
            }
        }
        Step::Close(Close::new(code, error.message))
    }

    /// A signed-in socket's session was revoked or its access token
    /// expired, or could not be checked: the socket closes, and with it the
    /// user's presence.
    async fn session_ended(&mut self, end: SessionEnd) -> Step {
        let (code, error) = session_close(end);
        self.refuse(code, error).await
    }

    async fn on_frame(&mut self, frame: Option<Result<Message, axum::Error>>) -> Step {
        let text = match frame {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Binary(bytes))) => match String::from_utf8(bytes.to_vec()) {
                Ok(text) => text.into(),
                Err(_) => return self.invalid("a message must be UTF-8 JSON".into()).await,
            },
            // tungstenite answers pings itself.
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => return Step::Continue,
            // tungstenite has queued the answer to the client's close (its
            // code echoed, RFC 6455 §5.5.1), but writes it only on the next
            // read or flush: flushed here, or the connection would drop
            // without it and the client would see 1006.
            Some(Ok(Message::Close(_))) => {
                let _ = self.sink.flush().await;
                return Step::End;
            }
            None => return Step::End,
            Some(Err(err)) if is_too_big(&err) => {
                return Step::Close(Close::new(close::TOO_BIG, "message too big"));
            }
            Some(Err(_)) => return Step::End,
        };
        match protocol::parse(self.socket.protocol, text.as_str()) {
            Ok(message) => self.on_message(message).await,
            Err(why) => self.invalid(why).await,
        }
    }

    /// A message the protocol does not know: `graphql-transport-ws` closes
    /// with 4400; the legacy protocol answers with an `error`, as
    /// subscriptions-transport-ws servers do, and carries on.
    async fn invalid(&mut self, why: String) -> Step {
        if self.legacy() {
            let mut errors = [error_codes::coded_error(why, "BAD_USER_INPUT")];
            return self.send(protocol::error(None, &mut errors)).await;
        }
        Step::Close(Close::new(close::BAD_REQUEST, why))
    }

    async fn on_message(&mut self, message: ClientMessage) -> Step {
        match message {
            ClientMessage::ConnectionInit { payload } => self.on_init(payload).await,
            ClientMessage::Subscribe { id, request } => self.on_subscribe(id, *request).await,
            ClientMessage::Complete { id } => {
                let stopped = self.operations.remove(&id).is_some();
                self.note_if_idle();
                // The legacy protocol confirms a `stop`; graphql-transport-ws
                // sends nothing more for an operation the client completed.
                if stopped && self.legacy() {
                    return self.send(protocol::complete(&id)).await;
                }
                Step::Continue
            }
            ClientMessage::Ping { payload } => self.send(protocol::pong(payload.as_ref())).await,
            ClientMessage::Pong => Step::Continue,
            ClientMessage::Terminate => Step::Close(Close::new(close::NORMAL, "terminated")),
        }
    }

    async fn on_init(&mut self, payload: Value) -> Step {
        if self.connected.is_some() {
            let error =
                error_codes::coded_error("Too many initialisation requests", "BAD_USER_INPUT");
            return self.refuse(close::TOO_MANY_INITS, error).await;
        }
        // Boxed: the setup's future would otherwise stay inline in every
        // socket's task for its whole life.
        match Box::pin(connect(&mut self.socket, payload)).await {
            Ok(connected) => {
                self.connected = Some(connected);
                self.idle_since = Instant::now();
                self.send(protocol::ack()).await
            }
            Err(Refusal { code, error }) => self.refuse(code, error).await,
        }
    }

    async fn on_subscribe(&mut self, id: String, request: async_graphql::Request) -> Step {
        let Some(connected) = &self.connected else {
            if self.legacy() {
                let message = "send connection_init (and wait for connection_ack) first";
                let mut errors = [error_codes::coded_error(message, "UNAUTHENTICATED")];
                return self.send(protocol::error(Some(&id), &mut errors)).await;
            }
            return Step::Close(Close::new(close::UNAUTHORIZED, "Unauthorized"));
        };
        if self.operations.contains_key(&id) {
            // The legacy protocol's servers restart an operation whose id is
            // reused; graphql-transport-ws forbids it, since the client could
            // no longer tell the two apart.
            if !self.legacy() {
                let reason = format!("Subscriber for {id} already exists");
                return Step::Close(Close::new(close::SUBSCRIBER_EXISTS, reason));
            }
            self.operations.remove(&id);
        }
        let max = self.socket.state.settings().ws_max_subscriptions_per_socket;
        if self.operations.len() >= max {
            let message = format!(
                "this socket already runs {max} operations, the most it may; \
                 complete one first or open another socket"
            );
            let mut errors = [error_codes::coded_error(message, "BAD_USER_INPUT")];
            return self.send(protocol::error(Some(&id), &mut errors)).await;
        }
        let responses = (self.socket.state.socket_executor)
            .execute_stream(request, Some(connected.data.clone()));
        let operation = Operation {
            responses,
            answered: false,
        };
        self.operations.insert(id, operation);
        Step::Continue
    }

    async fn on_response(&mut self, id: String, response: Option<Response>) -> Step {
        let protocol = self.socket.protocol;
        let Some(operation) = self.operations.get_mut(&id) else {
            return Step::Continue;
        };
        let Some(mut response) = response else {
            self.operations.remove(&id);
            self.note_if_idle();
            return self.send(protocol::complete(&id)).await;
        };
        if !operation.answered && protocol::failed_at_setup(&response) {
            // `error` is the operation's last word: no `complete` follows.
            self.operations.remove(&id);
            self.note_if_idle();
            return self
                .send(protocol::error(Some(&id), &mut response.errors))
                .await;
        }
        operation.answered = true;
        self.send(protocol::next(protocol, &id, &response)).await
    }

    /// Starts the idle clock when the last operation ends.
    fn note_if_idle(&mut self) {
        if self.operations.is_empty() {
            self.idle_since = Instant::now();
        }
    }
}

/// How a socket whose session watch ended closes. A session that ended
/// (revoked, or its token expired) closes 4403: the client must not come back
/// with that token. One that could not be checked (a gap in the events while
/// the database is away) may well hold: 1013, which the graphql-ws client
/// retries, its `connection_init` checking the session again.
fn session_close(end: SessionEnd) -> (u16, ServerError) {
    match end {
        SessionEnd::Ended => (
            close::FORBIDDEN,
            error_codes::coded_error("session has ended", "UNAUTHENTICATED"),
        ),
        SessionEnd::Unchecked => {
            let error = AppError::Unavailable {
                retry_after_secs: DATABASE_RETRY_AFTER_SECS,
                message: "the session could not be checked; reconnect shortly".into(),
            };
            (close::TRY_AGAIN_LATER, error.into_request_error())
        }
    }
}

/// Checks the `connection_init`'s token. A signed-in socket watches its
/// session from now on and counts against its user's socket cap (and keeps
/// them online); either refusal closes it with 4403, a token that could not
/// be checked (the database away) with 1013.
async fn connect(socket: &mut Socket, payload: Value) -> Result<Connected, Refusal> {
    let app = &socket.state.app;
    let auth = RequestAuth::for_socket(init_token(&payload));
    let viewer = auth.viewer(&app.accounts).await?;
    let (mut online, mut session) = (None, None);
    if let Some(viewer) = viewer {
        session = Some(live::watch_session(&app.pubsub, &app.accounts, viewer).await?);
        let max = socket.state.settings().ws_max_sockets_per_user;
        let Some(presence) = app.presence.try_connect(viewer.user_id, max).await else {
            let message = format!("too many open connections (at most {max} per user)");
            return Err(Refusal {
                code: close::FORBIDDEN,
                error: error_codes::coded_error(message, "FORBIDDEN"),
            });
        };
        online = Some(presence);
        let _ = socket.signed_in.set(viewer.user_id);
    }
    let mut data = Data::default();
    data.insert(Arc::new(auth));
    data.insert(std::mem::take(&mut socket.client));
    Ok(Connected {
        data: Arc::new(data),
        anonymous: online.is_none(),
        _online: online,
        session,
    })
}

/// The token in a `connection_init` payload, under any of the keys clients use.
fn init_token(payload: &Value) -> Option<&str> {
    ["authorization", "Authorization", "token", "authToken"]
        .iter()
        .find_map(|key| payload.get(key)?.as_str())
}

/// Whether reading failed on a message over the size limit (tungstenite
/// then stops reading the socket, but it can still be written to).
fn is_too_big(err: &axum::Error) -> bool {
    std::error::Error::source(err)
        .and_then(|source| source.downcast_ref::<tungstenite::Error>())
        .is_some_and(|err| matches!(err, tungstenite::Error::Capacity(_)))
}
