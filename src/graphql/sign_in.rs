//! Signing in without a password, in GraphQL: by a code sent by SMS, by
//! Telegram WebApp, by Facebook; and the ways an account signs in
//! (`User.identities`), linked and unlinked by their owner.

use async_graphql::{Context, Enum, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use entity::identity;

use crate::{
    domain::accounts::{ProviderProof, SignInMethod, SignInMethods},
    graphql::{ContextExt, accounts::AuthPayload},
    infra::ratelimit::Action,
};

/// A way to sign in to an account.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(name = "SignInMethod")]
pub enum SignInMethodValue {
    /// A username, email or phone with the account's password (`login`).
    Password,
    /// A code sent by SMS to a verified number (`loginWithSms`).
    Phone,
    /// Telegram WebApp (`loginWithTelegram`).
    Telegram,
    /// Facebook Login (`loginWithFacebook`).
    Facebook,
}

impl From<SignInMethod> for SignInMethodValue {
    fn from(method: SignInMethod) -> Self {
        match method {
            SignInMethod::Password => Self::Password,
            SignInMethod::Phone => Self::Phone,
            SignInMethod::Telegram => Self::Telegram,
            SignInMethod::Facebook => Self::Facebook,
        }
    }
}

impl From<SignInMethodValue> for SignInMethod {
    fn from(method: SignInMethodValue) -> Self {
        match method {
            SignInMethodValue::Password => Self::Password,
            SignInMethodValue::Phone => Self::Phone,
            SignInMethodValue::Telegram => Self::Telegram,
            SignInMethodValue::Facebook => Self::Facebook,
        }
    }
}

/// One way the viewer signs in: their password, or an identity a provider
/// vouches for. Only its owner sees it.
#[derive(SimpleObject)]
pub struct Identity {
    /// Which way.
    pub method: SignInMethodValue,
    /// The provider's id of the person: the E.164 number for `PHONE`, the
    /// Telegram or Facebook user id; null for `PASSWORD`.
    pub subject: Option<String>,
    /// The name the provider gave when last used; null for `PASSWORD` and
    /// `PHONE`.
    pub display_name: Option<String>,
    /// The Telegram username, when there is one.
    pub username: Option<String>,
    /// The Telegram profile photo's URL, when Telegram sent one.
    pub photo_url: Option<String>,
    /// When it was linked; null for `PASSWORD`.
    pub linked_at: Option<DateTime<Utc>>,
}

impl From<identity::Model> for Identity {
    fn from(model: identity::Model) -> Self {
        Self {
            method: SignInMethod::from_stored(&model.provider).into(),
            subject: Some(model.subject),
            display_name: model.display_name,
            username: model.username,
            photo_url: model.photo_url,
            linked_at: Some(model.created_at),
        }
    }
}

/// Every way an account signs in, the password first.
pub fn identities(methods: SignInMethods) -> Vec<Identity> {
    let password = methods.has_password.then_some(Identity {
        method: SignInMethodValue::Password,
        subject: None,
        display_name: None,
        username: None,
        photo_url: None,
        linked_at: None,
    });
    password
        .into_iter()
        .chain(methods.linked.into_iter().map(Identity::from))
        .collect()
}

/// Where a sign-in code goes.
#[derive(InputObject)]
pub struct RequestSmsCodeInput {
    /// An E.164 number, like `+14155550123` (spaces, dashes and brackets
    /// are ignored); anything else is `BAD_USER_INPUT` (field `phone`).
    pub phone: String,
}

/// A code was sent. The answer is the same whether or not the number has
/// an account.
#[derive(SimpleObject)]
pub struct SmsCodeSent {
    /// The number, as normalised: what `loginWithSms` and `linkPhone` take.
    pub phone: String,
    /// When the code stops working (5 minutes after sending, by default).
    pub expires_at: DateTime<Utc>,
}

/// A number and the code sent to it.
#[derive(InputObject)]
pub struct SmsCodeInput {
    /// The number the code was sent to.
    pub phone: String,
    /// The 6 digits of the latest code sent to it.
    pub code: String,
}

/// What a Telegram WebApp was started with.
#[derive(InputObject)]
pub struct TelegramInput {
    /// `Telegram.WebApp.initData`, exactly as received: the query string
    /// Telegram signed for this server's bot.
    pub init_data: String,
}

/// What Facebook Login gave the app.
#[derive(InputObject)]
pub struct FacebookInput {
    /// The user access token from Facebook Login for this server's app.
    pub access_token: String,
}

#[derive(Default)]
pub struct SignInMutation;

#[Object]
impl SignInMutation {
    /// Sends a 6-digit sign-in code by SMS to the number, replacing any code
    /// sent to it before. Needs no sign-in. Never says whether the number
    /// has an account. Limited per number and per address (`RATE_LIMITED`);
    /// a number the SMS provider will not send to is `BAD_USER_INPUT`
    /// (field `phone`), a provider that is down `UNAVAILABLE` (neither
    /// counts against the limits).
    async fn request_sms_code(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The number to send the code to.")] input: RequestSmsCodeInput,
    ) -> async_graphql::Result<SmsCodeSent> {
        let sent = ctx
            .state()
            .accounts
            .request_sms_code(&input.phone, &ctx.client())
            .await?;
        Ok(SmsCodeSent {
            phone: sent.phone.into_inner(),
            expires_at: sent.expires_at,
        })
    }

    /// Signs in with the code sent to a number, opening a session: the
    /// account whose verified number it is, or a new account (with a
    /// generated username) on its first sign-in. Needs no sign-in. A wrong,
    /// expired or spent code is `UNAUTHENTICATED`; after 5 wrong guesses the
    /// code is spent.
    async fn login_with_sms(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The number and its code.")] input: SmsCodeInput,
    ) -> async_graphql::Result<AuthPayload> {
        let proof = ProviderProof::Sms {
            phone: &input.phone,
            code: &input.code,
        };
        sign_in(ctx, proof).await
    }

    /// Signs in from a Telegram WebApp, opening a session: the account the
    /// Telegram user is linked to, or a new one (named after their Telegram
    /// username or name). Needs no sign-in. `initData` that Telegram did not
    /// sign for this bot, or older than a day (the default), is
    /// `UNAUTHENTICATED`; `FORBIDDEN` when the server has no bot token.
    async fn login_with_telegram(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The WebApp's initData.")] input: TelegramInput,
    ) -> async_graphql::Result<AuthPayload> {
        sign_in(
            ctx,
            ProviderProof::Telegram {
                init_data: &input.init_data,
            },
        )
        .await
    }

    /// Signs in with a Facebook access token, opening a session: the
    /// account the Facebook user is linked to, or a new one (named after
    /// them). Needs no sign-in. A token that is invalid, expired or for
    /// another app is `UNAUTHENTICATED`; a Graph API that fails or does not
    /// answer is `UNAVAILABLE`; `FORBIDDEN` when the server has no Facebook
    /// app.
    async fn login_with_facebook(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The Facebook Login access token.")] input: FacebookInput,
    ) -> async_graphql::Result<AuthPayload> {
        sign_in(
            ctx,
            ProviderProof::Facebook {
                access_token: &input.access_token,
            },
        )
        .await
    }

    /// Links a verified number to the viewer's account (replacing the one
    /// linked before), so they can sign in with SMS codes; it becomes their
    /// `phone`. A wrong code is `BAD_USER_INPUT` (field `code`); a number
    /// linked to another account is `CONFLICT`. Like every link and unlink,
    /// it needs a session that signed in within the last 15 minutes (the
    /// default): `FORBIDDEN` otherwise, so a stolen old session cannot add
    /// a way in.
    async fn link_phone(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The number and the code sent to it.")] input: SmsCodeInput,
    ) -> async_graphql::Result<Identity> {
        let proof = ProviderProof::Sms {
            phone: &input.phone,
            code: &input.code,
        };
        link(ctx, proof).await
    }

    /// Links a Telegram user to the viewer's account (replacing the one
    /// linked before). Bad `initData` is `BAD_USER_INPUT` (field
    /// `initData`); a Telegram user linked to another account is `CONFLICT`.
    /// Needs a recent sign-in (see `linkPhone`).
    async fn link_telegram(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The WebApp's initData.")] input: TelegramInput,
    ) -> async_graphql::Result<Identity> {
        link(
            ctx,
            ProviderProof::Telegram {
                init_data: &input.init_data,
            },
        )
        .await
    }

    /// Links a Facebook user to the viewer's account (replacing the one
    /// linked before). A bad token is `BAD_USER_INPUT` (field
    /// `accessToken`); a Facebook user linked to another account is
    /// `CONFLICT`. Needs a recent sign-in (see `linkPhone`).
    async fn link_facebook(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The Facebook Login access token.")] input: FacebookInput,
    ) -> async_graphql::Result<Identity> {
        link(
            ctx,
            ProviderProof::Facebook {
                access_token: &input.access_token,
            },
        )
        .await
    }

    /// Removes a way to sign in from the viewer's account (for `PASSWORD`,
    /// the password), and answers the ways left. The last one cannot go
    /// (`CONFLICT`, field `method`); one the account does not have is
    /// `NOT_FOUND`. Sessions already open stay open. Needs a recent sign-in
    /// (see `linkPhone`).
    async fn unlink_identity(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The way to remove.")] method: SignInMethodValue,
    ) -> async_graphql::Result<Vec<Identity>> {
        let viewer = ctx.require_viewer().await?;
        let accounts = &ctx.state().accounts;
        accounts
            .unlink_identity(viewer.user_id, viewer.session_id, method.into())
            .await?;
        Ok(identities(accounts.sign_in_methods(viewer.user_id).await?))
    }
}

async fn sign_in(
    ctx: &Context<'_>,
    proof: ProviderProof<'_>,
) -> async_graphql::Result<AuthPayload> {
    let state = ctx.state();
    let client = ctx.client();
    // Attempts per address, as for `login`; a code's own attempts and the
    // providers' signatures bound the rest.
    state
        .limiter
        .check(Action::LoginPerIp, &client.rate_key())
        .await?;
    Ok(state.accounts.sign_in_with(proof, &client).await?.into())
}

async fn link(ctx: &Context<'_>, proof: ProviderProof<'_>) -> async_graphql::Result<Identity> {
    let viewer = ctx.require_viewer().await?;
    // A link proves a code or a token as a sign-in does: the same limit.
    ctx.state()
        .limiter
        .check(Action::LoginPerIp, &ctx.client().rate_key())
        .await?;
    Ok(ctx
        .state()
        .accounts
        .link_identity(viewer.user_id, viewer.session_id, proof)
        .await?
        .into())
}
