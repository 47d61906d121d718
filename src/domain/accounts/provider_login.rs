//! Signing in through a provider (an SMS code, Telegram, Facebook): the
//! account its identity is linked to, or a new account made for it in the
//! same transaction as its identity and first session.

use entity::{identity, user};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};

use super::{
    Accounts, ClientInfo, IssuedSession,
    identities::{
        ProviderIdentity, SignInMethod, claim_phone, clip, insert_identity, is_identity_taken,
    },
    registration::{NewAccount, new_account, registered},
    usernames::{username_base, username_candidates},
};
use crate::{
    domain::users::ProfileText,
    error::{AppError, AppResult, is_unique_violation},
};

/// Names weighed for a new account before one is taken as free.
const USERNAME_CANDIDATES: usize = 6;
/// Tries at making an account, each after losing a race (for the name, or
/// to another first sign-in of the same person).
const CREATE_ATTEMPTS: usize = 4;

impl Accounts {
    pub(super) async fn sign_in_as(
        &self,
        found: ProviderIdentity,
        client: &ClientInfo,
    ) -> AppResult<IssuedSession> {
        for _ in 0..CREATE_ATTEMPTS {
            if let Some(linked) = identity::Entity::find()
                .filter(identity::Column::Provider.eq(found.method.as_str()))
                .filter(identity::Column::Subject.eq(&found.subject))
                .one(self.db.primary())
                .await?
            {
                return self.sign_in_linked(linked, &found, client).await;
            }
            match self.create_for(&found, client).await {
                Err(Retry) => continue,
                Ok(result) => return result,
            }
        }
        Err(AppError::unavailable(
            1,
            "signing in raced with itself; retry",
        ))
    }

    async fn sign_in_linked(
        &self,
        linked: identity::Model,
        found: &ProviderIdentity,
        client: &ClientInfo,
    ) -> AppResult<IssuedSession> {
        let user = user::Entity::find_by_id(linked.user_id)
            .one(self.db.primary())
            .await?
            .ok_or_else(|| AppError::unauthenticated("the account was deleted"))?;
        // What the provider says now (a new name, a new photo) is kept,
        // within the columns' sizes as on the first sign-in.
        let said = found.as_stored();
        identity::Entity::update(identity::ActiveModel {
            id: Set(linked.id),
            display_name: Set(said.display_name.or(linked.display_name)),
            username: Set(said.username.or(linked.username)),
            photo_url: Set(said.photo_url.or(linked.photo_url)),
            last_used_at: Set(chrono::Utc::now()),
            ..Default::default()
        })
        .exec(&self.db)
        .await?;
        self.sign_in(user, client, found.method).await
    }

    /// A new account for `found`, with its identity and first session; or
    /// [`Retry`] when a race was lost.
    async fn create_for(
        &self,
        found: &ProviderIdentity,
        client: &ClientInfo,
    ) -> Result<AppResult<IssuedSession>, Retry> {
        let display_name = found
            .display_name
            .as_deref()
            .map(|name| clip(name.trim(), 64))
            .and_then(|name| ProfileText::DisplayName.parse(&name).ok().flatten());
        let base = username_base(&[found.username.as_deref(), found.display_name.as_deref()]);
        let username = match self.free_username(&base).await {
            Ok(username) => username,
            Err(err) => return Ok(Err(err)),
        };
        let attempt = async {
            let txn = self.db.begin_writing().await?;
            let mut user = user::Entity::insert(new_account(NewAccount {
                username: username.clone(),
                password_hash: None,
                email: None,
                phone: None,
                display_name,
                birthdate: None,
            }))
            .exec_with_returning(&txn)
            .await?;
            let mut changed = Vec::new();
            if found.method == SignInMethod::Phone {
                changed = claim_phone(&txn, &found.subject, user.id).await?;
                user.phone = Some(found.subject.clone());
            }
            insert_identity(&txn, user.id, found).await?;
            self.outbox
                .append(&txn, registered(&user, found.method))
                .await?;
            let (issued, session_id) = self.open_session(&txn, user, client, found.method).await?;
            txn.commit().await?;
            self.usernames.insert(&issued.user.username);
            self.profiles.invalidate(&changed).await;
            self.announce_signed_in(issued.user.id, session_id);
            Ok::<_, AppError>(issued)
        };
        match attempt.await {
            Err(AppError::Internal(err)) => match err.downcast::<sea_orm::DbErr>() {
                // Someone else took the name, or made this person's account
                // first: look again.
                Ok(db_err) if is_unique_violation(&db_err) => {
                    if !is_identity_taken(&db_err) {
                        // Taken on another replica: this one's filter
                        // learns it, so the next try asks the database.
                        self.usernames.insert(&username);
                    }
                    Err(Retry)
                }
                Ok(db_err) => Ok(Err(db_err.into())),
                Err(err) => Ok(Err(AppError::Internal(err))),
            },
            other => Ok(other),
        }
    }

    /// The first candidate nobody has: from the Bloom filter when it is
    /// certainly free, else asked of the database.
    async fn free_username(&self, base: &str) -> AppResult<String> {
        let candidates = username_candidates(base, USERNAME_CANDIDATES);
        if let Some(free) = candidates.iter().find(|c| !self.usernames.may_be_taken(c)) {
            return Ok(free.clone());
        }
        let taken: Vec<String> = user::Entity::find()
            .filter(user::Column::Username.is_in(candidates.clone()))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|u| u.username)
            .collect();
        candidates
            .into_iter()
            .find(|c| !taken.contains(c))
            .ok_or_else(|| AppError::unavailable(1, "no free username was found; retry"))
    }
}

/// A race was lost: try again from the lookup.
struct Retry;
