//! Logging in, and the limits on failed password checks that every password
//! check (a login, an account's deletion) goes through.

use entity::user;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::{Accounts, ClientInfo, IssuedSession};
use crate::{
    domain::accounts::{identities::SignInMethod, identity::Identifier},
    error::{AppError, AppResult},
    infra::ratelimit::Action,
};

/// The same answer for an unknown account and a wrong password.
const BAD_CREDENTIALS: &str = "invalid identifier or password";

/// Whose failed logins a limit counts: the account once it is known (the same
/// whether named by username, email or phone), else the identifier as given.
pub(super) enum FailureKey<'a> {
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

impl Accounts {
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
        // No username, email or phone holds a control character, and
        // PostgreSQL refuses a NUL in a query outright: such an identifier is
        // unknown without asking, and goes on like any unknown one.
        let found = if identifier.key().chars().any(char::is_control) {
            None
        } else {
            user::Entity::find()
                .filter(column.eq(identifier.key()))
                .one(&self.db)
                .await?
        };
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
        self.sign_in(user, client, SignInMethod::Password).await
    }

    /// Checks a password against `hash` (a decoy when `None`), within the
    /// limits on failures: per account and client address, so a stranger
    /// guessing from one address cannot lock the owner out of theirs, and a
    /// slower ceiling per account from anywhere, so guessing from many
    /// addresses stays bounded. A failure is reserved before the (slow)
    /// check, so concurrent guesses cannot all slip under the limit, and
    /// given back when the password was right: only failures count.
    pub(super) async fn check_password(
        &self,
        account: &FailureKey<'_>,
        client: &ClientInfo,
        password: &str,
        hash: Option<&str>,
    ) -> AppResult<bool> {
        let account = account.to_string();
        // Keyed as every per-address limit is: an IPv6 client is its /64.
        let address = client.rate_key();
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
}
