//! Counts of the SQL statements run, for `/metrics` and for tests.

use std::sync::Arc;

use sea_orm::DatabaseConnection;

/// Counts the SQL statements one app runs: for `/metrics`, and for tests that
/// prove a query's statement count does not grow with its page size (and, in
/// `replica`, those the read replica ran).
#[derive(Clone, Default)]
pub struct StatementCounter {
    count: Arc<std::sync::atomic::AtomicU64>,
    pub replica: ReplicaStatements,
}

#[derive(Clone, Default)]
pub struct ReplicaStatements(Arc<std::sync::atomic::AtomicU64>);

impl ReplicaStatements {
    pub fn attach(&self, db: &mut DatabaseConnection) {
        let count = self.0.clone();
        db.set_metric_callback(move |_| {
            count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            metrics::counter!("kith_db_replica_statements_total").increment(1);
        });
    }

    pub fn get(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl StatementCounter {
    pub fn attach(&self, db: &mut DatabaseConnection) {
        let count = self.count.clone();
        db.set_metric_callback(move |info| {
            count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            metrics::counter!("kith_db_statements_total").increment(1);
            metrics::histogram!("kith_db_statement_duration_seconds")
                .record(info.elapsed.as_secs_f64());
        });
    }

    pub fn get(&self) -> u64 {
        self.count.load(std::sync::atomic::Ordering::Relaxed)
    }
}
