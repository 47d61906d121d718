//! Deleting an account: once the password matches, the account goes with its
//! sessions, friendships, group memberships and matches, and everyone who
//! held any of it hears.

use entity::{session, user};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::{Accounts, ClientInfo, login::FailureKey};
use crate::{
    domain::{discovery, groups, outbox::DomainEvent, social},
    error::{AppError, AppResult},
};

impl Accounts {
    /// Deletes the account and, by cascade, its sessions and identities,
    /// once the password matches. An account without a password (made by
    /// an SMS code, Telegram or Facebook) has only its session to prove it,
    /// which must have signed in lately.
    pub async fn delete_account(
        &self,
        user_id: Uuid,
        session_id: Uuid,
        password: Option<&str>,
        client: &ClientInfo,
    ) -> AppResult<()> {
        let user = user::Entity::find_by_id(user_id)
            .one(&self.db)
            .await?
            .ok_or_else(|| AppError::not_found("account not found"))?;
        // The password check is a login attempt in disguise: counted as one.
        match user.password_hash.as_deref() {
            None => self.require_recent_sign_in(session_id).await?,
            Some(hash) => {
                let Some(password) = password else {
                    return Err(AppError::bad_input(
                        "password",
                        "the account's password is required",
                    ));
                };
                if !self
                    .check_password(&FailureKey::Account(user.id), client, password, Some(hash))
                    .await?
                {
                    return Err(AppError::bad_input("password", "password is incorrect"));
                }
            }
        }
        // It reads its sessions before it writes: IMMEDIATE on SQLite, or a
        // write committed meanwhile (the events relay marking what it
        // published, say) fails it at once (see `Db::begin_writing`).
        let txn = self.db.begin_writing().await?;
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
        self.outbox
            .append_all(
                &txn,
                ended_matches
                    .iter()
                    .map(|ended| discovery::match_ended_by_deletion(ended, user_id)),
            )
            .await?;
        self.outbox
            .append(
                &txn,
                DomainEvent::new(
                    "user.deleted",
                    Some(user_id),
                    serde_json::json!({ "userId": user_id }),
                ),
            )
            .await?;
        txn.commit().await?;
        self.announce_revoked(&sessions, None).await;
        self.profiles.invalidate(&changed).await;
        self.graph.forget_friends(&changed).await;
        for ended in &ended_matches {
            discovery::announce_match_ended(&self.pubsub, ended);
        }
        Ok(())
    }
}
