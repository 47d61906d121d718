//! Registering: a new account from validated input, with its profile and
//! discovery defaults and its first session; and whether a username is free.

use chrono::{NaiveDate, Utc};
use entity::user;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, TransactionTrait};
use uuid::Uuid;

use super::{Accounts, ClientInfo, IssuedSession};
use crate::{
    domain::{
        accounts::{
            identities::SignInMethod,
            identity::{Email, Password, Phone, Username},
        },
        discovery,
        outbox::DomainEvent,
        users::{self, FriendListVisibility, PresenceVisibility, ProfileText},
    },
    error::{AppError, AppResult, is_unique_violation, unique_constraint},
};

/// Raw register input, validated here.
pub struct Registration {
    pub username: String,
    pub password: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub display_name: Option<String>,
    pub birthdate: Option<NaiveDate>,
}

impl Accounts {
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

        let new_user = new_account(NewAccount {
            username: username.as_str().to_owned(),
            password_hash: Some(password_hash),
            email: email.map(Email::into_inner),
            phone: phone.map(Phone::into_inner),
            display_name,
            birthdate: input.birthdate,
        });
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
        self.outbox
            .append(&txn, registered(&user, SignInMethod::Password))
            .await?;
        let (issued, _) = self
            .open_session(&txn, user, client, SignInMethod::Password)
            .await?;
        txn.commit().await?;
        self.usernames.insert(username.as_str());
        Ok(issued)
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
}

/// The event of a new account: who, and how it first signed in.
pub(super) fn registered(user: &user::Model, method: SignInMethod) -> DomainEvent {
    DomainEvent::new(
        "user.registered",
        Some(user.id),
        serde_json::json!({ "userId": user.id, "username": user.username, "method": method.as_str() }),
    )
}

/// What a new account starts with; the rest takes the defaults.
pub(super) struct NewAccount {
    pub username: String,
    pub password_hash: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub display_name: Option<String>,
    pub birthdate: Option<NaiveDate>,
}

/// A new account's row, with its profile and discovery defaults.
pub(super) fn new_account(account: NewAccount) -> user::ActiveModel {
    let now = Utc::now();
    user::ActiveModel {
        id: Set(Uuid::now_v7()),
        username: Set(account.username),
        email: Set(account.email),
        phone: Set(account.phone),
        password_hash: Set(account.password_hash),
        display_name: Set(account.display_name),
        bio: Set(None),
        birthdate: Set(account.birthdate),
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
        ..discovery::new_account_defaults(account.birthdate, now.date_naive())
    }
}

/// Names the field whose unique constraint refused a new account, by the
/// constraint's name: PostgreSQL's (`users_email_key`, from the column's
/// UNIQUE) or SQLite's column list (`users.email`). Never by searching the
/// error's text, which can carry the values that clashed.
fn taken_field_error(err: &sea_orm::DbErr) -> AppError {
    match unique_constraint(err).as_deref() {
        Some("users_email_key" | "users.email") => {
            AppError::conflict("email", "email is already registered")
        }
        Some("users_phone_key" | "users.phone") => {
            AppError::conflict("phone", "phone is already registered")
        }
        _ => AppError::conflict("username", "username is taken"),
    }
}
