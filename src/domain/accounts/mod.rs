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
//! - `usernames`: the Bloom filter of taken usernames.

use std::{net::IpAddr, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use entity::user;

use crate::infra::db::Db;
use crate::{
    auth::{PasswordHasher, TokenIssuer},
    domain::{events::Events, social::Graph, users},
    infra::{cache::TwoLevelCache, ratelimit::RateLimiter},
};

mod deletion;
pub mod identity;
mod login;
mod profile;
mod registration;
mod sessions;
pub mod usernames;

pub use identity::{Email, Identifier, Password, Phone, Username};
pub use registration::Registration;
pub use sessions::{SESSIONS_LISTED, SessionValidity};
pub use usernames::UsernameFilter;

/// Where a request came from; recorded on the sessions it creates.
#[derive(Clone, Debug, Default)]
pub struct ClientInfo {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
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
    /// Counts failed password checks (see [`Accounts::check_password`]).
    limiter: RateLimiter,
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
        }
    }

    pub fn tokens(&self) -> &TokenIssuer {
        &self.tokens
    }
}
