//! The WebSocket protocols' rules through the real server, frame by frame:
//! every way `graphql-transport-ws` closes a socket, with the code clients
//! read (graphql-ws PROTOCOL.md), and what the legacy `graphql-ws` protocol
//! says instead; operations that fail at setup, pings, the caps, and the
//! socket of a session that ends.

use crate::common;

use common::{JWT_SECRET, Session, Socket, TestApp, spawn_app, spawn_app_with};
use serde_json::{Value, json};

const TRANSPORT: &str = "graphql-transport-ws";
const LEGACY: &str = "graphql-ws";
const NOTIFICATIONS: &str = "subscription { notifications { __typename } }";

/// A socket on `/graphql` speaking `protocol`, acknowledged with `init`.
async fn acknowledged(app: &TestApp, protocol: &str, init: Value) -> Socket {
    let mut socket = app.websocket("/graphql", protocol).await;
    socket
        .send(json!({ "type": "connection_init", "payload": init }))
        .await;
    let ack = socket.receive().await;
    assert_eq!(ack["type"], "connection_ack", "{ack}");
    socket
}

fn subscribe(id: &str, query: &str) -> Value {
    json!({ "id": id, "type": "subscribe", "payload": { "query": query } })
}

fn start(id: &str, query: &str) -> Value {
    json!({ "id": id, "type": "start", "payload": { "query": query } })
}

#[tokio::test]
async fn an_operation_before_the_acknowledgement_closes_4401() {
    let app = spawn_app().await;
    let mut socket = app.websocket("/graphql", TRANSPORT).await;
    socket.send(subscribe("1", "{ __typename }")).await;
    assert_eq!(socket.closes_with(&[]).await.0, 4401);

    // The legacy protocol answers that operation with an error and stays.
    let mut legacy = app.websocket("/graphql", LEGACY).await;
    legacy.send(start("1", "{ __typename }")).await;
    let refused = legacy.receive().await;
    assert_eq!(
        (&refused["type"], &refused["id"]),
        (&json!("error"), &json!("1")),
        "{refused}"
    );
    assert_eq!(
        refused["payload"][0]["extensions"]["code"],
        "UNAUTHENTICATED"
    );
    legacy
        .send(json!({ "type": "connection_init", "payload": {} }))
        .await;
    assert_eq!(legacy.receive().await["type"], "connection_ack");
}

#[tokio::test]
async fn a_second_subscriber_for_an_id_in_use_closes_4409() {
    let app = spawn_app().await;
    let ann = app.register("ann").await;
    let mut socket = app.signed_in_socket(&ann).await;
    socket.send(subscribe("dup", NOTIFICATIONS)).await;
    socket.send(subscribe("dup", NOTIFICATIONS)).await;
    let (code, reason) = socket.closes_with(&[]).await;
    assert_eq!(code, 4409);
    assert_eq!(reason, "Subscriber for dup already exists");
}

#[tokio::test]
async fn an_invalid_message_closes_4400() {
    let app = spawn_app().await;
    let invalid = [
        "not json",
        r#"{"type":"no_such_type"}"#,
        r#"{"type":"subscribe","payload":{"query":"{ __typename }"}}"#,
        r#"{"id":"1","type":"subscribe","payload":"{ __typename }"}"#,
        r#"{"id":"1","type":"subscribe","payload":{"query":5}}"#,
        // The legacy protocol's word for it.
        r#"{"id":"1","type":"start","payload":{"query":"{ __typename }"}}"#,
    ];
    for text in invalid {
        let mut socket = acknowledged(&app, TRANSPORT, json!({})).await;
        socket.send_text(text).await;
        assert_eq!(socket.closes_with(&[]).await.0, 4400, "{text}");
    }
    // Before `connection_init` too.
    let mut socket = app.websocket("/graphql", TRANSPORT).await;
    socket
        .send_text(r#"{"type":"connection_init","payload":"a token"}"#)
        .await;
    assert_eq!(socket.closes_with(&[]).await.0, 4400);

    // The legacy protocol answers with an error and carries on.
    let mut legacy = acknowledged(&app, LEGACY, json!({})).await;
    legacy.send_text("not json").await;
    let error = legacy.receive().await;
    assert_eq!(error["type"], "error", "{error}");
    assert_eq!(error["payload"][0]["extensions"]["code"], "BAD_USER_INPUT");
    legacy.send(start("q", "{ __typename }")).await;
    assert_eq!(
        legacy.receive().await["payload"]["data"]["__typename"],
        "Query"
    );
}

#[tokio::test]
async fn a_second_connection_init_closes_4429() {
    let app = spawn_app().await;
    let init = json!({ "type": "connection_init", "payload": {} });
    let mut socket = acknowledged(&app, TRANSPORT, json!({})).await;
    socket.send(init.clone()).await;
    assert_eq!(socket.closes_with(&[]).await.0, 4429);

    let mut legacy = acknowledged(&app, LEGACY, json!({})).await;
    legacy.send(init).await;
    let error = legacy.receive().await;
    assert_eq!(error["type"], "connection_error", "{error}");
    assert!(error["payload"].get("locations").is_none(), "{error}");
    assert_eq!(legacy.closes_with(&[]).await.0, 4429);
}

#[tokio::test]
async fn a_message_over_the_size_limit_closes_1009() {
    let app = spawn_app_with(|settings| settings.ws_max_message_bytes = 1024).await;
    for protocol in [TRANSPORT, LEGACY] {
        let mut socket = acknowledged(&app, protocol, json!({})).await;
        let padding = " ".repeat(4096);
        let query = format!("{{ __typename {padding} }}");
        socket
            .try_send_text(subscribe("big", &query).to_string())
            .await;
        assert_eq!(socket.closes_with(&[]).await.0, 1009, "{protocol}");
    }
}

/// Parse and validation errors, and a subscription resolver that refuses,
/// are one `error` message and nothing more for that id.
#[tokio::test]
async fn an_operation_that_fails_at_setup_gets_one_error_message() {
    let app = spawn_app().await;
    let mut socket = acknowledged(&app, TRANSPORT, json!({})).await;
    let failing = [
        ("parse", "{ __typename", "BAD_USER_INPUT"),
        ("validation", "{ noSuchField }", "BAD_USER_INPUT"),
        (
            "resolver",
            "subscription { messageAdded { id } }",
            "UNAUTHENTICATED",
        ),
    ];
    for (id, query, code) in failing {
        socket.send(subscribe(id, query)).await;
        let error = socket.receive().await;
        assert_eq!(
            (&error["type"], &error["id"]),
            (&json!("error"), &json!(id)),
            "{error}"
        );
        let errors = error["payload"].as_array().expect("an array of errors");
        assert!(!errors.is_empty());
        assert!(
            errors.iter().all(|e| e["extensions"]["code"] == code),
            "{error}"
        );
        // Nothing more for it: the next message is the answer to a ping.
        socket.send(json!({ "type": "ping" })).await;
        assert_eq!(socket.receive_with_pongs().await, json!({ "type": "pong" }));
    }

    // A query that ran, even with a field error, is `next` then `complete`.
    let ran = "{ __typename user(id: \"garbage\") { id } }";
    socket.send(subscribe("ran", ran)).await;
    let next = socket.receive().await;
    assert_eq!(
        (&next["type"], &next["id"]),
        (&json!("next"), &json!("ran"))
    );
    assert_eq!(next["payload"]["data"]["__typename"], "Query", "{next}");
    let complete = socket.receive().await;
    assert_eq!(complete, json!({ "type": "complete", "id": "ran" }));

    // The legacy protocol's `error` says the same.
    let mut legacy = acknowledged(&app, LEGACY, json!({})).await;
    legacy.send(start("bad", "{ noSuchField }")).await;
    let error = legacy.receive().await;
    assert_eq!(
        (&error["type"], &error["id"]),
        (&json!("error"), &json!("bad"))
    );
    assert_eq!(error["payload"][0]["extensions"]["code"], "BAD_USER_INPUT");
    legacy.send(start("q", "{ __typename }")).await;
    let data = legacy.receive().await;
    assert_eq!((&data["type"], &data["id"]), (&json!("data"), &json!("q")));
}

#[tokio::test]
async fn a_ping_is_answered_and_a_completed_operation_goes_quiet() {
    let app = spawn_app().await;
    let (ann, bob, conversation) = app.friends_chatting().await;
    let send = |body: &'static str| {
        let variables = json!({ "c": conversation, "b": body, "k": body });
        let (app, token) = (&app, ann.token());
        async move {
            app.data(
                "mutation($c: ID!, $b: String!, $k: String!) {
                    sendMessage(input: { conversationId: $c, body: $b, clientMessageId: $k }) { seq } }",
                variables,
                token,
            )
            .await
        }
    };
    send("one").await;
    let mut socket = app.signed_in_socket(&bob).await;
    socket
        .send(json!({ "type": "ping", "payload": { "at": 1 } }))
        .await;
    assert_eq!(
        socket.receive_with_pongs().await,
        json!({ "type": "pong", "payload": { "at": 1 } })
    );

    let feed = "subscription($c: ID!) { messageAdded(conversationId: $c, sinceSeq: 0) { body } }";
    let follow = |id: &str| {
        json!({ "id": id, "type": "subscribe",
            "payload": { "query": feed, "variables": { "c": conversation } } })
    };
    socket.send(follow("first")).await;
    // The replayed message: the subscription is live.
    let replayed = socket.receive().await;
    assert_eq!(replayed["id"], "first", "{replayed}");
    socket
        .send(json!({ "type": "complete", "id": "first" }))
        .await;
    send("two").await;
    // A new subscription replays both messages; nothing more comes for the
    // completed one, not even a `complete`.
    socket.send(follow("second")).await;
    for body in ["one", "two"] {
        let message = socket.receive().await;
        assert_eq!(message["id"], "second", "{message}");
        assert_eq!(message["payload"]["data"]["messageAdded"]["body"], body);
    }

    // The legacy protocol confirms a `stop` with `complete`.
    let mut legacy = app.signed_in_socket_on("/graphql", LEGACY, &bob).await;
    legacy
        .send(json!({ "id": "n", "type": "start", "payload": { "query": NOTIFICATIONS } }))
        .await;
    legacy.send(json!({ "id": "n", "type": "stop" })).await;
    assert_eq!(
        legacy.receive().await,
        json!({ "type": "complete", "id": "n" })
    );
}

#[tokio::test]
async fn a_socket_runs_only_so_many_operations() {
    let app = spawn_app_with(|settings| settings.ws_max_subscriptions_per_socket = 2).await;
    let ann = app.register("ann").await;
    let mut socket = app.signed_in_socket(&ann).await;
    socket.send(subscribe("a", NOTIFICATIONS)).await;
    socket.send(subscribe("b", NOTIFICATIONS)).await;
    socket.send(subscribe("c", NOTIFICATIONS)).await;
    let refused = socket.receive().await;
    assert_eq!(
        (&refused["type"], &refused["id"]),
        (&json!("error"), &json!("c"))
    );
    assert_eq!(
        refused["payload"][0]["extensions"]["code"],
        "BAD_USER_INPUT"
    );

    // Completing one makes room.
    socket.send(json!({ "type": "complete", "id": "a" })).await;
    socket.send(subscribe("c", NOTIFICATIONS)).await;
    socket.send(json!({ "type": "ping" })).await;
    assert_eq!(socket.receive_with_pongs().await, json!({ "type": "pong" }));
}

#[tokio::test]
async fn an_idle_anonymous_socket_is_closed_1000() {
    let app = spawn_app_with(|settings| settings.ws_anonymous_idle_millis = 300).await;
    for protocol in [TRANSPORT, LEGACY] {
        let mut anonymous = acknowledged(&app, protocol, json!({})).await;
        let (code, reason) = anonymous.closes_with(&[]).await;
        assert_eq!((code, reason.as_str()), (1000, "idle"), "{protocol}");
    }
    // A signed-in one stays: past the moment an anonymous one opened after
    // it is closed, it still answers.
    let ann = app.register("ann").await;
    let mut signed_in = app.signed_in_socket(&ann).await;
    let mut anonymous = acknowledged(&app, TRANSPORT, json!({})).await;
    assert_eq!(anonymous.closes_with(&[]).await.0, 1000);
    signed_in
        .send(json!({ "id": "1", "type": "subscribe", "payload": { "query": "{ __typename }" } }))
        .await;
    let answer = signed_in.nothing_before(|_| true).await;
    assert_eq!(answer["type"], "next", "{answer}");
}

#[tokio::test]
async fn connection_terminate_closes_a_legacy_socket_1000() {
    let app = spawn_app().await;
    let mut legacy = acknowledged(&app, LEGACY, json!({})).await;
    legacy.send(json!({ "type": "connection_terminate" })).await;
    assert_eq!(legacy.closes_with(&[]).await.0, 1000);
}

fn forge_expired(token: &str) -> String {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    let mut claims: Value = serde_json::from_slice(&bytes).unwrap();
    let an_hour_ago = chrono::Utc::now().timestamp() - 3600;
    claims["exp"] = json!(an_hour_ago);
    claims["iat"] = json!(an_hour_ago - 900);
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap()
}

#[tokio::test]
async fn a_refused_connection_init_closes_4403() {
    let app = spawn_app_with(|settings| settings.ws_max_sockets_per_user = 1).await;
    let revoked = app.register("revoked").await;
    app.data("mutation { logout }", json!({}), revoked.token())
        .await;
    let ann = app.register("ann").await;
    let _anns_only_socket = app.signed_in_socket(&ann).await;
    let refused = [
        ("garbage", "not-a-token".to_owned()),
        ("revoked", revoked.access_token.clone()),
        ("expired", forge_expired(&ann.access_token)),
        ("over the cap", ann.access_token.clone()),
    ];
    for (why, token) in refused {
        let mut socket = app.websocket("/graphql", TRANSPORT).await;
        socket
            .send(json!({ "type": "connection_init", "payload": { "authorization": token } }))
            .await;
        assert_eq!(socket.closes_with(&[]).await.0, 4403, "{why}");

        let mut legacy = app.websocket("/graphql", LEGACY).await;
        legacy
            .send(json!({ "type": "connection_init", "payload": { "token": token } }))
            .await;
        let error = legacy.receive().await;
        assert_eq!(error["type"], "connection_error", "{why}: {error}");
        assert!(
            error["payload"]["extensions"]["code"].is_string(),
            "{error}"
        );
        // A connection has no place in a document: no `locations` (and
        // never the impossible line 0, column 0).
        assert!(
            error["payload"].get("locations").is_none(),
            "{why}: {error}"
        );
        assert_eq!(legacy.closes_with(&[]).await.0, 4403, "{why}");
    }
}

/// The user's presence, as a friend's `presenceChanged` tells it.
async fn next_presence(watch: &mut Socket) -> Value {
    let message = watch.receive().await;
    assert_eq!(message["type"], "next", "{message}");
    message["payload"]["data"]["presenceChanged"]["presence"].clone()
}

/// Logging out, or having the session revoked from another device, closes
/// the session's sockets with 4403; the socket's slot is freed and the user
/// goes offline after the grace period.
#[tokio::test]
async fn a_socket_closes_4403_when_its_session_ends() {
    let app = spawn_app_with(|settings| {
        settings.presence_grace_millis = 200;
        settings.ws_max_sockets_per_user = 1;
    })
    .await;
    let (ann, bob) = (app.register("ann").await, app.register("bob").await);
    app.befriend(&ann, &bob).await;
    let mut bobs_watch = app.signed_in_socket(&bob).await;
    bobs_watch
        .send(subscribe(
            "p",
            "subscription { presenceChanged { presence } }",
        ))
        .await;

    // Logout, on either protocol.
    for protocol in [TRANSPORT, LEGACY] {
        let session =
            Session::from_payload(&app.login("ann", common::PASSWORD).await["data"]["login"]);
        let mut socket = app
            .signed_in_socket_on("/graphql", protocol, &session)
            .await;
        let subscribe_type = if protocol == LEGACY {
            "start"
        } else {
            "subscribe"
        };
        socket
            .send(json!({ "id": "n", "type": subscribe_type,
                "payload": { "query": NOTIFICATIONS } }))
            .await;
        assert_eq!(next_presence(&mut bobs_watch).await, "ONLINE");

        app.data("mutation { logout }", json!({}), session.token())
            .await;
        // The subscription may hear of the logout first and end on its own
        // (an `error` or `complete` for "n"); then the socket goes.
        if protocol == LEGACY {
            let error = loop {
                let message = socket.receive().await;
                if message["id"] == "n"
                    && matches!(message["type"].as_str(), Some("error" | "complete"))
                {
                    continue;
                }
                break message;
            };
            assert_eq!(error["type"], "connection_error", "{error}");
            assert_eq!(error["payload"]["extensions"]["code"], "UNAUTHENTICATED");
        }
        let (code, _) = socket.closes_with(&["complete", "error"]).await;
        assert_eq!(code, 4403, "{protocol}");
        assert_eq!(next_presence(&mut bobs_watch).await, "OFFLINE");
    }

    // Revoked from another device: the socket's slot is free at once.
    let phone = Session::from_payload(&app.login("ann", common::PASSWORD).await["data"]["login"]);
    let mut laptop = app.signed_in_socket(&ann).await;
    assert_eq!(next_presence(&mut bobs_watch).await, "ONLINE");
    let sessions = app
        .data(
            "{ me { sessions { id current } } }",
            json!({}),
            phone.token(),
        )
        .await;
    let laptop_session = sessions["me"]["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == false)
        .expect("the laptop's session")["id"]
        .clone();
    app.data(
        "mutation($id: ID!) { revokeSession(id: $id) }",
        json!({ "id": laptop_session }),
        phone.token(),
    )
    .await;
    assert_eq!(laptop.closes_with(&["complete"]).await.0, 4403);
    let _phones_socket = app.signed_in_socket(&phone).await;
}

#[tokio::test]
async fn a_stopping_server_closes_its_sockets_1001() {
    let mut app = spawn_app().await;
    let ann = app.register("ann").await;
    let mut signed_in = app.signed_in_socket(&ann).await;
    signed_in.send(subscribe("n", NOTIFICATIONS)).await;
    let mut legacy = acknowledged(&app, LEGACY, json!({})).await;
    app.begin_shutdown();
    assert_eq!(signed_in.closes_with(&[]).await.0, 1001);
    assert_eq!(legacy.closes_with(&[]).await.0, 1001);
}

type RawSocket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A bare WebSocket on `/graphql` speaking `protocol`: the test's own frames,
/// close frames included, which [`Socket`] does not send.
async fn raw_socket(app: &TestApp, protocol: &str) -> RawSocket {
    use tokio_tungstenite::tungstenite::{client::IntoClientRequest, http::HeaderValue};
    let mut request = format!("ws://{}/graphql", app.addr)
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_str(protocol).unwrap(),
    );
    tokio_tungstenite::connect_async(request)
        .await
        .expect("WebSocket connects")
        .0
}

/// Sends `message` on a bare socket and waits for a message of type `kind`
/// (keep-alives and the operation's own results skipped).
async fn exchange(socket: &mut RawSocket, message: Value, kind: &str) {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    socket
        .send(Message::Text(message.to_string().into()))
        .await
        .unwrap();
    loop {
        let frame = tokio::time::timeout(std::time::Duration::from_secs(10), socket.next())
            .await
            .expect("an answer")
            .expect("the socket is open")
            .expect("a frame");
        let Message::Text(text) = frame else { continue };
        let answer: Value = serde_json::from_str(&text).unwrap();
        if answer["type"] == kind {
            return;
        }
        assert!(
            matches!(answer["type"].as_str(), Some("ka" | "next" | "data")),
            "waiting for {kind}: {answer}"
        );
    }
}

/// RFC 6455 §5.5.1: a client's close frame is answered with one echoing its
/// code before the connection drops; a bare EOF reads as 1006 (abnormal
/// closure) to the client. In either protocol, before `connection_init`,
/// idle after `connection_ack`, and after an operation ran to its end.
#[tokio::test]
async fn a_clients_close_is_answered_with_its_code() {
    use futures_util::{SinkExt, StreamExt};
    use std::time::Duration;
    use tokio_tungstenite::tungstenite::{
        Message,
        protocol::{CloseFrame, frame::coding::CloseCode},
    };

    let app = spawn_app().await;
    for protocol in [TRANSPORT, LEGACY] {
        let operation = if protocol == LEGACY {
            start("q", "{ __typename }")
        } else {
            subscribe("q", "{ __typename }")
        };
        for (state, code) in [
            ("before connection_init", 1000),
            ("idle after connection_ack", 1000),
            ("after an operation ended", 1000),
            ("after an operation ended", 4000),
        ] {
            let mut socket = raw_socket(&app, protocol).await;
            if state != "before connection_init" {
                let init = json!({ "type": "connection_init", "payload": {} });
                exchange(&mut socket, init, "connection_ack").await;
            }
            if state == "after an operation ended" {
                exchange(&mut socket, operation.clone(), "complete").await;
            }
            socket
                .send(Message::Close(Some(CloseFrame {
                    code: CloseCode::from(code),
                    reason: "bye".into(),
                })))
                .await
                .unwrap();
            let answer = tokio::time::timeout(Duration::from_secs(1), async {
                loop {
                    match socket.next().await {
                        Some(Ok(Message::Close(frame))) => return Ok(frame),
                        Some(Ok(_)) => continue,
                        Some(Err(err)) => return Err(err.to_string()),
                        None => return Err("EOF".to_owned()),
                    }
                }
            })
            .await
            .unwrap_or_else(|_| panic!("{protocol}, {state}: no answer within a second"));
            let frame = answer
                .unwrap_or_else(|err| panic!("{protocol}, {state}: no close frame ({err})"))
                .unwrap_or_else(|| panic!("{protocol}, {state}: a close frame without a code"));
            assert_eq!(u16::from(frame.code), code, "{protocol}, {state}");
        }
    }
}
