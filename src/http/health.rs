//! Liveness and readiness for load balancers and orchestrators.

use std::{future::Future, sync::atomic::Ordering, time::Duration};

use axum::{Json, extract::State, http::StatusCode};
use serde_json::{Value, json};

use crate::{
    domain::outbox::{Outbox, WebhookBacklog},
    http::HttpState,
};

/// `GET /healthz`: the process is up and serving.
pub async fn healthz() -> &'static str {
    "ok"
}

/// `GET /readyz`: not ready from the moment the server starts stopping, so
/// the load balancer sends nothing new while requests still get answers;
/// otherwise ready while the database answers. It also says how many live
/// subscriptions this replica holds. Without Redis a replica
/// still serves, degraded (local limits, local-only fan-out), so that is 200
/// with `"status": "degraded"`: taking every replica out of the load balancer
/// because their shared Redis is away would turn a degraded service into none.
///
/// Each dependency is asked at once and given [`PING_PATIENCE`]: a probe
/// that waits on a pool while the database is away would time out in the
/// orchestrator (Kubernetes gives up after 2 s) and never see the 503.
pub async fn readyz(State(state): State<HttpState>) -> (StatusCode, Json<Value>) {
    if state.stopping.is_stopping() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "stopping" })),
        );
    }
    let app = &state.app;
    let database = answers(async { app.db.primary().ping().await.is_ok() });
    // Reads fall back to the primary without it: reported, never a reason
    // to leave the load balancer.
    let replica = async {
        match app.db.replica() {
            Some(replica) => Some(answers(async { replica.ping().await.is_ok() }).await),
            None => None,
        }
    };
    let redis = async {
        match &app.redis {
            Some(redis) => Some(answers(redis.ping()).await),
            None => None,
        }
    };
    let (database, replica, redis) = tokio::join!(database, replica, redis);
    let word = |ok: bool| if ok { "ok" } else { "unavailable" };
    let (status, summary) = match (database, redis) {
        (false, _) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        (true, Some(false)) => (StatusCode::OK, "degraded"),
        (true, _) => (StatusCode::OK, "ok"),
    };
    let subscriptions = app.live_subscriptions.load(Ordering::Relaxed);
    let mut body = json!({
        "status": summary,
        "database": word(database),
        "subscriptions": subscriptions,
    });
    if let Some(redis) = redis {
        body["redis"] = json!(word(redis));
    }
    if let Some(replica) = replica {
        body["readReplica"] = json!(word(replica));
    }
    // Reported, never a reason to leave the load balancer: the events wait
    // in the outbox until the sink is back.
    if app.outbox.is_enabled() {
        let db = app.db.primary();
        let webhooks = async {
            if !app.outbox.has_webhooks() {
                return None;
            }
            tokio::time::timeout(PING_PATIENCE, WebhookBacklog::read(db))
                .await
                .ok()
                .and_then(Result::ok)
        };
        let (backlog, webhooks) = tokio::join!(
            tokio::time::timeout(PING_PATIENCE, Outbox::backlog(db)),
            webhooks
        );
        if let Ok(Ok(backlog)) = backlog {
            body["events"] = json!(backlog);
            if let Some(webhooks) = webhooks {
                body["events"]["webhooks"] = json!(webhooks);
            }
        }
    }
    (status, Json(body))
}

/// How long `/readyz` waits for any one dependency.
const PING_PATIENCE: Duration = Duration::from_millis(800);

/// Whether `ping` says yes within [`PING_PATIENCE`].
async fn answers(ping: impl Future<Output = bool>) -> bool {
    tokio::time::timeout(PING_PATIENCE, ping)
        .await
        .unwrap_or(false)
}
