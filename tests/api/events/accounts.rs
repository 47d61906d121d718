//! Account and session events: registered, signed in, signed out, deleted;
//! nothing for a change that failed; nothing lost or doubled while NATS is
//! away; one copy when two replicas relay at once.

use serde_json::json;

use super::*;
use crate::common::{PASSWORD, Session, error_code, spawn_app_with, spawn_replicas};

#[tokio::test]
async fn account_and_session_events_reach_jetstream_in_their_envelope() {
    let Some(nats) = OwnNats::start().await else {
        return;
    };
    let app = spawn_app_with(|s| s.nats_url = Some(nats.url())).await;
    let ann = app.register("ann_events").await;
    let login = app.login("ann_events", PASSWORD).await;
    let phone = Session::from_payload(&login["data"]["login"]);
    app.data("mutation { logout }", json!({}), phone.token())
        .await;
    // A change that fails writes no event.
    let taken = app
        .graphql(
            "mutation { register(input: { username: \"ann_events\", password: \"another password\" }) { accessToken } }",
            json!({}),
            None,
        )
        .await;
    assert_eq!(error_code(&taken), "CONFLICT");
    app.data(
        "mutation($p: String!) { deleteAccount(input: { password: $p }) }",
        json!({ "p": PASSWORD }),
        ann.token(),
    )
    .await;

    let events = nats.until("user.deleted", 1).await;
    let kinds: Vec<_> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "user.registered",
            "session.started",
            "session.started",
            "session.revoked",
            "user.deleted"
        ],
        "{events:#?}"
    );
    assert_no_duplicates(&events);
    let user_id = events[0]["data"]["userId"].as_str().unwrap().to_owned();
    for event in &events {
        assert_eq!(event["version"], 1);
        assert_eq!(event["actor"], user_id.as_str(), "{event:#}");
        assert_eq!(event["_msgId"], event["id"], "Nats-Msg-Id is the event id");
        assert_eq!(
            event["_subject"],
            format!("kith.{}", event["type"].as_str().unwrap())
        );
        uuid::Uuid::parse_str(event["id"].as_str().unwrap()).expect("a UUID");
        chrono::DateTime::parse_from_rfc3339(event["occurredAt"].as_str().unwrap())
            .expect("an RFC 3339 time");
        let text = event.to_string();
        for secret in [
            PASSWORD,
            &ann.access_token,
            &ann.refresh_token,
            &phone.refresh_token,
        ] {
            assert!(!text.contains(secret), "a secret in {event:#}");
        }
    }
    assert_eq!(
        events[0]["data"],
        json!({ "userId": user_id, "username": "ann_events", "method": "password" })
    );
    assert_eq!(events[2]["data"]["method"], "password");
    assert_eq!(events[3]["data"]["reason"], "revoked");
    assert_eq!(
        events[3]["data"]["sessionIds"][0],
        events[2]["data"]["sessionId"]
    );
}

#[tokio::test]
async fn without_a_sink_nothing_is_written_to_the_outbox() {
    let app = spawn_app_with(|_| {}).await;
    app.register("no_sink").await;
    assert_eq!(app.count_rows("outbox").await, 0);
}

#[tokio::test]
async fn events_written_while_nats_is_away_arrive_once_it_returns() {
    let Some(mut nats) = OwnNats::start().await else {
        return;
    };
    let app = spawn_app_with(|s| s.nats_url = Some(nats.url())).await;
    app.register("before_1").await;
    nats.until("user.registered", 1).await;
    nats.kill().await;
    // Sign-ups go on while the stream is away.
    for name in ["away_1", "away_2", "away_3"] {
        app.register(name).await;
    }
    // `/readyz` says they wait (a sign-up and a session each), and stays 200.
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let ready: serde_json::Value = ready.json().await.unwrap();
    assert!(
        ready["events"]["waiting"].as_u64().unwrap() >= 6,
        "{ready:#}"
    );
    assert!(
        ready["events"]["lagSecs"].as_f64().unwrap() >= 0.0,
        "{ready:#}"
    );
    nats.restart().await;
    app.register("after_1").await;
    let events = nats.until("user.registered", 5).await;
    assert_no_duplicates(&events);
    let names: Vec<_> = of_type(&events, "user.registered")
        .iter()
        .map(|e| e["data"]["username"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["before_1", "away_1", "away_2", "away_3", "after_1"]);
    assert_eq!(of_type(&events, "session.started").len(), 5);
    let ready: serde_json::Value = crate::common::eventually("the backlog drained", || async {
        let ready = app.readyz().await?;
        (ready["events"]["waiting"] == 0).then_some(ready)
    })
    .await;
    assert_eq!(ready["status"], "ok");
}

#[tokio::test]
async fn two_replicas_relaying_at_once_publish_each_event_once() {
    let Some(nats) = OwnNats::start().await else {
        return;
    };
    let url = nats.url();
    let Some(replicas) = spawn_replicas(2, |c| {
        c.env("KITH_NATS_URL", &url);
    })
    .await
    else {
        crate::common::skipped(
            "needs PostgreSQL and Redis (KITH_TEST_DATABASE_URL, KITH_TEST_REDIS_URL)",
        );
        return;
    };
    let names: Vec<String> = (0..20).map(|i| format!("replica_user_{i}")).collect();
    let registrations = names
        .iter()
        .enumerate()
        .map(|(i, name)| replicas[i % 2].register(name));
    futures_util::future::join_all(registrations).await;
    // Each sign-up's session comes after it: waiting for the 20th sign-up
    // instead could read the stream between the two.
    let events = nats.until("session.started", 20).await;
    assert_no_duplicates(&events);
    assert_eq!(of_type(&events, "user.registered").len(), 20);
    assert_eq!(of_type(&events, "session.started").len(), 20);
}
