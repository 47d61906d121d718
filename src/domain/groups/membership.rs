//! Who is in a group: members lists, leaving, adding and removing members, and
//! admitting a new member, where the member cap and the blocks hold. Also what
//! deleting an account does to its groups.

use chrono::{DateTime, Utc};
use entity::{group, group_invitation, group_join_request, group_member};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
    sea_query::{Expr, ExprTrait},
};
use uuid::Uuid;

use super::{
    Groups, Role,
    checks::{conflict_on_unique, lock_for, lock_group, not_a_member, reread},
    outbox_events::{self, Via},
    roles::{member_row, owner_of, role_of, set_member_role},
};
use crate::{
    domain::{
        chat,
        events::{Event, conversation_topic, group_topic, user_topic},
        social::{self, OwnBlock},
    },
    error::{AppError, AppResult},
};

/// A member as a members list shows them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// The membership's own id: the list's cursor (join order).
    pub id: Uuid,
    pub user_id: Uuid,
    pub role: Role,
    pub joined_at: DateTime<Utc>,
}

impl From<group_member::Model> for Member {
    fn from(row: group_member::Model) -> Self {
        Self {
            id: row.id,
            user_id: row.user_id,
            role: Role::from_stored(&row.role),
            joined_at: row.joined_at,
        }
    }
}

impl Groups {
    /// A page of a group's members in join order, optionally of one role,
    /// leaving out anyone who blocked `viewer`. Callers check the viewer may see
    /// the group.
    pub async fn members(
        &self,
        group_id: Uuid,
        viewer: Option<Uuid>,
        role: Option<Role>,
        after: Option<Uuid>,
        limit: u64,
    ) -> AppResult<Vec<Member>> {
        let mut select =
            group_member::Entity::find().filter(group_member::Column::GroupId.eq(group_id));
        if let Some(role) = role {
            select = select.filter(group_member::Column::Role.eq(role.as_str()));
        }
        if let Some(viewer) = viewer {
            select = select.filter(social::not_hidden_from(
                viewer,
                (group_member::Entity, group_member::Column::UserId),
            ));
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
            .map(Member::from)
            .collect())
    }

    /// Leaves a group. The owner must hand ownership over first.
    pub async fn leave(&self, actor: Uuid, group_id: Uuid) -> AppResult<group::Model> {
        let txn = self.db.begin().await?;
        let locked = lock_for(&txn, group_id, actor).await?;
        match locked.actor_role {
            None => return Err(AppError::forbidden("you are not a member of this group")),
            Some(Role::Owner) => {
                return Err(AppError::forbidden(
                    "the owner cannot leave; transfer ownership first (or delete the group)",
                ));
            }
            Some(_) => {}
        }
        let conversation = remove_member(&txn, group_id, actor).await?;
        self.outbox
            .append(&txn, outbox_events::member_left(group_id, actor))
            .await?;
        let group = reread(&txn, group_id).await?;
        txn.commit().await?;
        self.announce_removed(group_id, actor, conversation);
        Ok(group)
    }

    /// Adds someone straight in: an owner or admin adding one of their friends.
    /// Anyone else is invited instead. Adding a member again changes nothing.
    pub async fn add_member(
        &self,
        actor: Uuid,
        group_id: Uuid,
        user_id: Uuid,
    ) -> AppResult<group::Model> {
        let txn = self.db.begin().await?;
        social::lock_user(&txn, user_id).await?;
        let locked = lock_for(&txn, group_id, actor).await?;
        locked.require_manager("add members")?;
        social::check_reachable(&txn, actor, user_id, OwnBlock::Refuse).await?;
        if role_of(&txn, group_id, user_id).await?.is_none() {
            if !social::are_friends(&txn, actor, user_id).await? {
                return Err(AppError::forbidden(
                    "you can add your friends only; invite anyone else",
                ));
            }
            let joined = self
                .admit(&txn, &locked.group, user_id, actor, Via::Added)
                .await?;
            let group = reread(&txn, group_id).await?;
            txn.commit().await?;
            self.announce_joined(user_id, joined);
            return Ok(group);
        }
        let group = reread(&txn, group_id).await?;
        txn.commit().await?;
        Ok(group)
    }

    /// Removes a member. The owner removes anyone else; an admin removes members
    /// only.
    pub async fn remove_member(
        &self,
        actor: Uuid,
        group_id: Uuid,
        user_id: Uuid,
    ) -> AppResult<group::Model> {
        if actor == user_id {
            return Err(AppError::bad_input(
                "userId",
                "use leaveGroup to leave a group",
            ));
        }
        let txn = self.db.begin().await?;
        let locked = lock_for(&txn, group_id, actor).await?;
        let actor_role = locked.require_manager("remove members")?;
        let target = role_of(&txn, group_id, user_id)
            .await?
            .ok_or_else(not_a_member)?;
        if target >= actor_role {
            return Err(AppError::forbidden(
                "admins may remove members only; the owner may remove admins",
            ));
        }
        let conversation = remove_member(&txn, group_id, user_id).await?;
        self.outbox
            .append(
                &txn,
                outbox_events::member_removed(actor, group_id, user_id),
            )
            .await?;
        let group = reread(&txn, group_id).await?;
        txn.commit().await?;
        self.announce_removed(group_id, user_id, conversation);
        Ok(group)
    }

    /// Adds `user_id` as a `MEMBER` under the group's lock (taken after the
    /// user's own, see [`social::lock_user`]): refused when the group is full or
    /// when the user and the owner block one another; their pending invitation
    /// and join request are answered by it. `actor` let them in (or is them),
    /// `via` says how.
    pub(super) async fn admit(
        &self,
        txn: &DatabaseTransaction,
        group: &group::Model,
        user_id: Uuid,
        actor: Uuid,
        via: Via,
    ) -> AppResult<Option<chat::Joined>> {
        self.check_may_join(txn, group.id, user_id).await?;
        // `group` was read under the lock, so its count is current.
        if group.member_count >= self.member_cap {
            return Err(AppError::conflict(
                "groupId",
                format!("this group is full ({} members)", self.member_cap),
            ));
        }
        insert_member(txn, group.id, user_id, Role::Member).await?;
        adjust_member_count(txn, group.id, 1).await?;
        let joined = chat::join_group_conversation(txn, group.id, user_id).await?;
        group_invitation::Entity::delete_many()
            .filter(group_invitation::Column::GroupId.eq(group.id))
            .filter(group_invitation::Column::InviteeId.eq(user_id))
            .exec(txn)
            .await?;
        group_join_request::Entity::delete_many()
            .filter(group_join_request::Column::GroupId.eq(group.id))
            .filter(group_join_request::Column::UserId.eq(user_id))
            .exec(txn)
            .await?;
        self.outbox
            .append(
                txn,
                outbox_events::member_joined(actor, group.id, user_id, via),
            )
            .await?;
        Ok(joined)
    }

    /// Nobody joins the group of an owner they block or who blocks them.
    pub(super) async fn check_may_join(
        &self,
        txn: &DatabaseTransaction,
        group_id: Uuid,
        user_id: Uuid,
    ) -> AppResult<()> {
        let owner = owner_of(txn, group_id).await?;
        if social::any_block_between(txn, owner, user_id).await? {
            return Err(AppError::forbidden("you cannot join this group"));
        }
        Ok(())
    }

    /// The new member's live message feeds start following the conversation.
    pub(super) fn announce_joined(&self, user_id: Uuid, joined: Option<chat::Joined>) {
        if let Some(joined) = joined {
            self.pubsub
                .publish(&user_topic(user_id), joined.event(user_id));
        }
    }

    /// Whatever the member received live from the group must stop. Told on the
    /// conversation's topic too, where it queues behind the messages before it.
    fn announce_removed(&self, group_id: Uuid, user_id: Uuid, conversation: Option<Uuid>) {
        let event = Event::GroupMembershipEnded { group_id, user_id };
        if let Some(conversation) = conversation {
            self.pubsub
                .publish(&conversation_topic(conversation), event.clone());
        }
        self.pubsub.publish(&group_topic(group_id), event.clone());
        self.pubsub.publish(&user_topic(user_id), event);
    }
}

pub(super) async fn insert_member(
    db: &impl ConnectionTrait,
    group_id: Uuid,
    user_id: Uuid,
    role: Role,
) -> AppResult<()> {
    group_member::Entity::insert(group_member::ActiveModel {
        id: Set(Uuid::now_v7()),
        group_id: Set(group_id),
        user_id: Set(user_id),
        role: Set(role.as_str().to_owned()),
        joined_at: Set(Utc::now()),
    })
    .exec_without_returning(db)
    .await
    .map_err(conflict_on_unique("userId", "already a member"))?;
    Ok(())
}

/// Removes a membership and its place in the group's conversation; returns
/// the conversation it left, to announce after commit.
async fn remove_member(
    db: &impl ConnectionTrait,
    group_id: Uuid,
    user_id: Uuid,
) -> AppResult<Option<Uuid>> {
    let deleted = group_member::Entity::delete_many()
        .filter(group_member::Column::GroupId.eq(group_id))
        .filter(group_member::Column::UserId.eq(user_id))
        .exec(db)
        .await?;
    if deleted.rows_affected == 0 {
        return Ok(None);
    }
    adjust_member_count(db, group_id, -1).await?;
    chat::leave_group_conversation(db, group_id, user_id).await
}

async fn adjust_member_count(
    db: &impl ConnectionTrait,
    group_id: Uuid,
    delta: i64,
) -> AppResult<()> {
    group::Entity::update_many()
        .col_expr(
            group::Column::MemberCount,
            Expr::col(group::Column::MemberCount).add(delta),
        )
        .filter(group::Column::Id.eq(group_id))
        .exec(db)
        .await?;
    Ok(())
}

/// Before an account is deleted (its member rows go with it by cascade): each of
/// its groups loses a member, and a group it owns passes to its longest-standing
/// admin, else its longest-standing member, else is deleted. Call in the deleting
/// transaction after the user's own lock ([`social::forget_user`] takes it), so
/// no join of theirs commits in between; groups are locked in id order, so two
/// deletions cannot deadlock.
pub async fn forget_user(db: &impl ConnectionTrait, user_id: Uuid) -> AppResult<()> {
    let memberships = group_member::Entity::find()
        .filter(group_member::Column::UserId.eq(user_id))
        .order_by_asc(group_member::Column::GroupId)
        .all(db)
        .await?;
    for membership in memberships {
        let group_id = membership.group_id;
        lock_group(db, group_id).await?;
        // Re-read under the lock: a transfer may have changed the role meanwhile.
        let Some(membership) = member_row(db, group_id, user_id).await? else {
            continue;
        };
        remove_member(db, group_id, user_id).await?;
        if Role::from_stored(&membership.role) != Role::Owner {
            continue;
        }
        let heir = group_member::Entity::find()
            .filter(group_member::Column::GroupId.eq(group_id))
            .order_by_desc(Expr::col(group_member::Column::Role).eq(Role::Admin.as_str()))
            .order_by_asc(group_member::Column::Id)
            .one(db)
            .await?;
        match heir {
            Some(heir) => {
                set_member_role(db, heir, Role::Owner).await?;
            }
            None => {
                group::Entity::delete_by_id(group_id).exec(db).await?;
            }
        }
    }
    Ok(())
}
