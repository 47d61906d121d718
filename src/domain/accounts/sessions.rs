//! Sessions: opened on register and login, refreshed with rotation (a refresh
//! token is spent once; presenting it again revokes its session), listed,
//! revoked, and checked on every signed-in request (through a cache).

use chrono::{DateTime, Utc};
use entity::{refresh_token, session, user};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait,
    sea_query::{Expr, ExprTrait},
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::{Accounts, ClientInfo, IssuedSession, identities::SignInMethod};
use crate::{
    auth::tokens::{new_refresh_token, refresh_token_digest},
    domain::{
        events::{Event, user_topic},
        outbox::DomainEvent,
    },
    error::{AppError, AppResult},
};

/// Most sessions `sessions` lists.
pub const SESSIONS_LISTED: u64 = 100;

/// What a request needs of its session, cached: whose it is and until when.
/// A revoked or missing session is cached as `None`.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct SessionValidity {
    pub user_id: Uuid,
    pub expires_at: DateTime<Utc>,
}

impl Accounts {
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
            let revoked = self
                .revoke_where(
                    &txn,
                    session::Column::Id.eq(stored.session_id),
                    now,
                    "reused",
                )
                .await?;
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

    /// Refuses what only the account's holder may do unless the session
    /// signed in (by any way) lately: changing how the account signs in, or
    /// deleting one that has no password to ask for. Someone holding a
    /// stolen session (a token lifted from a device) could otherwise link
    /// their own Telegram and keep the account after every session is
    /// revoked. `FORBIDDEN`, saying what to do.
    pub async fn require_recent_sign_in(&self, session_id: Uuid) -> AppResult<()> {
        let window = self.providers.recent_sign_in;
        let signed_in = self
            .active_session(session_id)
            .await?
            .ok_or_else(|| AppError::unauthenticated("session has ended"))?
            .created_at;
        if Utc::now() - signed_in
            > chrono::TimeDelta::from_std(window).unwrap_or(chrono::TimeDelta::MAX)
        {
            return Err(AppError::forbidden(format!(
                "this needs a recent sign-in: sign in again, then retry within {} minutes",
                window.as_secs().div_ceil(60)
            )));
        }
        Ok(())
    }

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
        let txn = self.db.begin().await?;
        let revoked = self
            .revoke_where(&txn, condition, Utc::now(), "revoked")
            .await?;
        txn.commit().await?;
        if revoked.is_empty() {
            return Err(AppError::not_found("session not found"));
        }
        self.announce_revoked(&revoked, Some(vec![session_id]))
            .await;
        Ok(())
    }

    /// Ends every open session of the user.
    pub async fn revoke_all_sessions(&self, user_id: Uuid) -> AppResult<()> {
        let txn = self.db.begin().await?;
        let revoked = self
            .revoke_where(
                &txn,
                session::Column::UserId.eq(user_id),
                Utc::now(),
                "revoked",
            )
            .await?;
        txn.commit().await?;
        self.announce_revoked(&revoked, None).await;
        Ok(())
    }

    /// Forgets the ended sessions on every replica and tells the account's
    /// live subscriptions, so they stop.
    pub(super) async fn announce_revoked(
        &self,
        revoked: &[session::Model],
        session_ids: Option<Vec<Uuid>>,
    ) {
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

    /// Opens a session for `user`, who has just proved who they are by
    /// `method`, and tells the account's live subscriptions.
    pub(super) async fn sign_in(
        &self,
        user: user::Model,
        client: &ClientInfo,
        method: SignInMethod,
    ) -> AppResult<IssuedSession> {
        let txn = self.db.begin().await?;
        let (issued, session_id) = self.open_session(&txn, user, client, method).await?;
        txn.commit().await?;
        self.announce_signed_in(issued.user.id, session_id);
        Ok(issued)
    }

    pub(super) fn announce_signed_in(&self, user_id: Uuid, session_id: Uuid) {
        self.pubsub.publish(
            &user_topic(user_id),
            Event::SignedIn {
                user_id,
                session_id,
            },
        );
    }

    pub(super) async fn open_session(
        &self,
        db: &impl ConnectionTrait,
        user: user::Model,
        client: &ClientInfo,
        method: SignInMethod,
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
            method: Set(method.as_str().to_owned()),
        })
        .exec_without_returning(db)
        .await?;
        self.outbox
            .append(
                db,
                DomainEvent::new(
                    "session.started",
                    Some(user.id),
                    json!({ "userId": user.id, "sessionId": session_id, "method": method.as_str() }),
                ),
            )
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

impl Accounts {
    /// Marks the matching open sessions of one user revoked, with their
    /// event (`reason`: `revoked`, or `reused` for a refresh token presented
    /// twice); returns them.
    async fn revoke_where(
        &self,
        db: &impl ConnectionTrait,
        condition: sea_orm::sea_query::SimpleExpr,
        now: DateTime<Utc>,
        reason: &str,
    ) -> AppResult<Vec<session::Model>> {
        let revoked = session::Entity::update_many()
            .col_expr(session::Column::RevokedAt, Expr::value(now))
            .filter(condition)
            .filter(session::Column::RevokedAt.is_null())
            .exec_with_returning(db)
            .await?;
        if let Some(user_id) = revoked.first().map(|s| s.user_id) {
            let session_ids: Vec<Uuid> = revoked.iter().map(|s| s.id).collect();
            self.outbox
                .append(
                    db,
                    DomainEvent::new(
                        "session.revoked",
                        Some(user_id),
                        json!({ "userId": user_id, "sessionIds": session_ids, "reason": reason }),
                    ),
                )
                .await?;
        }
        Ok(revoked)
    }
}
