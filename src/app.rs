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
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbBackend};
use tokio::net::{TcpListener, TcpSocket};
use tower_http::{catch_panic::CatchPanicLayer, trace::TraceLayer};

pub use crate::infra::statements::{ReplicaStatements, StatementCounter};

use crate::{
    auth::{PasswordHasher, TokenIssuer, signing_key},
    config::{Settings, Switch},
    domain::{
        accounts::{AccountCaches, Accounts},
        chat::Chat,
        chat_batch::SendBatches,
        compatibility::AffinityKey,
        discovery::Discovery,
        discovery_index::DiscoveryIndex,
        graph::Graph,
        groups::Groups,
        presence::Presence,
        recommendations::Recommendations,
        social::Social,
        usernames::UsernameFilter,
        users::Profiles,
    },
    graphql::{self, KithSchema},
    http,
    infra::{
        cache::{Capacity, Freshness, TwoLevelCache},
        db::Db,
        presence_store::PresenceStore,
        pubsub::{LocalPubSub, PubSub, RedisPubSub},
        ratelimit::RateLimiter,
        redis::Redis,
    },
};

/// Sessions whose validity a process that runs alone keeps at hand (about
/// 100 bytes each); replicas keep none of their own (see `Freshness`).
const SESSION_CACHE_CAPACITY: u64 = 200_000;
/// How long that copy lives, and Redis keeps the shared one. Revocations
/// settle the shared entry before they answer; the lifetime bounds what one
/// that could not (its replica cut off from Redis) leaves behind.
const SESSION_CACHE_LOCAL_TTL: Duration = Duration::from_secs(60);
const SESSION_CACHE_SHARED_TTL: Duration = Duration::from_secs(60);

/// Users each replica keeps at hand (a row is about 1 KiB), and how long:
/// writes invalidate them everywhere; the lifetimes bound what a missed
/// invalidation could leave behind.
const PROFILE_CACHE_CAPACITY: u64 = 50_000;
const PROFILE_CACHE_LOCAL_TTL: Duration = Duration::from_secs(30);
const PROFILE_CACHE_SHARED_TTL: Duration = Duration::from_secs(300);

/// How long a stopping replica waits, once its sockets are closed, before it
/// gives up their presence: their clients' reconnects elsewhere come first,
/// so those users never look gone.
const LEAVE_AFTER_SHUTDOWN: Duration = Duration::from_secs(1);
/// A pooled database connection idle this long is pinged before it is used:
/// pgx's pool default (Go). Under load connections come back within
/// milliseconds and go out unpinged; after a database restart, which takes
/// longer than this, every cut connection is idle past it and found out.
const POOL_PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// Everything resolvers and handlers share. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub db: Db,
    pub redis: Option<Redis>,
    pub accounts: Accounts,
    pub social: Social,
    pub groups: Groups,
    pub chat: Chat,
    pub presence: Presence,
    pub discovery: Discovery,
    pub recommendations: Recommendations,
    pub limiter: RateLimiter,
    pub pubsub: Arc<dyn PubSub>,
    /// Users as lists show them, cached (see `domain::users::Profiles`).
    pub profiles: Profiles,
}

/// What the HTTP handlers need: the state, the schema built on it, the metrics,
/// and word of a shutdown for the sockets. Every request and every open socket
/// holds one for as long as it lasts, so it is one pointer: the services
/// themselves take about 3 KiB, which 10,000 idle sockets would each carry.
#[derive(Clone)]
pub struct HttpState(Arc<HttpServices>);

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

pub struct Application {
    listener: TcpListener,
    router: Router,
    statements: StatementCounter,
    /// Told to close every WebSocket when the app stops.
    sockets: http::websocket::Sockets,
    /// Connection limits, timeouts and the drain on shutdown.
    serving: http::serve::Options,
    stopping: http::serve::Stopping,
    /// Gives up this replica's presence claims when the app stops.
    presence: Presence,
    /// Swept of idle keys while serving.
    limiter: RateLimiter,
    /// Tasks that carry shared state (Redis traffic, health checks): they
    /// stop with the app.
    background: Background,
    /// `/metrics` on a listener of its own (`KITH_METRICS_LISTEN`).
    metrics: Option<(TcpListener, Router)>,
}

impl Application {
    /// Connects, migrates (unless disabled), wires, and binds the listener.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let settings = Arc::new(settings);
        let mut primary = connect_database(&settings).await?;
        let statements = StatementCounter::default();
        statements.attach(&mut primary);
        if settings.migrate {
            migrate(&primary).await.context("running migrations")?;
        }
        let replica = match &settings.database_read_url {
            Some(url) => {
                // Lazily: a replica that is down does not keep kith from
                // starting (reads fall back to the primary meanwhile).
                let mut replica = connect(url, &settings, true).await?;
                statements.attach(&mut replica);
                statements.replica.attach(&mut replica);
                Some(replica)
            }
            None => None,
        };
        let db = Db::new(primary, replica);
        let redis = settings
            .redis_url
            .as_deref()
            .map(|url| Redis::connect(url, &settings.redis_prefix))
            .transpose()?;
        let mut background = Background::default();
        let secret =
            signing_key::load_or_create(db.primary(), settings.jwt_secret.as_deref()).await?;
        let tokens = TokenIssuer::new(&secret, settings.access_token_ttl());
        let hasher = PasswordHasher::new(settings.password_hash_concurrency()).await?;
        let usernames = UsernameFilter::load(db.primary())
            .await
            .context("loading usernames")?;
        let pubsub: Arc<dyn PubSub> = match &redis {
            Some(redis) => {
                background
                    .0
                    .push(tokio::spawn(redis.clone().watch_health()));
                let (hub, tasks) = RedisPubSub::start(redis)?;
                background.0.extend(tasks);
                hub
            }
            None => Arc::new(LocalPubSub::default()),
        };
        // Alone (SQLite serves one process), this process's own invalidation
        // reaches every reader at once; replicas must go through Redis.
        let alone = redis.is_none() && db.primary().get_database_backend() == DbBackend::Sqlite;
        let session_validity = TwoLevelCache::new(
            "session",
            if alone {
                Freshness::Eventual
            } else {
                Freshness::Immediate
            },
            Capacity::Entries(SESSION_CACHE_CAPACITY),
            SESSION_CACHE_LOCAL_TTL,
            SESSION_CACHE_SHARED_TTL,
            redis.as_ref(),
            pubsub.clone(),
        );
        background.0.push(tokio::spawn(
            session_validity.clone().follow_invalidations(),
        ));
        let profiles: Profiles = TwoLevelCache::new(
            "user",
            Freshness::Eventual,
            Capacity::Entries(PROFILE_CACHE_CAPACITY),
            PROFILE_CACHE_LOCAL_TTL,
            PROFILE_CACHE_SHARED_TTL,
            redis.as_ref(),
            pubsub.clone(),
        );
        background
            .0
            .push(tokio::spawn(profiles.clone().follow_invalidations()));
        let graph = Graph::new(db.clone(), redis.as_ref(), pubsub.clone());
        background.0.extend(graph.follow_invalidations());
        // Before the services: accounts and recommendations count in it too.
        let limiter = RateLimiter::from_settings(&settings, redis.as_ref());
        let accounts = Accounts::new(
            db.clone(),
            hasher,
            tokens,
            usernames,
            pubsub.clone(),
            settings.refresh_token_ttl(),
            AccountCaches {
                validity: session_validity,
                profiles: profiles.clone(),
                graph: graph.clone(),
            },
            limiter.clone(),
        );
        let social = Social::new(db.clone(), pubsub.clone(), profiles.clone(), graph.clone());
        let groups = Groups::new(db.clone(), pubsub.clone(), settings.group_member_cap);
        let mut chat = Chat::new(db.clone(), pubsub.clone(), settings.direct_messages);
        if settings.send_batching == Switch::On
            && db.primary().get_database_backend() == DbBackend::Postgres
        {
            let (batches, writers) =
                SendBatches::start(db.clone(), pubsub.clone(), settings.direct_messages);
            chat = chat.with_send_batches(batches);
            background.0.extend(writers);
        }
        let presence = Presence::new(
            db.clone(),
            pubsub.clone(),
            std::time::Duration::from_millis(settings.presence_grace_millis),
            redis.as_ref().map(|redis| {
                PresenceStore::new(
                    redis,
                    Duration::from_millis(settings.presence_claim_ttl_millis),
                )
            }),
            profiles.clone(),
        );
        background
            .0
            .push(tokio::spawn(presence.clone().renew_claims()));
        let discovery = Discovery::new(
            db.clone(),
            pubsub.clone(),
            chat.clone(),
            settings.super_likes_per_day,
            profiles.clone(),
        );
        let (index, keeping) = DiscoveryIndex::spawn(db.clone(), pubsub.clone());
        background.0.push(keeping);
        let recommendations = Recommendations::new(
            db.clone(),
            profiles.clone(),
            index,
            presence.clone(),
            graph,
            AffinityKey::derive(&secret),
            u64::from(settings.recommendation_pool),
            Duration::from_secs(settings.pass_cooldown_secs),
            redis.as_ref(),
            limiter.clone(),
        );
        let state = AppState {
            limiter,
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
            profiles,
        };
        let limiter = state.limiter.clone();
        let sockets = http::websocket::Sockets::default();
        let presence = state.presence.clone();
        let cors = http::cors::layer(&settings.cors_origins)?;
        let stopping = http::serve::Stopping::default();
        let (router, metrics_router) = router(state, sockets.clone(), stopping.clone());
        let router = router.layer(cors);
        let listener = bind(settings.listen)?;
        let metrics = match (settings.metrics_listen, metrics_router) {
            (Some(addr), Some(router)) => Some((bind(addr)?, router)),
            _ => None,
        };
        Ok(Self {
            listener,
            router,
            serving: http::serve::Options::from_settings(&settings),
            stopping,
            statements,
            sockets,
            presence,
            limiter,
            background,
            metrics,
        })
    }

    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    /// Where `/metrics` is served when it has a listener of its own.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics
            .as_ref()
            .and_then(|(listener, _)| listener.local_addr().ok())
    }

    /// The SQL statements this app has run so far.
    pub fn statements(&self) -> StatementCounter {
        self.statements.clone()
    }

    /// Serves until `shutdown` completes; then drains (`/readyz` 503 while
    /// still serving, for `KITH_SHUTDOWN_DRAIN_MILLIS`), stops accepting,
    /// finishes in-flight requests (within `KITH_SHUTDOWN_TIMEOUT_MILLIS`)
    /// and closes every WebSocket as "going away", so its client reconnects,
    /// through the load balancer, to another replica.
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
        let metrics = self.metrics.map(|(listener, router)| {
            tokio::spawn(async move {
                if let Err(err) = axum::serve(listener, router).await {
                    tracing::error!(error = %err, "serving /metrics stopped");
                }
            })
        });
        let sockets = self.sockets.clone();
        // Sockets are closed once accepting stops, not before: a client told
        // to reconnect during the drain could come straight back here.
        http::serve::serve(
            self.listener,
            self.router,
            self.serving,
            self.stopping,
            shutdown,
            move || sockets.close_all(),
        )
        .await;
        // Upgraded sockets are not the server's connections any more: give
        // their close frames a moment to go out.
        self.sockets.closed(Duration::from_secs(5)).await;
        self.presence.leave_all(LEAVE_AFTER_SHUTDOWN).await;
        sweeper.abort();
        if let Some(metrics) = metrics {
            metrics.abort();
        }
        drop(self.background);
        Ok(())
    }
}

/// Tasks that live as long as the app: aborted when it is dropped or stops.
#[derive(Default)]
struct Background(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Background {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

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
    let http_state = HttpState(Arc::new(HttpServices {
        socket_executor: graphql::delivery::SocketExecutor::new(
            schema.clone(),
            documents.clone(),
            setups_at_once,
        ),
        documents,
        app: state,
        schema,
        metrics: http::metrics::recorder(),
        sockets,
        stopping,
        recent_writers,
    }));
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
        .route("/healthz", get(http::health::healthz))
        .route("/readyz", get(http::health::readyz));
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

/// Applies pending migrations. On PostgreSQL under an advisory lock, so
/// replicas that start together take turns: the first migrates, the others
/// then find nothing to do.
pub async fn migrate(db: &DatabaseConnection) -> anyhow::Result<()> {
    if db.get_database_backend() != DbBackend::Postgres {
        return Ok(Migrator::up(db, None).await?);
    }
    // Any constant the deployment's other clients do not use: "kith" in ASCII.
    const MIGRATION_LOCK: i64 = 0x6b69_7468;
    // A session lock lives on one connection: hold that connection throughout.
    let mut holder = db.get_postgres_connection_pool().acquire().await?;
    sea_orm::sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *holder)
        .await?;
    let migrated = Migrator::up(db, None).await;
    sea_orm::sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *holder)
        .await?;
    Ok(migrated?)
}

/// The primary database (`DATABASE_URL`).
pub async fn connect_database(settings: &Settings) -> anyhow::Result<DatabaseConnection> {
    connect(&settings.database_url, settings, false).await
}

async fn connect(url: &str, settings: &Settings, lazy: bool) -> anyhow::Result<DatabaseConnection> {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .connect_lazy(lazy)
        // A replica (lazy) that does not answer is given up on quickly: its
        // reads go to the primary.
        .acquire_timeout(if lazy {
            Duration::from_secs(1)
        } else {
            settings.db_acquire_timeout()
        })
        .max_connections(settings.db_max_connections)
        // While the database is away every request waits this long at most
        // for a connection, then answers UNAVAILABLE with a retry hint.
        .connect_timeout(settings.db_acquire_timeout())
        // sqlx pings every connection it hands out by default: one more round
        // trip per checkout, and a send checks out three times. Only a
        // connection idle long enough to have been dropped (by a restarting
        // server, a proxy or a firewall) is pinged now. One used in the last
        // second before its server cut it fails the one request it is handed
        // to, and the pool replaces it.
        .test_before_acquire_if_idle_for(POOL_PING_AFTER_IDLE)
        .sqlx_logging(false)
        // Plan every execution for its own values. After five runs PostgreSQL
        // may switch a prepared statement to one generic plan, and for the
        // queries whose best plan depends on who asks (a hub's friends, a
        // crowded city's candidates) that plan was measured 5 to 10 times
        // slower; planning these small queries costs microseconds. A SET on
        // every new pooled connection (SeaORM's own after_connect runs once
        // per pool, on one connection), not a startup parameter, which
        // poolers such as PgBouncer refuse.
        .map_sqlx_postgres_pool_opts(|pool| {
            pool.after_connect(|connection, _| {
                Box::pin(async move {
                    sea_orm::sqlx::Executor::execute(
                        connection,
                        "SET plan_cache_mode = force_custom_plan",
                    )
                    .await
                    .map(|_| ())
                })
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
        .with_context(|| format!("connecting to {}", crate::infra::db::redact(url)))
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
