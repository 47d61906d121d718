//! Groups: membership, roles, invitations and join requests. Owns the `groups`,
//! `group_members`, `group_invitations` and `group_join_requests` tables, and
//! answers the one question the chat domain asks of a group: the role a user has
//! in it ([`role_of`]).
//!
//! Rules:
//! - Every group has exactly one `OWNER`. The owner cannot leave without first
//!   transferring ownership; deleting the owner's account hands the group to its
//!   longest-standing admin, else its longest-standing member, else deletes it.
//! - Owners and admins manage the group (update, add, invite, answer join
//!   requests). An admin may remove or promote members, never touch the owner or
//!   another admin. Only the owner deletes the group, demotes admins and hands
//!   ownership over.
//! - A private group is invisible to everyone but its members and the users
//!   invited to it: to them it is as absent as a group that does not exist.
//! - Blocks: two users who block each other (either way) cannot invite or add
//!   each other, and nobody joins the group of someone they block or who blocks
//!   them.
//! - A member cap (configurable) holds under concurrent joins.
//!
//! Every change runs in a transaction that starts by locking the group's row
//! ([`lock_group`]), so changes to one group are serialised and each sees what the
//! previous one committed; that is what makes the cap and the single owner hold.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::{group, group_invitation, group_join_request, group_member};
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
    sea_query::{Expr, ExprTrait, LikeExpr, Query},
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::infra::db::Db;
use crate::{
    domain::events::{Event, Events, conversation_topic, group_topic, user_topic},
    domain::{
        chat,
        social::{self, OwnBlock},
    },
    error::{AppError, AppResult, is_unique_violation},
};

const MAX_NAME_CHARS: usize = 64;
const MAX_DESCRIPTION_CHARS: usize = 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Visibility {
    Public,
    /// Seen and found by its members and invitees only.
    Private,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "PUBLIC",
            Self::Private => "PRIVATE",
        }
    }

    pub fn from_stored(value: &str) -> Self {
        match value {
            "PUBLIC" => Self::Public,
            _ => Self::Private,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JoinPolicy {
    /// Anyone who can see the group joins at once.
    Open,
    /// Joining is a request an owner or admin approves.
    Approval,
    /// Only by invitation.
    InviteOnly,
}

impl JoinPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "OPEN",
            Self::Approval => "APPROVAL",
            Self::InviteOnly => "INVITE_ONLY",
        }
    }

    pub fn from_stored(value: &str) -> Self {
        match value {
            "OPEN" => Self::Open,
            "APPROVAL" => Self::Approval,
            _ => Self::InviteOnly,
        }
    }
}

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

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum InvitationStatus {
    Pending,
    Accepted,
    Declined,
    Revoked,
}

/// An invitation as the client sees it, also after it was answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invitation {
    pub id: Uuid,
    pub group_id: Uuid,
    pub inviter: Uuid,
    pub invitee: Uuid,
    pub created_at: DateTime<Utc>,
    pub status: InvitationStatus,
}

impl Invitation {
    fn from_row(row: group_invitation::Model, status: InvitationStatus) -> Self {
        Self {
            id: row.id,
            group_id: row.group_id,
            inviter: row.inviter_id,
            invitee: row.invitee_id,
            created_at: row.created_at,
            status,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum JoinRequestStatus {
    Pending,
    Approved,
    Rejected,
    Cancelled,
}

/// A join request as the client sees it, also after it was answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinRequest {
    pub id: Uuid,
    pub group_id: Uuid,
    pub user_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub status: JoinRequestStatus,
}

impl JoinRequest {
    fn from_row(row: group_join_request::Model, status: JoinRequestStatus) -> Self {
        Self {
            id: row.id,
            group_id: row.group_id,
            user_id: row.user_id,
            created_at: row.created_at,
            status,
        }
    }
}

/// What asking to join did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JoinOutcome {
    /// The viewer is a member now (an open group, or they held an invitation),
    /// or already was.
    Joined,
    /// The request waits for an owner or admin.
    Requested(JoinRequest),
}

/// A new group's settings, already parsed.
pub struct NewGroup {
    pub name: String,
    pub description: Option<String>,
    pub visibility: Visibility,
    pub join_policy: JoinPolicy,
}

/// A change to a group's settings: `None` leaves a field as it is.
#[derive(Default)]
pub struct GroupChanges {
    pub name: Option<String>,
    /// `Some(None)` clears the description.
    pub description: Option<Option<String>>,
    pub visibility: Option<Visibility>,
    pub join_policy: Option<JoinPolicy>,
}

/// A group's name: trimmed, 1 to 64 characters, no control characters.
pub fn parse_name(raw: &str) -> AppResult<String> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(AppError::bad_input(
            "name",
            format!("name must be 1 to {MAX_NAME_CHARS} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(AppError::bad_input(
            "name",
            "name contains control characters",
        ));
    }
    Ok(name.to_owned())
}

/// A description: trimmed, at most 1000 characters; empty means none.
pub fn parse_description(raw: &str) -> AppResult<Option<String>> {
    let text = raw.trim();
    if text.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(AppError::bad_input(
            "description",
            format!("description must be at most {MAX_DESCRIPTION_CHARS} characters"),
        ));
    }
    if text.chars().any(|c| c.is_control() && c != '\n') {
        return Err(AppError::bad_input(
            "description",
            "description contains control characters",
        ));
    }
    Ok((!text.is_empty()).then(|| text.to_owned()))
}

#[derive(Clone)]
pub struct Groups {
    db: Db,
    pubsub: Events,
    member_cap: i64,
}

impl Groups {
    pub fn new(db: Db, pubsub: Events, member_cap: u32) -> Self {
        Self {
            db,
            pubsub,
            member_cap: i64::from(member_cap),
        }
    }

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
            let joined = self.admit(&txn, &locked.group, user_id).await?;
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
        let group = reread(&txn, group_id).await?;
        txn.commit().await?;
        self.announce_removed(group_id, user_id, conversation);
        Ok(group)
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
        set_member_role(&txn, owner, Role::Admin).await?;
        set_member_role(&txn, heir, Role::Owner).await?;
        let group = reread(&txn, group_id).await?;
        txn.commit().await?;
        Ok(group)
    }

    /// Invites a user: owners and admins only. Inviting again returns the same
    /// invitation; inviting someone who asked to join lets them in.
    pub async fn invite(
        &self,
        actor: Uuid,
        group_id: Uuid,
        user_id: Uuid,
    ) -> AppResult<Invitation> {
        if actor == user_id {
            return Err(AppError::bad_input("userId", "you cannot invite yourself"));
        }
        let txn = self.db.begin().await?;
        // The invitee may be let in at once (below): their lock comes first.
        social::lock_user(&txn, user_id).await?;
        let locked = lock_for(&txn, group_id, actor).await?;
        locked.require_manager("invite")?;
        social::check_reachable(&txn, actor, user_id, OwnBlock::Refuse).await?;
        if role_of(&txn, group_id, user_id).await?.is_some() {
            return Err(AppError::conflict("userId", "they are already a member"));
        }
        if let Some(existing) = group_invitation::Entity::find()
            .filter(group_invitation::Column::GroupId.eq(group_id))
            .filter(group_invitation::Column::InviteeId.eq(user_id))
            .one(&txn)
            .await?
        {
            return Ok(Invitation::from_row(existing, InvitationStatus::Pending));
        }
        let row = group_invitation::Model {
            id: Uuid::now_v7(),
            group_id,
            inviter_id: actor,
            invitee_id: user_id,
            created_at: Utc::now(),
        };
        if let Some(request) = join_request_row(&txn, group_id, user_id).await? {
            // They asked first: the invitation is the yes.
            let joined = self.admit(&txn, &locked.group, user_id).await?;
            txn.commit().await?;
            self.announce_joined(user_id, joined);
            self.announce_approved(JoinRequest::from_row(request, JoinRequestStatus::Approved));
            return Ok(Invitation::from_row(row, InvitationStatus::Accepted));
        }
        group_invitation::Entity::insert(row.clone().into_active_model())
            .exec_without_returning(&txn)
            .await
            .map_err(conflict_on_unique(
                "userId",
                "an invitation is already pending",
            ))?;
        txn.commit().await?;
        let invitation = Invitation::from_row(row, InvitationStatus::Pending);
        self.pubsub.publish(
            &user_topic(user_id),
            Event::GroupInvitationReceived {
                invitation: invitation.clone(),
            },
        );
        Ok(invitation)
    }

    /// The invitee joins.
    pub async fn accept_invitation(&self, actor: Uuid, id: Uuid) -> AppResult<Invitation> {
        let invitation = self.invitation_to(actor, id).await?;
        let txn = self.db.begin().await?;
        social::lock_user(&txn, actor).await?;
        let group = lock_group(&txn, invitation.group_id).await?;
        // Re-read under the lock: a revoke may have won the race.
        let invitation = group_invitation::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or_else(invitation_not_found)?;
        if social::any_block_between(&txn, invitation.inviter_id, actor).await? {
            return Err(AppError::forbidden(
                "this invitation no longer holds: you and its sender blocked one another",
            ));
        }
        let joined = self.admit(&txn, &group, actor).await?;
        txn.commit().await?;
        self.announce_joined(actor, joined);
        Ok(Invitation::from_row(invitation, InvitationStatus::Accepted))
    }

    /// The invitee says no.
    pub async fn decline_invitation(&self, actor: Uuid, id: Uuid) -> AppResult<Invitation> {
        let invitation = self.invitation_to(actor, id).await?;
        self.remove_invitation(invitation, InvitationStatus::Declined, None)
            .await
    }

    /// An owner or admin withdraws an invitation.
    pub async fn revoke_invitation(&self, actor: Uuid, id: Uuid) -> AppResult<Invitation> {
        let invitation = group_invitation::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or_else(invitation_not_found)?;
        let manages = role_of(&self.db, invitation.group_id, actor)
            .await?
            .is_some_and(Role::manages);
        if !manages {
            // The invitee sees their invitation, but may only decline it.
            return Err(if invitation.invitee_id == actor {
                AppError::forbidden("decline the invitation instead")
            } else {
                invitation_not_found()
            });
        }
        self.remove_invitation(invitation, InvitationStatus::Revoked, Some(actor))
            .await
    }

    /// Asks to join: an open group lets the viewer in, an approval group records
    /// a request, an invite-only group refuses. Holding an invitation lets the
    /// viewer in whatever the policy. Asking again returns the same request.
    pub async fn request_to_join(&self, actor: Uuid, group_id: Uuid) -> AppResult<JoinOutcome> {
        let txn = self.db.begin().await?;
        social::lock_user(&txn, actor).await?;
        let locked = lock_for(&txn, group_id, actor).await?;
        if locked.actor_role.is_some() {
            return Ok(JoinOutcome::Joined);
        }
        self.check_may_join(&txn, group_id, actor).await?;
        let invited = match invitation_row(&txn, group_id, actor).await? {
            Some(invitation) => {
                !social::any_block_between(&txn, invitation.inviter_id, actor).await?
            }
            None => false,
        };
        let policy = JoinPolicy::from_stored(&locked.group.join_policy);
        if invited || policy == JoinPolicy::Open {
            let joined = self.admit(&txn, &locked.group, actor).await?;
            txn.commit().await?;
            self.announce_joined(actor, joined);
            return Ok(JoinOutcome::Joined);
        }
        if policy == JoinPolicy::InviteOnly {
            return Err(AppError::forbidden("this group is invitation only"));
        }
        if let Some(existing) = join_request_row(&txn, group_id, actor).await? {
            return Ok(JoinOutcome::Requested(JoinRequest::from_row(
                existing,
                JoinRequestStatus::Pending,
            )));
        }
        let row = group_join_request::Model {
            id: Uuid::now_v7(),
            group_id,
            user_id: actor,
            created_at: Utc::now(),
        };
        group_join_request::Entity::insert(row.clone().into_active_model())
            .exec_without_returning(&txn)
            .await
            .map_err(conflict_on_unique(
                "groupId",
                "a join request is already pending",
            ))?;
        let managers = managers_of(&txn, group_id).await?;
        txn.commit().await?;
        let request = JoinRequest::from_row(row, JoinRequestStatus::Pending);
        for manager in managers {
            self.pubsub.publish(
                &user_topic(manager),
                Event::GroupJoinRequestReceived {
                    request: request.clone(),
                },
            );
        }
        Ok(JoinOutcome::Requested(request))
    }

    /// An owner or admin lets the requester in.
    pub async fn approve_join_request(&self, actor: Uuid, id: Uuid) -> AppResult<JoinRequest> {
        let request = self.request_managed_by(actor, id).await?;
        let txn = self.db.begin().await?;
        social::lock_user(&txn, request.user_id).await?;
        let group = lock_group(&txn, request.group_id).await?;
        let request = group_join_request::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or_else(join_request_not_found)?;
        require_still_manages(&txn, group.id, actor, join_request_not_found).await?;
        let joined = self.admit(&txn, &group, request.user_id).await?;
        txn.commit().await?;
        self.announce_joined(request.user_id, joined);
        let approved = JoinRequest::from_row(request, JoinRequestStatus::Approved);
        self.announce_approved(approved.clone());
        Ok(approved)
    }

    /// An owner or admin says no.
    pub async fn reject_join_request(&self, actor: Uuid, id: Uuid) -> AppResult<JoinRequest> {
        let request = self.request_managed_by(actor, id).await?;
        self.remove_join_request(request, JoinRequestStatus::Rejected, Some(actor))
            .await
    }

    /// The requester withdraws.
    pub async fn cancel_join_request(&self, actor: Uuid, id: Uuid) -> AppResult<JoinRequest> {
        let request = group_join_request::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .filter(|r| r.user_id == actor)
            .ok_or_else(join_request_not_found)?;
        self.remove_join_request(request, JoinRequestStatus::Cancelled, None)
            .await
    }

    /// The viewer's pending invitations, newest first.
    pub async fn invitations_to(
        &self,
        viewer: Uuid,
        before: Option<Uuid>,
        limit: u64,
    ) -> AppResult<Vec<Invitation>> {
        let mut select = group_invitation::Entity::find()
            .filter(group_invitation::Column::InviteeId.eq(viewer))
            .filter(social::not_hidden_from(
                viewer,
                (
                    group_invitation::Entity,
                    group_invitation::Column::InviterId,
                ),
            ));
        if let Some(before) = before {
            select = select.filter(group_invitation::Column::Id.lt(before));
        }
        Ok(select
            .order_by_desc(group_invitation::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|row| Invitation::from_row(row, InvitationStatus::Pending))
            .collect())
    }

    /// A group's pending invitations, newest first; callers check the viewer
    /// manages the group.
    pub async fn invitations_of(
        &self,
        group_id: Uuid,
        before: Option<Uuid>,
        limit: u64,
    ) -> AppResult<Vec<Invitation>> {
        let mut select =
            group_invitation::Entity::find().filter(group_invitation::Column::GroupId.eq(group_id));
        if let Some(before) = before {
            select = select.filter(group_invitation::Column::Id.lt(before));
        }
        Ok(select
            .order_by_desc(group_invitation::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|row| Invitation::from_row(row, InvitationStatus::Pending))
            .collect())
    }

    /// A group's pending join requests, oldest first (the queue an admin works
    /// through); callers check the viewer manages the group.
    pub async fn join_requests_of(
        &self,
        group_id: Uuid,
        after: Option<Uuid>,
        limit: u64,
    ) -> AppResult<Vec<JoinRequest>> {
        let mut select = group_join_request::Entity::find()
            .filter(group_join_request::Column::GroupId.eq(group_id));
        if let Some(after) = after {
            select = select.filter(group_join_request::Column::Id.gt(after));
        }
        Ok(select
            .order_by_asc(group_join_request::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|row| JoinRequest::from_row(row, JoinRequestStatus::Pending))
            .collect())
    }

    /// A pending invitation the viewer received or may manage.
    pub async fn invitation_for(&self, viewer: Uuid, id: Uuid) -> AppResult<Option<Invitation>> {
        let Some(row) = group_invitation::Entity::find_by_id(id)
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let allowed = row.invitee_id == viewer
            || role_of(&self.db, row.group_id, viewer)
                .await?
                .is_some_and(Role::manages);
        Ok(allowed.then(|| Invitation::from_row(row, InvitationStatus::Pending)))
    }

    /// A pending join request the viewer made or may answer.
    pub async fn join_request_for(&self, viewer: Uuid, id: Uuid) -> AppResult<Option<JoinRequest>> {
        let Some(row) = group_join_request::Entity::find_by_id(id)
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let allowed = row.user_id == viewer
            || role_of(&self.db, row.group_id, viewer)
                .await?
                .is_some_and(Role::manages);
        Ok(allowed.then(|| JoinRequest::from_row(row, JoinRequestStatus::Pending)))
    }

    /// Adds `user_id` as a `MEMBER` under the group's lock (taken after the
    /// user's own, see [`social::lock_user`]): refused when the group is full or
    /// when the user and the owner block one another; their pending invitation
    /// and join request are answered by it.
    async fn admit(
        &self,
        txn: &DatabaseTransaction,
        group: &group::Model,
        user_id: Uuid,
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
        Ok(joined)
    }

    /// Nobody joins the group of an owner they block or who blocks them.
    async fn check_may_join(
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

    async fn invitation_to(&self, viewer: Uuid, id: Uuid) -> AppResult<group_invitation::Model> {
        group_invitation::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .filter(|i| i.invitee_id == viewer)
            .ok_or_else(invitation_not_found)
    }

    /// A join request of a group the viewer manages; `NOT_FOUND` otherwise, so
    /// nobody else learns it exists. Its own requester is told to cancel instead.
    async fn request_managed_by(
        &self,
        viewer: Uuid,
        id: Uuid,
    ) -> AppResult<group_join_request::Model> {
        let request = group_join_request::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or_else(join_request_not_found)?;
        let manages = role_of(&self.db, request.group_id, viewer)
            .await?
            .is_some_and(Role::manages);
        if !manages {
            return Err(if request.user_id == viewer {
                AppError::forbidden("only the group's owner and admins answer join requests")
            } else {
                join_request_not_found()
            });
        }
        Ok(request)
    }

    /// Declines or revokes under the group's lock, so it and an accept cannot
    /// both win. A revoking `manager` must still manage the group under the lock.
    async fn remove_invitation(
        &self,
        invitation: group_invitation::Model,
        status: InvitationStatus,
        manager: Option<Uuid>,
    ) -> AppResult<Invitation> {
        let txn = self.db.begin().await?;
        lock_group(&txn, invitation.group_id).await?;
        if let Some(manager) = manager {
            require_still_manages(&txn, invitation.group_id, manager, invitation_not_found).await?;
        }
        let deleted = group_invitation::Entity::delete_by_id(invitation.id)
            .exec(&txn)
            .await?;
        if deleted.rows_affected == 0 {
            return Err(invitation_not_found());
        }
        txn.commit().await?;
        Ok(Invitation::from_row(invitation, status))
    }

    async fn remove_join_request(
        &self,
        request: group_join_request::Model,
        status: JoinRequestStatus,
        manager: Option<Uuid>,
    ) -> AppResult<JoinRequest> {
        let txn = self.db.begin().await?;
        lock_group(&txn, request.group_id).await?;
        if let Some(manager) = manager {
            require_still_manages(&txn, request.group_id, manager, join_request_not_found).await?;
        }
        let deleted = group_join_request::Entity::delete_by_id(request.id)
            .exec(&txn)
            .await?;
        if deleted.rows_affected == 0 {
            return Err(join_request_not_found());
        }
        txn.commit().await?;
        Ok(JoinRequest::from_row(request, status))
    }

    /// The new member's live message feeds start following the conversation.
    fn announce_joined(&self, user_id: Uuid, joined: Option<chat::Joined>) {
        if let Some(joined) = joined {
            self.pubsub
                .publish(&user_topic(user_id), joined.event(user_id));
        }
    }

    fn announce_approved(&self, request: JoinRequest) {
        self.pubsub.publish(
            &user_topic(request.user_id),
            Event::GroupJoinRequestApproved { request },
        );
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

/// A group locked for a change, and the acting user's role in it.
struct Locked {
    group: group::Model,
    actor_role: Option<Role>,
}

impl Locked {
    /// The actor's role if they own or administer the group; `FORBIDDEN` otherwise.
    fn require_manager(&self, action: &str) -> AppResult<Role> {
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
async fn lock_for(txn: &DatabaseTransaction, group_id: Uuid, actor: Uuid) -> AppResult<Locked> {
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

/// Serialises changes to one group (see the module docs): a no-op write on its
/// row, then the row as it now stands.
async fn lock_group(db: &impl ConnectionTrait, group_id: Uuid) -> AppResult<group::Model> {
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
async fn require_still_manages(
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

async fn reread(db: &impl ConnectionTrait, group_id: Uuid) -> AppResult<group::Model> {
    group::Entity::find_by_id(group_id)
        .one(db)
        .await?
        .ok_or_else(group_not_found)
}

/// A public group is everyone's to see; a private one its members' and invitees'.
async fn may_see(
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

async fn member_row(
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

/// The user's role in the group, read on `db` (a transaction, say): what the
/// chat domain asks before a moderator deletes someone else's message.
pub async fn role_of(
    db: &impl ConnectionTrait,
    group_id: Uuid,
    user_id: Uuid,
) -> AppResult<Option<Role>> {
    Ok(member_row(db, group_id, user_id)
        .await?
        .map(|m| Role::from_stored(&m.role)))
}

async fn owner_of(db: &impl ConnectionTrait, group_id: Uuid) -> AppResult<Uuid> {
    group_member::Entity::find()
        .filter(group_member::Column::GroupId.eq(group_id))
        .filter(group_member::Column::Role.eq(Role::Owner.as_str()))
        .one(db)
        .await?
        .map(|m| m.user_id)
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("group {group_id} has no owner")))
}

/// The owner and admins, who hear about join requests.
async fn managers_of(db: &impl ConnectionTrait, group_id: Uuid) -> AppResult<Vec<Uuid>> {
    Ok(group_member::Entity::find()
        .select_only()
        .column(group_member::Column::UserId)
        .filter(group_member::Column::GroupId.eq(group_id))
        .filter(group_member::Column::Role.is_in([Role::Owner.as_str(), Role::Admin.as_str()]))
        .into_tuple()
        .all(db)
        .await?)
}

async fn invitation_row(
    db: &impl ConnectionTrait,
    group_id: Uuid,
    user_id: Uuid,
) -> AppResult<Option<group_invitation::Model>> {
    Ok(group_invitation::Entity::find()
        .filter(group_invitation::Column::GroupId.eq(group_id))
        .filter(group_invitation::Column::InviteeId.eq(user_id))
        .one(db)
        .await?)
}

async fn join_request_row(
    db: &impl ConnectionTrait,
    group_id: Uuid,
    user_id: Uuid,
) -> AppResult<Option<group_join_request::Model>> {
    Ok(group_join_request::Entity::find()
        .filter(group_join_request::Column::GroupId.eq(group_id))
        .filter(group_join_request::Column::UserId.eq(user_id))
        .one(db)
        .await?)
}

async fn insert_member(
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

async fn set_member_role(
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

/// `SELECT group_id FROM group_members WHERE user_id = user`.
fn group_ids_of(user: Uuid) -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .column(group_member::Column::GroupId)
        .from(group_member::Entity)
        .and_where(group_member::Column::UserId.eq(user))
        .to_owned()
}

fn conflict_on_unique(
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

fn group_not_found() -> AppError {
    AppError::not_found("group not found")
}

fn not_a_member() -> AppError {
    AppError::not_found("they are not a member of this group")
}

fn invitation_not_found() -> AppError {
    AppError::not_found("invitation not found")
}

fn join_request_not_found() -> AppError {
    AppError::not_found("join request not found")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(parse_name("  Hikers  ").unwrap(), "Hikers");
        assert!(parse_name("   ").is_err());
        assert!(parse_name(&"x".repeat(65)).is_err());
        assert!(parse_name("a\u{7}b").is_err());
        assert_eq!(parse_description("  ").unwrap(), None);
        assert!(parse_description(&"x".repeat(1001)).is_err());
    }

    #[test]
    fn roles_rank_owner_over_admin_over_member() {
        assert!(Role::Owner > Role::Admin && Role::Admin > Role::Member);
        assert!(Role::Admin.manages() && !Role::Member.manages());
        for role in [Role::Owner, Role::Admin, Role::Member] {
            assert_eq!(Role::from_stored(role.as_str()), role);
        }
    }
}
