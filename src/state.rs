//! The services every request shares, wired from settings: the domains' services
//! over the database, Redis (when configured), the pub/sub hubs, the caches
//! and the media store.
//! Built once by `app`; read by the schema and the HTTP handlers.

use std::{
    sync::{Arc, atomic::AtomicUsize},
    time::Duration,
};

use anyhow::Context as _;
use sea_orm::DbBackend;
use tokio::sync::Notify;

use crate::{
    auth::{PasswordHasher, TokenIssuer, signing_key},
    config::{Settings, SmsBackend, Switch},
    domain::{
        accounts::{AccountCaches, Accounts, SignInProviders, UsernameFilter},
        chat::{Chat, SendBatches},
        discovery::{AffinityKey, Discovery, DiscoveryIndex, Recommendations},
        events::Events,
        groups::Groups,
        media::Media,
        outbox::{Dispatcher, Outbox, Relay, WebhookTargets},
        presence::{Presence, PresenceStore},
        social::{Graph, Social},
        users::Profiles,
    },
    infra::{
        cache::{Capacity, Freshness, Invalidations, TwoLevelCache},
        db::Db,
        event_sink::{EventSink, JetStreamSink},
        identity_providers::{GraphApi, TelegramLogin},
        media_store::MediaStore,
        pubsub::{LocalPubSub, RedisPubSub},
        ratelimit::RateLimiter,
        redis::Redis,
        sms::{LogSender, SmsSender, TwilioSender},
        webhook::WebhookPoster,
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
    pub pubsub: Events,
    /// Users as lists show them, cached (see `domain::users::Profiles`).
    pub profiles: Profiles,
    /// This replica's live subscriptions, each counted once it listens (the
    /// `kith_subscriptions_active` gauge is the process's). `/readyz` reports
    /// it, so an operator sees a replica's load and a test when a
    /// subscription is live.
    pub live_subscriptions: Arc<AtomicUsize>,
    /// Photos and attachments, over the media store (local disk or S3)
    /// chosen in `app.rs`.
    pub media: Media,
    /// Whether domain events are written for a sink (`/readyz` reports its
    /// backlog then).
    pub outbox: Outbox,
}

impl AppState {
    /// Wires every service over a connected (and migrated) database, with the
    /// tasks that keep shared state current, which stop when dropped.
    pub async fn build(
        settings: Arc<Settings>,
        db: Db,
        redis: Option<Redis>,
        media: Arc<dyn MediaStore>,
    ) -> anyhow::Result<(Self, Background)> {
        let mut background = Background::default();
        let secret =
            signing_key::load_or_create(db.primary(), settings.jwt_secret.as_deref()).await?;
        let tokens = TokenIssuer::new(&secret, settings.access_token_ttl());
        let hasher = PasswordHasher::new(settings.password_hash_concurrency()).await?;
        let usernames = UsernameFilter::load(db.primary())
            .await
            .context("loading usernames")?;
        // Two hubs: the domains' events, and the caches' invalidations.
        let (pubsub, invalidations): (Events, Invalidations) = match &redis {
            Some(redis) => {
                background
                    .0
                    .push(tokio::spawn(redis.clone().watch_health()));
                let (events, tasks) = RedisPubSub::start(redis)?;
                background.0.extend(tasks);
                let (invalidations, tasks) = RedisPubSub::start(redis)?;
                background.0.extend(tasks);
                (events, invalidations)
            }
            None => (
                Arc::new(LocalPubSub::default()),
                Arc::new(LocalPubSub::default()),
            ),
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
            invalidations.clone(),
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
            invalidations.clone(),
        );
        background
            .0
            .push(tokio::spawn(profiles.clone().follow_invalidations()));
        let graph = Graph::new(db.clone(), redis.as_ref(), invalidations.clone());
        background.0.extend(graph.follow_invalidations());
        // Events for services outside kith: written only when a sink will
        // relay them.
        let sink: Option<Arc<dyn EventSink>> = match settings.nats_url.as_deref() {
            Some(url) => Some(Arc::new(
                JetStreamSink::connect(url, &settings.nats_stream)
                    .await
                    .context("bad setting KITH_NATS_URL")?,
            )),
            None => None,
        };
        let webhooks = match settings.webhooks()? {
            Some(hooks) => {
                let poster = WebhookPoster::new(&hooks.secret, hooks.timeout)
                    .context("building the webhooks' HTTP client")?;
                let handed_on = Arc::new(Notify::new());
                let dispatcher = Dispatcher::new(
                    db.clone(),
                    poster,
                    hooks.urls.clone(),
                    hooks.timeout,
                    hooks.max_attempts,
                    hooks.backoff,
                    handed_on.clone(),
                );
                background.0.extend(dispatcher.start());
                Some((WebhookTargets::new(hooks.urls, &hooks.events), handed_on))
            }
            None => None,
        };
        let outbox = if webhooks.is_some() {
            Outbox::new(true).with_webhooks()
        } else {
            Outbox::new(sink.is_some())
        };
        if outbox.is_enabled() {
            let retention = Duration::from_secs(settings.outbox_retention_secs);
            let mut relay = match sink {
                Some(sink) => Relay::new(db.clone(), sink, retention),
                None => Relay::without_nats(db.clone(), retention),
            };
            if let Some((targets, dispatcher)) = webhooks {
                relay = relay.with_webhooks(targets, dispatcher);
            }
            background.0.push(tokio::spawn(relay.run()));
        }
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
            sign_in_providers(&settings, &secret)?,
            outbox,
        );
        let social = Social::new(
            db.clone(),
            pubsub.clone(),
            profiles.clone(),
            graph.clone(),
            outbox,
        );
        let groups = Groups::new(
            db.clone(),
            pubsub.clone(),
            settings.group_member_cap,
            outbox,
        );
        let mut chat = Chat::new(db.clone(), pubsub.clone(), settings.direct_messages, outbox);
        if settings.send_batching == Switch::On
            && db.primary().get_database_backend() == DbBackend::Postgres
        {
            let (batches, writers) =
                SendBatches::start(db.clone(), pubsub.clone(), settings.direct_messages, outbox);
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
            outbox,
        );
        let (index, keeping) = DiscoveryIndex::spawn(db.clone(), invalidations.clone());
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
        let media = Media::new(db.clone(), media, &settings, &secret)?;
        background
            .0
            .push(tokio::spawn(media.clone().keep_sweeping()));
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
            live_subscriptions: Arc::default(),
            media,
            outbox,
        };
        Ok((state, background))
    }
}

/// The sign-in providers the settings configure; a half-configured one
/// stops the start with the setting to fix.
fn sign_in_providers(settings: &Settings, secret: &[u8]) -> anyhow::Result<SignInProviders> {
    let sms: Arc<dyn SmsSender> = match settings.sms_backend()? {
        SmsBackend::Log => {
            tracing::warn!(
                "KITH_SMS_SENDER=log: sign-in codes are written to this log, not sent; \
                 set KITH_SMS_SENDER=twilio to send them"
            );
            Arc::new(LogSender)
        }
        SmsBackend::Twilio {
            base_url,
            account_sid,
            auth_token,
            from,
        } => Arc::new(
            TwilioSender::new(&base_url, &account_sid, &auth_token, &from)
                .context("bad setting KITH_TWILIO_BASE_URL or KITH_TWILIO_ACCOUNT_SID")?,
        ),
    };
    let facebook = settings
        .facebook_app()?
        .map(|app| {
            GraphApi::new(&app.graph_url, &app.app_id, &app.app_secret)
                .context("bad setting KITH_FACEBOOK_GRAPH_URL")
        })
        .transpose()?;
    Ok(SignInProviders {
        sms,
        sms_code_ttl: Duration::from_secs(settings.sms_code_ttl_secs.max(1)),
        sms_code_attempts: settings.sms_code_attempts.max(1),
        sms_code_key: signing_key::derive_key(secret, "kith sms codes"),
        telegram: settings.telegram_bot_token().map(|token| {
            TelegramLogin::new(&token, Duration::from_secs(settings.telegram_max_age_secs))
        }),
        facebook,
        recent_sign_in: Duration::from_secs(settings.recent_sign_in_secs),
    })
}

/// Tasks that live as long as the app: aborted when it is dropped or stops.
#[derive(Default)]
pub struct Background(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Background {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}
