//! The GraphQL schema: one module per domain, merged here, plus the shared pieces
//! (IDs, pagination, loaders, scalars) and the context every resolver reads.

pub mod accounts;
pub mod chat;
pub mod conversation_events;
pub mod delivery;
pub mod discovery;
pub mod documents;
pub mod error_codes;
pub mod field_errors;
pub mod groups;
pub mod guard;
pub mod ids;
pub mod live;
pub mod loaders;
pub mod media;
pub mod node;
pub mod notifications;
pub mod observability;
pub mod pagination;
pub mod presence;
pub mod scalars;
pub mod sign_in;
pub mod social;
pub mod users;
pub mod viewer;

use std::{future::Future, sync::Arc};

use async_graphql::{
    Context, MergedObject, MergedSubscription, Schema,
    dataloader::{DataLoader, Loader},
};

use crate::{
    domain::accounts::ClientInfo,
    error::{AppError, AppResult},
    graphql::viewer::{RequestAuth, Viewer},
    state::AppState,
};

/// What a client reads. Most fields need a signed-in viewer (an access token
/// in the `Authorization: Bearer` header); those that do not say so.
#[derive(MergedObject, Default)]
pub struct Query(
    users::UserQuery,
    accounts::AccountQuery,
    social::SocialQuery,
    groups::GroupQuery,
    chat::ChatQuery,
    discovery::DiscoveryQuery,
    node::NodeQuery,
);

/// What a client changes. Every mutation but `register`, `login`,
/// `refreshSession`, `requestSmsCode` and the `loginWith…` ones needs a signed-in viewer (`UNAUTHENTICATED` without one).
/// A refused mutation answers an error whose `extensions.code` says why
/// (`BAD_USER_INPUT`, `UNAUTHENTICATED`, `FORBIDDEN`, `NOT_FOUND`, `CONFLICT`,
/// `RATE_LIMITED`) and, for bad or clashing input, `extensions.field` names
/// the input field at fault.
#[derive(MergedObject, Default)]
pub struct Mutation(
    accounts::AccountMutation,
    users::UserMutation,
    social::SocialMutation,
    groups::GroupMutation,
    chat::ChatMutation,
    discovery::DiscoveryMutation,
    presence::PresenceMutation,
    media::MediaMutation,
    sign_in::SignInMutation,
);

/// Live feeds over WebSocket (`/graphql/ws` or `/graphql`, with the
/// `graphql-transport-ws` or legacy `graphql-ws` protocol), for a signed-in
/// viewer: the access token goes in `connection_init`'s payload. A feed ends when the viewer's session
/// ends (logout, revocation or expiry).
#[derive(MergedSubscription, Default)]
pub struct Subscription(
    notifications::NotificationSubscription,
    chat::ChatSubscription,
    conversation_events::ConversationEventsSubscription,
    presence::PresenceSubscription,
);

pub type KithSchema = Schema<Query, Mutation, Subscription>;

/// The schema with its limits, and the state and loaders resolvers share.
pub fn build_schema(state: AppState) -> KithSchema {
    let settings = state.settings.clone();
    let delay = std::time::Duration::from_micros(settings.loader_delay_micros);
    described(Schema::build(
        Query::default(),
        Mutation::default(),
        Subscription::default(),
    ))
    .limit_complexity(settings.query_complexity_limit)
    .extension(error_codes::ErrorCodes)
    .extension(observability::Observability)
    // After `Observability`, so an operation is timed and counted with the
    // errors of the fields this answers `null`.
    .extension(field_errors::FieldErrors)
    .data(loader(
        loaders::UserLoader::new(state.db.clone(), state.profiles.clone()),
        delay,
    ))
    .data(loader(
        loaders::MutualCountLoader::new(state.social.clone()),
        delay,
    ))
    .data(loader(
        loaders::RelationshipLoader::new(state.social.clone()),
        delay,
    ))
    .data(loader(
        loaders::GroupLoader::new(state.groups.clone()),
        delay,
    ))
    .data(loader(
        loaders::GroupRoleLoader::new(state.groups.clone()),
        delay,
    ))
    .data(loader(
        loaders::ParticipantsLoader::new(state.chat.clone(), chat::PARTICIPANTS_SHOWN),
        delay,
    ))
    .data(loader(
        loaders::LastMessageLoader::new(state.chat.clone()),
        delay,
    ))
    .data(loader(
        loaders::ReactionsLoader::new(state.chat.clone()),
        delay,
    ))
    .data(loader(
        loaders::ReadersLoader::new(state.chat.clone()),
        delay,
    ))
    .data(loader(
        media::PhotosLoader::new(state.media.clone(), state.social.clone()),
        delay,
    ))
    .data(loader(
        media::AttachmentsLoader::new(state.media.clone()),
        delay,
    ))
    .data(state)
    .finish()
}

fn loader<T: Loader<K>, K: Send + Sync + std::hash::Hash + Eq + Clone + 'static>(
    inner: T,
    delay: std::time::Duration,
) -> DataLoader<T> {
    DataLoader::new(inner, tokio::spawn).delay(delay)
}

/// The schema as the server prints it (`kith schema`, `schema.graphql`).
pub fn sdl() -> String {
    described(Schema::build(
        Query::default(),
        Mutation::default(),
        Subscription::default(),
    ))
    .finish()
    .sdl()
}

/// The schema's types as both the server and `kith schema` have them: `Node`
/// registered (no field returns it by name alone), and descriptions for the
/// types async-graphql generates without one (or with one written for Rust
/// readers): the connections and the `DateTime` scalar.
fn described(
    builder: async_graphql::SchemaBuilder<Query, Mutation, Subscription>,
) -> async_graphql::SchemaBuilder<Query, Mutation, Subscription> {
    builder
        .register_output_type::<node::Node>()
        .override_input_type_description::<chrono::DateTime<chrono::Utc>>(
            "A moment in time: an RFC 3339 string in UTC, like \
             `2026-01-31T18:30:00.123+00:00`. Any offset is accepted as input.",
        )
        .override_output_type_description::<social::UserConnection>(
            "A page of users. Page with `first` (default 20, at most 100) and \
             `after` (a cursor from `pageInfo.endCursor` or an edge).",
        )
        .override_output_type_description::<social::FriendRequestConnection>(
            "A page of friend requests, newest first; page with `first` \
             (default 20, at most 100) and `after`.",
        )
        .override_output_type_description::<groups::GroupConnection>(
            "A page of groups; page with `first` (default 20, at most 100) and `after`.",
        )
        .override_output_type_description::<groups::GroupMemberConnection>(
            "A page of a group's members, each edge with the member's role and \
             when they joined; page with `first` (default 20, at most 100) and `after`.",
        )
        .override_output_type_description::<groups::GroupInvitationConnection>(
            "A page of pending group invitations, newest first; page with \
             `first` (default 20, at most 100) and `after`.",
        )
        .override_output_type_description::<groups::GroupJoinRequestConnection>(
            "A page of pending requests to join a group, oldest first; page \
             with `first` (default 20, at most 100) and `after`.",
        )
        .override_output_type_description::<chat::ConversationConnection>(
            "A page of the viewer's conversations, most recent activity first; \
             page with `first` (default 20, at most 100) and `after`.",
        )
        .override_output_type_description::<chat::MessageConnection>(
            "A page of a conversation's messages, in seq order (oldest first \
             within the page, whichever way it was paged).",
        )
        .override_output_type_description::<discovery::MatchConnection>(
            "A page of the viewer's matches, newest first; page with `first` \
             (default 20, at most 100) and `after`.",
        )
        .override_output_type_description::<discovery::RecommendationConnection>(
            "A page of people to swipe on, best first, each edge saying why \
             (distance, compatibility, interests and friends in common).",
        )
}

/// What resolvers ask of their context.
pub trait ContextExt {
    fn state(&self) -> &AppState;
    fn client(&self) -> ClientInfo;
    /// The viewer, or `None` when anonymous; a bad token is `UNAUTHENTICATED`.
    fn viewer(&self) -> impl Future<Output = AppResult<Option<Viewer>>> + Send;
    /// The viewer, or `UNAUTHENTICATED`.
    fn require_viewer(&self) -> impl Future<Output = AppResult<Viewer>> + Send;
}

impl ContextExt for Context<'_> {
    fn state(&self) -> &AppState {
        self.data_unchecked::<AppState>()
    }

    fn client(&self) -> ClientInfo {
        self.data_opt::<ClientInfo>().cloned().unwrap_or_default()
    }

    async fn viewer(&self) -> AppResult<Option<Viewer>> {
        match self.data_opt::<Arc<RequestAuth>>() {
            Some(auth) => auth.viewer(&self.state().accounts).await,
            None => Ok(None),
        }
    }

    async fn require_viewer(&self) -> AppResult<Viewer> {
        self.viewer()
            .await?
            .ok_or_else(|| AppError::unauthenticated("sign in required"))
    }
}
