//! Webhooks: each event `POST`ed to a receiver the test runs on a free
//! port, which fails the first tries (an error, then a hang past the
//! timeout) and then accepts; signed so the test can check the signature
//! itself; filtered by type; dead after the last try, listed and replayed
//! by the real `kith events` commands. No NATS in any of them: webhooks
//! alone turn the outbox on.

use std::{
    future::Future,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    routing::post,
};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::common::{TestApp, spawn_app_with};

const SECRET: &str = "whsec_kith_tests_5Jd8Qw2Lx";

/// What the receiver does with a try.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    Fail,
    /// Answers only long after kith's timeout (2 s in these tests).
    Hang,
    Accept,
}

/// One request as the receiver got it.
#[derive(Clone, Debug)]
struct Received {
    event_id: String,
    content_type: String,
    signature: String,
    body: Bytes,
    /// Unix seconds when it arrived.
    at: u64,
    answer: Answer,
}

impl Received {
    fn event(&self) -> Value {
        serde_json::from_slice(&self.body).expect("the body is JSON")
    }
}

/// Which answer the n-th try (from 1) of one event gets.
type Policy = Arc<dyn Fn(u32) -> Answer + Send + Sync>;

#[derive(Clone)]
struct Receiver {
    url: String,
    policy: Arc<Mutex<Policy>>,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    async fn start(policy: impl Fn(u32) -> Answer + Send + Sync + 'static) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let receiver = Self {
            url: format!("http://{}/hooks/kith", listener.local_addr().unwrap()),
            policy: Arc::new(Mutex::new(Arc::new(policy))),
            received: Arc::default(),
        };
        let router = Router::new()
            .route("/hooks/kith", post(receive))
            .with_state(receiver.clone());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        receiver
    }

    fn answer_from_now_on(&self, policy: impl Fn(u32) -> Answer + Send + Sync + 'static) {
        *self.policy.lock().unwrap() = Arc::new(policy);
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    fn tries_of(&self, event_id: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.event_id == event_id)
            .collect()
    }

    /// The events accepted so far, each once per time it was accepted.
    fn accepted(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.answer == Answer::Accept)
            .collect()
    }
}

async fn receive(State(receiver): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let event_id = header("kith-event-id");
    let answer = {
        let mut received = receiver.received.lock().unwrap();
        let tries = 1 + received.iter().filter(|r| r.event_id == event_id).count();
        let answer = (receiver.policy.lock().unwrap())(tries as u32);
        received.push(Received {
            event_id,
            content_type: header("content-type"),
            signature: header("kith-signature"),
            body,
            at: unix_now(),
            answer,
        });
        answer
    };
    match answer {
        Answer::Accept => StatusCode::NO_CONTENT,
        Answer::Fail => StatusCode::INTERNAL_SERVER_ERROR,
        Answer::Hang => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            StatusCode::OK
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// `Kith-Signature` checked as a receiver would, with the shared secret
/// alone: `t` when `v1` is the HMAC of `"<t>.<body>"`.
fn signed_at(signature: &str, body: &[u8]) -> Option<u64> {
    let mut t = None;
    let mut v1 = None;
    for part in signature.split(',') {
        match part.split_once('=') {
            Some(("t", value)) => t = Some(value),
            Some(("v1", value)) => v1 = Some(value),
            _ => {}
        }
    }
    let (t, v1) = (t?, v1?);
    (v1 == hmac_hex(&format!("{t}."), body)).then(|| t.parse().ok())?
}

fn hmac_hex(prefix: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(prefix.as_bytes());
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// As `common::eventually`, with room for retries, timeouts and backoff on
/// a loaded two-core machine: fails the test after 60 s.
async fn until<T, F: Future<Output = Option<T>>>(what: &str, mut check: impl FnMut() -> F) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(answer) = check().await {
            return answer;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not after 60 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn ready(app: &TestApp) -> Value {
    app.readyz().await.expect("/readyz answers with JSON")
}

/// Runs `kith events <args>` on the app's database; its stdout.
async fn kith_events(app: &TestApp, args: &[&str]) -> String {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_kith"))
        .arg("events")
        .args(args)
        .env("DATABASE_URL", app.database_url())
        .env("RUST_LOG", "error")
        .kill_on_drop(true)
        .output()
        .await
        .expect("kith runs");
    assert!(
        output.status.success(),
        "kith events {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test]
async fn a_receiver_that_fails_first_gets_each_event_later_once_and_signed() {
    let receiver = Receiver::start(|try_number| match try_number {
        1 => Answer::Fail,
        2 => Answer::Hang,
        _ => Answer::Accept,
    })
    .await;
    let url = receiver.url.clone();
    let app = spawn_app_with(|s| {
        s.webhook_urls = Some(url);
        s.webhook_secret = Some(SECRET.into());
        // Sessions are filtered out; sign-ups go.
        s.webhook_events = Some("user.*".into());
        // Short, for the hang; long enough that an answer on a loaded
        // machine is not taken for one.
        s.webhook_timeout_secs = 2;
        s.webhook_backoff_millis = 50;
        s.webhook_max_attempts = 10;
    })
    .await;
    app.register("ann_hooks").await;
    app.register("bob_hooks").await;

    let accepted = until("both sign-ups accepted", || async {
        let accepted = receiver.accepted();
        (accepted.len() >= 2).then_some(accepted)
    })
    .await;
    // Every delivery settled: none still pending, so a filtered-out type
    // handed on with these would have been posted by now.
    until("no delivery left", || async {
        (app.count_rows("webhook_deliveries").await == 0).then_some(())
    })
    .await;
    let received = receiver.received();
    assert_eq!(
        receiver.accepted().len(),
        2,
        "each accepted once: {received:#?}"
    );
    let names: Vec<_> = accepted
        .iter()
        .map(|r| r.event()["data"]["username"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        names.contains(&"ann_hooks".to_owned()) && names.contains(&"bob_hooks".to_owned()),
        "{names:?}"
    );
    for request in &received {
        let event = request.event();
        assert_eq!(
            event["type"], "user.registered",
            "the filter holds: {event:#}"
        );
        assert_eq!(event["id"], request.event_id.as_str(), "Kith-Event-Id");
        assert_eq!(request.content_type, "application/json");
        let t = signed_at(&request.signature, &request.body)
            .unwrap_or_else(|| panic!("a valid signature: {}", request.signature));
        // Signed when sent, so a receiver may refuse an old `t`; and a
        // replay cannot move `t` without the secret.
        assert!(
            t.abs_diff(request.at) <= 60,
            "t={t}, arrived {}",
            request.at
        );
        let (_, v1) = request.signature.split_once(",v1=").unwrap();
        assert_eq!(
            signed_at(&format!("t={},v1={v1}", t - 600), &request.body),
            None
        );
        assert_eq!(signed_at(&request.signature, b"{\"forged\":true}"), None);
    }
    for delivered in &accepted {
        let tries = receiver.tries_of(&delivered.event_id);
        let answers: Vec<_> = tries.iter().map(|r| r.answer).collect();
        assert_eq!(
            answers,
            [Answer::Fail, Answer::Hang, Answer::Accept],
            "{tries:#?}"
        );
        assert!(
            tries.iter().all(|r| r.body == delivered.body),
            "every try carries the same envelope"
        );
    }
    // The outbox was written and relayed with webhooks alone.
    assert!(app.count_rows("outbox").await >= 4);
    let ready = until("the outbox relayed", || async {
        let ready = ready(&app).await;
        (ready["events"]["waiting"] == 0).then_some(ready)
    })
    .await;
    assert_eq!(
        ready["events"]["webhooks"],
        serde_json::json!({ "pending": 0, "dead": 0 }),
        "{ready:#}"
    );
    assert!(
        app.metric("kith_webhook_deliveries_total{outcome=\"delivered\"} ")
            .await
            >= 2.0
    );
}

#[tokio::test]
async fn a_dead_letter_is_listed_and_replayed_by_the_kith_events_commands() {
    let receiver = Receiver::start(|_| Answer::Fail).await;
    let url = receiver.url.clone();
    let app = spawn_app_with(|s| {
        s.webhook_urls = Some(url);
        s.webhook_secret = Some(SECRET.into());
        s.webhook_events = Some("user.registered".into());
        s.webhook_timeout_secs = 3;
        s.webhook_backoff_millis = 20;
        s.webhook_max_attempts = 3;
        // Pruned within seconds: all but the dead letter's event.
        s.outbox_retention_secs = 1;
    })
    .await;
    app.register("dead_hooks").await;

    let ready = until("the delivery dead", || async {
        let ready = ready(&app).await;
        (ready["events"]["webhooks"]["dead"] == 1).then_some(ready)
    })
    .await;
    assert_eq!(ready["events"]["webhooks"]["pending"], 0, "{ready:#}");
    // The sign-up's session is pruned; the dead letter's event stays to be
    // replayed.
    until("the outbox pruned", || async {
        (app.count_rows("outbox").await == 1).then_some(())
    })
    .await;
    let tries = receiver.received();
    assert_eq!(tries.len(), 3, "{tries:#?}");
    let event_id = tries[0].event_id.clone();
    assert!(tries.iter().all(|r| r.event_id == event_id));

    let failed = kith_events(&app, &["failed"]).await;
    let line = failed
        .lines()
        .find(|line| line.contains(&event_id))
        .unwrap_or_else(|| panic!("{event_id} listed: {failed}"));
    for column in ["user.registered", receiver.url.as_str(), " 3 ", "HTTP 500"] {
        assert!(line.contains(column), "{column:?} in {line:?}");
    }
    assert!(
        app.metric("kith_webhook_deliveries_total{outcome=\"dead\"} ")
            .await
            >= 1.0
    );

    // Dead means left alone: no further tries.
    assert_eq!(receiver.received().len(), 3);
    receiver.answer_from_now_on(|_| Answer::Accept);
    let replayed = kith_events(&app, &["replay", &event_id]).await;
    assert_eq!(replayed.trim(), "replayed 1 delivery");
    let accepted = until("the replayed delivery accepted", || async {
        let accepted = receiver.accepted();
        (!accepted.is_empty()).then_some(accepted)
    })
    .await;
    assert_eq!(accepted[0].event_id, event_id);
    assert!(signed_at(&accepted[0].signature, &accepted[0].body).is_some());
    until("no delivery left", || async {
        (app.count_rows("webhook_deliveries").await == 0).then_some(())
    })
    .await;
    assert_eq!(receiver.accepted().len(), 1, "delivered once");
    assert_eq!(
        kith_events(&app, &["failed"]).await.trim(),
        "no dead letters"
    );
    assert_eq!(
        kith_events(&app, &["replay", "--all"]).await.trim(),
        "replayed 0 deliveries"
    );
}

#[tokio::test]
async fn webhook_urls_without_a_secret_stop_the_start_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_kith"))
        .arg("serve")
        .current_dir(dir.path())
        .env(
            "DATABASE_URL",
            format!("sqlite://{}?mode=rwc", dir.path().join("kith.db").display()),
        )
        .env("KITH_LISTEN", "127.0.0.1:0")
        .env("KITH_WEBHOOK_URLS", "https://hooks.example.com/kith")
        .env_remove("KITH_WEBHOOK_SECRET")
        .kill_on_drop(true)
        .output()
        .await
        .expect("kith runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("bad setting KITH_WEBHOOK_SECRET:"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("kith.db").exists(),
        "stopped before it touched the database"
    );
}

#[tokio::test]
async fn with_nats_too_each_event_reaches_both() {
    let Some(nats) = super::OwnNats::start().await else {
        return;
    };
    let receiver = Receiver::start(|_| Answer::Accept).await;
    let (nats_url, hook_url) = (nats.url(), receiver.url.clone());
    let app = spawn_app_with(|s| {
        s.nats_url = Some(nats_url);
        s.webhook_urls = Some(hook_url);
        s.webhook_secret = Some(SECRET.into());
    })
    .await;
    app.register("both_sinks").await;
    let ids = |events: Vec<Value>| {
        let mut ids: Vec<String> = events
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    };
    // The sign-up and its session at least, the same ones on both.
    until("the same events streamed and posted", || async {
        let streamed = ids(nats.events().await);
        let posted = ids(receiver.accepted().iter().map(Received::event).collect());
        (streamed.len() >= 2 && streamed == posted).then_some(())
    })
    .await;
}

#[tokio::test]
async fn two_replicas_dispatching_at_once_deliver_each_event_once() {
    let receiver = Receiver::start(|_| Answer::Accept).await;
    let url = receiver.url.clone();
    let Some(replicas) = crate::common::spawn_replicas(2, |c| {
        c.env("KITH_WEBHOOK_URLS", &url)
            .env("KITH_WEBHOOK_SECRET", SECRET)
            .env("KITH_WEBHOOK_EVENTS", "user.registered");
    })
    .await
    else {
        crate::common::skipped(
            "needs PostgreSQL and Redis (KITH_TEST_DATABASE_URL, KITH_TEST_REDIS_URL)",
        );
        return;
    };
    let names: Vec<String> = (0..20).map(|i| format!("hook_user_{i}")).collect();
    let registrations = names
        .iter()
        .enumerate()
        .map(|(i, name)| replicas[i % 2].register(name));
    futures_util::future::join_all(registrations).await;
    until("20 sign-ups posted", || async {
        (receiver.accepted().len() >= 20).then_some(())
    })
    .await;
    until("no delivery left", || async {
        (replicas[0].count_rows("webhook_deliveries").await == 0).then_some(())
    })
    .await;
    let accepted = receiver.accepted();
    let mut ids: Vec<_> = accepted.iter().map(|r| r.event_id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 20, "each once: {accepted:#?}");
    assert_eq!(accepted.len(), 20, "each once: {accepted:#?}");
}
