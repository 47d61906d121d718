//! Accounts and sessions in GraphQL: register, login, refresh, logout, sessions.

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use entity::session;

use crate::{
    domain::accounts::{IssuedSession, Registration, identity::Identifier},
    graphql::{
        ContextExt,
        ids::{self, NodeKind},
        scalars::Date,
        users::User,
    },
    infra::ratelimit::Action,
};

/// What signing in hands the client: a short-lived access token for the
/// `Authorization` header, and a refresh token to get the next one.
#[derive(SimpleObject)]
pub struct AuthPayload {
    pub access_token: String,
    pub refresh_token: String,
    pub access_token_expires_at: DateTime<Utc>,
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

#[Object]
impl Session {
    pub async fn id(&self) -> ID {
        ids::encode(NodeKind::Session, self.model.id)
    }

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

    async fn user_agent(&self) -> Option<&str> {
        self.model.user_agent.as_deref()
    }

    async fn ip(&self) -> Option<&str> {
        self.model.ip.as_deref()
    }

    async fn current(&self) -> bool {
        self.current
    }
}

#[derive(InputObject)]
pub struct RegisterInput {
    /// 3 to 32 of `a-z 0-9 _ .`; case is folded (`Alice` registers `alice`).
    pub username: String,
    /// 8 to 128 characters.
    pub password: String,
    pub email: Option<String>,
    /// E.164, like `+14155550123`.
    pub phone: Option<String>,
    pub display_name: Option<String>,
    pub birthdate: Option<Date>,
}

#[derive(InputObject)]
pub struct LoginInput {
    /// A username, an email address or an E.164 phone number.
    pub identifier: String,
    pub password: String,
}

#[derive(InputObject)]
pub struct RefreshSessionInput {
    pub refresh_token: String,
}

#[derive(InputObject)]
pub struct DeleteAccountInput {
    pub password: String,
}

#[derive(Default)]
pub struct AccountQuery;

#[Object]
impl AccountQuery {
    /// True when nobody has the username (it may still be refused if invalid).
    async fn username_available(
        &self,
        ctx: &Context<'_>,
        username: String,
    ) -> async_graphql::Result<bool> {
        let state = ctx.state();
        // Per call, so each alias of a request counts: one request must not
        // probe a list of names.
        state
            .limiter
            .check(Action::UsernameCheckPerIp, &client_key(&ctx.client()))
            .await?;
        Ok(state.accounts.username_available(&username).await?)
    }
}

#[derive(Default)]
pub struct AccountMutation;

#[Object]
impl AccountMutation {
    /// Creates an account and signs it in.
    async fn register(
        &self,
        ctx: &Context<'_>,
        input: RegisterInput,
    ) -> async_graphql::Result<AuthPayload> {
        let state = ctx.state();
        let client = ctx.client();
        state
            .limiter
            .check(Action::RegisterPerIp, &client_key(&client))
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

    /// Signs in with a username, email or phone and a password.
    async fn login(
        &self,
        ctx: &Context<'_>,
        input: LoginInput,
    ) -> async_graphql::Result<AuthPayload> {
        let state = ctx.state();
        let client = ctx.client();
        let identifier = Identifier::parse(&input.identifier);
        // Attempts per address here; failures per account in the domain,
        // once the account is known.
        state
            .limiter
            .check(Action::LoginPerIp, &client_key(&client))
            .await?;
        Ok(state
            .accounts
            .login(&identifier, &input.password, &client)
            .await?
            .into())
    }

    /// Exchanges a refresh token for new tokens. Each refresh token works once;
    /// using one twice revokes its session.
    async fn refresh_session(
        &self,
        ctx: &Context<'_>,
        input: RefreshSessionInput,
    ) -> async_graphql::Result<AuthPayload> {
        let state = ctx.state();
        let client = ctx.client();
        state
            .limiter
            .check(Action::RefreshPerIp, &client_key(&client))
            .await?;
        Ok(state
            .accounts
            .refresh(&input.refresh_token, &client)
            .await?
            .into())
    }

    /// Ends the current session; its access token stops working at once.
    async fn logout(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        let viewer = ctx.require_viewer().await?;
        ctx.state()
            .accounts
            .revoke_session(viewer.user_id, viewer.session_id)
            .await?;
        Ok(true)
    }

    /// Ends every session of the viewer, this one included.
    async fn logout_all_sessions(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        let viewer = ctx.require_viewer().await?;
        ctx.state()
            .accounts
            .revoke_all_sessions(viewer.user_id)
            .await?;
        Ok(true)
    }

    /// Ends one of the viewer's sessions, such as a lost phone's.
    async fn revoke_session(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<bool> {
        let viewer = ctx.require_viewer().await?;
        let session_id = ids::expect(&id, NodeKind::Session)?;
        ctx.state()
            .accounts
            .revoke_session(viewer.user_id, session_id)
            .await?;
        Ok(true)
    }

    /// Deletes the viewer's account and everything it owns, once the password matches.
    async fn delete_account(
        &self,
        ctx: &Context<'_>,
        input: DeleteAccountInput,
    ) -> async_graphql::Result<bool> {
        let viewer = ctx.require_viewer().await?;
        ctx.state()
            .accounts
            .delete_account(viewer.user_id, &input.password, &ctx.client())
            .await?;
        Ok(true)
    }
}

/// The rate-limit key of a client: its address, or one shared bucket when the
/// transport could not tell (never the case behind axum's `ConnectInfo`).
fn client_key(client: &crate::domain::accounts::ClientInfo) -> String {
    client
        .ip
        .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
}
