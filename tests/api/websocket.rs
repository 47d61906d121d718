//! Subscriptions over WebSocket with both protocols: authentication in
//! `connection_init`, delivery, and the end of a subscription with its session.

use crate::common;

use std::{collections::HashMap, time::Duration};

use common::{PASSWORD, Socket, spawn_app};
use serde_json::{Value, json};

const NOTIFICATIONS: &str = "subscription { notifications {
    __typename ... on NewSignInNotification { session { id userAgent current } } } }";

/// The messages each protocol uses for the same steps.
#[derive(Clone, Copy)]
enum Protocol {
    /// `graphql-transport-ws`, spoken by the graphql-ws library.
    TransportWs,
    /// `graphql-ws`, the legacy subscriptions-transport-ws protocol.
    LegacyWs,
}

impl Protocol {
    fn name(self) -> &'static str {
        match self {
            Self::TransportWs => "graphql-transport-ws",
            Self::LegacyWs => "graphql-ws",
        }
    }

    fn subscribe(self, id: &str, query: &str) -> Value {
        let kind = match self {
            Self::TransportWs => "subscribe",
            Self::LegacyWs => "start",
        };
        json!({ "id": id, "type": kind, "payload": { "query": query } })
    }

    fn data_type(self) -> &'static str {
        match self {
            Self::TransportWs => "next",
            Self::LegacyWs => "data",
        }
    }
}

async fn open(app: &common::TestApp, path: &str, protocol: Protocol, init: Value) -> Socket {
    let mut socket = app.websocket(path, protocol.name()).await;
    socket
        .send(json!({ "type": "connection_init", "payload": init }))
        .await;
    socket
}

async fn subscribed_socket(
    app: &common::TestApp,
    path: &str,
    protocol: Protocol,
    init: Value,
) -> Socket {
    let mut socket = open(app, path, protocol, init).await;
    let ack = socket.receive().await;
    assert_eq!(ack["type"], "connection_ack", "{ack}");
    socket.send(protocol.subscribe("1", NOTIFICATIONS)).await;
    socket
}

#[tokio::test]
async fn both_protocols_on_both_paths_deliver_to_an_authenticated_socket() {
    let app = spawn_app().await;
    let cases = [
        (Protocol::TransportWs, "/graphql/ws", "authorization", true),
        (Protocol::TransportWs, "/graphql", "Authorization", false),
        (Protocol::LegacyWs, "/graphql/ws", "token", false),
        (Protocol::LegacyWs, "/graphql", "authorization", true),
    ];
    for (index, (protocol, path, key, bearer)) in cases.into_iter().enumerate() {
        let username = format!("socket_user_{index}");
        let session = app.register(&username).await;
        let credential = if bearer {
            format!("Bearer {}", session.access_token)
        } else {
            session.access_token.clone()
        };
        let mut socket = subscribed_socket(&app, path, protocol, json!({ key: credential })).await;
        // Live before the event it should see.
        app.until_live_subscriptions(1).await;

        let login = app.login(&username, PASSWORD).await;
        assert!(login.get("errors").is_none(), "{login}");
        let message = socket.receive().await;
        assert_eq!(
            message["type"],
            protocol.data_type(),
            "{}: {message}",
            protocol.name()
        );
        assert_eq!(message["id"], "1");
        let notification = &message["payload"]["data"]["notifications"];
        assert_eq!(notification["__typename"], "NewSignInNotification");
        assert_eq!(notification["session"]["current"], false);
        // Gone with its socket, before the next case counts its own.
        drop(socket);
        app.until_live_subscriptions(0).await;
    }
}

#[tokio::test]
async fn a_bad_token_refuses_the_socket_in_either_protocol() {
    let app = spawn_app().await;
    let session = app.register("revoked_before").await;
    app.data("mutation { logout }", json!({}), session.token())
        .await;

    for token in ["not-a-token", session.access_token.as_str()] {
        let mut socket = open(
            &app,
            "/graphql/ws",
            Protocol::TransportWs,
            json!({ "authorization": token }),
        )
        .await;
        // 4403 Forbidden: the graphql-ws client must not take it for a
        // network failure.
        assert_eq!(socket.closes_with(&[]).await.0, 4403);

        let mut legacy = open(
            &app,
            "/graphql/ws",
            Protocol::LegacyWs,
            json!({ "token": token }),
        )
        .await;
        let message = legacy.receive().await;
        assert_eq!(message["type"], "connection_error", "{message}");
        assert_eq!(message["payload"]["extensions"]["code"], "UNAUTHENTICATED");
        assert!(message["payload"].get("locations").is_none(), "{message}");
        assert_eq!(legacy.closes_with(&[]).await.0, 4403);
    }
}

#[tokio::test]
async fn an_anonymous_socket_connects_but_cannot_subscribe_to_private_events() {
    let app = spawn_app().await;
    let mut socket = subscribed_socket(&app, "/graphql/ws", Protocol::TransportWs, json!({})).await;
    // The resolver refuses at setup: one `error` message, and no `complete`.
    let message = socket.receive().await;
    assert_eq!(message["type"], "error", "{message}");
    assert_eq!(message["id"], "1");
    assert_eq!(
        message["payload"][0]["extensions"]["code"],
        "UNAUTHENTICATED"
    );
    // No `complete` after it: the next frame is a later operation's.
    socket
        .send(Protocol::TransportWs.subscribe("2", "{ __typename }"))
        .await;
    let marker = socket.nothing_before(|_| true).await;
    assert_eq!(marker["id"], "2", "{marker}");
}

/// The socket closes with its session (4403), after the legacy protocol's
/// `connection_error`; a subscription may end just before it does.
#[tokio::test]
async fn revoking_the_session_ends_its_subscriptions_and_closes_the_socket() {
    let app = spawn_app().await;
    for (index, protocol) in [Protocol::TransportWs, Protocol::LegacyWs]
        .into_iter()
        .enumerate()
    {
        let username = format!("ends_{index}");
        let session = app.register(&username).await;
        let mut socket = subscribed_socket(
            &app,
            "/graphql/ws",
            protocol,
            json!({ "authorization": format!("Bearer {}", session.access_token) }),
        )
        .await;
        app.until_live_subscriptions(1).await;

        app.data("mutation { logout }", json!({}), session.token())
            .await;
        if let Protocol::LegacyWs = protocol {
            let mut message = socket.receive().await;
            if message["type"] == "complete" {
                assert_eq!(message["id"], "1");
                message = socket.receive().await;
            }
            assert_eq!(message["type"], "connection_error", "{message}");
        }
        let (code, _) = socket.closes_with(&["complete"]).await;
        assert_eq!(code, 4403, "{}", protocol.name());
        app.until_live_subscriptions(0).await;
    }
}

#[tokio::test]
async fn a_socket_closes_when_its_access_token_expires() {
    let app = common::spawn_app_with(|s| s.access_token_ttl_secs = 2).await;
    let session = app.register("short_lived").await;
    let mut socket = subscribed_socket(
        &app,
        "/graphql/ws",
        Protocol::TransportWs,
        json!({ "authorization": session.access_token }),
    )
    .await;
    assert_eq!(socket.closes_with(&["complete"]).await.0, 4403);
}

#[tokio::test]
async fn friend_requests_and_acceptances_are_notified_live() {
    let app = spawn_app().await;
    let ann = app.register("notified_ann").await;
    let bob = app.register("notified_bob").await;
    let query = "subscription { notifications { __typename
        ... on FriendRequestReceivedNotification { request { id message from { username } } }
        ... on FriendRequestAcceptedNotification { request { id status to { username } } } } }";
    let mut bobs = open(
        &app,
        "/graphql/ws",
        Protocol::TransportWs,
        json!({ "authorization": bob.access_token }),
    )
    .await;
    assert_eq!(bobs.receive().await["type"], "connection_ack");
    bobs.send(Protocol::TransportWs.subscribe("b", query)).await;
    let mut anns = open(
        &app,
        "/graphql/ws",
        Protocol::LegacyWs,
        json!({ "token": ann.access_token }),
    )
    .await;
    assert_eq!(anns.receive().await["type"], "connection_ack");
    anns.send(Protocol::LegacyWs.subscribe("a", query)).await;
    app.until_live_subscriptions(2).await;

    let sent = app
        .data(
            "mutation($to: ID!) { sendFriendRequest(input: { userId: $to, message: \"hey\" }) { id } }",
            json!({ "to": bob.user_id }),
            ann.token(),
        )
        .await;
    let request_id = sent["sendFriendRequest"]["id"].clone();
    let received = bobs.receive().await;
    let notification = &received["payload"]["data"]["notifications"];
    assert_eq!(
        notification["__typename"],
        "FriendRequestReceivedNotification"
    );
    assert_eq!(notification["request"]["id"], request_id);
    assert_eq!(notification["request"]["from"]["username"], "notified_ann");

    app.data(
        "mutation($id: ID!) { acceptFriendRequest(id: $id) { id } }",
        json!({ "id": request_id }),
        bob.token(),
    )
    .await;
    let accepted = anns.receive().await;
    assert_eq!(accepted["type"], "data");
    let notification = &accepted["payload"]["data"]["notifications"];
    assert_eq!(
        notification["__typename"],
        "FriendRequestAcceptedNotification"
    );
    assert_eq!(notification["request"]["status"], "ACCEPTED");
    assert_eq!(notification["request"]["to"]["username"], "notified_bob");
}

#[tokio::test]
async fn a_socket_closes_once_its_session_is_revoked() {
    let app = spawn_app().await;
    let session = app.register("socket_after_logout").await;
    let mut socket = open(
        &app,
        "/graphql/ws",
        Protocol::TransportWs,
        json!({ "authorization": session.access_token }),
    )
    .await;
    assert_eq!(socket.receive().await["type"], "connection_ack");
    socket
        .send(Protocol::TransportWs.subscribe("before", "{ me { username } }"))
        .await;
    let before = socket.receive().await;
    assert_eq!(
        before["payload"]["data"]["me"]["username"],
        "socket_after_logout"
    );
    assert_eq!(socket.receive().await["type"], "complete");

    app.data("mutation { logout }", json!({}), session.token())
        .await;
    // Nothing more runs on it: it closes (4403 Forbidden).
    assert_eq!(socket.closes_with(&[]).await.0, 4403);
}

#[tokio::test]
async fn a_socket_that_never_says_hello_is_closed_4408() {
    let app = common::spawn_app_with(|settings| settings.ws_init_timeout_millis = 300).await;
    for protocol in [Protocol::TransportWs, Protocol::LegacyWs] {
        let mut silent = app.websocket("/graphql", protocol.name()).await;
        // A close frame, not a dropped connection (1006).
        let (code, reason) = silent.closes_with(&[]).await;
        assert_eq!(code, 4408, "{}", protocol.name());
        assert_eq!(reason, "Connection initialisation timeout");
    }
    // One that does say hello in time stays: past the moment a silent one
    // opened after it is closed, it still answers.
    let session = app.register("polite").await;
    let mut polite = app.signed_in_socket(&session).await;
    let mut silent = app.websocket("/graphql", "graphql-transport-ws").await;
    assert_eq!(silent.closes_with(&[]).await.0, 4408);
    polite
        .send(Protocol::TransportWs.subscribe("1", "{ __typename }"))
        .await;
    let answer = polite.nothing_before(|_| true).await;
    assert_eq!(answer["type"], "next", "{answer}");
}

#[tokio::test]
async fn one_user_may_hold_only_so_many_sockets() {
    let app = common::spawn_app_with(|settings| settings.ws_max_sockets_per_user = 2).await;
    let session = app.register("hoarder").await;
    let init = json!({ "type": "connection_init",
        "payload": { "authorization": format!("Bearer {}", session.access_token) } });
    let mut open_sockets = Vec::new();
    for _ in 0..2 {
        let mut socket = app.websocket("/graphql", "graphql-transport-ws").await;
        socket.send(init.clone()).await;
        assert_eq!(socket.receive().await["type"], "connection_ack");
        open_sockets.push(socket);
    }
    let mut third = app.websocket("/graphql", "graphql-transport-ws").await;
    third.send(init.clone()).await;
    assert_eq!(third.closes_with(&[]).await.0, 4403, "refused: Forbidden");
    // Closing one makes room, once the server has seen it close.
    drop(open_sockets.pop());
    common::eventually("room for a socket", || async {
        let mut again = app.websocket("/graphql", "graphql-transport-ws").await;
        again.send(init.clone()).await;
        match again.receive_within(Duration::from_secs(10)).await {
            common::Received::Json(ack) if ack["type"] == "connection_ack" => Some(again),
            common::Received::Closed(Some(4403)) => None,
            other => panic!("neither an ack nor 4403: {other:?}"),
        }
    })
    .await;
}

const SEND: &str = "mutation($c: ID!, $b: String!, $k: String!) {
    sendMessage(input: { conversationId: $c, body: $b, clientMessageId: $k }) { seq } }";

/// Each payload on a socket by its operation id, `count` of them in all.
async fn payloads_by_id(socket: &mut Socket, count: usize) -> HashMap<String, Vec<Value>> {
    let mut by_id = HashMap::<String, Vec<Value>>::new();
    for _ in 0..count {
        let message = socket.receive().await;
        assert_eq!(message["type"], "next", "{message}");
        let id = message["id"].as_str().expect("an id").to_owned();
        by_id
            .entry(id)
            .or_default()
            .push(message["payload"].clone());
    }
    by_id
}

/// The bodies of `messageAdded.conversation.messages` in a payload.
fn recent_bodies(payload: &Value) -> Vec<&str> {
    let edges = payload["data"]["messageAdded"]["conversation"]["messages"]["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("no messages in {payload}"));
    edges
        .iter()
        .map(|e| e["node"]["body"].as_str().unwrap())
        .collect()
}

/// After setup a socket executes each event itself (`graphql::delivery`),
/// keeping of the request only what the selection reads: here a fragment, a
/// variable, and a variable's default when the client left it out.
#[tokio::test]
async fn an_events_selection_keeps_its_fragments_variables_and_defaults() {
    let app = spawn_app().await;
    let (ann, bob, conversation) = app.friends_chatting().await;
    let send = |body: &'static str| {
        let variables = json!({ "c": conversation, "b": body, "k": body });
        let app = &app;
        let token = ann.token();
        async move { app.data(SEND, variables, token).await }
    };
    send("one").await;
    let query = "subscription($c: ID!, $recent: Int = 1) {
        messageAdded(conversationId: $c, sinceSeq: 0) {
            seq ...Sender conversation { messages(last: $recent) { edges { node { body } } } } } }
        fragment Sender on Message { sender { username } }";
    let mut socket = app.signed_in_socket(&bob).await;
    for (id, variables) in [
        ("default", json!({ "c": conversation })),
        ("two", json!({ "c": conversation, "recent": 2 })),
    ] {
        socket
            .send(json!({ "id": id, "type": "subscribe",
                "payload": { "query": query, "variables": variables } }))
            .await;
    }
    // The stored message, replayed.
    let replayed = payloads_by_id(&mut socket, 2).await;
    for payload in [&replayed["default"][0], &replayed["two"][0]] {
        assert_eq!(payload["data"]["messageAdded"]["seq"], 1, "{payload}");
        assert_eq!(payload["data"]["messageAdded"]["sender"]["username"], "ann");
        assert_eq!(recent_bodies(payload), ["one"]);
    }
    // A live one, executed the same way.
    send("two").await;
    let live = payloads_by_id(&mut socket, 2).await;
    assert_eq!(live["default"][0]["data"]["messageAdded"]["seq"], 2);
    assert_eq!(recent_bodies(&live["default"][0]), ["two"]);
    assert_eq!(recent_bodies(&live["two"][0]), ["one", "two"]);
}

/// Sockets set up only two operations per database connection at once; the
/// rest wait their turn rather than fail. A setup's turn ends with it, so live
/// subscriptions hold none and the socket still answers a query.
#[tokio::test]
async fn subscriptions_beyond_the_setup_limit_wait_their_turn() {
    let app = common::spawn_app_with(|settings| settings.db_max_connections = 2).await;
    let (ann, bob, conversation) = app.friends_chatting().await;
    app.data(
        SEND,
        json!({ "c": conversation, "b": "hi", "k": "1" }),
        ann.token(),
    )
    .await;
    let mut socket = app.signed_in_socket(&bob).await;
    let subscriptions = 12;
    for id in 0..subscriptions {
        socket
            .send(json!({ "id": id.to_string(), "type": "subscribe", "payload": {
                "query": "subscription($c: ID!) { messageAdded(conversationId: $c, sinceSeq: 0) { seq } }",
                "variables": { "c": conversation } } }))
            .await;
    }
    let replayed = payloads_by_id(&mut socket, subscriptions).await;
    assert_eq!(
        replayed.len(),
        subscriptions,
        "every subscription was set up"
    );
    socket
        .send(json!({ "id": "me", "type": "subscribe",
            "payload": { "query": "{ me { username } }" } }))
        .await;
    let answer = socket.receive().await;
    assert_eq!(answer["id"], "me", "{answer}");
    assert_eq!(answer["payload"]["data"]["me"]["username"], "bob");
}
