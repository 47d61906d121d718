//! A bounded fuzz of WebSocket frames through the real server, on both
//! protocols: valid messages mutated at random (types, ids, payloads, JSON
//! broken or nested, repeated inits and subscribes). Whatever a socket is sent,
//! it either keeps answering or is closed with a code its protocol defines
//! (never dropped without a close frame, never 1011), and the process stays up.
//!
//! `KITH_FUZZ_ITERATIONS` (sockets, default 150) and `KITH_FUZZ_SEED` set the
//! run, as in `fuzz_documents.rs`.

use crate::common;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde_json::json;
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest, http::HeaderValue};

/// The codes a socket may be closed with (see README, WebSocket).
const PROTOCOL_CODES: [u16; 10] = [1000, 1001, 1009, 1013, 4400, 4401, 4403, 4408, 4409, 4429];

fn messages(token: &str) -> Vec<String> {
    let subscription = "subscription { notifications { __typename } }";
    [
        json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {token}") } }),
        json!({ "type": "connection_init", "payload": {} }),
        json!({ "type": "connection_init", "payload": "not an object" }),
        json!({ "id": "1", "type": "subscribe", "payload": { "query": subscription } }),
        json!({ "id": "1", "type": "start", "payload": { "query": "{ __typename }" } }),
        json!({ "id": "2", "type": "subscribe", "payload": { "query": "{ me { id } }" } }),
        json!({ "id": "1", "type": "complete" }),
        json!({ "id": "1", "type": "stop" }),
        json!({ "type": "ping", "payload": { "x": 1 } }),
        json!({ "type": "pong" }),
        json!({ "type": "connection_terminate" }),
        json!({ "type": "unknown" }),
        json!({ "id": 7, "type": "subscribe", "payload": [] }),
    ]
    .iter()
    .map(|message| message.to_string())
    .collect()
}

fn mutate(rng: &mut StdRng, text: &str) -> String {
    let bytes = text.as_bytes();
    let at = rng.random_range(0..=bytes.len());
    let out = match rng.random_range(0..5) {
        0 => {
            let mut owned = bytes.to_vec();
            if at < owned.len() {
                owned.remove(at);
            }
            owned
        }
        1 => {
            let piece =
                ["{", "[", "\"", "}", "]", ",", ":", "null", "\\u0000"][rng.random_range(0..9)];
            [
                &bytes[..at],
                piece.repeat(rng.random_range(1..300)).as_bytes(),
                &bytes[at..],
            ]
            .concat()
        }
        2 => bytes.repeat(rng.random_range(2..50)),
        3 => {
            let deep = rng.random_range(1..200);
            format!("{}{text}{}", "[".repeat(deep), "]".repeat(deep)).into_bytes()
        }
        _ => bytes.to_vec(),
    };
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn random_frames_get_protocol_answers_or_protocol_closes() {
    let (iterations, seed) = common::fuzz_run(150);
    let mut rng = StdRng::seed_from_u64(seed);
    let app = common::spawn_app_with(|settings| {
        settings.ws_max_message_bytes = 16 * 1024;
        settings.ws_max_sockets_per_user = 1_000;
    })
    .await;
    let user = app.register("framer").await;
    let corpus = messages(&user.access_token);
    for iteration in 0..iterations {
        let protocol = if rng.random_bool(0.5) {
            "graphql-transport-ws"
        } else {
            "graphql-ws"
        };
        let mut request = format!("ws://{}/graphql", app.addr)
            .into_client_request()
            .unwrap();
        request
            .headers_mut()
            .insert("sec-websocket-protocol", HeaderValue::from_static(protocol));
        let (mut socket, _) = tokio_tungstenite::connect_async(request)
            .await
            .unwrap_or_else(|err| panic!("KITH_FUZZ_SEED={seed}, iteration {iteration}: {err}"));
        let mut sent = Vec::new();
        for _ in 0..rng.random_range(1..8) {
            let mut text = corpus[rng.random_range(0..corpus.len())].clone();
            if rng.random_bool(0.6) {
                text = mutate(&mut rng, &text);
            }
            sent.push(text.chars().take(200).collect::<String>());
            if socket.send(Message::Text(text.into())).await.is_err() {
                break; // closed already; the close frame is read below
            }
        }
        // Read until the socket goes quiet or closes.
        let replay =
            || format!("KITH_FUZZ_SEED={seed}, iteration {iteration}, {protocol}, sent {sent:?}");
        loop {
            match tokio::time::timeout(Duration::from_millis(300), socket.next()).await {
                Err(_) => break, // quiet: still open, which is fine
                Ok(Some(Ok(Message::Close(frame)))) => {
                    let code = frame.map(|f| u16::from(f.code));
                    assert!(
                        code.is_some_and(|code| PROTOCOL_CODES.contains(&code)),
                        "closed with {code:?}; {}",
                        replay()
                    );
                    break;
                }
                Ok(Some(Ok(Message::Text(text)))) => {
                    let message: serde_json::Value = serde_json::from_str(&text)
                        .unwrap_or_else(|_| panic!("a non-JSON message {text}; {}", replay()));
                    assert!(message["type"].is_string(), "{message}; {}", replay());
                }
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(err))) => panic!("the socket broke ({err}); {}", replay()),
                Ok(None) => panic!("the socket ended without a close frame; {}", replay()),
            }
        }
    }
    let health = app
        .client
        .get(app.url("/healthz"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .expect("the process is up");
    assert_eq!(health.status(), 200);
}
