//! Concurrent sends written together (on PostgreSQL, `chat_batch`): every send
//! gets the answer it would get alone, whatever else shares its batch. Alone in
//! its own test binary, because it reads process-wide metrics.

mod common;

use common::{Session, TestApp, error_code, spawn_app};
use futures_util::future::join_all;
use serde_json::{Value, json};

const SEND: &str = "mutation($c: ID!, $b: String!, $k: String!) {
    sendMessage(input: { conversationId: $c, body: $b, clientMessageId: $k }) { id seq } }";
const PAIRS: usize = 12;
const ROUNDS: i64 = 4;

async fn send(app: &TestApp, from: &Session, conversation: &Value, key: &str) -> Value {
    app.graphql(
        SEND,
        json!({ "c": conversation, "b": format!("hello {key}"), "k": key }),
        from.token(),
    )
    .await
}

/// A metric's value in `/metrics` (0 when absent).
async fn metric(app: &TestApp, line_start: &str) -> f64 {
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(line_start))
        .map_or(0.0, |value| value.trim().parse().unwrap())
}

#[tokio::test]
async fn concurrent_sends_each_get_their_own_answer() {
    let app = spawn_app().await;
    let mut pairs = Vec::new();
    for i in 0..PAIRS {
        let (a, b) = (
            app.register(&format!("ann{i}")).await,
            app.register(&format!("bob{i}")).await,
        );
        app.befriend(&a, &b).await;
        let conversation = app.direct_conversation(&a, &b).await;
        pairs.push((a, conversation));
    }
    // A sender whose friend then blocked them: every send of theirs fails,
    // and must not take the others' down with it.
    let (eve, ivy) = (app.register("eve").await, app.register("ivy").await);
    app.befriend(&eve, &ivy).await;
    let blocked = app.direct_conversation(&eve, &ivy).await;
    app.data(
        "mutation($u: ID!) { blockUser(userId: $u) { id } }",
        json!({ "u": eve.user_id }),
        ivy.token(),
    )
    .await;

    let app = &app;
    for round in 0..ROUNDS {
        let key = format!("r{round}");
        let sends = pairs.iter().map(|(sender, conversation)| async move {
            send(app, sender, conversation, &format!("r{round}")).await
        });
        // In the first round one sender also retries at once.
        let (retrier, retried) = &pairs[0];
        let retry = async move {
            if round == 0 {
                Some(send(app, retrier, retried, "r0").await)
            } else {
                None
            }
        };
        let (answers, retry, refused) =
            tokio::join!(join_all(sends), retry, send(app, &eve, &blocked, &key));
        for answer in &answers {
            assert_eq!(
                answer["data"]["sendMessage"]["seq"],
                round + 1,
                "round {round}: {answer}"
            );
        }
        if let Some(retry) = retry {
            assert_eq!(
                retry["data"]["sendMessage"], answers[0]["data"]["sendMessage"],
                "a retry is the first message"
            );
        }
        assert_eq!(error_code(&refused), "NOT_FOUND", "{refused}");
    }
    // Nothing was written twice: the next message in each takes the next number.
    for (sender, conversation) in &pairs {
        let next = send(app, sender, conversation, "last").await;
        assert_eq!(next["data"]["sendMessage"]["seq"], ROUNDS + 1, "{next}");
    }

    if std::env::var("KITH_TEST_DATABASE_URL").is_ok() {
        let committed = metric(app, "kith_send_batches_total{outcome=\"committed\"} ").await;
        let alone = metric(app, "kith_send_batches_total{outcome=\"alone\"} ").await;
        let drafts = metric(app, "kith_send_batch_drafts_sum ").await;
        let batches = metric(app, "kith_send_batch_drafts_count ").await;
        assert!(committed > 0.0, "sends were written in batches");
        assert!(
            alone >= ROUNDS as f64,
            "the refused sends' batches fell back"
        );
        assert!(
            drafts > batches,
            "some batch held more than one send ({drafts} drafts in {batches} batches)"
        );
    }
}
