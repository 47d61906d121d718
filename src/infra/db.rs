//! The database as the domain sees it: the primary, and optionally a read
//! replica (`DATABASE_READ_URL`) for plain reads.
//!
//! What may read from the replica is decided per request, not per query: a
//! GraphQL query over HTTP whose viewer has not written lately runs inside
//! [`Db::reading_from_replica`], and only its `SELECT`s outside transactions
//! go there. Everything else (mutations, their follow-up reads, subscriptions,
//! which must see what was just committed, and every transaction) stays on
//! the primary, so writers always read their own writes.

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::Duration,
};

use sea_orm::{
    AccessMode, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    ExecResult, IsolationLevel, QueryResult, Statement, TransactionTrait,
};

tokio::task_local! {
    /// Set while a request may read from the replica.
    static MAY_READ_REPLICA: ();
}

/// How long reads stay away from a replica that could not be reached.
const REPLICA_REST: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct Db {
    primary: DatabaseConnection,
    replica: Option<DatabaseConnection>,
    /// Until when (ms since the epoch) the replica is left alone after it
    /// could not be reached, so reads do not each wait for it meanwhile.
    replica_resting_until: Arc<AtomicI64>,
}

impl Db {
    pub fn new(primary: DatabaseConnection, replica: Option<DatabaseConnection>) -> Self {
        Self {
            primary,
            replica,
            replica_resting_until: Arc::default(),
        }
    }

    /// The primary, for what needs it by name (pings, pool metrics, locks).
    pub fn primary(&self) -> &DatabaseConnection {
        &self.primary
    }

    pub fn replica(&self) -> Option<&DatabaseConnection> {
        self.replica.as_ref()
    }

    /// A transaction that will write after it reads: IMMEDIATE on SQLite,
    /// whose deferred transaction could not turn its read into a write once
    /// another writer had written (`SQLITE_BUSY` at once); PostgreSQL ignores
    /// the mode, and its writers lock the rows they read (`FOR UPDATE`).
    pub async fn begin_writing(&self) -> Result<DatabaseTransaction, DbErr> {
        self.begin_with_options(sea_orm::TransactionOptions {
            sqlite_transaction_mode: Some(sea_orm::SqliteTransactionMode::Immediate),
            ..Default::default()
        })
        .await
    }

    /// Runs `work` with its plain reads sent to the replica, if there is one.
    pub async fn reading_from_replica<F: Future>(work: F) -> F::Output {
        MAY_READ_REPLICA.scope((), work).await
    }

    fn replica_resting(&self) -> bool {
        chrono::Utc::now().timestamp_millis() < self.replica_resting_until.load(Ordering::Relaxed)
    }

    /// After `err` from the replica: whether to read from the primary instead
    /// (the replica could not be reached, and is left alone for a while).
    fn give_up_on_replica(&self, connection: &DatabaseConnection, err: &DbErr) -> bool {
        let gone = self.is_replica(connection) && unreachable(err);
        if gone {
            let until = chrono::Utc::now().timestamp_millis() + REPLICA_REST.as_millis() as i64;
            self.replica_resting_until.store(until, Ordering::Relaxed);
        }
        gone
    }

    fn is_replica(&self, connection: &DatabaseConnection) -> bool {
        self.replica
            .as_ref()
            .is_some_and(|replica| std::ptr::eq(replica, connection))
    }

    /// Where a statement goes: the replica only for a `SELECT` (not one that
    /// locks rows) inside [`Self::reading_from_replica`].
    fn route(&self, sql: &str) -> &DatabaseConnection {
        match &self.replica {
            Some(replica)
                if MAY_READ_REPLICA.try_with(|_| ()).is_ok()
                    && is_plain_read(sql)
                    && !self.replica_resting() =>
            {
                replica
            }
            _ => &self.primary,
        }
    }
}

/// A replica that cannot be reached is no reason to fail a read: the primary
/// answers instead (and logs say so).
fn unreachable(err: &DbErr) -> bool {
    let unreachable = matches!(err, DbErr::Conn(_) | DbErr::ConnectionAcquire(_));
    if unreachable {
        tracing::warn!(error = %err, "read replica unreachable; reading from the primary");
        metrics::counter!("kith_db_replica_fallbacks_total").increment(1);
    }
    unreachable
}

fn is_plain_read(sql: &str) -> bool {
    let sql = sql.trim_start();
    sql.get(..6)
        .is_some_and(|head| head.eq_ignore_ascii_case("select"))
        && !sql.contains(" FOR UPDATE")
        && !sql.contains(" FOR SHARE")
}

#[async_trait::async_trait]
impl ConnectionTrait for Db {
    fn get_database_backend(&self) -> DbBackend {
        self.primary.get_database_backend()
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        self.primary.execute_raw(stmt).await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.primary.execute_unprepared(sql).await
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        let connection = self.route(&stmt.sql);
        match connection.query_one_raw(stmt.clone()).await {
            Err(err) if self.give_up_on_replica(connection, &err) => {
                self.primary.query_one_raw(stmt).await
            }
            answer => answer,
        }
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        let connection = self.route(&stmt.sql);
        match connection.query_all_raw(stmt.clone()).await {
            Err(err) if self.give_up_on_replica(connection, &err) => {
                self.primary.query_all_raw(stmt).await
            }
            answer => answer,
        }
    }

    fn support_returning(&self) -> bool {
        self.primary.support_returning()
    }
}

/// Transactions always run on the primary.
#[async_trait::async_trait]
impl TransactionTrait for Db {
    type Transaction = DatabaseTransaction;

    async fn begin(&self) -> Result<DatabaseTransaction, DbErr> {
        self.primary.begin().await
    }

    async fn begin_with_config(
        &self,
        isolation_level: Option<IsolationLevel>,
        access_mode: Option<AccessMode>,
    ) -> Result<DatabaseTransaction, DbErr> {
        self.primary
            .begin_with_config(isolation_level, access_mode)
            .await
    }

    async fn begin_with_options(
        &self,
        options: sea_orm::TransactionOptions,
    ) -> Result<DatabaseTransaction, DbErr> {
        self.primary.begin_with_options(options).await
    }

    async fn transaction<F, T, E>(&self, callback: F) -> Result<T, sea_orm::TransactionError<E>>
    where
        F: for<'c> FnOnce(
                &'c DatabaseTransaction,
            )
                -> std::pin::Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'c>>
            + Send,
        T: Send,
        E: std::fmt::Display + std::fmt::Debug + Send,
    {
        self.primary.transaction(callback).await
    }

    async fn transaction_with_config<F, T, E>(
        &self,
        callback: F,
        isolation_level: Option<IsolationLevel>,
        access_mode: Option<AccessMode>,
    ) -> Result<T, sea_orm::TransactionError<E>>
    where
        F: for<'c> FnOnce(
                &'c DatabaseTransaction,
            )
                -> std::pin::Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'c>>
            + Send,
        T: Send,
        E: std::fmt::Display + std::fmt::Debug + Send,
    {
        self.primary
            .transaction_with_config(callback, isolation_level, access_mode)
            .await
    }
}

/// A URL fit for logs: the password replaced.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::{is_plain_read, redact};

    #[test]
    fn only_plain_selects_may_go_to_the_replica() {
        assert!(is_plain_read(r#"SELECT "users"."id" FROM "users""#));
        assert!(is_plain_read("  select 1"));
        assert!(!is_plain_read(
            r#"SELECT "id" FROM "users" WHERE "id" = $1 FOR UPDATE"#
        ));
        assert!(!is_plain_read(r#"UPDATE "users" SET "x" = 1 RETURNING *"#));
        assert!(!is_plain_read(
            r#"INSERT INTO "t" VALUES (1) RETURNING "id""#
        ));
        assert!(!is_plain_read(
            "WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x"
        ));
    }

    #[test]
    fn urls_lose_their_password_in_logs() {
        assert_eq!(
            redact("postgres://kith:s3cret@db:5432/kith"),
            "postgres://kith:***@db:5432/kith"
        );
        assert_eq!(
            redact("sqlite://kith.db?mode=rwc"),
            "sqlite://kith.db?mode=rwc"
        );
    }
}
