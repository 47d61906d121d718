//! The ways an account signs in: its password (a column of `users`) and its
//! linked identities (rows of `identities`: a verified phone, a Telegram
//! user, a Facebook user). At most one of each provider per account, each
//! provider's person on one account only, and never none at all.

use chrono::Utc;
use entity::{identity, user};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, sea_query::Expr,
};
use uuid::Uuid;

use super::{Accounts, ClientInfo, IssuedSession, providers::Purpose};
use crate::{
    domain::users,
    error::{AppError, AppResult, is_unique_violation, unique_constraint},
};

pub use super::providers::ProviderIdentity;

/// How an account signs in, and how a session began.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignInMethod {
    Password,
    Phone,
    Telegram,
    Facebook,
}

impl SignInMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::Phone => "phone",
            Self::Telegram => "telegram",
            Self::Facebook => "facebook",
        }
    }

    /// As stored; an unknown value (written by a newer release) reads as a
    /// password, the one every release knows.
    pub fn from_stored(stored: &str) -> Self {
        match stored {
            "phone" => Self::Phone,
            "telegram" => Self::Telegram,
            "facebook" => Self::Facebook,
            _ => Self::Password,
        }
    }
}

/// The ways one account signs in.
pub struct SignInMethods {
    pub has_password: bool,
    /// Its linked identities, oldest first.
    pub linked: Vec<identity::Model>,
}

impl Accounts {
    pub async fn sign_in_methods(&self, user_id: Uuid) -> AppResult<SignInMethods> {
        let has_password = user::Entity::find_by_id(user_id)
            .select_only()
            .column(user::Column::PasswordHash)
            .into_tuple::<Option<String>>()
            .one(&self.db)
            .await?
            .flatten()
            .is_some();
        let linked = identity::Entity::find()
            .filter(identity::Column::UserId.eq(user_id))
            .order_by_asc(identity::Column::CreatedAt)
            .all(&self.db)
            .await?;
        Ok(SignInMethods {
            has_password,
            linked,
        })
    }

    /// Removes one way to sign in, unless it is the account's last:
    /// `CONFLICT`, so nobody locks themselves out. The account's row is
    /// locked while counting, so two unlinks at once cannot both pass.
    pub async fn unlink_identity(
        &self,
        user_id: Uuid,
        session_id: Uuid,
        method: SignInMethod,
    ) -> AppResult<()> {
        self.require_recent_sign_in(session_id).await?;
        let txn = self.db.begin_writing().await?;
        let user = users::lock(&txn, user_id).await?;
        let linked = identity::Entity::find()
            .filter(identity::Column::UserId.eq(user_id))
            .all(&txn)
            .await?;
        let methods = linked.len() + usize::from(user.password_hash.is_some());
        let present = match method {
            SignInMethod::Password => user.password_hash.is_some(),
            other => linked.iter().any(|i| i.provider == other.as_str()),
        };
        if !present {
            return Err(AppError::not_found(format!(
                "the account has no {} sign-in to unlink",
                method.as_str()
            )));
        }
        if methods <= 1 {
            return Err(AppError::conflict(
                "method",
                "this is the account's last way to sign in: link another first",
            ));
        }
        match method {
            SignInMethod::Password => {
                user::Entity::update_many()
                    .col_expr(
                        user::Column::PasswordHash,
                        Expr::value(Option::<String>::None),
                    )
                    .filter(user::Column::Id.eq(user_id))
                    .exec(&txn)
                    .await?;
            }
            other => {
                let removed = identity::Entity::delete_many()
                    .filter(identity::Column::UserId.eq(user_id))
                    .filter(identity::Column::Provider.eq(other.as_str()))
                    .exec_with_returning(&txn)
                    .await?;
                if other == SignInMethod::Phone {
                    // The account's number was the verified one: it goes too.
                    let numbers: Vec<String> = removed.into_iter().map(|i| i.subject).collect();
                    user::Entity::update_many()
                        .col_expr(user::Column::Phone, Expr::value(Option::<String>::None))
                        .filter(user::Column::Id.eq(user_id))
                        .filter(user::Column::Phone.is_in(numbers))
                        .exec(&txn)
                        .await?;
                }
            }
        }
        txn.commit().await?;
        self.profiles.invalidate(&[user_id]).await;
        Ok(())
    }

    /// Links `proof`'s identity to the signed-in user, replacing any of the
    /// same provider they had. One linked to another account is `CONFLICT`.
    /// Checked for a recent sign-in first, so a stale session spends no code.
    pub async fn link_identity(
        &self,
        user_id: Uuid,
        session_id: Uuid,
        proof: ProviderProof<'_>,
    ) -> AppResult<identity::Model> {
        self.require_recent_sign_in(session_id).await?;
        let found = self.prove(proof, Purpose::Link).await?;
        let txn = self.db.begin_writing().await?;
        let existing = identity::Entity::find()
            .filter(identity::Column::Provider.eq(found.method.as_str()))
            .filter(identity::Column::Subject.eq(&found.subject))
            .one(&txn)
            .await?;
        match existing {
            Some(linked) if linked.user_id == user_id => {
                txn.commit().await?;
                return Ok(linked);
            }
            Some(_) => {
                return Err(AppError::conflict(
                    field_of(found.method),
                    "this sign-in belongs to another account",
                ));
            }
            None => {}
        }
        identity::Entity::delete_many()
            .filter(identity::Column::UserId.eq(user_id))
            .filter(identity::Column::Provider.eq(found.method.as_str()))
            .exec(&txn)
            .await?;
        let mut changed = vec![user_id];
        if found.method == SignInMethod::Phone {
            changed.extend(claim_phone(&txn, &found.subject, user_id).await?);
        }
        let linked = insert_identity(&txn, user_id, &found)
            .await
            .map_err(|err| identity_conflict(err, found.method))?;
        txn.commit().await?;
        self.profiles.invalidate(&changed).await;
        Ok(linked)
    }

    /// Signs in whoever `proof` names: the account it is linked to, or a
    /// new one made for it.
    pub async fn sign_in_with(
        &self,
        proof: ProviderProof<'_>,
        client: &ClientInfo,
    ) -> AppResult<IssuedSession> {
        let found = self.prove(proof, Purpose::SignIn).await?;
        self.sign_in_as(found, client).await
    }

    async fn prove(
        &self,
        proof: ProviderProof<'_>,
        purpose: Purpose,
    ) -> AppResult<ProviderIdentity> {
        match proof {
            ProviderProof::Sms { phone, code } => {
                let phone = self.redeem_sms_code(phone, code, purpose).await?;
                Ok(ProviderIdentity::phone(&phone))
            }
            ProviderProof::Telegram { init_data } => {
                self.providers.telegram_identity(init_data, purpose)
            }
            ProviderProof::Facebook { access_token } => {
                self.providers
                    .facebook_identity(access_token, purpose)
                    .await
            }
        }
    }
}

/// What proves an identity: a code sent to the phone, Telegram's signed
/// `initData`, or a Facebook access token.
#[derive(Clone, Copy)]
pub enum ProviderProof<'a> {
    Sms { phone: &'a str, code: &'a str },
    Telegram { init_data: &'a str },
    Facebook { access_token: &'a str },
}

/// The input field a provider's proof arrives in.
fn field_of(method: SignInMethod) -> &'static str {
    match method {
        SignInMethod::Password => "password",
        SignInMethod::Phone => "phone",
        SignInMethod::Telegram => "initData",
        SignInMethod::Facebook => "accessToken",
    }
}

/// A race lost to another link of the same person: `CONFLICT`, as if it had
/// been linked first.
fn identity_conflict(err: sea_orm::DbErr, method: SignInMethod) -> AppError {
    if is_unique_violation(&err) {
        AppError::conflict(field_of(method), "this sign-in belongs to another account")
    } else {
        err.into()
    }
}

/// Whether `err` is the identity's own uniqueness (someone else made or
/// linked it first), as opposed to a taken username.
pub(super) fn is_identity_taken(err: &sea_orm::DbErr) -> bool {
    matches!(
        unique_constraint(err).as_deref(),
        Some(
            "identities_provider_subject_key"
                | "identities.provider, identities.subject"
                | "identities_user_provider_key"
                | "identities.user_id, identities.provider"
        )
    )
}

pub(super) async fn insert_identity(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    found: &ProviderIdentity,
) -> Result<identity::Model, sea_orm::DbErr> {
    let now = Utc::now();
    let said = found.as_stored();
    identity::Entity::insert(identity::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(user_id),
        provider: Set(found.method.as_str().to_owned()),
        subject: Set(found.subject.clone()),
        display_name: Set(said.display_name),
        username: Set(said.username),
        photo_url: Set(said.photo_url),
        created_at: Set(now),
        last_used_at: Set(now),
    })
    .exec_with_returning(db)
    .await
}

/// What a provider said of a person, as an identity row keeps it.
pub(super) struct StoredProfile {
    pub display_name: Option<String>,
    pub username: Option<String>,
    pub photo_url: Option<String>,
}

impl ProviderIdentity {
    /// What the provider said, within the columns' sizes: a Telegram full
    /// name is up to 129 characters and PostgreSQL refuses more than the
    /// column's 128; a photo URL too long to keep is dropped, not cut.
    pub(super) fn as_stored(&self) -> StoredProfile {
        StoredProfile {
            display_name: self.display_name.as_deref().map(|s| clip(s, 128)),
            username: self.username.as_deref().map(|s| clip(s, 64)),
            photo_url: self.photo_url.clone().filter(|u| u.len() <= 512),
        }
    }
}

/// A verified number becomes `user_id`'s: an account that only gave it at
/// registration (never proving it) loses it, so whoever holds the phone
/// cannot be shut out of it by someone who typed it first. Returns the
/// accounts whose number changed.
pub(super) async fn claim_phone(
    db: &impl ConnectionTrait,
    phone: &str,
    user_id: Uuid,
) -> AppResult<Vec<Uuid>> {
    let released = user::Entity::update_many()
        .col_expr(user::Column::Phone, Expr::value(Option::<String>::None))
        .filter(user::Column::Phone.eq(phone))
        .filter(user::Column::Id.ne(user_id))
        .exec_with_returning(db)
        .await?;
    user::Entity::update_many()
        .col_expr(user::Column::Phone, Expr::value(phone))
        .filter(user::Column::Id.eq(user_id))
        .exec(db)
        .await?;
    Ok(released.into_iter().map(|u| u.id).collect())
}

/// At most `max` bytes of `s`, cut at a character boundary.
pub(super) fn clip(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}
