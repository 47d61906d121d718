//! Groups in GraphQL: the `Group` type, its members, invitations and join
//! requests, search, and the mutations that change them.
//!
//! Files:
//! - `enums.rs`: the schema's enums (visibility, join policy, roles, statuses)
//!   and how they map to the domain's.
//! - `group.rs`: the `Group` type, and loading a group with or without the
//!   viewer's right to see it.
//! - `invitation.rs`, `join_request.rs`: the `GroupInvitation` and
//!   `GroupJoinRequest` types.
//! - `connections.rs`: the connection types the lists above return.
//! - `queries.rs`: `group`, `searchGroups`, and a user's groups and
//!   invitations (`User.groups`, `me.groupInvitations`).
//! - `mutations.rs`: the mutations, their inputs and payloads.

mod connections;
mod enums;
mod group;
mod invitation;
mod join_request;
mod mutations;
mod queries;

pub use self::{
    connections::{
        GroupConnection, GroupInvitationConnection, GroupJoinRequestConnection,
        GroupMemberConnection, GroupMemberConnectionName, GroupMemberEdgeName, MemberEdgeFields,
        TotalCount,
    },
    enums::{
        AssignableGroupRole, GroupInvitationStatus, GroupJoinPolicy, GroupJoinRequestStatus,
        GroupRole, GroupVisibility,
    },
    group::{Group, find_group, load_group},
    invitation::GroupInvitation,
    join_request::GroupJoinRequest,
    mutations::{
        CreateGroupInput, GroupMembership, GroupMutation, GroupUserInput,
        RequestToJoinGroupPayload, SetGroupMemberRoleInput, UpdateGroupInput,
    },
    queries::{GroupQuery, groups_of_user, invitations_of_user},
};
