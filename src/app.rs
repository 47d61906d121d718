//! Builds the application from settings: connects the database and runs its
//! migrations, has the services wired (`state`) and the routes built (`http`),
//! binds the listeners, serves, and stops.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context as _;
use axum::Router;
use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbBackend};
use tokio::net::{TcpListener, TcpSocket};

pub use crate::infra::statements::{ReplicaStatements, StatementCounter};

use crate::{
    config::{MediaBackend, Settings},
    domain::presence::Presence,
    http,
    infra::{
        db::Db,
        media_cache::CachedMediaStore,
        media_store::{MediaStore, ObjectMediaStore},
        ratelimit::RateLimiter,
        redis::Redis,
    },
    state::{AppState, Background},
};

/// How long a stopping replica waits, once its sockets are closed, before it
/// gives up their presence: their clients' reconnects elsewhere come first,
/// so those users never look gone.
const LEAVE_AFTER_SHUTDOWN: Duration = Duration::from_secs(1);
/// A pooled database connection idle this long is pinged before it is used:
/// pgx's pool default (Go). Under load connections come back within
/// milliseconds and go out unpinged; after a database restart, which takes
/// longer than this, every cut connection is idle past it and found out.
const POOL_PING_AFTER_IDLE: Duration = Duration::from_secs(1);

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
    /// The services, for what runs beside serving (`kith serve --demo`).
    state: AppState,
}

impl Application {
    /// Connects, migrates (unless disabled), wires, and binds the listener.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let settings = Arc::new(settings);
        // First: a media or webhook setting that cannot work stops kith
        // before it touches the database.
        let media = open_media_store(&settings)?;
        settings.webhooks()?;
        let mut primary = if settings.migrate {
            connect_migrated(&settings).await?
        } else {
            connect_database(&settings).await?
        };
        let statements = StatementCounter::default();
        statements.attach(&mut primary);
        let replica = match &settings.database_read_url {
            Some(url) => {
                // Lazily: a replica that is down does not keep kith from
                // starting (reads fall back to the primary meanwhile).
                let mut replica = connect(url, &settings, true).await.with_context(|| {
                    format!("KITH_DATABASE_READ_URL={}", crate::infra::db::redact(url))
                })?;
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
        let (state, background) = AppState::build(settings.clone(), db, redis, media).await?;
        let services = state.clone();
        let limiter = state.limiter.clone();
        let sockets = http::websocket::Sockets::default();
        let presence = state.presence.clone();
        let cors = http::cors::layer(&settings.cors_origins)?;
        let stopping = http::serve::Stopping::default();
        let (router, metrics_router) = http::router(state, sockets.clone(), stopping.clone());
        let router = router.layer(cors);
        let listener = bind(settings.listen)
            .with_context(|| format!("cannot listen on KITH_LISTEN={}", settings.listen))?;
        let metrics = match (settings.metrics_listen, metrics_router) {
            (Some(addr), Some(router)) => Some((
                bind(addr)
                    .with_context(|| format!("cannot listen on KITH_METRICS_LISTEN={addr}"))?,
                router,
            )),
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
            state: services,
        })
    }

    /// The services the app serves with.
    pub fn state(&self) -> &AppState {
        &self.state
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

/// The media store the settings choose: files under `KITH_MEDIA_DIR` (by
/// default beside the SQLite file) or an S3 bucket (`KITH_MEDIA_STORE=s3`).
pub fn open_media_store(settings: &Settings) -> anyhow::Result<Arc<dyn MediaStore>> {
    let store = match settings.media_backend()? {
        MediaBackend::Local { dir } => ObjectMediaStore::local(&dir)?,
        MediaBackend::S3(s3) => ObjectMediaStore::s3(&s3)?,
    };
    // Thumbnails are asked for on every screen: kept in memory in front.
    let store = CachedMediaStore::new(Arc::new(store));
    tracing::info!(store = %store.describe(), "media store");
    Ok(Arc::new(store))
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

/// The primary database, migrated.
pub async fn connect_migrated(settings: &Settings) -> anyhow::Result<DatabaseConnection> {
    let primary = connect_database(settings).await?;
    migrate(&primary).await.context("running migrations")?;
    if primary.get_database_backend() != DbBackend::Sqlite {
        return Ok(primary);
    }
    // SQLite connections the pool opened while the migrations ran could answer
    // later statements with the columns of the schema from before them (seen
    // under load: updateProfile failing on "Missing value for column
    // 'presence_visibility'", a column a migration adds). A pool opened now
    // knows only the migrated schema.
    primary.close().await?;
    connect_database(settings).await
}

/// The primary database (`DATABASE_URL`).
pub async fn connect_database(settings: &Settings) -> anyhow::Result<DatabaseConnection> {
    let url = &settings.database_url;
    connect(url, settings, false).await.with_context(|| {
        format!(
            "cannot connect to KITH_DATABASE_URL={}",
            crate::infra::db::redact(url)
        )
    })
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
    Ok(Database::connect(options).await?)
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
    socket.bind(addr)?;
    Ok(socket.listen(4096)?)
}
