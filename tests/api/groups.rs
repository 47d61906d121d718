//! Groups through the real server: creation and settings, the join policies,
//! invitations and join requests, roles and their limits, privacy, the
//! authorization matrix, notifications, and the SQL cost of a members list.

use crate::common;

use common::{Session, TestApp, error_code, error_field, spawn_app};
use serde_json::{Value, json};

const CREATE: &str = "mutation($input: CreateGroupInput!) { createGroup(input: $input) {
    id name description visibility joinPolicy memberCount viewerRole } }";
const GROUP: &str = "query($id: ID!) { group(id: $id) { id name memberCount viewerRole
    members { totalCount edges { role node { username } } } } }";
const JOIN: &str = "mutation($id: ID!) { requestToJoinGroup(groupId: $id) {
    joined joinRequest { id status user { username } } group { memberCount viewerRole } } }";
const INVITE: &str = "mutation($group: ID!, $user: ID!) {
    inviteToGroup(input: { groupId: $group, userId: $user }) {
        id status invitee { username } inviter { username } group { name } } }";
const ADD: &str = "mutation($group: ID!, $user: ID!) {
    addGroupMember(input: { groupId: $group, userId: $user }) { memberCount } }";
const REMOVE: &str = "mutation($group: ID!, $user: ID!) {
    removeGroupMember(input: { groupId: $group, userId: $user }) { memberCount } }";
const SET_ROLE: &str = "mutation($group: ID!, $user: ID!, $role: AssignableGroupRole!) {
    setGroupMemberRole(input: { groupId: $group, userId: $user, role: $role }) {
        role user { username } } }";
const TRANSFER: &str = "mutation($group: ID!, $user: ID!) {
    transferGroupOwnership(input: { groupId: $group, userId: $user }) { viewerRole } }";
const LEAVE: &str = "mutation($id: ID!) { leaveGroup(groupId: $id) { memberCount viewerRole } }";

async fn create_group(
    app: &TestApp,
    owner: &Session,
    name: &str,
    visibility: &str,
    policy: &str,
) -> Value {
    app.data(
        CREATE,
        json!({ "input": { "name": name, "visibility": visibility, "joinPolicy": policy } }),
        owner.token(),
    )
    .await["createGroup"]
        .clone()
}

async fn block(app: &TestApp, blocker: &Session, blocked: &Session) {
    app.data(
        "mutation($id: ID!) { blockUser(userId: $id) { id } }",
        json!({ "id": blocked.user_id }),
        blocker.token(),
    )
    .await;
}

/// `group(id)` as `viewer` sees it (null when hidden).
async fn group_as(app: &TestApp, viewer: &Session, id: &Value) -> Value {
    app.data(GROUP, json!({ "id": id }), viewer.token()).await["group"].clone()
}

/// (username, role) of each member, in join order.
fn members(group: &Value) -> Vec<(String, String)> {
    group["members"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|edge| {
            (
                edge["node"]["username"].as_str().unwrap().to_owned(),
                edge["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn pair(name: &str, role: &str) -> (String, String) {
    (name.to_owned(), role.to_owned())
}

#[tokio::test]
async fn a_new_group_has_its_creator_as_owner_and_can_be_changed_by_managers() {
    let app = spawn_app().await;
    let ann = app.register("ann").await;
    let created = app
        .data(
            CREATE,
            json!({ "input": { "name": "  Hikers of Lisbon ", "description": "Weekend trails",
                               "visibility": "PUBLIC", "joinPolicy": "OPEN" } }),
            ann.token(),
        )
        .await["createGroup"]
        .clone();
    assert_eq!(created["name"], "Hikers of Lisbon");
    assert_eq!(created["description"], "Weekend trails");
    assert_eq!(created["memberCount"], 1);
    assert_eq!(created["viewerRole"], "OWNER");

    let seen = group_as(&app, &ann, &created["id"]).await;
    assert_eq!(members(&seen), vec![pair("ann", "OWNER")]);
    assert_eq!(seen["members"]["totalCount"], 1);

    let updated = app
        .data(
            "mutation($id: ID!) { updateGroup(input: { groupId: $id, name: \"Lisbon Hikers\",
                description: null, joinPolicy: APPROVAL }) { name description joinPolicy visibility } }",
            json!({ "id": created["id"] }),
            ann.token(),
        )
        .await["updateGroup"]
        .clone();
    assert_eq!(
        updated,
        json!({ "name": "Lisbon Hikers", "description": null, "joinPolicy": "APPROVAL",
                "visibility": "PUBLIC" })
    );

    for (input, field) in [
        (
            json!({ "name": "   ", "visibility": "PUBLIC", "joinPolicy": "OPEN" }),
            "name",
        ),
        (
            json!({ "name": "x".repeat(65), "visibility": "PUBLIC", "joinPolicy": "OPEN" }),
            "name",
        ),
        (
            json!({ "name": "ok", "description": "d".repeat(1001), "visibility": "PUBLIC",
                    "joinPolicy": "OPEN" }),
            "description",
        ),
    ] {
        let refused = app
            .graphql(CREATE, json!({ "input": input }), ann.token())
            .await;
        assert_eq!(error_code(&refused), "BAD_USER_INPUT");
        assert_eq!(error_field(&refused), Some(field));
    }
    let anonymous = app
        .graphql(
            CREATE,
            json!({ "input": { "name": "x", "visibility": "PUBLIC", "joinPolicy": "OPEN" } }),
            None,
        )
        .await;
    assert_eq!(error_code(&anonymous), "UNAUTHENTICATED");
}

#[tokio::test]
async fn each_join_policy_does_what_it_says() {
    let app = spawn_app().await;
    let (ann, bob) = (app.register("ann").await, app.register("bob").await);

    let open = create_group(&app, &ann, "open", "PUBLIC", "OPEN").await;
    let joined = app
        .data(JOIN, json!({ "id": open["id"] }), bob.token())
        .await;
    assert_eq!(joined["requestToJoinGroup"]["joined"], true);
    assert_eq!(joined["requestToJoinGroup"]["joinRequest"], Value::Null);
    assert_eq!(joined["requestToJoinGroup"]["group"]["memberCount"], 2);
    assert_eq!(
        joined["requestToJoinGroup"]["group"]["viewerRole"],
        "MEMBER"
    );
    let again = app
        .data(JOIN, json!({ "id": open["id"] }), bob.token())
        .await;
    assert_eq!(
        again["requestToJoinGroup"]["group"]["memberCount"], 2,
        "joining twice is one join"
    );

    let approval = create_group(&app, &ann, "approval", "PUBLIC", "APPROVAL").await;
    let asked = app
        .data(JOIN, json!({ "id": approval["id"] }), bob.token())
        .await;
    let request = asked["requestToJoinGroup"]["joinRequest"].clone();
    assert_eq!(asked["requestToJoinGroup"]["joined"], false);
    assert_eq!(request["status"], "PENDING");
    let asked_again = app
        .data(JOIN, json!({ "id": approval["id"] }), bob.token())
        .await;
    assert_eq!(
        asked_again["requestToJoinGroup"]["joinRequest"]["id"],
        request["id"]
    );
    let queue = app
        .data(
            "query($id: ID!) { group(id: $id) { joinRequests { edges { node { id user { username } } } } } }",
            json!({ "id": approval["id"] }),
            ann.token(),
        )
        .await;
    assert_eq!(
        queue["group"]["joinRequests"]["edges"][0]["node"]["id"],
        request["id"]
    );
    let hidden = app
        .data(
            "query($id: ID!) { group(id: $id) { joinRequests { edges { node { id } } } invitations { edges { node { id } } } } }",
            json!({ "id": approval["id"] }),
            bob.token(),
        )
        .await;
    assert_eq!(
        hidden["group"],
        json!({ "joinRequests": null, "invitations": null })
    );
    let approved = app
        .data(
            "mutation($id: ID!) { approveJoinRequest(id: $id) { status group { memberCount } } }",
            json!({ "id": request["id"] }),
            ann.token(),
        )
        .await;
    assert_eq!(approved["approveJoinRequest"]["status"], "APPROVED");
    assert_eq!(approved["approveJoinRequest"]["group"]["memberCount"], 2);
    let twice = app
        .graphql(
            "mutation($id: ID!) { approveJoinRequest(id: $id) { status } }",
            json!({ "id": request["id"] }),
            ann.token(),
        )
        .await;
    assert_eq!(error_code(&twice), "NOT_FOUND");

    let invite_only = create_group(&app, &ann, "closed", "PUBLIC", "INVITE_ONLY").await;
    let refused = app
        .graphql(JOIN, json!({ "id": invite_only["id"] }), bob.token())
        .await;
    assert_eq!(error_code(&refused), "FORBIDDEN");
    let invitation = app
        .data(
            INVITE,
            json!({ "group": invite_only["id"], "user": bob.user_id }),
            ann.token(),
        )
        .await["inviteToGroup"]
        .clone();
    // Holding an invitation, asking to join is accepting it.
    let joined = app
        .data(JOIN, json!({ "id": invite_only["id"] }), bob.token())
        .await;
    assert_eq!(joined["requestToJoinGroup"]["joined"], true);
    let gone = app
        .graphql(
            "mutation($id: ID!) { acceptGroupInvitation(id: $id) { status } }",
            json!({ "id": invitation["id"] }),
            bob.token(),
        )
        .await;
    assert_eq!(
        error_code(&gone),
        "NOT_FOUND",
        "the invitation was answered by joining"
    );
}

#[tokio::test]
async fn invitations_are_accepted_declined_or_revoked_once() {
    let app = spawn_app().await;
    let (ann, bob, cat) = (
        app.register("ann").await,
        app.register("bob").await,
        app.register("cat").await,
    );
    let group = create_group(&app, &ann, "book club", "PRIVATE", "INVITE_ONLY").await;
    assert_eq!(
        group_as(&app, &bob, &group["id"]).await,
        Value::Null,
        "private: hidden"
    );

    let invitation = app
        .data(
            INVITE,
            json!({ "group": group["id"], "user": bob.user_id }),
            ann.token(),
        )
        .await["inviteToGroup"]
        .clone();
    assert_eq!(invitation["status"], "PENDING");
    assert_eq!(invitation["invitee"]["username"], "bob");
    assert_eq!(invitation["inviter"]["username"], "ann");
    let again = app
        .data(
            INVITE,
            json!({ "group": group["id"], "user": bob.user_id }),
            ann.token(),
        )
        .await["inviteToGroup"]
        .clone();
    assert_eq!(
        again["id"], invitation["id"],
        "inviting twice is one invitation"
    );

    // The invitee sees the group and the invitation; its members stay hidden.
    let mine = app
        .data(
            "{ me { groupInvitations { edges { node { id group { name memberCount members { totalCount } } } } } } }",
            json!({}),
            bob.token(),
        )
        .await;
    let edge = &mine["me"]["groupInvitations"]["edges"][0]["node"];
    assert_eq!(edge["id"], invitation["id"]);
    assert_eq!(edge["group"]["name"], "book club");
    assert_eq!(edge["group"]["members"], Value::Null);
    assert_eq!(
        group_as(&app, &bob, &group["id"]).await["name"],
        "book club"
    );

    let stranger_accepts = app
        .graphql(
            "mutation($id: ID!) { acceptGroupInvitation(id: $id) { status } }",
            json!({ "id": invitation["id"] }),
            cat.token(),
        )
        .await;
    assert_eq!(error_code(&stranger_accepts), "NOT_FOUND");
    let accepted = app
        .data(
            "mutation($id: ID!) { acceptGroupInvitation(id: $id) { status group { memberCount viewerRole } } }",
            json!({ "id": invitation["id"] }),
            bob.token(),
        )
        .await["acceptGroupInvitation"]
        .clone();
    assert_eq!(
        accepted,
        json!({ "status": "ACCEPTED", "group": { "memberCount": 2, "viewerRole": "MEMBER" } })
    );
    let member_again = app
        .graphql(
            INVITE,
            json!({ "group": group["id"], "user": bob.user_id }),
            ann.token(),
        )
        .await;
    assert_eq!(error_code(&member_again), "CONFLICT");

    let to_cat = app
        .data(
            INVITE,
            json!({ "group": group["id"], "user": cat.user_id }),
            ann.token(),
        )
        .await["inviteToGroup"]
        .clone();
    let revoked = app
        .data(
            "mutation($id: ID!) { revokeGroupInvitation(id: $id) { status } }",
            json!({ "id": to_cat["id"] }),
            ann.token(),
        )
        .await;
    assert_eq!(revoked["revokeGroupInvitation"]["status"], "REVOKED");
    let late = app
        .graphql(
            "mutation($id: ID!) { acceptGroupInvitation(id: $id) { status } }",
            json!({ "id": to_cat["id"] }),
            cat.token(),
        )
        .await;
    assert_eq!(error_code(&late), "NOT_FOUND");
    assert_eq!(
        group_as(&app, &cat, &group["id"]).await,
        Value::Null,
        "revoked: hidden again"
    );

    let to_cat = app
        .data(
            INVITE,
            json!({ "group": group["id"], "user": cat.user_id }),
            ann.token(),
        )
        .await["inviteToGroup"]
        .clone();
    let declined = app
        .data(
            "mutation($id: ID!) { declineGroupInvitation(id: $id) { status } }",
            json!({ "id": to_cat["id"] }),
            cat.token(),
        )
        .await;
    assert_eq!(declined["declineGroupInvitation"]["status"], "DECLINED");
    assert_eq!(group_as(&app, &ann, &group["id"]).await["memberCount"], 2);
}

async fn ask_to_join(app: &TestApp, group: &Value, user: &Session) -> Value {
    app.data(JOIN, json!({ "id": group["id"] }), user.token())
        .await["requestToJoinGroup"]["joinRequest"]["id"]
        .clone()
}

#[tokio::test]
async fn join_requests_can_be_rejected_or_cancelled() {
    let app = spawn_app().await;
    let (ann, bob) = (app.register("ann").await, app.register("bob").await);
    let group = create_group(&app, &ann, "chess", "PUBLIC", "APPROVAL").await;
    let request = ask_to_join(&app, &group, &bob).await;
    let by_requester = app
        .graphql(
            "mutation($id: ID!) { rejectJoinRequest(id: $id) { status } }",
            json!({ "id": request }),
            bob.token(),
        )
        .await;
    assert_eq!(error_code(&by_requester), "FORBIDDEN");
    let rejected = app
        .data(
            "mutation($id: ID!) { rejectJoinRequest(id: $id) { status } }",
            json!({ "id": request }),
            ann.token(),
        )
        .await;
    assert_eq!(rejected["rejectJoinRequest"]["status"], "REJECTED");

    let request = ask_to_join(&app, &group, &bob).await;
    let by_owner = app
        .graphql(
            "mutation($id: ID!) { cancelJoinRequest(id: $id) { status } }",
            json!({ "id": request }),
            ann.token(),
        )
        .await;
    assert_eq!(error_code(&by_owner), "NOT_FOUND");
    let cancelled = app
        .data(
            "mutation($id: ID!) { cancelJoinRequest(id: $id) { status } }",
            json!({ "id": request }),
            bob.token(),
        )
        .await;
    assert_eq!(cancelled["cancelJoinRequest"]["status"], "CANCELLED");
    assert_eq!(group_as(&app, &ann, &group["id"]).await["memberCount"], 1);

    // Inviting someone who asked is the yes.
    ask_to_join(&app, &group, &bob).await;
    let invitation = app
        .data(
            INVITE,
            json!({ "group": group["id"], "user": bob.user_id }),
            ann.token(),
        )
        .await;
    assert_eq!(invitation["inviteToGroup"]["status"], "ACCEPTED");
    assert_eq!(
        group_as(&app, &bob, &group["id"]).await["viewerRole"],
        "MEMBER"
    );
}

#[tokio::test]
async fn roles_have_limits_and_there_is_always_one_owner() {
    let app = spawn_app().await;
    let [ann, bob, cat, dan] = [
        app.register("ann").await,
        app.register("bob").await,
        app.register("cat").await,
        app.register("dan").await,
    ];
    let group = create_group(&app, &ann, "band", "PUBLIC", "OPEN").await;
    for member in [&bob, &cat, &dan] {
        app.data(JOIN, json!({ "id": group["id"] }), member.token())
            .await;
    }
    let role = |user: &Session, role: &str| json!({ "group": group["id"], "user": user.user_id, "role": role });
    let target = |user: &Session| json!({ "group": group["id"], "user": user.user_id });

    // Members manage nothing.
    let refused = app
        .graphql(SET_ROLE, role(&cat, "ADMIN"), dan.token())
        .await;
    assert_eq!(error_code(&refused), "FORBIDDEN");
    // The owner promotes; an admin may promote a member too.
    let promoted = app.data(SET_ROLE, role(&bob, "ADMIN"), ann.token()).await;
    assert_eq!(
        promoted["setGroupMemberRole"],
        json!({ "role": "ADMIN", "user": { "username": "bob" } })
    );
    app.data(SET_ROLE, role(&cat, "ADMIN"), bob.token()).await;
    // An admin cannot demote or remove another admin, nor touch the owner.
    for (query, variables) in [
        (SET_ROLE, role(&cat, "MEMBER")),
        (REMOVE, target(&cat)),
        (REMOVE, target(&ann)),
        (TRANSFER, target(&bob)),
    ] {
        let refused = app.graphql(query, variables, bob.token()).await;
        assert_eq!(error_code(&refused), "FORBIDDEN", "{query}");
    }
    let owner_role = app
        .graphql(SET_ROLE, role(&ann, "MEMBER"), ann.token())
        .await;
    assert_eq!(error_code(&owner_role), "FORBIDDEN");
    // An admin removes a member.
    let removed = app.data(REMOVE, target(&dan), bob.token()).await;
    assert_eq!(removed["removeGroupMember"]["memberCount"], 3);
    let not_member = app.graphql(REMOVE, target(&dan), bob.token()).await;
    assert_eq!(error_code(&not_member), "NOT_FOUND");
    let self_removal = app.graphql(REMOVE, target(&bob), bob.token()).await;
    assert_eq!(error_code(&self_removal), "BAD_USER_INPUT");

    // The owner cannot leave until ownership moves on.
    let owner_leaves = app
        .graphql(LEAVE, json!({ "id": group["id"] }), ann.token())
        .await;
    assert_eq!(error_code(&owner_leaves), "FORBIDDEN");
    let transferred = app.data(TRANSFER, target(&cat), ann.token()).await;
    assert_eq!(transferred["transferGroupOwnership"]["viewerRole"], "ADMIN");
    let seen = group_as(&app, &ann, &group["id"]).await;
    assert_eq!(
        members(&seen),
        vec![
            pair("ann", "ADMIN"),
            pair("bob", "ADMIN"),
            pair("cat", "OWNER")
        ]
    );
    let left = app
        .data(LEAVE, json!({ "id": group["id"] }), ann.token())
        .await;
    assert_eq!(
        left["leaveGroup"],
        json!({ "memberCount": 2, "viewerRole": null })
    );
    let owners = app
        .data(
            "query($id: ID!) { group(id: $id) { members(role: OWNER) { edges { node { username } } } } }",
            json!({ "id": group["id"] }),
            bob.token(),
        )
        .await;
    assert_eq!(
        owners["group"]["members"]["edges"],
        json!([{ "node": { "username": "cat" } }])
    );
    let not_member_leaves = app
        .graphql(LEAVE, json!({ "id": group["id"] }), dan.token())
        .await;
    assert_eq!(error_code(&not_member_leaves), "FORBIDDEN");
}

#[tokio::test]
async fn private_groups_are_invisible_to_outsiders() {
    let app = spawn_app().await;
    let (ann, bob, cat) = (
        app.register("ann").await,
        app.register("bob").await,
        app.register("cat").await,
    );
    let private = create_group(&app, &ann, "Secret Garden", "PRIVATE", "APPROVAL").await;
    let public = create_group(&app, &ann, "Garden Party", "PUBLIC", "OPEN").await;
    app.befriend(&ann, &bob).await;
    app.data(
        ADD,
        json!({ "group": private["id"], "user": bob.user_id }),
        ann.token(),
    )
    .await;

    let search = "query($q: String!) { searchGroups(query: $q) { edges { node { name } } } }";
    let names = |response: &Value| -> Vec<String> {
        response["searchGroups"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"]["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let by_member = app
        .data(search, json!({ "q": "GARDEN" }), bob.token())
        .await;
    assert_eq!(names(&by_member), vec!["Garden Party", "Secret Garden"]);
    let by_outsider = app
        .data(search, json!({ "q": "garden" }), cat.token())
        .await;
    assert_eq!(names(&by_outsider), vec!["Garden Party"]);
    let anonymous = app.data(search, json!({ "q": "garden" }), None).await;
    assert_eq!(names(&anonymous), vec!["Garden Party"]);

    assert_eq!(group_as(&app, &cat, &private["id"]).await, Value::Null);
    let node = app
        .data(
            "query($id: ID!) { node(id: $id) { id } }",
            json!({ "id": private["id"] }),
            cat.token(),
        )
        .await;
    assert_eq!(node["node"], Value::Null);
    // To an outsider a private group's mutations are NOT_FOUND, like a missing one.
    let join = app
        .graphql(JOIN, json!({ "id": private["id"] }), cat.token())
        .await;
    assert_eq!(error_code(&join), "NOT_FOUND");

    // User.groups shows outsiders the public groups only.
    let groups = "query($id: ID!) { user(id: $id) { groups { edges { node { name } } } } }";
    let of_bob_to_cat = app
        .data(groups, json!({ "id": ann.user_id }), cat.token())
        .await;
    assert_eq!(
        of_bob_to_cat["user"]["groups"]["edges"],
        json!([{ "node": { "name": "Garden Party" } }])
    );
    let own = app
        .data(groups, json!({ "id": ann.user_id }), ann.token())
        .await;
    assert_eq!(own["user"]["groups"]["edges"].as_array().unwrap().len(), 2);
    let _ = public;

    // Paging through search never repeats or skips.
    for i in 0..5 {
        create_group(&app, &ann, &format!("garden {i}"), "PUBLIC", "OPEN").await;
    }
    let paged =
        "query($q: String!, $after: String) { searchGroups(query: $q, first: 2, after: $after) {
        edges { node { name } } pageInfo { hasNextPage endCursor } } }";
    let mut seen = Vec::new();
    let mut after = Value::Null;
    loop {
        let page = app
            .data(paged, json!({ "q": "garden", "after": after }), cat.token())
            .await;
        seen.extend(names(&page));
        if page["searchGroups"]["pageInfo"]["hasNextPage"] == false {
            break;
        }
        after = page["searchGroups"]["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(
        seen,
        vec![
            "garden 0",
            "garden 1",
            "garden 2",
            "garden 3",
            "garden 4",
            "Garden Party"
        ]
    );
}

#[tokio::test]
async fn blocks_keep_users_out_of_each_others_groups() {
    let app = spawn_app().await;
    let (ann, bob, cat) = (
        app.register("ann").await,
        app.register("bob").await,
        app.register("cat").await,
    );
    let group = create_group(&app, &ann, "runners", "PUBLIC", "OPEN").await;
    block(&app, &ann, &bob).await;
    let invite = app
        .graphql(
            INVITE,
            json!({ "group": group["id"], "user": bob.user_id }),
            ann.token(),
        )
        .await;
    assert_eq!(error_code(&invite), "FORBIDDEN", "the owner blocked them");
    let join = app
        .graphql(JOIN, json!({ "id": group["id"] }), bob.token())
        .await;
    assert_eq!(error_code(&join), "FORBIDDEN", "the owner blocked them");

    // An admin who is blocked by someone cannot invite them: they do not exist to the admin.
    app.data(JOIN, json!({ "id": group["id"] }), cat.token())
        .await;
    app.data(
        SET_ROLE,
        json!({ "group": group["id"], "user": cat.user_id, "role": "ADMIN" }),
        ann.token(),
    )
    .await;
    let dan = app.register("dan").await;
    block(&app, &dan, &cat).await;
    let hidden = app
        .graphql(
            INVITE,
            json!({ "group": group["id"], "user": dan.user_id }),
            cat.token(),
        )
        .await;
    assert_eq!(error_code(&hidden), "NOT_FOUND");
    // The members list hides whoever blocked the viewer.
    app.data(JOIN, json!({ "id": group["id"] }), dan.token())
        .await;
    let seen = group_as(&app, &cat, &group["id"]).await;
    assert!(members(&seen).iter().all(|(name, _)| name != "dan"));
    assert_eq!(seen["memberCount"], 3);

    // Adding directly is for friends; anyone else is invited.
    let eve = app.register("eve").await;
    let stranger = app
        .graphql(
            ADD,
            json!({ "group": group["id"], "user": eve.user_id }),
            ann.token(),
        )
        .await;
    assert_eq!(error_code(&stranger), "FORBIDDEN");
    app.befriend(&ann, &eve).await;
    let added = app
        .data(
            ADD,
            json!({ "group": group["id"], "user": eve.user_id }),
            ann.token(),
        )
        .await;
    assert_eq!(added["addGroupMember"]["memberCount"], 4);

    // An admin cannot add their friend past the owner's block.
    let fay = app.register("fay").await;
    app.befriend(&cat, &fay).await;
    block(&app, &fay, &ann).await;
    let past_block = app
        .graphql(
            ADD,
            json!({ "group": group["id"], "user": fay.user_id }),
            cat.token(),
        )
        .await;
    assert_eq!(error_code(&past_block), "FORBIDDEN");

    // A block between inviter and invitee voids the invitation.
    let gus = app.register("gus").await;
    let invitation = app
        .data(
            INVITE,
            json!({ "group": group["id"], "user": gus.user_id }),
            cat.token(),
        )
        .await["inviteToGroup"]["id"]
        .clone();
    block(&app, &gus, &cat).await;
    let accept = app
        .graphql(
            "mutation($id: ID!) { acceptGroupInvitation(id: $id) { status } }",
            json!({ "id": invitation }),
            gus.token(),
        )
        .await;
    assert_eq!(error_code(&accept), "FORBIDDEN");
    assert_eq!(group_as(&app, &ann, &group["id"]).await["memberCount"], 4);
}

#[tokio::test]
async fn the_member_cap_holds() {
    let app = common::spawn_app_with(|settings| settings.group_member_cap = 2).await;
    let [ann, bob, cat] = [
        app.register("ann").await,
        app.register("bob").await,
        app.register("cat").await,
    ];
    let group = create_group(&app, &ann, "pair", "PUBLIC", "OPEN").await;
    app.data(JOIN, json!({ "id": group["id"] }), bob.token())
        .await;
    let full = app
        .graphql(JOIN, json!({ "id": group["id"] }), cat.token())
        .await;
    assert_eq!(error_code(&full), "CONFLICT");
    assert!(
        full["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("full")
    );
    app.data(LEAVE, json!({ "id": group["id"] }), bob.token())
        .await;
    app.data(JOIN, json!({ "id": group["id"] }), cat.token())
        .await;
    assert_eq!(group_as(&app, &ann, &group["id"]).await["memberCount"], 2);
}

#[tokio::test]
async fn a_deleted_owner_hands_the_group_to_an_admin_and_deleting_a_group_removes_it() {
    let app = spawn_app().await;
    let [ann, bob, cat] = [
        app.register("ann").await,
        app.register("bob").await,
        app.register("cat").await,
    ];
    let group = create_group(&app, &ann, "legacy", "PUBLIC", "OPEN").await;
    let solo = create_group(&app, &ann, "solo", "PUBLIC", "OPEN").await;
    for member in [&bob, &cat] {
        app.data(JOIN, json!({ "id": group["id"] }), member.token())
            .await;
    }
    app.data(
        SET_ROLE,
        json!({ "group": group["id"], "user": cat.user_id, "role": "ADMIN" }),
        ann.token(),
    )
    .await;
    app.data(
        "mutation($p: String!) { deleteAccount(input: { password: $p }) }",
        json!({ "p": common::PASSWORD }),
        ann.token(),
    )
    .await;
    let seen = group_as(&app, &bob, &group["id"]).await;
    assert_eq!(seen["memberCount"], 2);
    assert_eq!(
        members(&seen),
        vec![pair("bob", "MEMBER"), pair("cat", "OWNER")]
    );
    assert_eq!(
        group_as(&app, &bob, &solo["id"]).await,
        Value::Null,
        "nobody left: deleted"
    );

    let by_member = app
        .graphql(
            "mutation($id: ID!) { deleteGroup(groupId: $id) }",
            json!({ "id": group["id"] }),
            bob.token(),
        )
        .await;
    assert_eq!(error_code(&by_member), "FORBIDDEN");
    let deleted = app
        .data(
            "mutation($id: ID!) { deleteGroup(groupId: $id) }",
            json!({ "id": group["id"] }),
            cat.token(),
        )
        .await;
    assert_eq!(deleted["deleteGroup"], group["id"]);
    assert_eq!(group_as(&app, &cat, &group["id"]).await, Value::Null);
    let again = app
        .graphql(
            "mutation($id: ID!) { deleteGroup(groupId: $id) }",
            json!({ "id": group["id"] }),
            cat.token(),
        )
        .await;
    assert_eq!(error_code(&again), "NOT_FOUND");
}

#[tokio::test]
async fn invitations_and_join_requests_arrive_as_notifications() {
    let app = spawn_app().await;
    let [ann, bob, cat] = [
        app.register("ann").await,
        app.register("bob").await,
        app.register("cat").await,
    ];
    let group = create_group(&app, &ann, "lab", "PUBLIC", "APPROVAL").await;
    app.data(
        INVITE,
        json!({ "group": group["id"], "user": cat.user_id }),
        ann.token(),
    )
    .await;
    app.data(
        "mutation($id: ID!) { acceptGroupInvitation(id: $id) { id } }",
        json!({ "id": app
            .data("{ me { groupInvitations { edges { node { id } } } } }", json!({}), cat.token())
            .await["me"]["groupInvitations"]["edges"][0]["node"]["id"] }),
        cat.token(),
    )
    .await;
    app.data(
        SET_ROLE,
        json!({ "group": group["id"], "user": cat.user_id, "role": "ADMIN" }),
        ann.token(),
    )
    .await;

    let subscription = "subscription { notifications { __typename
        ... on GroupInvitationNotification { invitation { group { name } inviter { username } } }
        ... on GroupJoinRequestNotification { request { id user { username } group { name } } }
        ... on GroupJoinRequestApprovedNotification { request { status group { name viewerRole } } } } }";
    let mut sockets = Vec::new();
    for viewer in [&ann, &bob, &cat] {
        let mut socket = app.signed_in_socket(viewer).await;
        socket
            .send(json!({ "id": "1", "type": "subscribe", "payload": { "query": subscription } }))
            .await;
        sockets.push(socket);
    }
    // Subscriptions start listening asynchronously: wait until all three do.
    app.until_live_subscriptions(3).await;
    let [ann_socket, bob_socket, cat_socket] = &mut sockets[..] else {
        unreachable!()
    };

    let asked = app
        .data(JOIN, json!({ "id": group["id"] }), bob.token())
        .await;
    let request_id = asked["requestToJoinGroup"]["joinRequest"]["id"].clone();
    for socket in [&mut *ann_socket, &mut *cat_socket] {
        let message = socket.receive().await;
        let notification = &message["payload"]["data"]["notifications"];
        assert_eq!(notification["__typename"], "GroupJoinRequestNotification");
        assert_eq!(notification["request"]["id"], request_id);
        assert_eq!(notification["request"]["user"]["username"], "bob");
    }
    app.data(
        "mutation($id: ID!) { approveJoinRequest(id: $id) { id } }",
        json!({ "id": request_id }),
        cat.token(),
    )
    .await;
    let approved = bob_socket.receive().await;
    assert_eq!(
        approved["payload"]["data"]["notifications"],
        json!({ "__typename": "GroupJoinRequestApprovedNotification",
                "request": { "status": "APPROVED", "group": { "name": "lab", "viewerRole": "MEMBER" } } })
    );

    let other = create_group(&app, &cat, "other", "PRIVATE", "INVITE_ONLY").await;
    app.data(
        INVITE,
        json!({ "group": other["id"], "user": bob.user_id }),
        cat.token(),
    )
    .await;
    let invited = bob_socket.receive().await;
    assert_eq!(
        invited["payload"]["data"]["notifications"],
        json!({ "__typename": "GroupInvitationNotification",
                "invitation": { "group": { "name": "other" }, "inviter": { "username": "cat" } } })
    );
    // Nothing of bob's invitation reached ann: her next notification is a
    // friend request sent after it.
    let dan = app.register("dan").await;
    app.data(
        "mutation($u: ID!) { sendFriendRequest(input: { userId: $u }) { id } }",
        json!({ "u": ann.user_id }),
        dan.token(),
    )
    .await;
    let marker = ann_socket.nothing_before(|_| true).await;
    assert_eq!(
        marker["payload"]["data"]["notifications"]["__typename"],
        "FriendRequestReceivedNotification",
        "{marker}"
    );
}

#[tokio::test]
async fn a_members_page_costs_the_same_few_statements_whatever_its_size() {
    // A wide batching window, as in the friend-list test (tests/social.rs): a
    // slow CI machine once took over 10 ms to visit 50 members and split a
    // batch in two (statements [5, 6]).
    let app = common::spawn_app_with(|settings| settings.loader_delay_micros = 100_000).await;
    let ann = app.register("ann").await;
    let group = create_group(&app, &ann, "big", "PUBLIC", "OPEN").await;
    for i in 0..50 {
        let member = app.register(&format!("member{i:02}")).await;
        app.data(JOIN, json!({ "id": group["id"] }), member.token())
            .await;
    }
    let query = "query($id: ID!, $n: Int!) { group(id: $id) { viewerRole memberCount
        members(first: $n) { edges { role joinedAt node { username viewerRelationship } } } } }";
    // Once first, so both sizes find the viewer's friend list cached.
    app.data(query, json!({ "id": group["id"], "n": 1 }), ann.token())
        .await;
    let mut costs = Vec::new();
    for n in [5, 50] {
        let before = app.statements.get();
        let data = app
            .data(query, json!({ "id": group["id"], "n": n }), ann.token())
            .await;
        costs.push(app.statements.get() - before);
        assert_eq!(
            data["group"]["members"]["edges"].as_array().unwrap().len(),
            n as usize
        );
    }
    assert_eq!(
        costs[0], costs[1],
        "statements for 5 and 50 members: {costs:?}"
    );
    assert!(
        costs[1] <= 6,
        "a members page should take a few statements: {costs:?}"
    );
}
