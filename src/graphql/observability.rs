//! One tracing span per GraphQL operation, named by the operation, and the
//! request count and latency metrics labelled the same way.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex, OnceLock},
    time::Instant,
};

use async_graphql::{
    Response,
    extensions::{Extension, ExtensionContext, ExtensionFactory, NextExecute},
};
use tracing::Instrument;

/// Distinct operation names labelled before the rest count as `other`: names come
/// from clients, and an unbounded label set would let them exhaust memory.
const MAX_OPERATION_LABELS: usize = 500;

pub struct Observability;

impl ExtensionFactory for Observability {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ObservabilityExtension)
    }
}

struct ObservabilityExtension;

#[async_graphql::async_trait::async_trait]
impl Extension for ObservabilityExtension {
    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let label = operation_label(operation_name);
        let span = tracing::info_span!("graphql", operation = %label);
        let started = Instant::now();
        let response = next.run(ctx, operation_name).instrument(span.clone()).await;
        let outcome = if response.errors.is_empty() {
            "ok"
        } else {
            "error"
        };
        metrics::counter!("kith_graphql_operations_total", "operation" => label.clone(), "outcome" => outcome)
            .increment(1);
        metrics::histogram!("kith_graphql_operation_duration_seconds", "operation" => label)
            .record(started.elapsed().as_secs_f64());
        span.in_scope(|| {
            tracing::debug!(
                outcome,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "operation done"
            )
        });
        response
    }
}

fn operation_label(name: Option<&str>) -> String {
    static SEEN: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let Some(name) = name.filter(|n| !n.is_empty()) else {
        return "anonymous".into();
    };
    let mut seen = SEEN
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if seen.contains(name) {
        return name.to_owned();
    }
    if seen.len() < MAX_OPERATION_LABELS {
        seen.insert(name.to_owned());
        return name.to_owned();
    }
    "other".into()
}
