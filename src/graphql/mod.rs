//! The GraphQL schema: one module per domain, merged here, plus the shared pieces
//! (IDs, pagination, loaders, scalars) and the context every resolver reads.

pub mod accounts;
pub mod chat;
pub mod conversation_events;
pub mod delivery;
pub mod discovery;
pub mod documents;
pub mod error_codes;
pub mod groups;
pub mod guard;
pub mod ids;
pub mod live;
pub mod loaders;
pub mod node;
pub mod notifications;
pub mod observability;
pub mod pagination;
pub mod presence;
pub mod scalars;
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

#[derive(MergedObject, Default)]
pub struct Mutation(
    accounts::AccountMutation,
    users::UserMutation,
    social::SocialMutation,
    groups::GroupMutation,
    chat::ChatMutation,
    discovery::DiscoveryMutation,
    presence::PresenceMutation,
);

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
    Schema::build(
        Query::default(),
        Mutation::default(),
        Subscription::default(),
    )
    .register_output_type::<node::Node>()
    .limit_complexity(settings.query_complexity_limit)
    .extension(error_codes::ErrorCodes)
    .extension(observability::Observability)
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
    Schema::build(
        Query::default(),
        Mutation::default(),
        Subscription::default(),
    )
    .register_output_type::<node::Node>()
    .finish()
    .sdl()
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
