//! The relay's order on PostgreSQL, made deterministic: transactions whose
//! ids do not follow their rows' commit order, driven by hand against the
//! outbox, and the relay run one step at a time into a sink that records.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use async_trait::async_trait;
use kith::{
    domain::outbox::Relay,
    infra::db::Db,
    infra::event_sink::{EventSink, Outgoing},
};
use sea_orm::{ConnectionTrait, Database, DbBackend, Statement, TransactionTrait};

use crate::common::{eventually, skipped, spawn_app};

/// Keeps the subjects and ids it was handed, in order.
#[derive(Default)]
struct Recording(Mutex<Vec<String>>);

#[async_trait]
impl EventSink for Recording {
    async fn publish_all(&self, events: Vec<Outgoing>) -> (usize, Option<anyhow::Error>) {
        let mut recorded = self.0.lock().unwrap();
        recorded.extend(events.iter().map(|event| event.id.clone()));
        (events.len(), None)
    }
}

async fn append(db: &impl ConnectionTrait, id: uuid::Uuid) {
    db.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "INSERT INTO outbox (id, event_type, version, occurred_at, data)
         VALUES ($1, 'message.sent', 1, now(), '{}')",
        [id.into()],
    ))
    .await
    .unwrap();
}

/// Starts a transaction and gives it its id at once, as a row lock does.
async fn with_an_id(db: &sea_orm::DatabaseConnection) -> sea_orm::DatabaseTransaction {
    let txn = db.begin().await.unwrap();
    txn.execute_unprepared("SELECT pg_current_xact_id()")
        .await
        .unwrap();
    txn
}

/// A conversation's message 8 commits before its message 9 is written (the
/// conversation's lock sees to that), but 9's transaction took its id first
/// (a batch share-locks its users before it numbers its messages); a third
/// transaction, between the two, is still running. 9 is ready by the ids
/// alone, 8 is not: the relay must not publish 9 before 8.
#[tokio::test]
async fn the_relay_never_publishes_past_an_earlier_commit_not_yet_ready() {
    let app = spawn_app().await;
    let Some(url) = app.postgres_url() else {
        skipped("transaction ids are PostgreSQL's: SQLite relays in seq order alone");
        return;
    };
    let connect = || async { Database::connect(&url).await.unwrap() };
    let (first, between, last) = (connect().await, connect().await, connect().await);
    let nine = with_an_id(&first).await;
    let running = with_an_id(&between).await;
    let eight_id = uuid::Uuid::now_v7();
    let eight = with_an_id(&last).await;
    append(&eight, eight_id).await;
    eight.commit().await.unwrap();
    let nine_id = uuid::Uuid::now_v7();
    append(&nine, nine_id).await;
    nine.commit().await.unwrap();

    let sink = Arc::new(Recording::default());
    let relay = Relay::new(
        Db::new(connect().await, None),
        sink.clone(),
        Duration::from_secs(3600),
    );
    relay.relay_batch().await.unwrap();
    assert_eq!(
        *sink.0.lock().unwrap(),
        Vec::<String>::new(),
        "nothing goes out past message 8 while it is not ready"
    );
    running.rollback().await.unwrap();
    // Other tests' transactions, on the same server, may hold both back a
    // moment longer.
    eventually("both relayed", || async {
        relay.relay_batch().await.unwrap();
        (sink.0.lock().unwrap().len() >= 2).then_some(())
    })
    .await;
    assert_eq!(
        *sink.0.lock().unwrap(),
        [eight_id.to_string(), nine_id.to_string()]
    );
}
