//! Accounts and sessions: registering, logging in, refreshing with rotation and
//! reuse detection, revoking, and deleting an account. Owns the `users` credential
//! columns, `sessions` and `refresh_tokens`.

use std::{net::IpAddr, sync::Arc, time::Duration};

use chrono::{DateTime, NaiveDate, Utc};
use entity::{refresh_token, session, user};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait,
    sea_query::{Expr, ExprTrait},
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::infra::db::Db;
use crate::{
    auth::{
        PasswordHasher, TokenIssuer,
        tokens::{new_refresh_token, refresh_token_digest},
    },
    domain::{
        discovery,
        events::{Event, Events, user_topic},
        graph::Graph,
        groups,
        identity::{Email, Identifier, Password, Phone, Username},
        presence::PresenceVisibility,
        social::{self, FriendListVisibility},
        usernames::UsernameFilter,
        users::{self, ProfileText},
    },
    error::{AppError, AppResult, is_unique_violation},
    infra::{
        cache::TwoLevelCache,
        ratelimit::{Action, RateLimiter},
    },
};

/// The same answer for an unknown account and a wrong password.
/// Most sessions `sessions` lists.
pub const SESSIONS_LISTED: u64 = 100;

const BAD_CREDENTIALS: &str = "invalid identifier or password";

/// Whose failed logins a limit counts: the account once it is known (the same
/// whether named by username, email or phone), else the identifier as given.
enum FailureKey<'a> {
    Account(Uuid),
    Unknown(&'a Identifier),
}

impl std::fmt::Display for FailureKey<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Account(id) => write!(f, "account:{id}"),
            Self::Unknown(identifier) => write!(f, "unknown:{}", identifier.key()),
        }
    }
}

/// Where a request came from; recorded on the sessions it creates.
#[derive(Clone, Debug, Default)]
pub struct ClientInfo {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
}

/// Raw register input, validated here.
pub struct Registration {
    pub username: String,
    pub password: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub display_name: Option<String>,
    pub birthdate: Option<NaiveDate>,
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

/// What a request needs of its session, cached: whose it is and until when.
/// A revoked or missing session is cached as `None`.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct SessionValidity {
    pub user_id: Uuid,
    pub expires_at: DateTime<Utc>,
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

    pub async fn register(
        &self,
        input: Registration,
        client: &ClientInfo,
    ) -> AppResult<IssuedSession> {
        let username = Username::parse(&input.username)?;
        let password = Password::parse(&input.password)?;
        let email = input.email.as_deref().map(Email::parse).transpose()?;
        let phone = input.phone.as_deref().map(Phone::parse).transpose()?;
        let display_name = input
            .display_name
            .as_deref()
            .map(|name| ProfileText::DisplayName.parse(name))
            .transpose()?
            .flatten();
        if let Some(birthdate) = input.birthdate {
            users::check_birthdate(birthdate)?;
        }
        let password_hash = self.hasher.hash(password.as_str()).await?;

        let now = Utc::now();
        let new_user = user::ActiveModel {
            id: Set(Uuid::now_v7()),
            username: Set(username.as_str().to_owned()),
            email: Set(email.map(Email::into_inner)),
            phone: Set(phone.map(Phone::into_inner)),
            password_hash: Set(Some(password_hash)),
            display_name: Set(display_name),
            bio: Set(None),
            birthdate: Set(input.birthdate),
            gender: Set(None),
            interests: Set(serde_json::json!([])),
            latitude: Set(None),
            longitude: Set(None),
            last_seen_at: Set(None),
            friend_list_visibility: Set(FriendListVisibility::default().as_str().to_owned()),
            presence_visibility: Set(PresenceVisibility::default().as_str().to_owned()),
            friend_count: Set(0),
            created_at: Set(now),
            updated_at: Set(now),
            ..discovery::new_account_defaults(input.birthdate, now.date_naive())
        };
        let txn = self.db.begin().await?;
        let user = user::Entity::insert(new_user)
            .exec_with_returning(&txn)
            .await
            .map_err(|err| {
                if is_unique_violation(&err) {
                    taken_field_error(&err)
                } else {
                    err.into()
                }
            })?;
        let (issued, _) = self.open_session(&txn, user, client).await?;
        txn.commit().await?;
        self.usernames.insert(username.as_str());
        Ok(issued)
    }

    pub async fn login(
        &self,
        identifier: &Identifier,
        password: &str,
        client: &ClientInfo,
    ) -> AppResult<IssuedSession> {
        let column = match identifier {
            Identifier::Username(_) => user::Column::Username,
            Identifier::Email(_) => user::Column::Email,
            Identifier::Phone(_) => user::Column::Phone,
        };
        let found = user::Entity::find()
            .filter(column.eq(identifier.key()))
            .one(&self.db)
            .await?;
        // One count per account however it is named; an unknown identifier
        // is counted under itself, going through the very same steps, so
        // the answer and its timing do not tell it from a wrong password.
        let account = match &found {
            Some(user) => FailureKey::Account(user.id),
            None => FailureKey::Unknown(identifier),
        };
        let hash = found.as_ref().and_then(|u| u.password_hash.as_deref());
        let verified = self
            .check_password(&account, client, password, hash)
            .await?;
        let user = match found {
            Some(user) if verified => user,
            _ => return Err(AppError::unauthenticated(BAD_CREDENTIALS)),
        };
        let txn = self.db.begin().await?;
        let (issued, session_id) = self.open_session(&txn, user, client).await?;
        txn.commit().await?;
        let user_id = issued.user.id;
        self.pubsub.publish(
            &user_topic(user_id),
            Event::SignedIn {
                user_id,
                session_id,
            },
        );
        Ok(issued)
    }

    /// Exchanges a refresh token for a new pair. The old token is spent; presenting
    /// a spent token again means it leaked, so its whole session is revoked.
    pub async fn refresh(&self, token: &str, client: &ClientInfo) -> AppResult<IssuedSession> {
        let digest = refresh_token_digest(token);
        let now = Utc::now();
        let txn = self.db.begin().await?;
        // Spend the token first: the write takes the lock, so of two concurrent
        // refreshes exactly one wins and the other is treated as reuse.
        let spent = refresh_token::Entity::update_many()
            .col_expr(refresh_token::Column::UsedAt, Expr::value(now))
            .filter(refresh_token::Column::TokenHash.eq(&digest))
            .filter(refresh_token::Column::UsedAt.is_null())
            .exec(&txn)
            .await?;
        let Some(stored) = refresh_token::Entity::find_by_id(digest).one(&txn).await? else {
            return Err(AppError::unauthenticated("refresh token invalid"));
        };
        if spent.rows_affected == 0 {
            let revoked =
                revoke_where(&txn, session::Column::Id.eq(stored.session_id), now).await?;
            txn.commit().await?;
            self.announce_revoked(&revoked, Some(vec![stored.session_id]))
                .await;
            tracing::warn!(session = %stored.session_id, "refresh token reused; session revoked");
            return Err(AppError::unauthenticated(
                "refresh token was already used; the session has been revoked",
            ));
        }
        let session = session::Entity::find_by_id(stored.session_id)
            .one(&txn)
            .await?
            .filter(|s| is_active(s, now))
            .ok_or_else(|| AppError::unauthenticated("session has ended"))?;
        let user = user::Entity::find_by_id(session.user_id)
            .one(&txn)
            .await?
            .ok_or_else(|| AppError::unauthenticated("session has ended"))?;

        let refresh_token = self.add_refresh_token(&txn, session.id, now).await?;
        session::Entity::update(session::ActiveModel {
            id: Set(session.id),
            last_used_at: Set(now),
            expires_at: Set(now + self.session_ttl),
            ip: Set(client.ip.map(|ip| ip.to_string())),
            user_agent: Set(client.user_agent.clone()),
            ..Default::default()
        })
        .exec(&txn)
        .await?;
        txn.commit().await?;
        // It lasts longer now.
        self.validity.invalidate(&[session.id]).await;
        let (access_token, access_token_expires_at) = self.tokens.issue(user.id, session.id)?;
        Ok(IssuedSession {
            access_token,
            access_token_expires_at,
            refresh_token,
            user,
        })
    }

    /// Whose the session is, if it may still be used (not revoked, not
    /// expired): asked by every signed-in request, so answered from the cache.
    pub async fn session_validity(&self, session_id: Uuid) -> AppResult<Option<SessionValidity>> {
        let validity = self
            .validity
            .get_or_load(session_id, || async {
                let now = Utc::now();
                // From the primary, whatever the request: what is loaded here
                // is kept for every replica, so it must not be a lagging
                // replica's view of a session just revoked.
                Ok(session::Entity::find_by_id(session_id)
                    .one(self.db.primary())
                    .await?
                    .filter(|s| is_active(s, now))
                    .map(|s| SessionValidity {
                        user_id: s.user_id,
                        expires_at: s.expires_at,
                    }))
            })
            .await?;
        Ok(validity.filter(|v| v.expires_at > Utc::now()))
    }

    /// The session if it may still be used: not revoked, not expired.
    pub async fn active_session(&self, session_id: Uuid) -> AppResult<Option<session::Model>> {
        let now = Utc::now();
        Ok(session::Entity::find_by_id(session_id)
            .one(&self.db)
            .await?
            .filter(|s| is_active(s, now)))
    }

    /// The user's sessions that may still be used, most recently used first.
    /// The user's live sessions, most recently used first: at most
    /// [`SESSIONS_LISTED`], so the list (and what a query asking for it may
    /// cost) stays bounded however often someone signs in.
    pub async fn sessions(&self, user_id: Uuid) -> AppResult<Vec<session::Model>> {
        let now = Utc::now();
        Ok(session::Entity::find()
            .filter(session::Column::UserId.eq(user_id))
            .filter(session::Column::RevokedAt.is_null())
            .filter(session::Column::ExpiresAt.gt(now))
            .order_by_desc(session::Column::LastUsedAt)
            .limit(SESSIONS_LISTED)
            .all(&self.db)
            .await?)
    }

    /// Ends one of the user's sessions; `NOT_FOUND` when it is not theirs or has
    /// already ended.
    pub async fn revoke_session(&self, user_id: Uuid, session_id: Uuid) -> AppResult<()> {
        let condition = session::Column::Id
            .eq(session_id)
            .and(session::Column::UserId.eq(user_id));
        let revoked = revoke_where(&self.db, condition, Utc::now()).await?;
        if revoked.is_empty() {
            return Err(AppError::not_found("session not found"));
        }
        self.announce_revoked(&revoked, Some(vec![session_id]))
            .await;
        Ok(())
    }

    /// Ends every open session of the user.
    pub async fn revoke_all_sessions(&self, user_id: Uuid) -> AppResult<()> {
        let revoked =
            revoke_where(&self.db, session::Column::UserId.eq(user_id), Utc::now()).await?;
        self.announce_revoked(&revoked, None).await;
        Ok(())
    }

    /// Forgets the ended sessions on every replica and tells the account's
    /// live subscriptions, so they stop.
    async fn announce_revoked(&self, revoked: &[session::Model], session_ids: Option<Vec<Uuid>>) {
        let ended: Vec<Uuid> = revoked.iter().map(|s| s.id).collect();
        // Revoked for good: no reader's older answer may replace that.
        self.validity.settle(&ended, None).await;
        if let Some(user_id) = revoked.first().map(|s| s.user_id) {
            self.pubsub.publish(
                &user_topic(user_id),
                Event::SessionsRevoked {
                    user_id,
                    session_ids,
                },
            );
        }
    }

    /// Deletes the account and, by cascade, its sessions, once the password matches.
    pub async fn delete_account(
        &self,
        user_id: Uuid,
        password: &str,
        client: &ClientInfo,
    ) -> AppResult<()> {
        let user = user::Entity::find_by_id(user_id)
            .one(&self.db)
            .await?
            .ok_or_else(|| AppError::not_found("account not found"))?;
        // The password check is a login attempt in disguise: counted as one.
        if !self
            .check_password(
                &FailureKey::Account(user.id),
                client,
                password,
                user.password_hash.as_deref(),
            )
            .await?
        {
            return Err(AppError::bad_input("password", "password is incorrect"));
        }
        let txn = self.db.begin().await?;
        // Its sessions go with it (by cascade): they are forgotten below.
        let sessions = session::Entity::find()
            .filter(session::Column::UserId.eq(user_id))
            .all(&txn)
            .await?;
        let mut changed = social::forget_user(&txn, user_id).await?;
        changed.push(user_id);
        groups::forget_user(&txn, user_id).await?;
        let ended_matches = discovery::forget_user(&txn, user_id).await?;
        user::Entity::delete_by_id(user_id).exec(&txn).await?;
        txn.commit().await?;
        self.announce_revoked(&sessions, None).await;
        self.profiles.invalidate(&changed).await;
        self.graph.forget_friends(&changed).await;
        for ended in &ended_matches {
            discovery::announce_match_ended(&self.pubsub, ended);
        }
        Ok(())
    }

    /// Checks a password against `hash` (a decoy when `None`), within the
    /// limits on failures: per account and client address, so a stranger
    /// guessing from one address cannot lock the owner out of theirs, and a
    /// slower ceiling per account from anywhere, so guessing from many
    /// addresses stays bounded. A failure is reserved before the (slow)
    /// check, so concurrent guesses cannot all slip under the limit, and
    /// given back when the password was right: only failures count.
    async fn check_password(
        &self,
        account: &FailureKey<'_>,
        client: &ClientInfo,
        password: &str,
        hash: Option<&str>,
    ) -> AppResult<bool> {
        let account = account.to_string();
        let address = client
            .ip
            .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
        let pair = format!("{account}@{address}");
        let limiter = &self.limiter;
        limiter
            .check(Action::LoginFailuresPerAccountAndIp, &pair)
            .await?;
        if let Err(limited) = limiter
            .check(Action::LoginFailuresPerAccount, &account)
            .await
        {
            // Refused before any check: this attempt failed nothing.
            limiter
                .refund(Action::LoginFailuresPerAccountAndIp, &pair)
                .await;
            return Err(limited);
        }
        let verified = match self.hasher.verify(password, hash).await {
            Ok(verified) => verified,
            Err(err) => {
                self.refund_failure(&account, &pair).await;
                return Err(err.into());
            }
        };
        if verified {
            self.refund_failure(&account, &pair).await;
        }
        Ok(verified)
    }

    async fn refund_failure(&self, account: &str, pair: &str) {
        self.limiter
            .refund(Action::LoginFailuresPerAccountAndIp, pair)
            .await;
        self.limiter
            .refund(Action::LoginFailuresPerAccount, account)
            .await;
    }

    /// Whether nobody has the name. Invalid names are `BAD_USER_INPUT`.
    pub async fn username_available(&self, raw: &str) -> AppResult<bool> {
        let username = Username::parse(raw)?;
        if !self.usernames.may_be_taken(username.as_str()) {
            return Ok(true);
        }
        let taken = user::Entity::find()
            .filter(user::Column::Username.eq(username.as_str()))
            .one(&self.db)
            .await?
            .is_some();
        Ok(!taken)
    }

    async fn open_session(
        &self,
        db: &impl ConnectionTrait,
        user: user::Model,
        client: &ClientInfo,
    ) -> AppResult<(IssuedSession, Uuid)> {
        let now = Utc::now();
        let session_id = Uuid::now_v7();
        session::Entity::insert(session::ActiveModel {
            id: Set(session_id),
            user_id: Set(user.id),
            user_agent: Set(client.user_agent.clone()),
            ip: Set(client.ip.map(|ip| ip.to_string())),
            created_at: Set(now),
            last_used_at: Set(now),
            expires_at: Set(now + self.session_ttl),
            revoked_at: Set(None),
        })
        .exec_without_returning(db)
        .await?;
        let refresh_token = self.add_refresh_token(db, session_id, now).await?;
        let (access_token, access_token_expires_at) = self.tokens.issue(user.id, session_id)?;
        let issued = IssuedSession {
            access_token,
            access_token_expires_at,
            refresh_token,
            user,
        };
        Ok((issued, session_id))
    }

    async fn add_refresh_token(
        &self,
        db: &impl ConnectionTrait,
        session_id: Uuid,
        now: DateTime<Utc>,
    ) -> AppResult<String> {
        let token = new_refresh_token();
        refresh_token::Entity::insert(refresh_token::ActiveModel {
            token_hash: Set(refresh_token_digest(&token)),
            session_id: Set(session_id),
            created_at: Set(now),
            used_at: Set(None),
        })
        .exec_without_returning(db)
        .await?;
        Ok(token)
    }
}

fn is_active(session: &session::Model, now: DateTime<Utc>) -> bool {
    session.revoked_at.is_none() && session.expires_at > now
}

/// Marks the matching open sessions of one user revoked; returns them.
async fn revoke_where(
    db: &impl ConnectionTrait,
    condition: sea_orm::sea_query::SimpleExpr,
    now: DateTime<Utc>,
) -> AppResult<Vec<session::Model>> {
    Ok(session::Entity::update_many()
        .col_expr(session::Column::RevokedAt, Expr::value(now))
        .filter(condition)
        .filter(session::Column::RevokedAt.is_null())
        .exec_with_returning(db)
        .await?)
}

/// Names the field whose unique constraint refused a new account. Both SQLite
/// ("UNIQUE constraint failed: users.email") and PostgreSQL ("users_email_key")
/// name the column in the message.
fn taken_field_error(err: &sea_orm::DbErr) -> AppError {
    let message = err.to_string();
    if message.contains("email") {
        AppError::conflict("email", "email is already registered")
    } else if message.contains("phone") {
        AppError::conflict("phone", "phone is already registered")
    } else {
        AppError::conflict("username", "username is taken")
    }
}
