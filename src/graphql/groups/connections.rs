//! The connections groups' lists return, and the extra fields on them.

use async_graphql::{
    OutputType, SimpleObject,
    connection::{Connection, ConnectionNameType, Edge, EdgeNameType, EmptyFields},
};
use chrono::{DateTime, Utc};

use super::{Group, GroupInvitation, GroupJoinRequest, GroupRole};
use crate::{
    domain::groups::Invitation,
    graphql::{
        pagination::{Page, encode_cursor},
        users::User,
    },
};

// `totalCount` on connections that know it cheaply; null where they do not.
// Flattened into each connection: only its field is in the schema.
#[derive(SimpleObject)]
pub struct TotalCount {
    /// How many items the whole list holds, over all pages; null where the
    /// list cannot count cheaply (only `Group.members` without a `role`
    /// counts today).
    pub total_count: Option<i64>,
}

/// A member's place in the group, on each edge of `Group.members`.
#[derive(SimpleObject)]
pub struct MemberEdgeFields {
    /// The member's role in the group.
    pub role: GroupRole,
    /// When they became a member.
    pub joined_at: DateTime<Utc>,
}

pub struct GroupMemberConnectionName;

impl ConnectionNameType for GroupMemberConnectionName {
    fn type_name<T: OutputType>() -> String {
        "GroupMemberConnection".into()
    }
}

pub struct GroupMemberEdgeName;

impl EdgeNameType for GroupMemberEdgeName {
    fn type_name<T: OutputType>() -> String {
        "GroupMemberEdge".into()
    }
}

pub type GroupMemberConnection = Connection<
    String,
    User,
    TotalCount,
    MemberEdgeFields,
    GroupMemberConnectionName,
    GroupMemberEdgeName,
>;
pub type GroupConnection = Connection<String, Group, TotalCount, EmptyFields>;
pub type GroupInvitationConnection = Connection<String, GroupInvitation, TotalCount, EmptyFields>;
pub type GroupJoinRequestConnection = Connection<String, GroupJoinRequest, TotalCount, EmptyFields>;

pub(super) fn invitation_connection(
    page: &Page,
    mut invitations: Vec<Invitation>,
) -> GroupInvitationConnection {
    let has_next = invitations.len() > page.first;
    invitations.truncate(page.first);
    let mut connection = Connection::with_additional_fields(
        page.after.is_some(),
        has_next,
        TotalCount { total_count: None },
    );
    connection
        .edges
        .extend(invitations.into_iter().map(|invitation| {
            Edge::new(
                encode_cursor(&invitation.id.to_string()),
                GroupInvitation(invitation),
            )
        }));
    connection
}
