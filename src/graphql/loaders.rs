//! DataLoaders: each turns the many lookups of one request into one query per batch.

use std::{collections::HashMap, sync::Arc};

use async_graphql::dataloader::Loader;
use entity::{group, user};
use sea_orm::DbErr;
use uuid::Uuid;

use crate::domain::{
    chat::{Chat, Message, Reaction},
    groups::{Groups, Role},
    social::{Relationship, Social},
    users,
};
use crate::infra::db::Db;

pub struct UserLoader {
    db: Db,
    profiles: users::Profiles,
}

impl UserLoader {
    pub fn new(db: Db, profiles: users::Profiles) -> Self {
        Self { db, profiles }
    }
}

impl Loader<Uuid> for UserLoader {
    type Value = user::Model;
    type Error = Arc<DbErr>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        users::find_many_cached(&self.db, &self.profiles, keys)
            .await
            .map_err(internal)
    }
}

/// A domain error as a loader's (DataLoader errors must be `Clone`).
fn internal(err: crate::error::AppError) -> Arc<DbErr> {
    Arc::new(DbErr::Custom(format!("{err:?}")))
}

/// Groups `(viewer, other)` keys by viewer: one domain call per viewer in the batch.
pub(super) fn by_viewer(keys: &[(Uuid, Uuid)]) -> HashMap<Uuid, Vec<Uuid>> {
    let mut grouped: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    for &(viewer, other) in keys {
        grouped.entry(viewer).or_default().push(other);
    }
    grouped
}

/// How many friends a viewer shares with each user, keyed `(viewer, other)`.
pub struct MutualCountLoader {
    social: Social,
}

impl MutualCountLoader {
    pub fn new(social: Social) -> Self {
        Self { social }
    }
}

impl Loader<(Uuid, Uuid)> for MutualCountLoader {
    type Value = i64;
    type Error = Arc<DbErr>;

    async fn load(&self, keys: &[(Uuid, Uuid)]) -> Result<HashMap<(Uuid, Uuid), i64>, Self::Error> {
        let mut found = HashMap::new();
        for (viewer, others) in by_viewer(keys) {
            let counts = self
                .social
                .mutual_counts(viewer, &others)
                .await
                .map_err(internal)?;
            found.extend(counts.into_iter().map(|(other, n)| ((viewer, other), n)));
        }
        Ok(found)
    }
}

/// How a viewer stands to each user, keyed `(viewer, other)`.
pub struct RelationshipLoader {
    social: Social,
}

impl RelationshipLoader {
    pub fn new(social: Social) -> Self {
        Self { social }
    }
}

impl Loader<(Uuid, Uuid)> for RelationshipLoader {
    type Value = Relationship;
    type Error = Arc<DbErr>;

    async fn load(
        &self,
        keys: &[(Uuid, Uuid)],
    ) -> Result<HashMap<(Uuid, Uuid), Relationship>, Self::Error> {
        let mut found = HashMap::new();
        for (viewer, others) in by_viewer(keys) {
            let relationships = self
                .social
                .relationships(viewer, &others)
                .await
                .map_err(internal)?;
            found.extend(
                relationships
                    .into_iter()
                    .map(|(other, r)| ((viewer, other), r)),
            );
        }
        Ok(found)
    }
}

/// Groups by id, with no visibility check (see `graphql::groups::load_group`).
pub struct GroupLoader {
    groups: Groups,
}

impl GroupLoader {
    pub fn new(groups: Groups) -> Self {
        Self { groups }
    }
}

impl Loader<Uuid> for GroupLoader {
    type Value = group::Model;
    type Error = Arc<DbErr>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        self.groups.find_many(keys).await.map_err(Arc::new)
    }
}

/// A viewer's role in each group, keyed `(viewer, group)`; absent for a non-member.
pub struct GroupRoleLoader {
    groups: Groups,
}

impl GroupRoleLoader {
    pub fn new(groups: Groups) -> Self {
        Self { groups }
    }
}

impl Loader<(Uuid, Uuid)> for GroupRoleLoader {
    type Value = Role;
    type Error = Arc<DbErr>;

    async fn load(
        &self,
        keys: &[(Uuid, Uuid)],
    ) -> Result<HashMap<(Uuid, Uuid), Role>, Self::Error> {
        let mut found = HashMap::new();
        for (viewer, groups) in by_viewer(keys) {
            let roles = self.groups.roles(viewer, &groups).await.map_err(Arc::new)?;
            found.extend(
                roles
                    .into_iter()
                    .map(|(group, role)| ((viewer, group), role)),
            );
        }
        Ok(found)
    }
}

/// The first participants of each conversation, by conversation id.
pub struct ParticipantsLoader {
    chat: Chat,
    shown: usize,
}

impl ParticipantsLoader {
    pub fn new(chat: Chat, shown: usize) -> Self {
        Self { chat, shown }
    }
}

impl Loader<Uuid> for ParticipantsLoader {
    type Value = Vec<Uuid>;
    type Error = Arc<DbErr>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Vec<Uuid>>, Self::Error> {
        self.chat
            .participants(keys, self.shown)
            .await
            .map_err(Arc::new)
    }
}

/// Messages by (conversation, seq): a conversation's latest, for lists.
pub struct LastMessageLoader {
    chat: Chat,
}

impl LastMessageLoader {
    pub fn new(chat: Chat) -> Self {
        Self { chat }
    }
}

impl Loader<(Uuid, i64)> for LastMessageLoader {
    type Value = Message;
    type Error = Arc<DbErr>;

    async fn load(
        &self,
        keys: &[(Uuid, i64)],
    ) -> Result<HashMap<(Uuid, i64), Message>, Self::Error> {
        Ok(self
            .chat
            .last_messages(keys)
            .await
            .map_err(Arc::new)?
            .into_values()
            .map(|m| ((m.conversation_id, m.seq), m))
            .collect())
    }
}

/// A message's reactions as a viewer sees them, keyed `(viewer, message)`.
pub struct ReactionsLoader {
    chat: Chat,
}

impl ReactionsLoader {
    pub fn new(chat: Chat) -> Self {
        Self { chat }
    }
}

impl Loader<(Uuid, Uuid)> for ReactionsLoader {
    type Value = Vec<Reaction>;
    type Error = Arc<DbErr>;

    async fn load(
        &self,
        keys: &[(Uuid, Uuid)],
    ) -> Result<HashMap<(Uuid, Uuid), Vec<Reaction>>, Self::Error> {
        let mut found = HashMap::new();
        for (viewer, messages) in by_viewer(keys) {
            let reactions = self
                .chat
                .reactions(viewer, &messages)
                .await
                .map_err(Arc::new)?;
            found.extend(
                reactions
                    .into_iter()
                    .map(|(message, list)| ((viewer, message), list)),
            );
        }
        Ok(found)
    }
}

/// Who has read up to a message, keyed `(conversation, seq)`.
pub struct ReadersLoader {
    chat: Chat,
}

impl ReadersLoader {
    pub fn new(chat: Chat) -> Self {
        Self { chat }
    }
}

impl Loader<(Uuid, i64)> for ReadersLoader {
    type Value = Vec<Uuid>;
    type Error = Arc<DbErr>;

    async fn load(
        &self,
        keys: &[(Uuid, i64)],
    ) -> Result<HashMap<(Uuid, i64), Vec<Uuid>>, Self::Error> {
        self.chat.readers(keys).await.map_err(Arc::new)
    }
}
