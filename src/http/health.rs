//! Liveness and readiness for load balancers and orchestrators.

use axum::{Json, extract::State, http::StatusCode};
use serde_json::{Value, json};

use crate::app::HttpState;

/// `GET /healthz`: the process is up and serving.
pub async fn healthz() -> &'static str {
    "ok"
}

/// `GET /readyz`: the database answers, and Redis too when configured.
pub async fn readyz(State(state): State<HttpState>) -> (StatusCode, Json<Value>) {
    let database = state.app.db.ping().await.is_ok();
    let redis = match &state.app.redis {
        Some(redis) => {
            let mut conn = redis.clone();
            let ping = redis::cmd("PING");
            let pong = tokio::time::timeout(
                std::time::Duration::from_secs(3),
                ping.query_async::<String>(&mut conn),
            )
            .await;
            Some(matches!(pong, Ok(Ok(_))))
        }
        None => None,
    };
    let word = |ok: bool| if ok { "ok" } else { "unavailable" };
    let ready = database && redis.unwrap_or(true);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut body = json!({ "status": word(ready), "database": word(database) });
    if let Some(redis) = redis {
        body["redis"] = json!(word(redis));
    }
    (status, Json(body))
}
