//! Typed settings: defaults, then an optional TOML file (`KITH_CONFIG`, default
//! `kith.toml` when present), then environment variables. Every field is documented
//! in README.md and `.env.example`.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use serde::{Deserialize, Serialize};

mod media;
mod providers;
mod rate;
mod webhooks;

pub use media::{MediaBackend, MediaSizes, MediaStoreKind, S3Settings, media_dir_beside};
pub use providers::{FacebookApp, SmsBackend, SmsSenderKind};
pub use rate::Rate;
pub use webhooks::Webhooks;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// `DATABASE_URL`: `sqlite://kith.db?mode=rwc` (the default) or `postgres://…`.
    pub database_url: String,
    /// `DATABASE_READ_URL`: optional read replica of the PostgreSQL primary,
    /// for plain reads of GraphQL queries whose viewer has not written lately.
    pub database_read_url: Option<String>,
    /// `KITH_READ_YOUR_WRITES_MILLIS`: how long after writing (or signing in)
    /// a viewer's reads stay on the primary rather than the replica.
    pub read_your_writes_millis: u64,
    /// `REDIS_URL`: optional; when set, replicas share events, rate limits
    /// and presence through it, and `/readyz` reports on it.
    pub redis_url: Option<String>,
    /// `KITH_REDIS_PREFIX`: starts every Redis key and channel, so deployments
    /// (or test runs) can share one Redis; replicas of one deployment agree.
    pub redis_prefix: String,
    /// `KITH_LISTEN`: address and port to serve on.
    pub listen: SocketAddr,
    /// `KITH_JWT_SECRET`: HS256 key for access tokens. When absent, one is generated
    /// once and stored in the database, so restarts and replicas agree.
    pub jwt_secret: Option<String>,
    /// `KITH_ACCESS_TOKEN_TTL_SECS`: lifetime of an access token.
    pub access_token_ttl_secs: u64,
    /// `KITH_REFRESH_TOKEN_TTL_SECS`: a session unused this long expires.
    pub refresh_token_ttl_secs: u64,
    /// `KITH_MIGRATE`: run pending migrations at start.
    pub migrate: bool,
    /// `KITH_LOG_FORMAT`: `text` or `json`.
    pub log_format: LogFormat,
    /// `KITH_DB_MAX_CONNECTIONS`: size of the database pool.
    pub db_max_connections: u32,
    /// `KITH_DB_ACQUIRE_TIMEOUT_MILLIS`: how long a request waits for a
    /// database connection (or to open one) before it answers `UNAVAILABLE`.
    pub db_acquire_timeout_millis: u64,
    /// `KITH_BODY_READ_TIMEOUT_MILLIS`: how long a request's whole body may
    /// take to arrive (`408` after).
    pub body_read_timeout_millis: u64,
    /// `KITH_BODY_LIMIT_BYTES`: largest accepted request body.
    pub body_limit_bytes: usize,
    /// `KITH_HEADER_READ_TIMEOUT_MILLIS`: a connection that has not sent a
    /// request's headers this long after connecting, or after the request's
    /// first byte, is closed. 0 waits forever.
    pub header_read_timeout_millis: u64,
    /// `KITH_IDLE_TIMEOUT_MILLIS`: a keep-alive connection with nothing read
    /// or written for this long between requests is closed. Longer than a
    /// proxy's own idle timeout for its upstream connections, so the proxy
    /// closes first. 0 waits forever.
    pub idle_timeout_millis: u64,
    /// `KITH_MAX_CONNECTIONS_PER_IP`: open connections (upgraded WebSockets
    /// included) from one TCP peer address; more are closed at once. 0 means
    /// no limit.
    pub max_connections_per_ip: usize,
    /// `KITH_MAX_CONNECTIONS`: open connections in all; more are closed at
    /// once. 0 means nine tenths of the process's open-file limit.
    pub max_connections: usize,
    /// `KITH_SHUTDOWN_DRAIN_MILLIS`: on SIGTERM, how long `/readyz` answers
    /// 503 while connections are still accepted and served (each answered
    /// with `Connection: close`), before accepting stops.
    pub shutdown_drain_millis: u64,
    /// `KITH_SHUTDOWN_TIMEOUT_MILLIS`: once accepting stops, how long
    /// requests in flight have to finish before their connections are cut.
    pub shutdown_timeout_millis: u64,
    /// `KITH_MULTIPART_MAX_FILES`: most files in one multipart request (and
    /// entries and paths in its `map`).
    pub multipart_max_files: usize,
    /// `KITH_QUERY_DEPTH_LIMIT`: deepest accepted selection.
    pub query_depth_limit: usize,
    /// `KITH_QUERY_COMPLEXITY_LIMIT`: largest accepted query cost: each field
    /// is 1 plus its children, and a list field's children count once per item
    /// it may return (`first`, or the page it defaults to).
    pub query_complexity_limit: usize,
    /// `KITH_QUERY_FIELDS_LIMIT`: most fields in one document, each fragment
    /// counted as often as it is spread (aliases count each time).
    pub query_fields_limit: usize,
    /// `KITH_QUERY_DIRECTIVES_LIMIT`: most directives in one document, counted
    /// the same way.
    pub query_directives_limit: usize,
    /// `KITH_QUERY_NESTING_LIMIT`: deepest nesting of brackets anywhere in a
    /// document (selections, lists and objects in arguments), and of fragments
    /// spread in fragments. Checked on the text before it is parsed.
    pub query_nesting_limit: usize,
    /// `KITH_EXECUTION_TIMEOUT_MILLIS`: an operation over HTTP still running
    /// after this long is cancelled and answered `UNAVAILABLE`.
    pub execution_timeout_millis: u64,
    /// `KITH_RESPONSE_LIMIT_BYTES`: largest response body over HTTP; a larger
    /// one is replaced by an error.
    pub response_limit_bytes: usize,
    /// `KITH_BATCH_LIMIT`: most operations in one batched HTTP request.
    pub batch_limit: usize,
    /// `KITH_LOADER_DELAY_MICROS`: how long a DataLoader gathers keys before it
    /// queries. Longer batches more under load; every batched field waits this long.
    pub loader_delay_micros: u64,
    /// `KITH_WS_MAX_MESSAGE_BYTES`: largest accepted WebSocket message.
    pub ws_max_message_bytes: usize,
    /// `KITH_WS_INIT_TIMEOUT_MILLIS`: a socket that has not sent `connection_init`
    /// by then is closed.
    pub ws_init_timeout_millis: u64,
    /// `KITH_WS_MAX_SOCKETS_PER_USER`: signed-in sockets one user may hold open.
    pub ws_max_sockets_per_user: usize,
    /// `KITH_WS_MAX_SUBSCRIPTIONS_PER_SOCKET`: operations one socket may run at
    /// once; one more is refused with an `error` message (`BAD_USER_INPUT`).
    pub ws_max_subscriptions_per_socket: usize,
    /// `KITH_WS_ANONYMOUS_IDLE_MILLIS`: a socket without a viewer that runs no
    /// operation this long is closed (1000).
    pub ws_anonymous_idle_millis: u64,
    /// `KITH_PASSWORD_HASH_CONCURRENCY`: password hashes computed at once (each
    /// takes 19 MiB and a core for tens of milliseconds). 0 means one per core.
    pub password_hash_concurrency: usize,
    /// `KITH_MEDIA_MAX_BYTES`: largest accepted image upload, in bytes.
    pub media_max_bytes: usize,
    /// `KITH_MEDIA_MAX_PIXELS`: most pixels (width × height, read from the
    /// header before decoding) an accepted image may have.
    pub media_max_pixels: u64,
    /// `KITH_MEDIA_SIZES`: long sides, in pixels, each image is stored at, e.g.
    /// `1280,640,160` (never larger than the upload).
    pub media_sizes: MediaSizes,
    /// `KITH_MEDIA_CONCURRENCY`: images processed at once (each holds its
    /// decoded pixels, ~120 MB for 40 MP). 0 means one per core.
    pub media_concurrency: usize,
    /// `KITH_MEDIA_STORE`: where media bytes are kept: `local` (files under
    /// `media_dir`) or `s3` (a bucket of an S3-compatible service, which
    /// replicas share).
    pub media_store: MediaStoreKind,
    /// `KITH_MEDIA_DIR`: the local store's directory; by default `media`
    /// beside the SQLite file (`./media` for other databases).
    pub media_dir: Option<PathBuf>,
    /// `KITH_S3_ENDPOINT`: the S3-compatible service's URL (`http://` is
    /// allowed); AWS when unset.
    pub s3_endpoint: Option<String>,
    /// `KITH_S3_BUCKET`: required with `KITH_MEDIA_STORE=s3`.
    pub s3_bucket: Option<String>,
    /// `KITH_S3_REGION`: `us-east-1` when unset.
    pub s3_region: Option<String>,
    /// `KITH_S3_ACCESS_KEY_ID` and `KITH_S3_SECRET_ACCESS_KEY`: both or
    /// neither (then AWS's instance or task credentials).
    pub s3_access_key_id: Option<String>,
    pub s3_secret_access_key: Option<String>,
    /// `KITH_S3_PATH_STYLE`: address the bucket as `<endpoint>/<bucket>`
    /// (most S3-compatible services); `false` for `<bucket>.<host>`, with
    /// the bucket then in `KITH_S3_ENDPOINT`.
    pub s3_path_style: bool,
    /// `KITH_S3_PRESIGNED_URLS`: hand out the bucket's own presigned URLs
    /// (clients fetch from S3, kith serves no bytes) instead of kith's
    /// `/media/{key}` URLs. Only with `KITH_MEDIA_STORE=s3`.
    pub s3_presigned_urls: bool,
    /// `KITH_MEDIA_URL_TTL_SECS`: how long a media URL the API hands out
    /// stays valid (3600).
    pub media_url_ttl_secs: u64,
    /// `KITH_PHOTOS_PER_USER`: most profile photos one user keeps (9).
    pub photos_per_user: u32,
    /// `KITH_MEDIA_MODERATION_URL`: when set, each new photo's small size is
    /// posted to this classifier, and a photo it flags is shown to its owner
    /// only.
    pub media_moderation_url: Option<String>,
    /// `KITH_RECENT_SIGN_IN_SECS`: how long after signing in a session may
    /// change how the account signs in (link, unlink) or delete an account
    /// that has no password (900): a stolen session that is older cannot.
    pub recent_sign_in_secs: u64,
    /// `KITH_SMS_SENDER`: how sign-in codes are sent: `log` (written to
    /// the server log, for development; the default) or `twilio`.
    pub sms_sender: SmsSenderKind,
    /// `KITH_SMS_CODE_TTL_SECS`: how long a sign-in code works (300).
    pub sms_code_ttl_secs: u64,
    /// `KITH_SMS_CODE_ATTEMPTS`: wrong guesses a code survives (5); then it
    /// is spent and a new one must be requested.
    pub sms_code_attempts: u32,
    /// `KITH_SMS_FROM`: the number (or sender id) codes come from; required
    /// with `twilio`.
    pub sms_from: Option<String>,
    /// `KITH_TWILIO_BASE_URL`: Twilio's API (`https://api.twilio.com`).
    pub twilio_base_url: String,
    /// `KITH_TWILIO_ACCOUNT_SID` and `KITH_TWILIO_AUTH_TOKEN`: required
    /// with `twilio`.
    pub twilio_account_sid: Option<String>,
    pub twilio_auth_token: Option<String>,
    /// `KITH_TELEGRAM_BOT_TOKEN`: enables `loginWithTelegram` and
    /// `linkTelegram` for this bot's WebApp.
    pub telegram_bot_token: Option<String>,
    /// `KITH_TELEGRAM_MAX_AGE_SECS`: oldest `initData` (by `auth_date`)
    /// accepted (86400).
    pub telegram_max_age_secs: u64,
    /// `KITH_FACEBOOK_APP_ID` and `KITH_FACEBOOK_APP_SECRET`: both enable
    /// `loginWithFacebook` and `linkFacebook` for this app.
    pub facebook_app_id: Option<String>,
    pub facebook_app_secret: Option<String>,
    /// `KITH_FACEBOOK_GRAPH_URL`: the Graph API (`https://graph.facebook.com`).
    pub facebook_graph_url: String,
    /// `KITH_NATS_URL`: when set, domain events (the outbox) are published
    /// to this NATS server's JetStream, e.g. `nats://127.0.0.1:4222`.
    pub nats_url: Option<String>,
    /// `KITH_NATS_STREAM`: the JetStream stream events go to (created when
    /// missing, taking the subjects `kith.>`).
    pub nats_stream: String,
    /// `KITH_OUTBOX_RETENTION_SECS`: how long a published event stays in
    /// the outbox table before it is pruned (7 days).
    pub outbox_retention_secs: u64,
    /// `KITH_WEBHOOK_URLS`: comma-separated `http(s)://` URLs each domain
    /// event is `POST`ed to, signed with `webhook_secret`.
    pub webhook_urls: Option<String>,
    /// `KITH_WEBHOOK_SECRET`: the HMAC-SHA256 key of `Kith-Signature`;
    /// required with `webhook_urls`.
    pub webhook_secret: Option<String>,
    /// `KITH_WEBHOOK_EVENTS`: comma-separated event types webhooks carry,
    /// `message.*` for a family; unset, every type.
    pub webhook_events: Option<String>,
    /// `KITH_WEBHOOK_TIMEOUT_SECS`: how long one delivery may take.
    pub webhook_timeout_secs: u64,
    /// `KITH_WEBHOOK_MAX_ATTEMPTS`: deliveries tried this often without a
    /// 2xx become dead letters (`kith events failed`).
    pub webhook_max_attempts: u32,
    /// `KITH_WEBHOOK_BACKOFF_MILLIS`: the wait after a first failure,
    /// doubling with each further one (up to an hour), with full jitter.
    pub webhook_backoff_millis: u64,
    /// `KITH_METRICS_LISTEN`: when set, `/metrics` is served on this address
    /// alone (for example a port only the cluster reaches), not on `listen`.
    pub metrics_listen: Option<SocketAddr>,
    /// `KITH_CORS_ORIGINS`: `*` (any page may call kith from a browser) or a
    /// comma-separated list of origins, e.g. `https://app.example.com`.
    pub cors_origins: String,
    /// `KITH_TRUST_FORWARDED_FOR`: take the client address from the last
    /// `X-Forwarded-For` entry (set it only behind a proxy that appends it).
    pub trust_forwarded_for: bool,
    /// `KITH_RATE_LIMITS`: `on` or `off` (off is for load tests).
    pub rate_limits: Switch,
    /// `KITH_RATE_LOGIN_PER_IP`, e.g. `30/min`.
    pub rate_login_per_ip: Rate,
    /// `KITH_RATE_LOGIN_FAILURES_PER_ACCOUNT_AND_IP`: failed logins on one
    /// account from one client address (a success counts nothing).
    pub rate_login_failures_per_account_and_ip: Rate,
    /// `KITH_RATE_LOGIN_FAILURES_PER_ACCOUNT`: failed logins on one account
    /// from anywhere; slower, so guessing from many addresses stays bounded
    /// while a stranger at one address cannot lock the owner out.
    pub rate_login_failures_per_account: Rate,
    /// `KITH_RATE_REGISTER_PER_IP`.
    pub rate_register_per_ip: Rate,
    /// `KITH_RATE_REFRESH_PER_IP`.
    pub rate_refresh_per_ip: Rate,
    /// `KITH_RATE_TYPING_PER_USER`: `setTyping` calls per user.
    pub rate_typing_per_user: Rate,
    /// `KITH_RATE_SWIPES_PER_USER`: `like`, `pass` and `superLike` per user.
    pub rate_swipes_per_user: Rate,
    /// `KITH_RATE_MESSAGES_PER_USER`: `sendMessage` per user.
    pub rate_messages_per_user: Rate,
    /// `KITH_RATE_LOCATION_PER_USER`: `updateProfile` calls that set a
    /// location, per user (moving about is how distances are triangulated).
    pub rate_location_per_user: Rate,
    /// `KITH_RATE_DECKS_PER_USER`: recommendation decks dealt afresh per user.
    pub rate_decks_per_user: Rate,
    /// `KITH_RATE_UPLOADS_PER_USER`: `uploadPhoto` and `uploadAttachment`
    /// per user (30 an hour).
    pub rate_uploads_per_user: Rate,
    /// `KITH_RATE_SMS_PER_PHONE`: sign-in codes sent to one number (5 an
    /// hour).
    pub rate_sms_per_phone: Rate,
    /// `KITH_RATE_SMS_PER_IP`: sign-in codes requested from one client
    /// address (20 an hour).
    pub rate_sms_per_ip: Rate,
    /// `KITH_RATE_SMS_FAILURES_PER_PHONE`: wrong codes tried on one number,
    /// across all the codes it is sent (10 a day): each code's own attempts
    /// come back with every new code, so without this anyone could try 25
    /// an hour on any number. A right code counts nothing.
    pub rate_sms_failures_per_phone: Rate,
    /// `KITH_RATE_USERNAME_CHECKS_PER_IP`: `usernameAvailable` per client
    /// address, every aliased call counted.
    pub rate_username_checks_per_ip: Rate,
    /// `KITH_GROUP_MEMBER_CAP`: most members a group may have, its owner included.
    pub group_member_cap: u32,
    /// `KITH_PRESENCE_GRACE_MILLIS`: how long after their last socket closes a
    /// user still shows online.
    pub presence_grace_millis: u64,
    /// `KITH_PRESENCE_CLAIM_TTL_MILLIS`: with Redis, how long a replica's claim
    /// that a user is connected holds unless renewed (every third of it): how
    /// soon the users of a replica that died go offline for others.
    pub presence_claim_ttl_millis: u64,
    /// `KITH_DIRECT_MESSAGES`: who may open a direct conversation: `friends` or
    /// `everyone` (never across a block).
    pub direct_messages: DirectPolicy,
    /// `KITH_SEND_BATCHING`: on PostgreSQL, write concurrent sends together,
    /// one transaction per batch (`off` writes each alone, to compare).
    pub send_batching: Switch,
    /// `KITH_PASS_COOLDOWN_SECS`: how long a passed user stays out of
    /// recommendations.
    pub pass_cooldown_secs: u64,
    /// `KITH_SUPER_LIKES_PER_DAY`: super likes per user in any 24 hours.
    pub super_likes_per_day: u32,
    /// `KITH_RECOMMENDATION_POOL`: most candidates one recommendation deck
    /// weighs (the most recently active, when more are in range).
    pub recommendation_pool: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Switch {
    On,
    Off,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            database_url: "sqlite://kith.db?mode=rwc".into(),
            database_read_url: None,
            read_your_writes_millis: 5_000,
            redis_url: None,
            redis_prefix: "kith:".into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            jwt_secret: None,
            access_token_ttl_secs: 15 * 60,
            refresh_token_ttl_secs: 30 * 24 * 3600,
            migrate: true,
            log_format: LogFormat::Text,
            db_max_connections: 16,
            db_acquire_timeout_millis: 3_000,
            body_read_timeout_millis: 30_000,
            body_limit_bytes: 2 * 1024 * 1024,
            header_read_timeout_millis: 10_000,
            idle_timeout_millis: 75_000,
            max_connections_per_ip: 256,
            max_connections: 0,
            shutdown_drain_millis: 3_000,
            shutdown_timeout_millis: 10_000,
            multipart_max_files: 10,
            query_depth_limit: 12,
            query_complexity_limit: 10_000,
            query_fields_limit: 2_000,
            query_directives_limit: 50,
            query_nesting_limit: 64,
            execution_timeout_millis: 10_000,
            response_limit_bytes: 4 << 20,
            batch_limit: 10,
            loader_delay_micros: 1_000,
            ws_max_message_bytes: 64 * 1024,
            ws_init_timeout_millis: 10_000,
            ws_max_sockets_per_user: 20,
            ws_max_subscriptions_per_socket: 100,
            ws_anonymous_idle_millis: 60_000,
            password_hash_concurrency: 0,
            media_max_bytes: 10 * 1024 * 1024,
            media_max_pixels: 40_000_000,
            media_sizes: MediaSizes(vec![1280, 640, 160]),
            media_concurrency: 0,
            media_store: MediaStoreKind::Local,
            media_dir: None,
            s3_endpoint: None,
            s3_bucket: None,
            s3_region: None,
            s3_access_key_id: None,
            s3_secret_access_key: None,
            s3_path_style: true,
            s3_presigned_urls: false,
            media_url_ttl_secs: 3600,
            photos_per_user: 9,
            media_moderation_url: None,
            recent_sign_in_secs: 900,
            sms_sender: SmsSenderKind::Log,
            sms_code_ttl_secs: 300,
            sms_code_attempts: 5,
            sms_from: None,
            twilio_base_url: "https://api.twilio.com".into(),
            twilio_account_sid: None,
            twilio_auth_token: None,
            telegram_bot_token: None,
            telegram_max_age_secs: 86_400,
            facebook_app_id: None,
            facebook_app_secret: None,
            facebook_graph_url: "https://graph.facebook.com".into(),
            nats_url: None,
            nats_stream: "KITH_EVENTS".into(),
            outbox_retention_secs: 7 * 86_400,
            webhook_urls: None,
            webhook_secret: None,
            webhook_events: None,
            webhook_timeout_secs: 5,
            webhook_max_attempts: 16,
            webhook_backoff_millis: 1_000,
            metrics_listen: None,
            cors_origins: "*".into(),
            trust_forwarded_for: false,
            rate_limits: Switch::On,
            rate_login_per_ip: Rate::per_minute(30),
            rate_login_failures_per_account_and_ip: Rate::per_minute(10),
            rate_login_failures_per_account: Rate::per_hour(100),
            rate_register_per_ip: Rate::per_hour(20),
            rate_refresh_per_ip: Rate::per_minute(60),
            rate_typing_per_user: Rate::per_minute(60),
            rate_swipes_per_user: Rate::per_minute(120),
            rate_messages_per_user: Rate::per_minute(120),
            rate_location_per_user: Rate::per_hour(30),
            rate_decks_per_user: Rate::per_hour(60),
            rate_uploads_per_user: Rate::per_hour(30),
            rate_sms_per_phone: Rate::per_hour(5),
            rate_sms_per_ip: Rate::per_hour(20),
            rate_sms_failures_per_phone: Rate::per_day(10),
            rate_username_checks_per_ip: Rate::per_minute(60),
            group_member_cap: 10_000,
            presence_grace_millis: 10_000,
            presence_claim_ttl_millis: 30_000,
            direct_messages: DirectPolicy::Friends,
            send_batching: Switch::On,
            pass_cooldown_secs: 7 * 24 * 3600,
            super_likes_per_day: 5,
            recommendation_pool: 1_000,
        }
    }
}

impl Settings {
    /// Reads settings from the optional config file and the environment.
    pub fn load() -> anyhow::Result<Self> {
        let file = std::env::var("KITH_CONFIG").unwrap_or_else(|_| "kith.toml".into());
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        if Path::new(&file).exists() {
            figment = figment.merge(Toml::file(&file));
        }
        figment = figment.merge(Env::prefixed("KITH_").ignore(&[&["config"], VERBATIM].concat()));
        // Taken as written: the environment's values are otherwise read by
        // their look, so a Facebook app id would arrive as a number and
        // `+15005550006` would lose its plus.
        for key in VERBATIM {
            if let Ok(value) = std::env::var(format!("KITH_{}", key.to_uppercase())) {
                figment = figment.merge(Serialized::default(key, value));
            }
        }
        let settings = figment
            .merge(Env::raw().only(&["DATABASE_URL", "DATABASE_READ_URL", "REDIS_URL"]))
            .extract()
            // Named as the operator sets it (KITH_LISTEN), whichever source
            // (environment, .env or the TOML file) held the bad value.
            .map_err(|err| {
                if err.path.is_empty() {
                    anyhow::anyhow!("bad settings: {err}")
                } else {
                    let key = err.path.join("_").to_uppercase();
                    bad_setting(&format!("KITH_{key}"), &err.kind.to_string())
                }
            })?;
        Ok(settings)
    }

    pub fn access_token_ttl(&self) -> Duration {
        Duration::from_secs(self.access_token_ttl_secs)
    }

    pub fn db_acquire_timeout(&self) -> Duration {
        Duration::from_millis(self.db_acquire_timeout_millis)
    }

    pub fn refresh_token_ttl(&self) -> Duration {
        Duration::from_secs(self.refresh_token_ttl_secs)
    }

    pub fn password_hash_concurrency(&self) -> usize {
        one_per_core_when_zero(self.password_hash_concurrency)
    }
}

/// Settings whose environment values are strings however they look: ids,
/// tokens and numbers that are not quantities.
const VERBATIM: &[&str] = &[
    "sms_from",
    "twilio_account_sid",
    "twilio_auth_token",
    "telegram_bot_token",
    "facebook_app_id",
    "facebook_app_secret",
    "webhook_urls",
    "webhook_secret",
    "webhook_events",
];

/// A setting that cannot work, named as the operator sets it: one line,
/// `bad setting KITH_…: why`.
fn bad_setting(name: &str, why: &str) -> anyhow::Error {
    anyhow::anyhow!("bad setting {name}: {why}")
}

/// `0` is one per core (two when the count is unknown).
fn one_per_core_when_zero(setting: usize) -> usize {
    match setting {
        0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
        n => n,
    }
}

/// Who may open a direct conversation with whom (never across a block).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DirectPolicy {
    /// Friends, and matched users (discovery): the default.
    #[default]
    Friends,
    /// Any two users.
    Everyone,
}
