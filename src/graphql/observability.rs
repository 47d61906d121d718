//! One tracing span per GraphQL operation, named by the operation, and the
//! request count and latency metrics labelled the same way. A subscription's
//! events are not operations: they pass through untimed (one message to 1,000
//! subscribers would otherwise be 1,000 spans and metric updates on the hot
//! path); `kith_subscriptions_active` counts subscriptions.

use std::{
    collections::HashSet,
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicBool, Ordering},
    },
    time::Instant,
};

use async_graphql::{
    Response,
    extensions::{Extension, ExtensionContext, ExtensionFactory, NextExecute, NextSubscribe},
};
use futures_util::stream::BoxStream;
use tracing::Instrument;

/// Distinct operation names labelled before the rest count as `other`: names come
/// from clients, and an unbounded label set would let them exhaust memory.
const MAX_OPERATION_LABELS: usize = 500;
/// Longer names count as `other` too: each label is kept for the process's
/// life and printed in every scrape (20 names of 1 MiB once took a process
/// from 53 MB to 964 MB).
const MAX_OPERATION_LABEL_BYTES: usize = 64;

pub struct Observability;

impl ExtensionFactory for Observability {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ObservabilityExtension::default())
    }
}

/// One per request (or WebSocket operation).
#[derive(Default)]
struct ObservabilityExtension {
    /// Set when the operation is served as a stream: over a WebSocket, where a
    /// subscription executes once per event.
    streaming: AtomicBool,
}

#[async_graphql::async_trait::async_trait]
impl Extension for ObservabilityExtension {
    /// Called once, when an operation is turned into a stream, before any of
    /// its events executes.
    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        self.streaming.store(true, Ordering::Relaxed);
        next.run(ctx, stream)
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        if self.streaming.load(Ordering::Relaxed) {
            return next.run(ctx, operation_name).await;
        }
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
    if !looks_like_a_name(name) {
        return "other".into();
    }
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

/// A GraphQL name of reasonable length: what apps call their operations. A
/// client may send anything as `operationName`; the rest is not worth a label.
fn looks_like_a_name(name: &str) -> bool {
    name.len() <= MAX_OPERATION_LABEL_BYTES
        && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}
