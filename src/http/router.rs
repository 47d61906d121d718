//! The routes: `/graphql` (HTTP and WebSocket), `/graphiql`, health and metrics,
//! stored media (`/media/{key}`), with the layers every request passes.

use std::time::Duration;

use axum::{
    Router,
    extract::DefaultBodyLimit,
    routing::{any, get},
};
use tower_http::{catch_panic::CatchPanicLayer, trace::TraceLayer};

use crate::{
    graphql,
    http::{self, HttpServices, HttpState},
    state::AppState,
};

/// The public router, and, when `/metrics` has a listener of its own
/// (`KITH_METRICS_LISTEN`), the router for that one.
pub fn router(
    state: AppState,
    sockets: http::websocket::Sockets,
    stopping: http::serve::Stopping,
) -> (Router, Option<Router>) {
    let schema = graphql::build_schema(state.clone());
    let body_limit = state.settings.body_limit_bytes;
    let recent_writers = state.db.replica().map(|_| {
        let window = Duration::from_millis(state.settings.read_your_writes_millis);
        http::reads::RecentWriters::new(state.redis.as_ref(), window)
    });
    // Two setups per database connection keep the pool busy; more would only
    // wait on it, holding memory.
    let setups_at_once = 2 * state.settings.db_max_connections as usize;
    let documents =
        graphql::documents::Documents::new(graphql::guard::Limits::from_settings(&state.settings));
    let http_state = HttpState::new(HttpServices {
        socket_executor: graphql::delivery::SocketExecutor::new(
            schema.clone(),
            documents.clone(),
            setups_at_once,
        ),
        documents,
        input_types: std::sync::Arc::new(http::multipart::InputTypes::from_sdl(&schema.sdl())),
        app: state,
        schema,
        metrics: http::metrics::recorder(),
        sockets,
        stopping,
        recent_writers,
    });
    let metrics_apart = http_state.settings().metrics_listen.is_some();
    let mut public = Router::new()
        .route(
            "/graphql",
            get(http::graphql::get)
                .post(http::graphql::post)
                .fallback(http::graphql::method_not_allowed),
        )
        .route("/graphql/ws", get(http::websocket::handler))
        .route("/graphiql", get(http::graphiql::page))
        .route("/graphiql/assets/{file}", get(http::graphiql::asset))
        .route("/healthz", get(http::health::healthz))
        .route("/readyz", get(http::health::readyz))
        .route(
            "/media/{*key}",
            get(http::media::serve).head(http::media::serve),
        );
    if !metrics_apart {
        public = public.route("/metrics", get(http::metrics::render));
    }
    let metrics = metrics_apart.then(|| {
        Router::new()
            .route("/metrics", get(http::metrics::render))
            .with_state(http_state.clone())
    });
    let public = public
        .fallback(any(|| async {
            (axum::http::StatusCode::NOT_FOUND, "not found")
        }))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(TraceLayer::new_for_http())
        .layer(CatchPanicLayer::new())
        .with_state(http_state);
    (public, metrics)
}
