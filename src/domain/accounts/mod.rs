//! Accounts and sessions: registering, logging in, refreshing with rotation and
//! reuse detection, revoking, and deleting an account. Owns the `users` credential
//! columns, `sessions` and `refresh_tokens`.
//!
//! Files:
//! - `registration`: new accounts, and whether a username is free.
//! - `login`: logging in, and the limits on failed password checks.
//! - `sessions`: opening, refreshing (rotation, reuse detection), listing and
//!   revoking sessions, and whether one still holds.
//! - `deletion`: deleting an account and what goes with it.
//! - `profile`: a user changing their profile, and what follows from it.
//! - `identity`: the validated identifiers and secrets (username, email,
//!   phone, password).
//! - `usernames`: the Bloom filter of taken usernames, and the names new
//!   accounts made by a provider's sign-in are given.
//! - `identities`: the ways an account signs in (its password and linked
//!   identities), linking and unlinking them.
//! - `providers`: the services that vouch for a person (SMS, Telegram,
//!   Facebook), as accounts use them.
//! - `sms_codes`: the one-time codes SMS sign-in sends.
//! - `provider_login`: signing in through a provider, making the account
//!   on first sign-in.

use std::{net::IpAddr, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use entity::user;

use crate::infra::db::Db;
use crate::{
    auth::{PasswordHasher, TokenIssuer},
    domain::{events::Events, outbox::Outbox, social::Graph, users},
    infra::{cache::TwoLevelCache, ratelimit::RateLimiter},
};

mod deletion;
pub mod identities;
pub mod identity;
mod login;
mod profile;
mod provider_login;
mod providers;
mod registration;
mod sessions;
mod sms_codes;
pub mod usernames;

pub use identities::{ProviderProof, SignInMethod, SignInMethods};
pub use identity::{Email, Identifier, Password, Phone, Username};
pub use providers::SignInProviders;
pub use registration::Registration;
pub use sessions::{SESSIONS_LISTED, SessionValidity};
pub use sms_codes::SmsCodeSent;
pub use usernames::UsernameFilter;

/// Where a request came from; recorded on the sessions it creates.
#[derive(Clone, Debug, Default)]
pub struct ClientInfo {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
}

impl ClientInfo {
    /// The key per-address rate limits count under: the address, or one
    /// shared bucket when the transport could not tell (never the case
    /// behind axum's `ConnectInfo`).
    ///
    /// An IPv6 client counts as its /64: a host is routinely given a whole
    /// /64, so a key per address let one machine step through 2^64 keys and
    /// escape every per-address limit (SMS codes sent on the deployment's
    /// bill among them). An IPv4-mapped address counts as its IPv4 one.
    pub fn rate_key(&self) -> String {
        match self.ip.map(|ip| ip.to_canonical()) {
            None => "unknown".to_owned(),
            Some(IpAddr::V4(v4)) => v4.to_string(),
            Some(IpAddr::V6(v6)) => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                format!("{}/64", std::net::Ipv6Addr::from(prefix))
            }
        }
    }
}

/// What a successful login, register or refresh hands the client.
pub struct IssuedSession {
    pub access_token: String,
    pub access_token_expires_at: DateTime<Utc>,
    pub refresh_token: String,
    pub user: user::Model,
}

#[derive(Clone)]
pub struct Accounts {
    db: Db,
    hasher: PasswordHasher,
    tokens: Arc<TokenIssuer>,
    usernames: UsernameFilter,
    pubsub: Events,
    session_ttl: Duration,
    /// Every request asks whether its session still holds: the hottest read.
    validity: TwoLevelCache<SessionValidity>,
    /// A deleted account and its friends' counts are forgotten here.
    profiles: users::Profiles,
    /// And its friends' friend lists.
    graph: Graph,
    /// Counts failed password checks (see [`Accounts::check_password`]) and
    /// sign-in codes sent.
    limiter: RateLimiter,
    providers: Arc<SignInProviders>,
    /// Account and session events for services outside kith.
    outbox: Outbox,
}

/// The caches accounts read through and invalidate.
pub struct AccountCaches {
    pub validity: TwoLevelCache<SessionValidity>,
    pub profiles: users::Profiles,
    pub graph: Graph,
}

impl Accounts {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        db: Db,
        hasher: PasswordHasher,
        tokens: TokenIssuer,
        usernames: UsernameFilter,
        pubsub: Events,
        session_ttl: Duration,
        caches: AccountCaches,
        limiter: RateLimiter,
        providers: SignInProviders,
        outbox: Outbox,
    ) -> Self {
        let AccountCaches {
            validity,
            profiles,
            graph,
        } = caches;
        Self {
            db,
            hasher,
            tokens: Arc::new(tokens),
            usernames,
            pubsub,
            session_ttl,
            validity,
            profiles,
            graph,
            limiter,
            providers: Arc::new(providers),
            outbox,
        }
    }

    pub fn tokens(&self) -> &TokenIssuer {
        &self.tokens
    }
}
