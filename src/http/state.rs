//! What every request and socket holds: the shared services, the schema built
//! on them, and the server's own parts (metrics, sockets, shutdown).

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;

use crate::{
    config::Settings,
    graphql::{self, KithSchema},
    http,
    state::AppState,
};

/// What the HTTP handlers need: the state, the schema built on it, the metrics,
/// and word of a shutdown for the sockets. Every request and every open socket
/// holds one for as long as it lasts, so it is one pointer: the services
/// themselves take about 3 KiB, which 10,000 idle sockets would each carry.
#[derive(Clone)]
pub struct HttpState(Arc<HttpServices>);

impl HttpState {
    pub fn new(services: HttpServices) -> Self {
        Self(Arc::new(services))
    }
}

impl std::ops::Deref for HttpState {
    type Target = HttpServices;

    fn deref(&self) -> &HttpServices {
        &self.0
    }
}

pub struct HttpServices {
    pub app: AppState,
    pub schema: KithSchema,
    /// What sockets run operations with (shared, for its limit on setups).
    pub socket_executor: graphql::delivery::SocketExecutor,
    /// Parsed operations, for requests over HTTP and sockets alike.
    pub documents: graphql::documents::Documents,
    /// The schema's input objects, for uploads mapped into them.
    pub input_types: std::sync::Arc<http::multipart::InputTypes>,
    pub metrics: PrometheusHandle,
    pub sockets: http::websocket::Sockets,
    /// Set when the server starts stopping: `/readyz` answers 503 from then.
    pub stopping: http::serve::Stopping,
    /// With a read replica: who must read from the primary.
    pub recent_writers: Option<http::reads::RecentWriters>,
}

impl HttpServices {
    pub fn settings(&self) -> &Settings {
        &self.app.settings
    }
}
