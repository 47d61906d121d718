//! Groups, on one group of each join policy (OPEN and INVITE_ONLY public,
//! APPROVAL private): owners and admins run a group, its owner alone gives it
//! away or deletes it, an invitation or a join request is answered by its own
//! side only; and to everyone outside (a stranger, a removed member, the owner
//! and a member of another group, someone the owner blocked) a private group
//! does not exist and a public one is FORBIDDEN.

use serde_json::{Value, json};

use super::{Caller::*, Operation, World, look, world::Group};

const UPDATE: &str =
    "mutation($g: ID!) { updateGroup(input: { groupId: $g, name: \"taken over\" }) { id } }";
const ADD: &str =
    "mutation($g: ID!, $u: ID!) { addGroupMember(input: { groupId: $g, userId: $u }) { id } }";
const REMOVE: &str =
    "mutation($g: ID!, $u: ID!) { removeGroupMember(input: { groupId: $g, userId: $u }) { id } }";
const SET_ROLE: &str = "mutation($g: ID!, $u: ID!, $r: AssignableGroupRole!) {
    setGroupMemberRole(input: { groupId: $g, userId: $u, role: $r }) { role } }";
const TRANSFER: &str = "mutation($g: ID!, $u: ID!) {
    transferGroupOwnership(input: { groupId: $g, userId: $u }) { id } }";
const INVITE: &str =
    "mutation($g: ID!, $u: ID!) { inviteToGroup(input: { groupId: $g, userId: $u }) { id } }";
const JOIN: &str = "mutation($g: ID!) { requestToJoinGroup(groupId: $g) { joined } }";

pub fn operations(w: &World) -> Vec<Operation> {
    let mut operations = vec![
        Operation::signed_in(
            "createGroup",
            "a new group",
            "mutation { createGroup(input: { name: \"new\", visibility: PUBLIC,
                joinPolicy: OPEN }) { id } }",
            json!({}),
            &w.stranger,
        )
        .witness(look::groups(&w.stranger)),
    ];
    for group in &w.groups {
        operations.extend(on_group(w, group));
    }
    operations
}

/// Everyone outside the group is answered the same.
fn outsiders(operation: Operation, w: &World, group: &Group) -> Operation {
    let code = group.outside();
    operation
        .refuse(Stranger, &w.stranger, code)
        .refuse(RemovedMember, &w.removed, code)
        .refuse(OwnerOfAnotherGroup, &w.other_owner, code)
        .refuse(MemberOfAnotherGroup, &w.other_member, code)
        .refuse(BlockedBy, &w.shunned, code)
}

/// Every one of the group's invitations and join requests is invisible to
/// whoever may not answer it.
fn nobody_else(operation: Operation, w: &World, but: &[super::Caller]) -> Operation {
    let everyone = [
        (Owner, &w.owner),
        (Admin, &w.admin),
        (Member, &w.member),
        (Stranger, &w.stranger),
        (RemovedMember, &w.removed),
        (OwnerOfAnotherGroup, &w.other_owner),
        (BlockedBy, &w.shunned),
    ];
    everyone
        .into_iter()
        .filter(|(caller, _)| !but.contains(caller))
        .fold(operation, |operation, (caller, who)| {
            operation.refuse(caller, who, "NOT_FOUND")
        })
}

fn on_group(w: &World, group: &Group) -> Vec<Operation> {
    let on = |what: &str| format!("{} ({what})", group.label());
    let g = &group.id;
    let user = |id: &str| json!({ "g": g, "u": id });
    let role = |id: &str, role: &str| json!({ "g": g, "u": id, "r": role });
    let just =
        |name: &'static str, what: &str, document: &'static str, variables: Value, signer| {
            Operation::signed_in(name, on(what), document, variables, signer)
                .witness(look::group(&w.owner, g))
        };
    let invitation = json!({ "id": group.invitation });
    let mut operations = vec![
        outsiders(
            just(
                "updateGroup",
                "its name",
                UPDATE,
                json!({ "g": g }),
                &w.admin,
            )
            .refuse(Member, &w.member, "FORBIDDEN"),
            w,
            group,
        ),
        outsiders(
            just(
                "deleteGroup",
                "itself",
                "mutation($g: ID!) { deleteGroup(groupId: $g) }",
                json!({ "g": g }),
                &w.owner,
            )
            .refuse(Admin, &w.admin, "FORBIDDEN")
            .refuse(Member, &w.member, "FORBIDDEN"),
            w,
            group,
        ),
        outsiders(
            just(
                "leaveGroup",
                "the caller's place",
                "mutation($g: ID!) { leaveGroup(groupId: $g) { id } }",
                json!({ "g": g }),
                &w.member,
            )
            .refuse(Owner, &w.owner, "FORBIDDEN"),
            w,
            group,
        ),
        outsiders(
            just(
                "addGroupMember",
                "a newcomer",
                ADD,
                user(w.asker.id()),
                &w.admin,
            )
            .refuse(Member, &w.member, "FORBIDDEN"),
            w,
            group,
        ),
        outsiders(
            just(
                "removeGroupMember",
                "its member",
                REMOVE,
                user(w.member.id()),
                &w.admin,
            ),
            w,
            group,
        ),
        just(
            "removeGroupMember",
            "its admin",
            REMOVE,
            user(w.admin.id()),
            &w.owner,
        )
        .refuse(Member, &w.member, "FORBIDDEN"),
        just(
            "removeGroupMember",
            "its owner",
            REMOVE,
            user(w.owner.id()),
            &w.admin,
        )
        .refuse(Admin, &w.admin, "FORBIDDEN")
        .refuse(Member, &w.member, "FORBIDDEN"),
        outsiders(
            just(
                "setGroupMemberRole",
                "its member made ADMIN",
                SET_ROLE,
                role(w.member.id(), "ADMIN"),
                &w.admin,
            )
            .refuse(Member, &w.member, "FORBIDDEN"),
            w,
            group,
        ),
        just(
            "setGroupMemberRole",
            "its admin made MEMBER",
            SET_ROLE,
            role(w.admin.id(), "MEMBER"),
            &w.owner,
        )
        .refuse(Admin, &w.admin, "FORBIDDEN")
        .refuse(Member, &w.member, "FORBIDDEN"),
        just(
            "setGroupMemberRole",
            "its owner made MEMBER",
            SET_ROLE,
            role(w.owner.id(), "MEMBER"),
            &w.admin,
        )
        .refuse(Admin, &w.admin, "FORBIDDEN")
        .refuse(Member, &w.member, "FORBIDDEN"),
        // Only a friend is added outright; anyone else is invited, and may
        // say no.
        just(
            "addGroupMember",
            "a stranger to them",
            ADD,
            user(w.stranger.id()),
            &w.admin,
        )
        .refuse(Owner, &w.owner, "FORBIDDEN")
        .refuse(Admin, &w.admin, "FORBIDDEN"),
        // Never across the owner's block.
        just(
            "addGroupMember",
            "whom the owner blocked",
            ADD,
            user(w.shunned.id()),
            &w.owner,
        )
        .refuse(Blocker, &w.owner, "FORBIDDEN"),
        just(
            "inviteToGroup",
            "whom the owner blocked",
            INVITE,
            user(w.shunned.id()),
            &w.owner,
        )
        .refuse(Blocker, &w.owner, "FORBIDDEN"),
        outsiders(
            just(
                "transferGroupOwnership",
                "to its member",
                TRANSFER,
                user(w.member.id()),
                &w.owner,
            )
            .refuse(Admin, &w.admin, "FORBIDDEN")
            .refuse(Member, &w.member, "FORBIDDEN"),
            w,
            group,
        ),
        outsiders(
            just(
                "inviteToGroup",
                "a newcomer",
                INVITE,
                user(w.asker.id()),
                &w.admin,
            )
            .refuse(Member, &w.member, "FORBIDDEN"),
            w,
            group,
        ),
        nobody_else(
            just(
                "revokeGroupInvitation",
                "the invitee's invitation",
                "mutation($id: ID!) { revokeGroupInvitation(id: $id) { status } }",
                invitation.clone(),
                &w.admin,
            ),
            w,
            &[Owner, Admin],
        )
        // The invitee sees their invitation: told to decline it instead.
        .refuse(Recipient, &w.invitee, "FORBIDDEN"),
        nobody_else(
            just(
                "acceptGroupInvitation",
                "the invitee's invitation",
                "mutation($id: ID!) { acceptGroupInvitation(id: $id) { status } }",
                invitation.clone(),
                &w.invitee,
            ),
            w,
            &[],
        ),
        nobody_else(
            just(
                "declineGroupInvitation",
                "the invitee's invitation",
                "mutation($id: ID!) { declineGroupInvitation(id: $id) { status } }",
                invitation,
                &w.invitee,
            ),
            w,
            &[],
        ),
    ];
    // Who may ask to join: anyone who sees an OPEN or APPROVAL group, and an
    // INVITE_ONLY one's invitees; never whom its owner blocked. An invitation
    // revoked or declined lets nobody in.
    let join = just(
        "requestToJoinGroup",
        "joining",
        JOIN,
        json!({ "g": g }),
        &w.invitee,
    );
    operations.push(match group.policy {
        "OPEN" if !group.private => join.refuse(BlockedBy, &w.shunned, group.outside()),
        _ => outsiders(join, w, group)
            .refuse(Uninvited, &w.uninvited, group.outside())
            .refuse(Decliner, &w.decliner, group.outside()),
    });
    for (caller, who, invitation) in [
        (Uninvited, &w.uninvited, &group.revoked_invitation),
        (Decliner, &w.decliner, &group.declined_invitation),
    ] {
        operations.push(
            just(
                "acceptGroupInvitation",
                "an invitation no longer held",
                "mutation($id: ID!) { acceptGroupInvitation(id: $id) { status } }",
                json!({ "id": invitation }),
                who,
            )
            .refuse(caller, who, "NOT_FOUND"),
        );
    }
    if let Some(request) = &group.join_request {
        let request = json!({ "id": request });
        for (name, document) in [
            (
                "approveJoinRequest",
                "mutation($id: ID!) { approveJoinRequest(id: $id) { status } }",
            ),
            (
                "rejectJoinRequest",
                "mutation($id: ID!) { rejectJoinRequest(id: $id) { status } }",
            ),
        ] {
            operations.push(
                nobody_else(
                    just(
                        name,
                        "the requester's request",
                        document,
                        request.clone(),
                        &w.admin,
                    ),
                    w,
                    &[Owner, Admin],
                )
                // The requester sees their request, not theirs to answer.
                .refuse(Sender, &w.requester, "FORBIDDEN"),
            );
        }
        operations.push(nobody_else(
            just(
                "cancelJoinRequest",
                "the requester's request",
                "mutation($id: ID!) { cancelJoinRequest(id: $id) { status } }",
                request,
                &w.requester,
            ),
            w,
            &[],
        ));
    }
    operations
}
