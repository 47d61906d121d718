//! The schema's enums for groups, and how they map to the domain's.

use async_graphql::Enum;

use crate::domain::groups;

/// Who sees and finds a group.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum GroupVisibility {
    /// Seen by anyone and found by `searchGroups`; its members list is open.
    Public,
    /// Seen and found by its members and the users invited to it only.
    Private,
}

/// How users get into a group (besides an owner or admin adding a friend).
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum GroupJoinPolicy {
    /// Anyone who can see the group joins at once.
    Open,
    /// Joining is a request an owner or admin approves.
    Approval,
    /// Only by invitation: `requestToJoinGroup` is `FORBIDDEN` without one.
    InviteOnly,
}

/// A member's standing in a group.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum GroupRole {
    /// The one member who may delete the group, transfer it and demote
    /// admins; manages it as admins do.
    Owner,
    /// Manages the group: changes its settings, invites, answers join
    /// requests, adds friends, removes members and deletes others' messages.
    Admin,
    /// Takes part in the group and its conversation.
    Member,
}

/// The roles `setGroupMemberRole` gives; ownership moves by
/// `transferGroupOwnership`.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum AssignableGroupRole {
    /// Make them an admin (the owner or an admin may).
    Admin,
    /// Make them a plain member (only the owner may demote an admin).
    Member,
}

/// Where a group invitation stands.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum GroupInvitationStatus {
    /// Waiting for the invitee's answer.
    Pending,
    /// The invitee joined (by accepting, or by having asked to join).
    Accepted,
    /// The invitee declined it.
    Declined,
    /// An owner or admin withdrew it.
    Revoked,
}

/// Where a request to join a group stands.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum GroupJoinRequestStatus {
    /// Waiting for an owner or admin.
    Pending,
    /// An owner or admin let the requester in.
    Approved,
    /// An owner or admin turned it down.
    Rejected,
    /// The requester withdrew it.
    Cancelled,
}

impl From<GroupVisibility> for groups::Visibility {
    fn from(value: GroupVisibility) -> Self {
        match value {
            GroupVisibility::Public => Self::Public,
            GroupVisibility::Private => Self::Private,
        }
    }
}

impl From<GroupJoinPolicy> for groups::JoinPolicy {
    fn from(value: GroupJoinPolicy) -> Self {
        match value {
            GroupJoinPolicy::Open => Self::Open,
            GroupJoinPolicy::Approval => Self::Approval,
            GroupJoinPolicy::InviteOnly => Self::InviteOnly,
        }
    }
}

impl From<groups::Role> for GroupRole {
    fn from(role: groups::Role) -> Self {
        match role {
            groups::Role::Owner => Self::Owner,
            groups::Role::Admin => Self::Admin,
            groups::Role::Member => Self::Member,
        }
    }
}

impl From<GroupRole> for groups::Role {
    fn from(role: GroupRole) -> Self {
        match role {
            GroupRole::Owner => Self::Owner,
            GroupRole::Admin => Self::Admin,
            GroupRole::Member => Self::Member,
        }
    }
}

impl From<AssignableGroupRole> for groups::Role {
    fn from(role: AssignableGroupRole) -> Self {
        match role {
            AssignableGroupRole::Admin => Self::Admin,
            AssignableGroupRole::Member => Self::Member,
        }
    }
}
