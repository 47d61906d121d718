//! What every change to a group shares: the group's lock, the acting user's
//! role under it, who may see a group, and the errors that say no.

use entity::group;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter, sea_query::Expr,
};
use uuid::Uuid;

use super::{Role, Visibility, invitations::invitation_row, roles::role_of};
use crate::error::{AppError, AppResult, is_unique_violation};

/// A group locked for a change, and the acting user's role in it.
pub(super) struct Locked {
    pub(super) group: group::Model,
    pub(super) actor_role: Option<Role>,
}

impl Locked {
    /// The actor's role if they own or administer the group; `FORBIDDEN` otherwise.
    pub(super) fn require_manager(&self, action: &str) -> AppResult<Role> {
        match self.actor_role {
            Some(role) if role.manages() => Ok(role),
            _ => Err(AppError::forbidden(format!(
                "only the group's owner and admins may {action}"
            ))),
        }
    }
}

/// Locks the group and reads the actor's role; a group the actor may not see is
/// `NOT_FOUND`, like one that does not exist.
pub(super) async fn lock_for(
    txn: &DatabaseTransaction,
    group_id: Uuid,
    actor: Uuid,
) -> AppResult<Locked> {
    let group = lock_group(txn, group_id).await?;
    let actor_role = role_of(txn, group_id, actor).await?;
    if actor_role.is_none()
        && Visibility::from_stored(&group.visibility) == Visibility::Private
        && invitation_row(txn, group_id, actor).await?.is_none()
    {
        return Err(group_not_found());
    }
    Ok(Locked { group, actor_role })
}

/// Serialises changes to one group (see the `groups` module docs): a no-op
/// write on its row, then the row as it now stands.
pub(super) async fn lock_group(
    db: &impl ConnectionTrait,
    group_id: Uuid,
) -> AppResult<group::Model> {
    let locked = group::Entity::update_many()
        .col_expr(
            group::Column::UpdatedAt,
            Expr::col(group::Column::UpdatedAt),
        )
        .filter(group::Column::Id.eq(group_id))
        .exec(db)
        .await?;
    if locked.rows_affected == 0 {
        return Err(group_not_found());
    }
    reread(db, group_id).await
}

/// Under the group's lock: the actor, checked before it, may have been demoted
/// or removed meanwhile; then the thing they acted on is not theirs to see.
pub(super) async fn require_still_manages(
    db: &impl ConnectionTrait,
    group_id: Uuid,
    actor: Uuid,
    not_found: fn() -> AppError,
) -> AppResult<()> {
    if role_of(db, group_id, actor)
        .await?
        .is_some_and(Role::manages)
    {
        Ok(())
    } else {
        Err(not_found())
    }
}

pub(super) async fn reread(db: &impl ConnectionTrait, group_id: Uuid) -> AppResult<group::Model> {
    group::Entity::find_by_id(group_id)
        .one(db)
        .await?
        .ok_or_else(group_not_found)
}

/// A public group is everyone's to see; a private one its members' and invitees'.
pub(super) async fn may_see(
    db: &impl ConnectionTrait,
    group: &group::Model,
    viewer: Option<Uuid>,
) -> AppResult<bool> {
    if Visibility::from_stored(&group.visibility) == Visibility::Public {
        return Ok(true);
    }
    let Some(viewer) = viewer else {
        return Ok(false);
    };
    Ok(role_of(db, group.id, viewer).await?.is_some()
        || invitation_row(db, group.id, viewer).await?.is_some())
}

pub(super) fn conflict_on_unique(
    field: &'static str,
    message: &'static str,
) -> impl FnOnce(sea_orm::DbErr) -> AppError {
    move |err| {
        // The group lock makes this unreachable; the unique key is the last line
        // of defence, and says so clearly if it ever fires.
        if is_unique_violation(&err) {
            AppError::conflict(field, message)
        } else {
            err.into()
        }
    }
}

pub(super) fn group_not_found() -> AppError {
    AppError::not_found("group not found")
}

pub(super) fn not_a_member() -> AppError {
    AppError::not_found("they are not a member of this group")
}

pub(super) fn invitation_not_found() -> AppError {
    AppError::not_found("invitation not found")
}

pub(super) fn join_request_not_found() -> AppError {
    AppError::not_found("join request not found")
}
