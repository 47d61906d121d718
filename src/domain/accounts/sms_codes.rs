//! One-time sign-in codes sent by SMS: six random digits, stored only as a
//! keyed hash, expiring, with a few attempts, spent by the right guess; a
//! new request replaces the code before it. Nothing here looks at accounts,
//! so a request answers alike for every number.

use chrono::{DateTime, Utc};
use entity::sms_code;
use hmac::{Hmac, Mac};
use rand::Rng;
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, EntityTrait, QueryFilter,
    sea_query::{Expr, ExprTrait, OnConflict},
};
use sha2::Sha256;

use super::{
    Accounts, ClientInfo, Phone,
    providers::{Purpose, SignInProviders},
};
use crate::{
    error::{AppError, AppResult},
    infra::{ratelimit::Action, sms::SmsError},
};

/// What a code request tells the caller: never whether the number has an
/// account.
pub struct SmsCodeSent {
    pub phone: Phone,
    pub expires_at: DateTime<Utc>,
}

const WRONG_CODE: &str = "the code is wrong or has expired; request a new one";

impl Accounts {
    /// Sends a new code to `phone`, replacing any code sent before. Limited
    /// per number and per client address; a provider failure gives both
    /// back, so a retry costs nothing twice.
    pub async fn request_sms_code(
        &self,
        raw_phone: &str,
        client: &ClientInfo,
    ) -> AppResult<SmsCodeSent> {
        let phone = Phone::parse(raw_phone)?;
        let address = client.rate_key();
        self.limiter.check(Action::SmsPerIp, &address).await?;
        if let Err(limited) = self
            .limiter
            .check(Action::SmsPerPhone, phone.as_str())
            .await
        {
            self.limiter.refund(Action::SmsPerIp, &address).await;
            return Err(limited);
        }
        let refund = || async {
            self.limiter.refund(Action::SmsPerIp, &address).await;
            self.limiter
                .refund(Action::SmsPerPhone, phone.as_str())
                .await;
        };
        let providers = &self.providers;
        let code = format!("{:06}", rand::rng().random_range(0..1_000_000u32));
        let now = Utc::now();
        let expires_at = now + providers.sms_code_ttl;
        let hash = code_hash(providers, &phone, &code);
        // Sent before it is stored: a message that fails leaves the code
        // sent before it working, and an unsent code is never stored.
        let minutes = providers.sms_code_ttl.as_secs().div_ceil(60);
        let body =
            format!("Your kith code is {code}. It expires in {minutes} min. Never share it.");
        if let Err(err) = providers.sms.send(phone.as_str(), &body).await {
            refund().await;
            return Err(match err {
                SmsError::Refused => AppError::bad_input("phone", "this number cannot receive SMS"),
                SmsError::Unavailable(why) => {
                    tracing::warn!(why, "sign-in code not sent");
                    SignInProviders::sms_unavailable()
                }
            });
        }
        let stored = sms_code::Entity::insert(sms_code::ActiveModel {
            phone: Set(phone.as_str().to_owned()),
            code_hash: Set(hash),
            attempts_left: Set(i32::try_from(providers.sms_code_attempts).unwrap_or(i32::MAX)),
            expires_at: Set(expires_at),
            created_at: Set(now),
        })
        .on_conflict(
            OnConflict::column(sms_code::Column::Phone)
                .update_columns([
                    sms_code::Column::CodeHash,
                    sms_code::Column::AttemptsLeft,
                    sms_code::Column::ExpiresAt,
                    sms_code::Column::CreatedAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(&self.db)
        .await;
        if let Err(err) = stored {
            // The message went, but its code will not work: the caller asks
            // again, at no cost.
            refund().await;
            return Err(err.into());
        }
        // Codes that ran out hold a number and nothing of use: forgotten
        // here, by the requests that make new ones (an index on the expiry
        // keeps it cheap).
        sms_code::Entity::delete_many()
            .filter(sms_code::Column::ExpiresAt.lt(now))
            .exec(&self.db)
            .await?;
        Ok(SmsCodeSent { phone, expires_at })
    }

    /// Spends the code sent to `phone` when `code` is it. Each guess takes
    /// an attempt first, in one conditional write, so concurrent guesses
    /// cannot share one; the right guess deletes the code, so it works once.
    pub(super) async fn redeem_sms_code(
        &self,
        raw_phone: &str,
        code: &str,
        purpose: Purpose,
    ) -> AppResult<Phone> {
        let phone = Phone::parse(raw_phone)?;
        let code = code.trim();
        if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AppError::bad_input(
                "code",
                "the code is the 6 digits sent by SMS",
            ));
        }
        // A failure is reserved before the guess and given back when it was
        // right, as for passwords, so concurrent guesses cannot slip under.
        self.limiter
            .check(Action::SmsFailuresPerPhone, phone.as_str())
            .await?;
        let checked = self.check_sms_code(&phone, code, purpose).await;
        // Only a wrong guess counts; not a right one, nor the database
        // failing to answer.
        let guessed_wrong = matches!(
            checked,
            Err(AppError::Unauthenticated(_) | AppError::BadUserInput { .. })
        );
        if !guessed_wrong {
            self.limiter
                .refund(Action::SmsFailuresPerPhone, phone.as_str())
                .await;
        }
        checked.map(|()| phone)
    }

    async fn check_sms_code(&self, phone: &Phone, code: &str, purpose: Purpose) -> AppResult<()> {
        let now = Utc::now();
        let taken = sms_code::Entity::update_many()
            .col_expr(
                sms_code::Column::AttemptsLeft,
                Expr::col(sms_code::Column::AttemptsLeft).sub(1),
            )
            .filter(sms_code::Column::Phone.eq(phone.as_str()))
            .filter(sms_code::Column::AttemptsLeft.gt(0))
            .filter(sms_code::Column::ExpiresAt.gt(now))
            .exec_with_returning(&self.db)
            .await?;
        let Some(stored) = taken.into_iter().next() else {
            return Err(purpose.refused("code", WRONG_CODE.into()));
        };
        if !hash_matches(&self.providers, phone, code, &stored.code_hash) {
            return Err(purpose.refused("code", WRONG_CODE.into()));
        }
        // Of two right guesses at once, the one that deletes it wins.
        let spent = sms_code::Entity::delete_many()
            .filter(sms_code::Column::Phone.eq(phone.as_str()))
            .filter(sms_code::Column::CodeHash.eq(&stored.code_hash))
            .exec(&self.db)
            .await?;
        if spent.rows_affected == 0 {
            return Err(purpose.refused("code", WRONG_CODE.into()));
        }
        Ok(())
    }
}

fn code_mac(providers: &SignInProviders, phone: &Phone, code: &str) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(&providers.sms_code_key)
        .expect("HMAC takes a key of any length");
    mac.update(phone.as_str().as_bytes());
    mac.update(b"\0");
    mac.update(code.as_bytes());
    mac
}

/// Keyed by a secret of the server's, so a leaked table of six-digit codes
/// cannot be reversed by trying all million.
fn code_hash(providers: &SignInProviders, phone: &Phone, code: &str) -> String {
    hex::encode(code_mac(providers, phone, code).finalize().into_bytes())
}

fn hash_matches(providers: &SignInProviders, phone: &Phone, code: &str, stored: &str) -> bool {
    hex::decode(stored).is_ok_and(|stored| {
        code_mac(providers, phone, code)
            .verify_slice(&stored)
            .is_ok()
    })
}
