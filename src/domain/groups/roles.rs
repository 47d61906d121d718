//! Roles in a group: owner, admin, member; what a user's role is, promoting and
//! demoting, and handing ownership over.

use std::collections::HashMap;

use entity::{group, group_member};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect,
    TransactionTrait,
};
use uuid::Uuid;

use super::{
    Groups, Member,
    checks::{lock_for, not_a_member, reread},
    outbox_events,
};
use crate::error::{AppError, AppResult};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Member,
    Admin,
    Owner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "OWNER",
            Self::Admin => "ADMIN",
            Self::Member => "MEMBER",
        }
    }

    pub fn from_stored(value: &str) -> Self {
        match value {
            "OWNER" => Self::Owner,
            "ADMIN" => Self::Admin,
            _ => Self::Member,
        }
    }

    /// Owners and admins run the group.
    pub fn manages(self) -> bool {
        self >= Self::Admin
    }
}

impl Groups {
    /// The viewer's role in each of `groups` where they have one: one query.
    pub async fn roles(
        &self,
        viewer: Uuid,
        groups: &[Uuid],
    ) -> Result<HashMap<Uuid, Role>, sea_orm::DbErr> {
        Ok(group_member::Entity::find()
            .filter(group_member::Column::UserId.eq(viewer))
            .filter(group_member::Column::GroupId.is_in(groups.iter().copied()))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|m| (m.group_id, Role::from_stored(&m.role)))
            .collect())
    }

    /// Makes a member an admin or an admin a member. The owner may do both; an
    /// admin may only promote a member. Setting the role someone has changes
    /// nothing.
    pub async fn set_role(
        &self,
        actor: Uuid,
        group_id: Uuid,
        user_id: Uuid,
        role: Role,
    ) -> AppResult<Member> {
        if role == Role::Owner {
            return Err(AppError::bad_input(
                "role",
                "use transferGroupOwnership to make someone the owner",
            ));
        }
        let txn = self.db.begin().await?;
        let locked = lock_for(&txn, group_id, actor).await?;
        let actor_role = locked.require_manager("change roles")?;
        let member = member_row(&txn, group_id, user_id)
            .await?
            .ok_or_else(not_a_member)?;
        let current = Role::from_stored(&member.role);
        if current == Role::Owner {
            return Err(AppError::forbidden(
                "the owner's role changes only by transferring ownership",
            ));
        }
        if current != role && actor_role != Role::Owner && current >= Role::Admin {
            return Err(AppError::forbidden("only the owner may demote an admin"));
        }
        let member = if current == role {
            member
        } else {
            self.outbox
                .append(
                    &txn,
                    outbox_events::role_changed(actor, group_id, user_id, current, role),
                )
                .await?;
            set_member_role(&txn, member, role).await?
        };
        txn.commit().await?;
        Ok(member.into())
    }

    /// Hands the group to another member, who becomes `OWNER`; the old owner
    /// stays on as an admin.
    pub async fn transfer_ownership(
        &self,
        actor: Uuid,
        group_id: Uuid,
        user_id: Uuid,
    ) -> AppResult<group::Model> {
        let txn = self.db.begin().await?;
        let locked = lock_for(&txn, group_id, actor).await?;
        if locked.actor_role != Some(Role::Owner) {
            return Err(AppError::forbidden(
                "only the group's owner may transfer ownership",
            ));
        }
        if actor == user_id {
            return Err(AppError::bad_input("userId", "you already own this group"));
        }
        let heir = member_row(&txn, group_id, user_id)
            .await?
            .ok_or_else(not_a_member)?;
        let owner = member_row(&txn, group_id, actor)
            .await?
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("owner without a member row")))?;
        // Demote first: the one-owner index never sees two.
        let heir_was = Role::from_stored(&heir.role);
        set_member_role(&txn, owner, Role::Admin).await?;
        set_member_role(&txn, heir, Role::Owner).await?;
        for (user, from, to) in [
            (actor, Role::Owner, Role::Admin),
            (user_id, heir_was, Role::Owner),
        ] {
            self.outbox
                .append(
                    &txn,
                    outbox_events::role_changed(actor, group_id, user, from, to),
                )
                .await?;
        }
        let group = reread(&txn, group_id).await?;
        txn.commit().await?;
        Ok(group)
    }

    /// Whether the user runs the group (its owner or an admin): what chat asks
    /// before someone deletes another's message in the group's conversation.
    pub async fn moderates(&self, group_id: Uuid, user_id: Uuid) -> AppResult<bool> {
        Ok(role_of(&self.db, group_id, user_id)
            .await?
            .is_some_and(Role::manages))
    }
}

/// The user's role in the group, read on `db` (a transaction, say).
pub async fn role_of(
    db: &impl ConnectionTrait,
    group_id: Uuid,
    user_id: Uuid,
) -> AppResult<Option<Role>> {
    Ok(member_row(db, group_id, user_id)
        .await?
        .map(|m| Role::from_stored(&m.role)))
}

pub(super) async fn member_row(
    db: &impl ConnectionTrait,
    group_id: Uuid,
    user_id: Uuid,
) -> AppResult<Option<group_member::Model>> {
    Ok(group_member::Entity::find()
        .filter(group_member::Column::GroupId.eq(group_id))
        .filter(group_member::Column::UserId.eq(user_id))
        .one(db)
        .await?)
}

pub(super) async fn owner_of(db: &impl ConnectionTrait, group_id: Uuid) -> AppResult<Uuid> {
    group_member::Entity::find()
        .filter(group_member::Column::GroupId.eq(group_id))
        .filter(group_member::Column::Role.eq(Role::Owner.as_str()))
        .one(db)
        .await?
        .map(|m| m.user_id)
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("group {group_id} has no owner")))
}

/// The owner and admins, who hear about join requests.
pub(super) async fn managers_of(db: &impl ConnectionTrait, group_id: Uuid) -> AppResult<Vec<Uuid>> {
    Ok(group_member::Entity::find()
        .select_only()
        .column(group_member::Column::UserId)
        .filter(group_member::Column::GroupId.eq(group_id))
        .filter(group_member::Column::Role.is_in([Role::Owner.as_str(), Role::Admin.as_str()]))
        .into_tuple()
        .all(db)
        .await?)
}

pub(super) async fn set_member_role(
    db: &impl ConnectionTrait,
    member: group_member::Model,
    role: Role,
) -> AppResult<group_member::Model> {
    Ok(group_member::Entity::update(group_member::ActiveModel {
        id: Set(member.id),
        role: Set(role.as_str().to_owned()),
        ..Default::default()
    })
    .exec(db)
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_rank_owner_over_admin_over_member() {
        assert!(Role::Owner > Role::Admin && Role::Admin > Role::Member);
        assert!(Role::Admin.manages() && !Role::Member.manages());
        for role in [Role::Owner, Role::Admin, Role::Member] {
            assert_eq!(Role::from_stored(role.as_str()), role);
        }
    }
}
