//! Accounts and sessions in GraphQL: register, login, refresh, logout, sessions.

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use entity::session;

use crate::{
    domain::accounts::{IssuedSession, Registration, SignInMethod, identity::Identifier},
    graphql::{
        ContextExt,
        ids::{self, NodeKind},
        scalars::Date,
        sign_in::SignInMethodValue,
        users::User,
    },
    infra::ratelimit::Action,
};

/// What signing in hands the client: a short-lived access token for the
/// `Authorization` header, and a refresh token to get the next one.
#[derive(SimpleObject)]
pub struct AuthPayload {
    /// Send it as `Authorization: Bearer <accessToken>` (or in a WebSocket's
    /// `connection_init` payload). It works until `accessTokenExpiresAt`, or
    /// until its session ends.
    pub access_token: String,
    /// Keep it secret and pass it to `refreshSession` for the next pair of
    /// tokens. It works once; its session ends after 30 days unused (the
    /// default).
    pub refresh_token: String,
    /// When the access token stops working (15 minutes after it was issued,
    /// by default): refresh before then.
    pub access_token_expires_at: DateTime<Utc>,
    /// The signed-in user, their owner-only fields included.
    pub user: User,
}

impl From<IssuedSession> for AuthPayload {
    fn from(issued: IssuedSession) -> Self {
        Self {
            access_token: issued.access_token,
            refresh_token: issued.refresh_token,
            access_token_expires_at: issued.access_token_expires_at,
            user: User::for_owner(issued.user),
        }
    }
}

/// A signed-in device of the viewer's.
pub struct Session {
    pub model: session::Model,
    /// True for the session the request itself uses.
    pub current: bool,
}

/// One signed-in device or app of the viewer's: what `User.sessions` lists
/// and `revokeSession` ends.
#[Object]
impl Session {
    /// The session's global ID (for `node` and `revokeSession`).
    pub async fn id(&self) -> ID {
        ids::encode(NodeKind::Session, self.model.id)
    }

    /// When it signed in.
    async fn created_at(&self) -> DateTime<Utc> {
        self.model.created_at
    }

    /// When the session last signed in or refreshed its token.
    async fn last_used_at(&self) -> DateTime<Utc> {
        self.model.last_used_at
    }

    /// When it ends unless refreshed before.
    async fn expires_at(&self) -> DateTime<Utc> {
        self.model.expires_at
    }

    /// The `User-Agent` header the app sent when the session last signed in
    /// or refreshed; null if it sent none.
    async fn user_agent(&self) -> Option<&str> {
        self.model.user_agent.as_deref()
    }

    /// The IP address the session last signed in or refreshed from; null
    /// when unknown.
    async fn ip(&self) -> Option<&str> {
        self.model.ip.as_deref()
    }

    /// True for the session the request itself is made with.
    async fn current(&self) -> bool {
        self.current
    }

    /// How it signed in. A refreshed session keeps the way it began.
    async fn method(&self) -> SignInMethodValue {
        SignInMethod::from_stored(&self.model.method).into()
    }
}

/// A new account: a username and password, and optionally the rest.
#[derive(InputObject)]
pub struct RegisterInput {
    /// 3 to 32 of `a-z 0-9 _ .`; case is folded (`Alice` registers `alice`).
    /// Taken is `CONFLICT` with `extensions.field` `username`.
    pub username: String,
    /// 8 to 128 characters.
    pub password: String,
    /// An address to sign in with; stored lower-case. Optional; one already
    /// registered is `CONFLICT` (field `email`).
    pub email: Option<String>,
    /// A number to sign in with, in E.164 form, like `+14155550123`.
    /// Optional; one already registered is `CONFLICT` (field `phone`).
    pub phone: Option<String>,
    /// The name shown to others, at most 64 characters (trimmed; empty
    /// means none).
    pub display_name: Option<String>,
    /// Must make the user 13 to 120 years old; discovery needs 18 or over.
    /// Only its owner sees it; others see `User.age`.
    pub birthdate: Option<Date>,
}

/// The credentials of an existing account.
#[derive(InputObject)]
pub struct LoginInput {
    /// A username, an email address or an E.164 phone number.
    pub identifier: String,
    /// The account's password. A wrong one (or an unknown identifier) is
    /// `UNAUTHENTICATED`, without saying which.
    pub password: String,
}

/// The refresh token to exchange.
#[derive(InputObject)]
pub struct RefreshSessionInput {
    /// The latest `refreshToken` an `AuthPayload` gave this session.
    pub refresh_token: String,
}

/// Confirms an account's deletion.
#[derive(InputObject)]
pub struct DeleteAccountInput {
    /// The account's current password; a wrong or missing one is
    /// `BAD_USER_INPUT` (field `password`). An account without a password
    /// (made by an SMS code, Telegram or Facebook) leaves it out, and needs
    /// a session that signed in within the last 15 minutes (the default;
    /// `FORBIDDEN` otherwise).
    pub password: Option<String>,
}

#[derive(Default)]
pub struct AccountQuery;

#[Object]
impl AccountQuery {
    /// True when nobody has the username. Needs no sign-in. An invalid name
    /// (see `RegisterInput.username`) is `BAD_USER_INPUT`; checks per address
    /// are rate limited (`RATE_LIMITED`).
    async fn username_available(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The name to check; case does not matter.")] username: String,
    ) -> async_graphql::Result<bool> {
        let state = ctx.state();
        // Per call, so each alias of a request counts: one request must not
        // probe a list of names.
        state
            .limiter
            .check(Action::UsernameCheckPerIp, &ctx.client().rate_key())
            .await?;
        Ok(state.accounts.username_available(&username).await?)
    }
}

#[derive(Default)]
pub struct AccountMutation;

#[Object]
impl AccountMutation {
    /// Creates an account and signs it in. Needs no sign-in. Invalid input is
    /// `BAD_USER_INPUT` and a username, email or phone already taken is
    /// `CONFLICT`, each with `extensions.field`; sign-ups per address are
    /// rate limited (`RATE_LIMITED`).
    async fn register(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The new account's username, password and optional profile.")]
        input: RegisterInput,
    ) -> async_graphql::Result<AuthPayload> {
        let state = ctx.state();
        let client = ctx.client();
        state
            .limiter
            .check(Action::RegisterPerIp, &client.rate_key())
            .await?;
        let registration = Registration {
            username: input.username,
            password: input.password,
            email: input.email,
            phone: input.phone,
            display_name: input.display_name,
            birthdate: input.birthdate.map(|d| d.0),
        };
        Ok(state.accounts.register(registration, &client).await?.into())
    }

    /// Signs in with a username, email or phone and a password, opening a new
    /// session. Needs no sign-in. Wrong credentials are `UNAUTHENTICATED`;
    /// attempts per address and failures per account are rate limited
    /// (`RATE_LIMITED`).
    async fn login(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The identifier and password to sign in with.")] input: LoginInput,
    ) -> async_graphql::Result<AuthPayload> {
        let state = ctx.state();
        let client = ctx.client();
        let identifier = Identifier::parse(&input.identifier);
        // Attempts per address here; failures per account in the domain,
        // once the account is known.
        state
            .limiter
            .check(Action::LoginPerIp, &client.rate_key())
            .await?;
        Ok(state
            .accounts
            .login(&identifier, &input.password, &client)
            .await?
            .into())
    }

    /// Exchanges a refresh token for new tokens. Needs no access token. Each
    /// refresh token works once; using one twice revokes its session. An
    /// unknown, spent or expired one is `UNAUTHENTICATED`: sign in again.
    async fn refresh_session(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The refresh token to exchange.")] input: RefreshSessionInput,
    ) -> async_graphql::Result<AuthPayload> {
        let state = ctx.state();
        let client = ctx.client();
        state
            .limiter
            .check(Action::RefreshPerIp, &client.rate_key())
            .await?;
        Ok(state
            .accounts
            .refresh(&input.refresh_token, &client)
            .await?
            .into())
    }

    /// Ends the current session; its access token stops working at once.
    /// Always true.
    async fn logout(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        let viewer = ctx.require_viewer().await?;
        ctx.state()
            .accounts
            .revoke_session(viewer.user_id, viewer.session_id)
            .await?;
        Ok(true)
    }

    /// Ends every session of the viewer, this one included. Always true.
    async fn logout_all_sessions(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        let viewer = ctx.require_viewer().await?;
        ctx.state()
            .accounts
            .revoke_all_sessions(viewer.user_id)
            .await?;
        Ok(true)
    }

    /// Ends one of the viewer's sessions, such as a lost phone's. Always
    /// true; a session that is not the viewer's is `NOT_FOUND`.
    async fn revoke_session(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The `Session.id` to end.")] id: ID,
    ) -> async_graphql::Result<bool> {
        let viewer = ctx.require_viewer().await?;
        let session_id = ids::expect(&id, NodeKind::Session)?;
        ctx.state()
            .accounts
            .revoke_session(viewer.user_id, session_id)
            .await?;
        Ok(true)
    }

    /// Deletes the viewer's account and everything it owns, once the password
    /// matches (`BAD_USER_INPUT` on `password` otherwise); every session ends.
    /// Always true.
    async fn delete_account(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The account's password, to confirm.")] input: DeleteAccountInput,
    ) -> async_graphql::Result<bool> {
        let viewer = ctx.require_viewer().await?;
        ctx.state()
            .accounts
            .delete_account(
                viewer.user_id,
                viewer.session_id,
                input.password.as_deref(),
                &ctx.client(),
            )
            .await?;
        // Its photos and attachments were released with it.
        ctx.state().media.sweep_soon();
        Ok(true)
    }
}
