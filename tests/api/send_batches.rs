//! Concurrent sends written together (on PostgreSQL, `chat::send::batch`): every send
//! gets the answer it would get alone, whatever else shares its batch. The
//! test that reads the process-wide metrics runs in a process of its own.

use crate::common;

use std::time::Duration;

use common::{Session, TestApp, error_code, spawn_app};
use futures_util::future::join_all;
use kith::graphql::ids;
use sea_orm::{ConnectionTrait, Database, DbBackend, Statement, TransactionTrait};
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

/// Friends `name0`, `name1`, ... each with a friend, and their conversations.
async fn chatting(app: &TestApp, name: &str, count: usize) -> Vec<(Session, Value)> {
    let mut pairs = Vec::new();
    for i in 0..count {
        let (a, b) = (
            app.register(&format!("{name}{i}")).await,
            app.register(&format!("{name}friend{i}")).await,
        );
        app.befriend(&a, &b).await;
        let conversation = app.direct_conversation(&a, &b).await;
        pairs.push((a, conversation));
    }
    pairs
}

#[tokio::test]
async fn concurrent_sends_each_get_their_own_answer() {
    // The batch metrics are process-wide: every other send would move them.
    if common::in_own_process(module_path!(), "concurrent_sends_each_get_their_own_answer").await {
        return;
    }
    let app = spawn_app().await;
    let pairs = chatting(&app, "ann", PAIRS).await;
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
        let committed = app
            .metric("kith_send_batches_total{outcome=\"committed\"} ")
            .await;
        let alone = app
            .metric("kith_send_batches_total{outcome=\"alone\"} ")
            .await;
        let drafts = app.metric("kith_send_batch_drafts_sum ").await;
        let batches = app.metric("kith_send_batch_drafts_count ").await;
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

/// A batch waits only briefly behind another transaction's lock (a long
/// account deletion, say): it gives up, its sends wait alone, and the sends
/// behind it go on. Each stuck sender's send arrives on its own, so each
/// stops a writer of its own for a while.
#[tokio::test]
async fn sends_stuck_behind_a_lock_hold_up_no_others() {
    let app = spawn_app().await;
    let Some(url) = app.postgres_url() else {
        common::skipped("batches are PostgreSQL's: SQLite has one writer at a time anyway");
        return;
    };
    let stuck = chatting(&app, "stuck", 4).await;
    let others = chatting(&app, "other", 6).await;
    let db = Database::connect(&url).await.unwrap();
    let lock = db.begin().await.unwrap();
    let ids = stuck
        .iter()
        .map(|(sender, _)| {
            let (_, id) = ids::decode(&sender.user_id).expect("a user's global id");
            format!("'{id}'")
        })
        .collect::<Vec<_>>()
        .join(", ");
    lock.execute_raw(Statement::from_string(
        DbBackend::Postgres,
        format!("SELECT id FROM users WHERE id IN ({ids}) FOR UPDATE"),
    ))
    .await
    .unwrap();

    // Each stuck send starts a moment after the one before (spawned: a
    // future not yet polled would not have been sent), so each arrives on
    // its own.
    let mut waiting = Vec::new();
    for (sender, conversation) in &stuck {
        waiting.push(spawn_send(&app, sender, conversation, "stuck"));
        let behind = waiting.len();
        common::eventually("the send behind the lock", || async {
            (waiting_on_locks(&db).await >= behind).then_some(())
        })
        .await;
    }
    let mut waiting = Box::pin(join_all(waiting));
    let app = &app;
    let go_on = tokio::time::timeout(Duration::from_secs(10), async {
        for round in 0..3i64 {
            let sends = others.iter().map(|(sender, conversation)| async move {
                send(app, sender, conversation, &format!("r{round}")).await
            });
            for answer in join_all(sends).await {
                assert_eq!(answer["data"]["sendMessage"]["seq"], round + 1, "{answer}");
            }
        }
    });
    tokio::select! {
        answers = &mut waiting => panic!("sent through another's lock: {answers:?}"),
        went_on = go_on => went_on.expect("the other sends went on behind the lock"),
    }
    lock.rollback().await.unwrap();
    for answer in waiting.await {
        let answer = answer.expect("the stuck send's task");
        assert_eq!(answer["data"]["sendMessage"]["seq"], 1, "{answer}");
    }
}

/// A send already on its way: it starts now, not when first awaited.
fn spawn_send(
    app: &TestApp,
    from: &Session,
    conversation: &Value,
    key: &str,
) -> tokio::task::JoinHandle<Value> {
    let request = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&from.access_token)
        .json(&json!({ "query": SEND, "variables":
            { "c": conversation, "b": format!("hello {key}"), "k": key } }));
    tokio::spawn(async move {
        let response = request.send().await.expect("request sent");
        response.json().await.expect("JSON response")
    })
}

/// How many of the database's connections wait for a lock: the writers the
/// stuck sends hold.
async fn waiting_on_locks(db: &sea_orm::DatabaseConnection) -> usize {
    let row = db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT count(*) AS waiting FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        ))
        .await
        .unwrap()
        .expect("a count");
    let waiting: i64 = row.try_get("", "waiting").unwrap();
    usize::try_from(waiting).unwrap()
}
