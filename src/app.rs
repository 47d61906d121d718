//! Builds the application from settings: connects the database, runs migrations,
//! wires every service and adapter, and serves the router. The one place where
//! things are wired together.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context as _;
use axum::{
    Router,
    extract::DefaultBodyLimit,
    routing::{any, get},
};
use metrics_exporter_prometheus::PrometheusHandle;
use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend};
use tokio::net::{TcpListener, TcpSocket};
use tower_http::{catch_panic::CatchPanicLayer, cors::CorsLayer, trace::TraceLayer};

use crate::{
    auth::{PasswordHasher, TokenIssuer, signing_key},
    config::Settings,
    domain::{
        accounts::Accounts, chat::Chat, compatibility::AffinityKey, discovery::Discovery,
        groups::Groups, presence::Presence, recommendations::Recommendations, social::Social,
        usernames::UsernameFilter,
    },
    graphql::{self, KithSchema},
    http,
    infra::{
        pubsub::{LocalPubSub, PubSub},
        ratelimit::RateLimiter,
    },
};

/// Everything resolvers and handlers share. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub db: DatabaseConnection,
    pub redis: Option<redis::aio::ConnectionManager>,
    pub accounts: Accounts,
    pub social: Social,
    pub groups: Groups,
    pub chat: Chat,
    pub presence: Presence,
    pub discovery: Discovery,
    pub recommendations: Recommendations,
    pub limiter: RateLimiter,
    pub pubsub: Arc<dyn PubSub>,
}

/// What the HTTP handlers need: the state, the schema built on it, the metrics.
#[derive(Clone)]
pub struct HttpState {
    pub app: AppState,
    pub schema: KithSchema,
    pub metrics: PrometheusHandle,
}

impl HttpState {
    pub fn settings(&self) -> &Settings {
        &self.app.settings
    }
}

pub struct Application {
    listener: TcpListener,
    router: Router,
    statements: StatementCounter,
    /// Swept of idle keys while serving.
    limiter: RateLimiter,
}

impl Application {
    /// Connects, migrates (unless disabled), wires, and binds the listener.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let settings = Arc::new(settings);
        let mut db = connect_database(&settings).await?;
        let statements = StatementCounter::default();
        statements.attach(&mut db);
        if settings.migrate {
            Migrator::up(&db, None)
                .await
                .context("running migrations")?;
        }
        let redis = settings
            .redis_url
            .as_deref()
            .map(connect_redis)
            .transpose()?;
        let secret = signing_key::load_or_create(&db, settings.jwt_secret.as_deref()).await?;
        let tokens = TokenIssuer::new(&secret, settings.access_token_ttl());
        let hasher = PasswordHasher::new(settings.password_hash_concurrency()).await?;
        let usernames = UsernameFilter::load(&db)
            .await
            .context("loading usernames")?;
        let pubsub: Arc<dyn PubSub> = Arc::new(LocalPubSub::default());
        let accounts = Accounts::new(
            db.clone(),
            hasher,
            tokens,
            usernames,
            pubsub.clone(),
            settings.refresh_token_ttl(),
        );
        let social = Social::new(db.clone(), pubsub.clone());
        let groups = Groups::new(db.clone(), pubsub.clone(), settings.group_member_cap);
        let chat = Chat::new(db.clone(), pubsub.clone(), settings.direct_messages);
        let presence = Presence::new(
            db.clone(),
            pubsub.clone(),
            std::time::Duration::from_millis(settings.presence_grace_millis),
        );
        let discovery = Discovery::new(
            db.clone(),
            pubsub.clone(),
            chat.clone(),
            settings.super_likes_per_day,
        );
        let recommendations = Recommendations::new(
            db.clone(),
            presence.clone(),
            AffinityKey::derive(&secret),
            u64::from(settings.recommendation_pool),
            Duration::from_secs(settings.pass_cooldown_secs),
        );
        let state = AppState {
            limiter: RateLimiter::from_settings(&settings),
            settings: settings.clone(),
            db,
            redis,
            accounts,
            social,
            groups,
            chat,
            presence,
            discovery,
            recommendations,
            pubsub,
        };
        let limiter = state.limiter.clone();
        let router = router(state);
        let listener = bind(settings.listen)?;
        Ok(Self {
            listener,
            router,
            statements,
            limiter,
        })
    }

    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    /// The SQL statements this app has run so far.
    pub fn statements(&self) -> StatementCounter {
        self.statements.clone()
    }

    /// Serves until `shutdown` completes, then finishes in-flight requests.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let limiter = self.limiter.clone();
        let sweeper = tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(60));
            loop {
                every.tick().await;
                limiter.forget_idle_keys();
            }
        });
        let service = self
            .router
            .into_make_service_with_connect_info::<SocketAddr>();
        let served = axum::serve(self.listener, service)
            .with_graceful_shutdown(shutdown)
            .await;
        sweeper.abort();
        served.context("serving HTTP")
    }
}

pub fn router(state: AppState) -> Router {
    let schema = graphql::build_schema(state.clone());
    let body_limit = state.settings.body_limit_bytes;
    let http_state = HttpState {
        app: state,
        schema,
        metrics: http::metrics::recorder(),
    };
    Router::new()
        .route(
            "/graphql",
            get(http::graphql::get)
                .post(http::graphql::post)
                .fallback(http::graphql::method_not_allowed),
        )
        .route("/graphql/ws", get(http::websocket::handler))
        .route("/graphiql", get(http::graphiql::page))
        .route("/healthz", get(http::health::healthz))
        .route("/readyz", get(http::health::readyz))
        .route("/metrics", get(http::metrics::render))
        .fallback(any(|| async {
            (axum::http::StatusCode::NOT_FOUND, "not found")
        }))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(CorsLayer::permissive())
        .layer(TraceLayer::new_for_http())
        .layer(CatchPanicLayer::new())
        .with_state(http_state)
}

/// Counts the SQL statements one app runs: for `/metrics`, and for tests that
/// prove a query's statement count does not grow with its page size.
#[derive(Clone, Default)]
pub struct StatementCounter(Arc<std::sync::atomic::AtomicU64>);

impl StatementCounter {
    fn attach(&self, db: &mut DatabaseConnection) {
        let count = self.0.clone();
        db.set_metric_callback(move |info| {
            count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            metrics::counter!("kith_db_statements_total").increment(1);
            metrics::histogram!("kith_db_statement_duration_seconds")
                .record(info.elapsed.as_secs_f64());
        });
    }

    pub fn get(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

pub async fn connect_database(settings: &Settings) -> anyhow::Result<DatabaseConnection> {
    let mut options = ConnectOptions::new(settings.database_url.clone());
    options
        .max_connections(settings.db_max_connections)
        .connect_timeout(Duration::from_secs(10))
        .sqlx_logging(false)
        // Plan every execution for its own values. After five runs PostgreSQL
        // may switch a prepared statement to one generic plan, and for the
        // queries whose best plan depends on who asks (a hub's friends, a
        // crowded city's candidates) that plan was measured 5 to 10 times
        // slower; planning these small queries costs microseconds. A SET
        // after connecting, not a startup parameter, which poolers such as
        // PgBouncer refuse.
        .after_connect(|connection| {
            Box::pin(async move {
                if connection.get_database_backend() == DbBackend::Postgres {
                    connection
                        .execute_unprepared("SET plan_cache_mode = force_custom_plan")
                        .await?;
                }
                Ok(())
            })
        })
        .map_sqlx_sqlite_opts(|opts| {
            use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
            // WAL lets readers run beside the one writer; NORMAL sync is safe with it.
            opts.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
        });
    Database::connect(options)
        .await
        .with_context(|| format!("connecting to {}", redact(&settings.database_url)))
}

/// A Redis handle that connects on first use and reconnects by itself, so a Redis
/// that is down at start (or later) makes kith degraded, not dead.
fn connect_redis(url: &str) -> anyhow::Result<redis::aio::ConnectionManager> {
    let client =
        redis::Client::open(url).with_context(|| format!("bad REDIS_URL {}", redact(url)))?;
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(Duration::from_secs(2)))
        .set_number_of_retries(2);
    redis::aio::ConnectionManager::new_lazy_with_config(client, config)
        .with_context(|| format!("setting up Redis at {}", redact(url)))
}

/// A URL fit for logs: the password replaced.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// Binds with a deep accept backlog: the default of 128 turns a burst of
/// connects (a deploy, a reconnect storm) into one-second SYN retries.
pub fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket
        .bind(addr)
        .with_context(|| format!("binding {addr}"))?;
    Ok(socket.listen(4096)?)
}

#[cfg(test)]
mod tests {
    use super::redact;

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
