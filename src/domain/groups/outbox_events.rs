//! What the groups domain tells services outside kith: the events it appends
//! to the outbox in its changes' transactions (`docs/events.md` lists them).

use entity::group;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{Invitation, InvitationStatus, JoinRequest, JoinRequestStatus, Role};
use crate::domain::outbox::DomainEvent;

/// How a member came in (`group.member_joined`'s `via`).
#[derive(Clone, Copy, Debug)]
pub enum Via {
    /// They joined an open group.
    Joined,
    /// A manager added them.
    Added,
    /// They accepted an invitation, or asked to join while invited.
    Invitation,
    /// A manager approved their join request (or invited them after it).
    JoinRequest,
}

impl Via {
    fn as_str(self) -> &'static str {
        match self {
            Self::Joined => "joined",
            Self::Added => "added",
            Self::Invitation => "invitation",
            Self::JoinRequest => "join_request",
        }
    }
}

/// A group's settings as events carry them.
fn settings(group: &group::Model) -> Value {
    json!({
        "groupId": group.id,
        "name": group.name,
        "description": group.description,
        "visibility": group.visibility,
        "joinPolicy": group.join_policy,
    })
}

pub fn created(owner: Uuid, group: &group::Model) -> DomainEvent {
    let mut data = settings(group);
    data["ownerId"] = json!(owner);
    DomainEvent::new("group.created", Some(owner), data)
}

/// `changed` names the settings the change set (as the API names them).
pub fn updated(actor: Uuid, group: &group::Model, changed: &[&str]) -> DomainEvent {
    let mut data = settings(group);
    data["changed"] = json!(changed);
    DomainEvent::new("group.updated", Some(actor), data)
}

pub fn deleted(actor: Uuid, group_id: Uuid) -> DomainEvent {
    DomainEvent::new("group.deleted", Some(actor), json!({ "groupId": group_id }))
}

pub fn member_joined(actor: Uuid, group_id: Uuid, user_id: Uuid, via: Via) -> DomainEvent {
    DomainEvent::new(
        "group.member_joined",
        Some(actor),
        json!({ "groupId": group_id, "userId": user_id, "role": Role::Member.as_str(), "via": via.as_str() }),
    )
}

pub fn member_left(group_id: Uuid, user_id: Uuid) -> DomainEvent {
    DomainEvent::new(
        "group.member_left",
        Some(user_id),
        json!({ "groupId": group_id, "userId": user_id }),
    )
}

pub fn member_removed(actor: Uuid, group_id: Uuid, user_id: Uuid) -> DomainEvent {
    DomainEvent::new(
        "group.member_removed",
        Some(actor),
        json!({ "groupId": group_id, "userId": user_id }),
    )
}

pub fn role_changed(
    actor: Uuid,
    group_id: Uuid,
    user_id: Uuid,
    from: Role,
    to: Role,
) -> DomainEvent {
    DomainEvent::new(
        "group.role_changed",
        Some(actor),
        json!({
            "groupId": group_id,
            "userId": user_id,
            "previousRole": from.as_str(),
            "role": to.as_str(),
        }),
    )
}

impl Invitation {
    /// `group.invitation_sent`, or what answered it: `_accepted`,
    /// `_declined`, `_revoked`.
    pub(super) fn event(&self, actor: Uuid) -> DomainEvent {
        let kind = match self.status {
            InvitationStatus::Pending => "group.invitation_sent",
            InvitationStatus::Accepted => "group.invitation_accepted",
            InvitationStatus::Declined => "group.invitation_declined",
            InvitationStatus::Revoked => "group.invitation_revoked",
        };
        DomainEvent::new(
            kind,
            Some(actor),
            json!({
                "invitationId": self.id,
                "groupId": self.group_id,
                "inviterId": self.inviter,
                "inviteeId": self.invitee,
            }),
        )
    }
}

impl JoinRequest {
    /// `group.join_requested`, or what answered it: `group.join_request_`
    /// `approved`, `rejected`, `cancelled`.
    pub(super) fn event(&self, actor: Uuid) -> DomainEvent {
        let kind = match self.status {
            JoinRequestStatus::Pending => "group.join_requested",
            JoinRequestStatus::Approved => "group.join_request_approved",
            JoinRequestStatus::Rejected => "group.join_request_rejected",
            JoinRequestStatus::Cancelled => "group.join_request_cancelled",
        };
        DomainEvent::new(
            kind,
            Some(actor),
            json!({ "requestId": self.id, "groupId": self.group_id, "userId": self.user_id }),
        )
    }
}
