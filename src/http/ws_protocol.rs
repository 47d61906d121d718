//! The two GraphQL-over-WebSocket protocols as messages and rules:
//! `graphql-transport-ws` (the graphql-ws library's PROTOCOL.md), where a
//! broken rule closes the socket with a code that clients read to decide
//! whether to reconnect, and the legacy `graphql-ws` (subscriptions-transport-ws),
//! which says the same things with `connection_error` and `error` messages.
//! The socket loop that applies them is `ws_connection`.

use std::borrow::Cow;

use async_graphql::{Request, Response, ServerError};
use axum::http::{HeaderMap, header};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::graphql::error_codes;

/// The close codes kith uses: the graphql-ws library retries on some and
/// gives up on others, so each says exactly what happened.
pub mod close {
    /// The client sent `connection_terminate` (legacy), or a socket without a
    /// viewer sat idle.
    pub const NORMAL: u16 = 1000;
    /// The server is stopping: reconnect (to another replica).
    pub const GOING_AWAY: u16 = 1001;
    /// A message over `KITH_WS_MAX_MESSAGE_BYTES`.
    pub const TOO_BIG: u16 = 1009;
    /// The token could not be checked (the database did not answer): a
    /// retryable code for the graphql-ws client, unlike 1011 or 4500.
    pub const TRY_AGAIN_LATER: u16 = 1013;
    pub const BAD_REQUEST: u16 = 4400;
    /// An operation before `connection_ack`.
    pub const UNAUTHORIZED: u16 = 4401;
    /// A refused `connection_init`, or the socket's session ended.
    pub const FORBIDDEN: u16 = 4403;
    pub const INIT_TIMEOUT: u16 = 4408;
    pub const SUBSCRIBER_EXISTS: u16 = 4409;
    pub const TOO_MANY_INITS: u16 = 4429;
}

/// The protocol a socket speaks, chosen at the upgrade.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// `graphql-transport-ws`, spoken by the graphql-ws library.
    TransportWs,
    /// `graphql-ws`, the legacy subscriptions-transport-ws protocol.
    Legacy,
}

impl Protocol {
    /// The first protocol the client offers that kith speaks.
    pub fn negotiate(headers: &HeaderMap) -> Option<Self> {
        let offered = headers.get(header::SEC_WEBSOCKET_PROTOCOL)?.to_str().ok()?;
        offered.split(',').find_map(|name| {
            let name = name.trim();
            if name.eq_ignore_ascii_case("graphql-transport-ws") {
                Some(Self::TransportWs)
            } else if name.eq_ignore_ascii_case("graphql-ws") {
                Some(Self::Legacy)
            } else {
                None
            }
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::TransportWs => "graphql-transport-ws",
            Self::Legacy => "graphql-ws",
        }
    }
}

/// Why the server closes a socket, as the close frame says it.
#[derive(Debug)]
pub struct Close {
    pub code: u16,
    pub reason: Cow<'static, str>,
}

impl Close {
    pub fn new(code: u16, reason: impl Into<Cow<'static, str>>) -> Self {
        let mut reason = reason.into();
        // A close frame's reason has room for 123 bytes.
        if reason.len() > 123 {
            let mut end = 123;
            while !reason.is_char_boundary(end) {
                end -= 1;
            }
            reason = Cow::Owned(reason[..end].to_owned());
        }
        Self { code, reason }
    }
}

/// A message from the client, in either protocol's words.
#[derive(Debug)]
pub enum ClientMessage {
    ConnectionInit {
        payload: Value,
    },
    /// `subscribe`, or the legacy `start`.
    Subscribe {
        id: String,
        request: Box<Request>,
    },
    /// `complete` from the client, or the legacy `stop`.
    Complete {
        id: String,
    },
    Ping {
        payload: Option<Value>,
    },
    Pong,
    /// Legacy only: the client is leaving.
    Terminate,
}

/// Every message type of both protocols; which belong to which is checked
/// after parsing.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Wire {
    ConnectionInit {
        #[serde(default)]
        payload: Option<Value>,
    },
    Subscribe {
        id: String,
        payload: Box<Request>,
    },
    Start {
        id: String,
        payload: Box<Request>,
    },
    Complete {
        id: String,
    },
    Stop {
        id: String,
    },
    Ping {
        #[serde(default)]
        payload: Option<Value>,
    },
    Pong {},
    ConnectionTerminate {},
}

/// The client's message, or why it is not a valid one in `protocol`: bad JSON,
/// an unknown type (or the other protocol's), a missing `id`, a payload of
/// the wrong shape.
pub fn parse(protocol: Protocol, text: &str) -> Result<ClientMessage, String> {
    let wire: Wire = serde_json::from_str(text).map_err(|err| format!("invalid message: {err}"))?;
    let transport = protocol == Protocol::TransportWs;
    let message = match wire {
        Wire::ConnectionInit { payload } => match payload {
            None | Some(Value::Null) => ClientMessage::ConnectionInit {
                payload: Value::Null,
            },
            Some(payload @ Value::Object(_)) => ClientMessage::ConnectionInit { payload },
            Some(_) => return Err("connection_init payload must be an object".into()),
        },
        Wire::Subscribe { id, payload } if transport => ClientMessage::Subscribe {
            id,
            request: payload,
        },
        Wire::Start { id, payload } if !transport => ClientMessage::Subscribe {
            id,
            request: payload,
        },
        Wire::Complete { id } if transport => ClientMessage::Complete { id },
        Wire::Stop { id } if !transport => ClientMessage::Complete { id },
        Wire::Ping { payload } if transport => ClientMessage::Ping { payload },
        Wire::Pong {} if transport => ClientMessage::Pong,
        Wire::ConnectionTerminate {} if !transport => ClientMessage::Terminate,
        _ => return Err(format!("message type not in {}", protocol.name())),
    };
    Ok(message)
}

/// A message to the client, in either protocol's words.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ServerMessage<'a> {
    ConnectionAck,
    /// Legacy: the connection is refused or ended.
    ConnectionError {
        payload: &'a ServerError,
    },
    Next {
        id: &'a str,
        payload: &'a Response,
    },
    /// Legacy `next`.
    Data {
        id: &'a str,
        payload: &'a Response,
    },
    /// An operation that failed before it ran; nothing follows for its id.
    Error {
        id: Option<&'a str>,
        payload: &'a [ServerError],
    },
    Complete {
        id: &'a str,
    },
    Pong {
        #[serde(skip_serializing_if = "Option::is_none")]
        payload: Option<&'a Value>,
    },
}

impl ServerMessage<'_> {
    fn text(&self) -> String {
        // Serializing these types cannot fail: string keys, no maps of
        // other keys, no non-finite floats that serde_json refuses as values.
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"))
    }
}

pub fn ack() -> String {
    ServerMessage::ConnectionAck.text()
}

pub fn pong(payload: Option<&Value>) -> String {
    ServerMessage::Pong { payload }.text()
}

pub fn complete(id: &str) -> String {
    ServerMessage::Complete { id }.text()
}

/// Legacy: `connection_error`, before the server closes the socket.
pub fn connection_error(error: &ServerError) -> String {
    ServerMessage::ConnectionError { payload: error }.text()
}

/// One of an operation's results: `next`, or `data` in the legacy protocol.
pub fn next(protocol: Protocol, id: &str, payload: &Response) -> String {
    match protocol {
        Protocol::TransportWs => ServerMessage::Next { id, payload },
        Protocol::Legacy => ServerMessage::Data { id, payload },
    }
    .text()
}

/// An operation that failed at setup, in either protocol: `error` with the
/// GraphQL errors, each with its `extensions.code`. (The legacy protocol's
/// clients read an array there as well as a single error.)
pub fn error(id: Option<&str>, errors: &mut [ServerError]) -> String {
    // The schema's extension has coded them already; the socket's own
    // errors are coded too. This keeps the promise whatever changes there.
    errors.iter_mut().for_each(error_codes::ensure_code);
    ServerMessage::Error {
        id,
        payload: errors,
    }
    .text()
}

/// Whether an operation's first response says it failed before it ran: no
/// data, only errors (a document that does not parse or validate, a
/// subscription resolver that refuses). Such an operation gets `error`
/// instead of `next` and `complete`. An operation that ran with field errors
/// has data (its nullable fields null), and keeps `next` and `complete`.
pub fn failed_at_setup(first: &Response) -> bool {
    first.data == async_graphql::Value::Null && !first.errors.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_protocol_accepts_only_its_own_message_types() {
        let subscribe = r#"{"id":"1","type":"subscribe","payload":{"query":"{ me { id } }"}}"#;
        let start = r#"{"id":"1","type":"start","payload":{"query":"{ me { id } }"}}"#;
        assert!(matches!(
            parse(Protocol::TransportWs, subscribe),
            Ok(ClientMessage::Subscribe { .. })
        ));
        assert!(parse(Protocol::TransportWs, start).is_err());
        assert!(matches!(
            parse(Protocol::Legacy, start),
            Ok(ClientMessage::Subscribe { .. })
        ));
        assert!(parse(Protocol::Legacy, subscribe).is_err());
        assert!(parse(Protocol::Legacy, r#"{"type":"ping"}"#).is_err());
    }

    #[test]
    fn malformed_messages_are_refused_with_a_reason() {
        for text in [
            "not json",
            r#"{"type":"unknown"}"#,
            r#"{"type":"subscribe","payload":{"query":"{ me { id } }"}}"#,
            r#"{"id":"1","type":"subscribe","payload":"{ me { id } }"}"#,
            r#"{"type":"connection_init","payload":"token"}"#,
        ] {
            assert!(parse(Protocol::TransportWs, text).is_err(), "{text}");
        }
    }

    #[test]
    fn a_close_reason_fits_its_frame() {
        let close = Close::new(close::SUBSCRIBER_EXISTS, "é".repeat(100));
        assert!(close.reason.len() <= 123);
    }

    #[test]
    fn setup_errors_get_a_code() {
        let mut errors = [ServerError::new("unknown field", None)];
        let text = error(Some("1"), &mut errors);
        let message: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(message["type"], "error");
        assert_eq!(
            message["payload"][0]["extensions"]["code"],
            "BAD_USER_INPUT"
        );
    }
}
