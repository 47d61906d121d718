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
//! ([`checks::lock_group`]), so changes to one group are serialised and each sees
//! what the previous one committed; that is what makes the cap and the single
//! owner hold.
//!
//! Files:
//! - `mod.rs`: the [`Groups`] service these rules hang on.
//! - `settings.rs`: what a group is set to (name, description, visibility, join
//!   policy) and the parsing of a new group's or a change's settings.
//! - `lifecycle.rs`: creating, changing and deleting a group; finding, searching
//!   and listing groups as a viewer may see them.
//! - `membership.rs`: members lists, leaving, adding and removing members,
//!   admitting a new member under the cap, and what an account's deletion does
//!   to its groups ([`forget_user`]).
//! - `roles.rs`: [`Role`], a user's role in a group ([`role_of`]), promoting and
//!   demoting, and handing ownership over.
//! - `invitations.rs`: inviting, and the invitee's or a manager's answer.
//! - `join_requests.rs`: asking to join, and the managers' or the requester's
//!   answer.
//! - `checks.rs`: what every change shares: the group's lock, who may see a
//!   group, who still manages it, and the errors that say no.
//! - `outbox_events.rs`: the events each change appends for services outside
//!   kith, in its transaction.

use crate::{
    domain::{events::Events, outbox::Outbox},
    infra::db::Db,
};

mod checks;
mod invitations;
mod join_requests;
mod lifecycle;
mod membership;
mod outbox_events;
mod roles;
mod settings;

pub use self::{
    invitations::{Invitation, InvitationStatus},
    join_requests::{JoinOutcome, JoinRequest, JoinRequestStatus},
    membership::{Member, forget_user},
    roles::{Role, role_of},
    settings::{GroupChanges, JoinPolicy, NewGroup, Visibility, parse_description, parse_name},
};

/// The groups service the resolvers call, with the member cap it enforces.
#[derive(Clone)]
pub struct Groups {
    db: Db,
    pubsub: Events,
    member_cap: i64,
    outbox: Outbox,
}

impl Groups {
    pub fn new(db: Db, pubsub: Events, member_cap: u32, outbox: Outbox) -> Self {
        Self {
            db,
            pubsub,
            member_cap: i64::from(member_cap),
            outbox,
        }
    }
}
