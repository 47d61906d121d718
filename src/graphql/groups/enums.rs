//! The schema's enums for groups, and how they map to the domain's.

use async_graphql::Enum;

use crate::domain::groups;

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum GroupVisibility {
    Public,
    /// Seen and found by its members and the users invited to it only.
    Private,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum GroupJoinPolicy {
    /// Anyone who can see the group joins at once.
    Open,
    /// Joining is a request an owner or admin approves.
    Approval,
    /// Only by invitation.
    InviteOnly,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum GroupRole {
    Owner,
    Admin,
    Member,
}

/// The roles `setGroupMemberRole` gives; ownership moves by
/// `transferGroupOwnership`.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum AssignableGroupRole {
    Admin,
    Member,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum GroupInvitationStatus {
    Pending,
    Accepted,
    Declined,
    Revoked,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum GroupJoinRequestStatus {
    Pending,
    Approved,
    Rejected,
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
