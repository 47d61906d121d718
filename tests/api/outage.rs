//! When the database goes away: every call that needs it answers
//! `UNAVAILABLE` with `retryAfter` within a few seconds (not an anonymous
//! internal error after the pool's patience), `/readyz` answers 503 at once,
//! and everything heals when the database is back, with nothing acknowledged
//! lost. The database is the real PostgreSQL, reached through a link the test
//! cuts; SQLite is a file in the process and cannot go away.

use crate::common;

use std::time::Duration;

use common::{
    Received,
    link::{Link, Mode},
    spawn_app_with,
};
use serde_json::{Value, json};

/// A bound on each answer, so a hang fails the test instead of stalling it;
/// the pool's own patience in this test is one second.
const ANSWER_BOUND: Duration = Duration::from_secs(15);

/// The body doubles as the `clientMessageId`: a retried send is the same send.
const SEND: &str = "mutation($c: ID!, $b: String!) {
    sendMessage(input: { conversationId: $c, body: $b, clientMessageId: $b }) { seq } }";

/// `url` with its host and port replaced by `addr`.
fn through(url: &str, addr: std::net::SocketAddr) -> String {
    let authority_start = url.find("://").map_or(0, |i| i + 3);
    let authority_end = url[authority_start..]
        .find('/')
        .map_or(url.len(), |i| authority_start + i);
    let host_start = url[authority_start..authority_end]
        .rfind('@')
        .map_or(authority_start, |i| authority_start + i + 1);
    format!("{}{addr}{}", &url[..host_start], &url[authority_end..])
}

fn upstream_of(url: &str) -> std::net::SocketAddr {
    let probe: std::net::SocketAddr = "127.0.0.1:1".parse().unwrap();
    let rewritten = through(url, probe);
    // What `through` replaced is the server's address.
    let start = rewritten.find("127.0.0.1:1").unwrap();
    let end = start + url.len() - (rewritten.len() - "127.0.0.1:1".len());
    url[start..end]
        .parse()
        .expect("the test database URL names host:port")
}

/// An app whose PostgreSQL is reached through a link the test can cut, with
/// one second of patience for a connection; `None` (the test skipped) on a
/// run without PostgreSQL.
async fn app_behind_a_link() -> Option<(common::TestApp, Link)> {
    let Ok(admin_url) = std::env::var("KITH_TEST_DATABASE_URL") else {
        common::skipped("a database outage is a PostgreSQL matter");
        return None;
    };
    let link = Link::to(upstream_of(&admin_url)).await;
    let app = spawn_app_with(|settings| {
        settings.database_url = through(&settings.database_url, link.addr);
        settings.db_acquire_timeout_millis = 1_000;
    })
    .await;
    Some((app, link))
}

fn code_of(response: &Value) -> (&str, Option<u64>) {
    let error = &response["errors"][0];
    (
        error["extensions"]["code"].as_str().unwrap_or_default(),
        error["extensions"]["retryAfter"].as_u64(),
    )
}

async fn readyz(app: &common::TestApp) -> u16 {
    app.client
        .get(app.url("/readyz"))
        .timeout(ANSWER_BOUND)
        .send()
        .await
        .expect("/readyz answers")
        .status()
        .as_u16()
}

#[tokio::test]
async fn an_unreachable_database_answers_unavailable_and_heals() {
    let Some((app, link)) = app_behind_a_link().await else {
        return;
    };
    let (ann, bob, conversation) = app.friends_chatting().await;
    let send = |body: &str| {
        let (app, conversation, token) = (&app, conversation.clone(), ann.access_token.clone());
        let body = body.to_owned();
        async move {
            tokio::time::timeout(
                ANSWER_BOUND,
                app.graphql(SEND, json!({ "c": conversation, "b": body }), Some(&token)),
            )
            .await
            .expect("answered within the bound")
        }
    };
    let before = send("before").await;
    assert_eq!(before["data"]["sendMessage"]["seq"], 1, "{before:#}");

    for mode in [Mode::Swallow, Mode::Refuse] {
        link.set(mode);
        let response = send(&format!("while away ({mode:?})")).await;
        assert_eq!(
            code_of(&response),
            ("UNAVAILABLE", Some(2)),
            "{mode:?}: {response:#}"
        );
        assert_eq!(readyz(&app).await, 503, "{mode:?}");

        // A subscription started meanwhile is refused as promptly.
        let mut socket = app.signed_in_socket(&bob).await;
        socket
            .send(json!({ "id": "1", "type": "subscribe", "payload": {
                "query": "subscription($c: ID!) { messageAdded(conversationId: $c) { seq } }",
                "variables": { "c": conversation } } }))
            .await;
        match socket.receive_within(ANSWER_BOUND).await {
            Received::Json(message) => {
                let payload = &message["payload"];
                let error = payload
                    .get("errors")
                    .and_then(|errors| errors.get(0))
                    .or_else(|| payload.get(0))
                    .unwrap_or_else(|| panic!("an error: {message:#}"));
                assert_eq!(error["extensions"]["code"], "UNAVAILABLE", "{message:#}");
            }
            Received::Closed(code) => panic!("closed ({code:?}) instead of an error"),
        }
    }

    link.set(Mode::Pass);
    let mut healed = None;
    for _ in 0..50 {
        let response = send("after").await;
        if response.get("errors").is_none() {
            healed = Some(response);
            break;
        }
        assert_eq!(code_of(&response).0, "UNAVAILABLE", "{response:#}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let healed = healed.expect("sends work again once the database is back");
    assert_eq!(
        healed["data"]["sendMessage"]["seq"], 2,
        "nothing refused was written, nothing acknowledged lost"
    );
    assert_eq!(readyz(&app).await, 200);
}

/// A session never checked yet (nothing cached for it) needs the database
/// to be checked: while it is away, a signed-in request is `UNAVAILABLE`
/// with `retryAfter` like any other call that needs it, not an internal
/// error; a socket's `connection_init` is closed 1013 (retryable), with the
/// legacy protocol's `connection_error` saying `UNAVAILABLE`.
#[tokio::test]
async fn an_unchecked_session_during_an_outage_is_unavailable() {
    let Some((app, link)) = app_behind_a_link().await else {
        return;
    };
    // Registered, never used: no cache holds these sessions.
    let mut fresh = Vec::new();
    for name in ["ann", "bob", "cat", "dan", "eve", "fay"] {
        fresh.push(app.register(name).await);
    }
    let mut fresh = fresh.into_iter();

    for mode in [Mode::Refuse, Mode::Swallow] {
        link.set(mode);
        let user = fresh.next().unwrap();
        let response = tokio::time::timeout(
            ANSWER_BOUND,
            app.graphql("{ me { id } }", json!({}), user.token()),
        )
        .await
        .expect("answered within the bound");
        assert_eq!(
            code_of(&response),
            ("UNAVAILABLE", Some(2)),
            "{mode:?}: {response:#}"
        );

        let user = fresh.next().unwrap();
        let mut socket = app.websocket("/graphql", "graphql-transport-ws").await;
        socket
            .send(json!({ "type": "connection_init",
                "payload": { "authorization": user.access_token } }))
            .await;
        assert_eq!(socket.closes_with(&[]).await.0, 1013, "{mode:?}");

        let user = fresh.next().unwrap();
        let mut legacy = app.websocket("/graphql", "graphql-ws").await;
        legacy
            .send(json!({ "type": "connection_init",
                "payload": { "authorization": user.access_token } }))
            .await;
        let Received::Json(error) = legacy.receive_within(ANSWER_BOUND).await else {
            panic!("{mode:?}: closed without a connection_error");
        };
        assert_eq!(error["type"], "connection_error", "{mode:?}: {error}");
        let extensions = &error["payload"]["extensions"];
        assert_eq!(extensions["code"], "UNAVAILABLE", "{mode:?}: {error}");
        assert_eq!(extensions["retryAfter"], 2, "{mode:?}: {error}");
        assert_eq!(legacy.closes_with(&[]).await.0, 1013, "{mode:?}");
    }
}

/// A signed-in socket checks its session in the database after a gap in
/// the events (a revocation may have been missed). When the database is
/// away too, the session is not known to have ended: the socket closes 1013,
/// which the graphql-ws client retries (its reconnect checks the session
/// again), not 4403, on which it gives up for good.
#[tokio::test]
async fn a_session_that_cannot_be_rechecked_closes_its_socket_1013() {
    let (Ok(admin_url), Ok(redis_url)) = (
        std::env::var("KITH_TEST_DATABASE_URL"),
        std::env::var("KITH_TEST_REDIS_URL"),
    ) else {
        common::skipped("a gap in the events needs Redis, an outage PostgreSQL");
        return;
    };
    let database = Link::to(upstream_of(&admin_url)).await;
    let redis = Link::to(upstream_of(&redis_url)).await;
    let app = spawn_app_with(|settings| {
        settings.database_url = through(&settings.database_url, database.addr);
        settings.redis_url = Some(through(&redis_url, redis.addr));
        settings.db_acquire_timeout_millis = 1_000;
    })
    .await;
    let ann = app.register("ann").await;
    let mut socket = app
        .signed_in_socket_on("/graphql", "graphql-transport-ws", &ann)
        .await;
    let mut legacy = app
        .signed_in_socket_on("/graphql", "graphql-ws", &ann)
        .await;

    database.set(Mode::Refuse);
    // Redis drops and comes back: the events of the gap are lost, so each
    // socket's watcher asks the database, which is away.
    redis.set(Mode::Refuse);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    redis.set(Mode::Pass);

    let bound = Duration::from_secs(30);
    let Received::Json(error) = legacy.receive_within(bound).await else {
        panic!("closed without a connection_error");
    };
    assert_eq!(error["type"], "connection_error", "{error}");
    assert_eq!(
        error["payload"]["extensions"]["code"], "UNAVAILABLE",
        "{error}"
    );
    assert_eq!(legacy.closes_with(&[]).await.0, 1013);
    assert_eq!(socket.closes_with(&[]).await.0, 1013);
}

#[test]
fn urls_are_pointed_through_the_link() {
    let addr = "127.0.0.1:4242".parse().unwrap();
    assert_eq!(
        through(
            "postgres://postgres@127.0.0.1:5432/db?sslmode=disable",
            addr
        ),
        "postgres://postgres@127.0.0.1:4242/db?sslmode=disable"
    );
    assert_eq!(
        upstream_of("postgres://postgres@127.0.0.1:5432/db"),
        "127.0.0.1:5432".parse().unwrap()
    );
}
