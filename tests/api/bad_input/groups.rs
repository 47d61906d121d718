//! Groups: their settings, members, roles, invitations and join requests.

use serde_json::{Value, json};

use super::{Bad::*, Call, Table, World, bad, chars, forbidden, invalid, not_found};

/// The rows creating a group and changing one share.
#[rustfmt::skip]
fn named(call: Call) -> Call {
    call.row("input.name", Empty, json!(""), bad("name"))
        .row("input.name", Blank, json!("   "), bad("name"))
        .row("input.name", TooLong, chars(65), bad("name"))
        .row("input.name", WrongFormat, json!("tabs\tand\u{0}"), bad("name"))
        .row("input.name", Invalid, json!(42), invalid())
        .row("input.description", TooLong, chars(1001), bad("description"))
        .row("input.description", WrongFormat, json!("x\u{0}y"), bad("description"))
        .row("input.visibility", Invalid, json!("SECRET"), invalid())
}

#[rustfmt::skip]
pub fn table(world: &World) -> Table {
    let mut table = Table::default();
    let ann = Some(&world.ann);
    let group = &world.ann_group;
    // `cat`'s private group: `ann` cannot see it.
    let hidden = &world.cat_group;
    // `eve`'s public group: `ann` sees it, and has asked to join.
    let theirs = &world.eve_group;
    let bob = json!(world.bob.user_id);
    let blocker = json!(world.dan.user_id);
    let herself = json!(world.ann.user_id);

    table.add(
        named(Call::new(
            "createGroup(input: CreateGroupInput!) { id }",
            ann,
            json!({ "input": { "name": "a new group", "visibility": "PUBLIC",
                "joinPolicy": "OPEN" } }),
        ))
        .row("input.joinPolicy", Invalid, json!("CLOSED"), invalid())
        .missing("input.name")
        .missing("input.visibility"),
    );
    table.add(
        named(Call::new(
            "updateGroup(input: UpdateGroupInput!) { id }",
            ann,
            json!({ "input": { "groupId": group } }),
        ))
        .ids("input.groupId", group, not_found())
        .row("input.groupId", ForeignId, hidden.clone(), not_found())
        .row("input.groupId", ForeignId, theirs.clone(), forbidden()),
    );
    for by_group in [
        "deleteGroup(groupId: ID!)",
        "leaveGroup(groupId: ID!) { id }",
        "requestToJoinGroup(groupId: ID!) { joined }",
    ] {
        table.add(
            Call::new(by_group, ann, json!({}))
                .ids("groupId", group, not_found())
                .row("groupId", ForeignId, hidden.clone(), not_found()),
        );
    }
    table.add(
        Call::new("deleteGroup(groupId: ID!)", ann, json!({}))
            .row("groupId", ForeignId, theirs.clone(), forbidden()),
    );

    let group_user = |user: &Value| json!({ "input": { "groupId": group, "userId": user } });
    for (signature, valid) in [
        ("addGroupMember(input: GroupUserInput!) { id }", group_user(&bob)),
        ("removeGroupMember(input: GroupUserInput!) { id }", group_user(&bob)),
        ("transferGroupOwnership(input: GroupUserInput!) { id }", group_user(&bob)),
        ("inviteToGroup(input: GroupUserInput!) { id }", group_user(&bob)),
        (
            "setGroupMemberRole(input: SetGroupMemberRoleInput!) { role }",
            json!({ "input": { "groupId": group, "userId": bob, "role": "ADMIN" } }),
        ),
    ] {
        table.add(
            Call::new(signature, ann, valid)
                .ids("input.groupId", group, not_found())
                .row("input.groupId", ForeignId, hidden.clone(), not_found())
                .ids("input.userId", &bob, not_found())
                .row("input.userId", ForeignId, blocker.clone(), not_found()),
        );
    }
    // Managing `eve`'s group is for `eve` (and her admins).
    for signature in [
        "addGroupMember(input: GroupUserInput!) { id }",
        "removeGroupMember(input: GroupUserInput!) { id }",
        "transferGroupOwnership(input: GroupUserInput!) { id }",
        "inviteToGroup(input: GroupUserInput!) { id }",
    ] {
        table.add(
            Call::new(signature, ann, group_user(&bob))
                .row("input.groupId", ForeignId, theirs.clone(), forbidden()),
        );
    }
    table.add(
        Call::new(
            "inviteToGroup(input: GroupUserInput!) { id }",
            ann,
            group_user(&bob),
        )
        .row("input.userId", Oneself, herself, bad("userId")),
    );

    // `bob` invited `ann` to his group; `cat` invited `bob` to her private one.
    for answer in [
        "acceptGroupInvitation(id: ID!) { id }",
        "declineGroupInvitation(id: ID!) { id }",
    ] {
        table.add(
            Call::new(answer, ann, json!({}))
                .ids("id", &world.invitation_to_ann, not_found())
                .row("id", ForeignId, world.foreign_invitation.clone(), not_found())
                // `ann`'s group sent it, to `cat`: answering looks among the
                // invitations to the caller, and it is not one.
                .row("id", ForeignId, world.invitation_to_cat.clone(), not_found()),
        );
    }
    table.add(
        Call::new("revokeGroupInvitation(id: ID!) { id }", ann, json!({}))
            .ids("id", &world.invitation_to_cat, not_found())
            .row("id", ForeignId, world.foreign_invitation.clone(), not_found())
            // Sent to `ann`, by `bob`'s group: hers to answer, not to revoke.
            .row("id", ForeignId, world.invitation_to_ann.clone(), forbidden()),
    );

    // `eve` asked to join `ann`'s group, and `ann` to join `eve`'s; `bob`
    // asked to join `eve`'s group, which is not `ann`'s business. `ann` sees
    // her own request but may not answer it for `eve`'s group; cancelling
    // looks among the caller's own requests, and `eve`'s is not one.
    let (answerable, own) = (&world.eve_join_request, &world.ann_join_request);
    for (answer, request, the_other_side, expect) in [
        ("approveJoinRequest(id: ID!) { id }", answerable, own, forbidden()),
        ("rejectJoinRequest(id: ID!) { id }", answerable, own, forbidden()),
        ("cancelJoinRequest(id: ID!) { id }", own, answerable, not_found()),
    ] {
        table.add(
            Call::new(answer, ann, json!({}))
                .ids("id", request, not_found())
                .row("id", ForeignId, world.foreign_join_request.clone(), not_found())
                .row("id", ForeignId, the_other_side.clone(), expect),
        );
    }
    table
}

#[tokio::test]
async fn groups_refuse_bad_input_and_write_nothing() {
    super::run_table(table).await;
}
