//! A group's life: created with its owner as the only member, changed by its
//! managers, deleted by its owner; and the reads that find, search and list
//! groups as a viewer may see them.

use std::collections::HashMap;

use chrono::Utc;
use entity::{group, group_member};
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
    sea_query::{Expr, ExprTrait, LikeExpr, Query},
};
use uuid::Uuid;

use super::{
    GroupChanges, Groups, NewGroup, Role, Visibility,
    checks::{lock_for, may_see},
    membership::insert_member,
    outbox_events,
};
use crate::{
    domain::{
        chat,
        events::{Event, group_topic},
    },
    error::{AppError, AppResult},
};

impl Groups {
    /// Creates a group with `owner` as its `OWNER` and only member.
    pub async fn create(&self, owner: Uuid, new: NewGroup) -> AppResult<group::Model> {
        let now = Utc::now();
        let txn = self.db.begin().await?;
        let created = group::Entity::insert(group::ActiveModel {
            id: Set(Uuid::now_v7()),
            name_key: Set(new.name.to_lowercase()),
            name: Set(new.name),
            description: Set(new.description),
            visibility: Set(new.visibility.as_str().to_owned()),
            join_policy: Set(new.join_policy.as_str().to_owned()),
            member_count: Set(1),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .exec_with_returning(&txn)
        .await?;
        insert_member(&txn, created.id, owner, Role::Owner).await?;
        let joined = chat::open_group_conversation(&txn, created.id, owner).await?;
        self.outbox
            .append(&txn, outbox_events::created(owner, &created))
            .await?;
        txn.commit().await?;
        self.announce_joined(owner, Some(joined));
        Ok(created)
    }

    /// Changes a group's settings: its owner and admins only.
    pub async fn update(
        &self,
        actor: Uuid,
        group_id: Uuid,
        changes: GroupChanges,
    ) -> AppResult<group::Model> {
        let txn = self.db.begin().await?;
        let locked = lock_for(&txn, group_id, actor).await?;
        locked.require_manager("change the group")?;
        let changed: Vec<&str> = [
            ("name", changes.name.is_some()),
            ("description", changes.description.is_some()),
            ("visibility", changes.visibility.is_some()),
            ("joinPolicy", changes.join_policy.is_some()),
        ]
        .into_iter()
        .filter_map(|(field, set)| set.then_some(field))
        .collect();
        let mut row = group::ActiveModel {
            id: Set(group_id),
            updated_at: Set(Utc::now()),
            ..Default::default()
        };
        if let Some(name) = changes.name {
            row.name_key = Set(name.to_lowercase());
            row.name = Set(name);
        }
        row.description = changes.description.map_or(NotSet, Set);
        row.visibility = changes
            .visibility
            .map_or(NotSet, |v| Set(v.as_str().to_owned()));
        row.join_policy = changes
            .join_policy
            .map_or(NotSet, |p| Set(p.as_str().to_owned()));
        let updated = group::Entity::update(row).exec(&txn).await?;
        // An update that names no setting changes nothing others need hear of.
        if !changed.is_empty() {
            self.outbox
                .append(&txn, outbox_events::updated(actor, &updated, &changed))
                .await?;
        }
        txn.commit().await?;
        Ok(updated)
    }

    /// Deletes a group with its memberships, invitations and join requests: the
    /// owner only.
    pub async fn delete(&self, actor: Uuid, group_id: Uuid) -> AppResult<()> {
        let txn = self.db.begin().await?;
        let locked = lock_for(&txn, group_id, actor).await?;
        if locked.actor_role != Some(Role::Owner) {
            return Err(AppError::forbidden("only the group's owner may delete it"));
        }
        group::Entity::delete_by_id(group_id).exec(&txn).await?;
        self.outbox
            .append(&txn, outbox_events::deleted(actor, group_id))
            .await?;
        txn.commit().await?;
        self.pubsub
            .publish(&group_topic(group_id), Event::GroupDeleted { group_id });
        Ok(())
    }

    /// The group, if `viewer` (anonymous when `None`) may see it.
    pub async fn find_visible(
        &self,
        viewer: Option<Uuid>,
        group_id: Uuid,
    ) -> AppResult<Option<group::Model>> {
        let Some(group) = group::Entity::find_by_id(group_id).one(&self.db).await? else {
            return Ok(None);
        };
        Ok(may_see(&self.db, &group, viewer).await?.then_some(group))
    }

    /// Groups by id, with no visibility check: for objects the viewer already
    /// holds a right to (their invitations, a group's join requests).
    pub async fn find_many(
        &self,
        ids: &[Uuid],
    ) -> Result<HashMap<Uuid, group::Model>, sea_orm::DbErr> {
        Ok(group::Entity::find()
            .filter(group::Column::Id.is_in(ids.iter().copied()))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|g| (g.id, g))
            .collect())
    }

    /// Groups whose name contains `query`, in name order: public groups, and
    /// private ones the viewer belongs to. `after` is the last (name key, id) seen.
    pub async fn search(
        &self,
        viewer: Option<Uuid>,
        query: &str,
        after: Option<(String, Uuid)>,
        limit: u64,
    ) -> AppResult<Vec<group::Model>> {
        let needle = crate::domain::users::escape_like(&query.trim().to_lowercase());
        let mut visible =
            Condition::any().add(group::Column::Visibility.eq(Visibility::Public.as_str()));
        if let Some(viewer) = viewer {
            visible = visible.add(group::Column::Id.in_subquery(group_ids_of(viewer)));
        }
        let mut select = group::Entity::find()
            .filter(group::Column::NameKey.like(LikeExpr::new(format!("%{needle}%")).escape('\\')))
            .filter(visible);
        if let Some((key, id)) = after {
            select = select.filter(
                Condition::any()
                    .add(group::Column::NameKey.gt(key.clone()))
                    .add(group::Column::NameKey.eq(key).and(group::Column::Id.gt(id))),
            );
        }
        Ok(select
            .order_by_asc(group::Column::NameKey)
            .order_by_asc(group::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?)
    }

    /// The groups `owner` belongs to, in the order they joined, as `viewer` may
    /// see them: all of them to the owner, otherwise the public ones and the
    /// private ones the viewer shares. Returns (membership id, group).
    pub async fn groups_of(
        &self,
        owner: Uuid,
        viewer: Option<Uuid>,
        after: Option<Uuid>,
        limit: u64,
    ) -> AppResult<Vec<(Uuid, group::Model)>> {
        let mut select = group_member::Entity::find()
            .filter(group_member::Column::UserId.eq(owner))
            .find_also_related(group::Entity);
        if viewer != Some(owner) {
            let mut visible = Condition::any().add(
                Expr::col((group::Entity, group::Column::Visibility))
                    .eq(Visibility::Public.as_str()),
            );
            if let Some(viewer) = viewer {
                visible = visible.add(
                    Expr::col((group::Entity, group::Column::Id)).in_subquery(group_ids_of(viewer)),
                );
            }
            select = select.filter(visible);
        }
        if let Some(after) = after {
            select = select.filter(group_member::Column::Id.gt(after));
        }
        Ok(select
            .order_by_asc(group_member::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .filter_map(|(member, group)| group.map(|g| (member.id, g)))
            .collect())
    }
}

/// `SELECT group_id FROM group_members WHERE user_id = user`.
fn group_ids_of(user: Uuid) -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .column(group_member::Column::GroupId)
        .from(group_member::Entity)
        .and_where(group_member::Column::UserId.eq(user))
        .to_owned()
}
