//! Group events: a group's whole life (settings, members added, joining by
//! each way in, roles, invitations and join requests and every answer to
//! them, leaving, removal, ownership, deletion) told in the order it
//! happened; nothing for a refused change, nor for one that changes nothing.

use serde_json::{Value, json};

use super::*;
use crate::common::{PASSWORD, Session, TestApp, error_code, spawn_app_with};

const CREATE: &str = "mutation($input: CreateGroupInput!) { createGroup(input: $input) { id } }";
const UPDATE: &str = "mutation($input: UpdateGroupInput!) { updateGroup(input: $input) { id } }";
const GROUP_USER: &[(&str, &str)] = &[
    ("add", "addGroupMember"),
    ("remove", "removeGroupMember"),
    ("invite", "inviteToGroup"),
    ("transfer", "transferGroupOwnership"),
];
const SET_ROLE: &str = "mutation($group: ID!, $user: ID!, $role: AssignableGroupRole!) {
    setGroupMemberRole(input: { groupId: $group, userId: $user, role: $role }) { role } }";
const JOIN: &str = "mutation($id: ID!) { requestToJoinGroup(groupId: $id) {
    joined joinRequest { id } } }";

struct Club<'a> {
    app: &'a TestApp,
    id: Value,
}

impl Club<'_> {
    /// `mutation(input: { groupId, userId })` by `who` on `user`: the
    /// whole response.
    async fn on(&self, action: &str, who: &Session, user: &Session) -> Value {
        let mutation = GROUP_USER.iter().find(|(a, _)| *a == action).unwrap().1;
        let selection = if action == "invite" {
            "id status"
        } else {
            "id"
        };
        self.app
            .graphql(
                &format!(
                    "mutation($g: ID!, $u: ID!) {{ {mutation}(input: {{ groupId: $g, userId: $u }}) {{ {selection} }} }}"
                ),
                json!({ "g": self.id, "u": user.user_id }),
                who.token(),
            )
            .await
    }

    /// As [`Club::on`], for a change that must succeed: its payload.
    async fn ok(&self, action: &str, who: &Session, user: &Session) -> Value {
        let response = self.on(action, who, user).await;
        assert!(response.get("errors").is_none(), "{action}: {response:#}");
        response["data"]
            .as_object()
            .unwrap()
            .values()
            .next()
            .unwrap()
            .clone()
    }

    async fn join(&self, who: &Session) -> Value {
        self.app
            .data(JOIN, json!({ "id": self.id }), who.token())
            .await["requestToJoinGroup"]
            .clone()
    }

    async fn answer(&self, mutation: &str, id: &Value, who: &Session) -> Value {
        self.app
            .graphql(
                &format!("mutation($id: ID!) {{ {mutation}(id: $id) {{ id }} }}"),
                json!({ "id": id }),
                who.token(),
            )
            .await
    }

    async fn answered(&self, mutation: &str, id: &Value, who: &Session) {
        let response = self.answer(mutation, id, who).await;
        assert!(response.get("errors").is_none(), "{mutation}: {response:#}");
    }

    async fn set_role(&self, who: &Session, user: &Session, role: &str) {
        self.app
            .data(
                SET_ROLE,
                json!({ "group": self.id, "user": user.user_id, "role": role }),
                who.token(),
            )
            .await;
    }
}

#[tokio::test]
async fn group_events_tell_a_groups_life_in_order() {
    let Some(nats) = OwnNats::start().await else {
        return;
    };
    let app = spawn_app_with(|s| s.nats_url = Some(nats.url())).await;
    let mut users = Vec::new();
    for name in ["own", "mem", "req", "req2", "req3", "inv"] {
        users.push(app.register(&format!("{name}_groups")).await);
    }
    let [own, mem, req, req2, req3, inv] = &users[..] else {
        unreachable!()
    };
    app.befriend(own, mem).await;
    let created = app
        .data(
            CREATE,
            json!({ "input": { "name": "Event club", "description": "for tests",
                "visibility": "PUBLIC", "joinPolicy": "APPROVAL" } }),
            own.token(),
        )
        .await;
    let club = Club {
        app: &app,
        id: created["createGroup"]["id"].clone(),
    };
    let group_id = key(&club.id);
    // A setting changed; an update naming none changes nothing.
    app.data(
        UPDATE,
        json!({ "input": { "groupId": club.id, "name": "Event club 2" } }),
        own.token(),
    )
    .await;
    app.data(
        UPDATE,
        json!({ "input": { "groupId": club.id } }),
        own.token(),
    )
    .await;
    // A friend added (again: nothing), made an admin (again: nothing).
    club.ok("add", own, mem).await;
    club.ok("add", own, mem).await;
    club.set_role(own, mem, "ADMIN").await;
    club.set_role(own, mem, "ADMIN").await;
    // Asked (again: the same request), approved; a member may not change
    // the group.
    let asked = club.join(req).await["joinRequest"]["id"].clone();
    let again = club.join(req).await["joinRequest"]["id"].clone();
    assert_eq!(asked, again);
    club.answered("approveJoinRequest", &asked, own).await;
    let refused = app
        .graphql(
            UPDATE,
            json!({ "input": { "groupId": club.id, "name": "mine now" } }),
            req.token(),
        )
        .await;
    assert_eq!(error_code(&refused), "FORBIDDEN");
    // Asked and withdrawn; asked and rejected by the admin.
    let cancelled = club.join(req2).await["joinRequest"]["id"].clone();
    club.answered("cancelJoinRequest", &cancelled, req2).await;
    let rejected = club.join(req3).await["joinRequest"]["id"].clone();
    club.answered("rejectJoinRequest", &rejected, mem).await;
    // Invited (again: the same invitation) and declined; invited and
    // revoked (accepting it then is NOT_FOUND); invited and accepted.
    let declined = club.ok("invite", own, inv).await;
    assert_eq!(club.ok("invite", own, inv).await["id"], declined["id"]);
    club.answered("declineGroupInvitation", &declined["id"], inv)
        .await;
    let revoked = club.ok("invite", own, inv).await;
    club.answered("revokeGroupInvitation", &revoked["id"], own)
        .await;
    let late = club
        .answer("acceptGroupInvitation", &revoked["id"], inv)
        .await;
    assert_eq!(error_code(&late), "NOT_FOUND");
    let accepted = club.ok("invite", own, inv).await;
    club.answered("acceptGroupInvitation", &accepted["id"], inv)
        .await;
    // Invited, then asking to join: that is a yes to the invitation.
    let taken_up = club.ok("invite", own, req2).await;
    assert_eq!(club.join(req2).await["joined"], true);
    // Asked, then invited: the invitation is the yes to the request.
    let approved_by_invite = club.join(req3).await["joinRequest"]["id"].clone();
    assert_eq!(club.ok("invite", own, req3).await["status"], "ACCEPTED");
    // Removed (again: refused); left; ownership handed over; the old owner
    // may not delete it, the new one does.
    club.ok("remove", own, req).await;
    assert!(club.on("remove", own, req).await.get("errors").is_some());
    app.data(
        "mutation($id: ID!) { leaveGroup(groupId: $id) { id } }",
        json!({ "id": club.id }),
        inv.token(),
    )
    .await;
    club.ok("transfer", own, mem).await;
    let delete = "mutation($id: ID!) { deleteGroup(groupId: $id) }";
    let not_owner = app
        .graphql(delete, json!({ "id": club.id }), own.token())
        .await;
    assert_eq!(error_code(&not_owner), "FORBIDDEN");
    app.data(delete, json!({ "id": club.id }), mem.token())
        .await;

    nats.until("group.deleted", 1).await;
    let events = settled(&app, &nats).await;
    assert_no_duplicates(&events);
    assert_no_secrets(&events, &[PASSWORD, &own.access_token, &inv.refresh_token]);
    let story: Vec<&Value> = events
        .iter()
        .filter(|e| e["data"]["groupId"] == group_id.as_str())
        .collect();
    let keys = [own, mem, req, req2, req3, inv].map(user_key);
    let [own, mem, req, req2, req3, inv] = keys.each_ref().map(String::as_str);
    let summary: Vec<(&str, &str)> = story
        .iter()
        .map(|e| (e["type"].as_str().unwrap(), e["actor"].as_str().unwrap()))
        .collect();
    let expected: Vec<(&str, &str)> = vec![
        ("group.created", own),
        ("group.updated", own),
        ("group.member_joined", own),
        ("group.role_changed", own),
        ("group.join_requested", req),
        ("group.member_joined", own),
        ("group.join_request_approved", own),
        ("group.join_requested", req2),
        ("group.join_request_cancelled", req2),
        ("group.join_requested", req3),
        ("group.join_request_rejected", mem),
        ("group.invitation_sent", own),
        ("group.invitation_declined", inv),
        ("group.invitation_sent", own),
        ("group.invitation_revoked", own),
        ("group.invitation_sent", own),
        ("group.member_joined", inv),
        ("group.invitation_accepted", inv),
        ("group.invitation_sent", own),
        ("group.member_joined", req2),
        ("group.invitation_accepted", req2),
        ("group.join_requested", req3),
        ("group.member_joined", own),
        ("group.join_request_approved", own),
        ("group.member_removed", own),
        ("group.member_left", inv),
        ("group.role_changed", own),
        ("group.role_changed", own),
        ("group.deleted", mem),
    ];
    assert_eq!(summary, expected, "{story:#?}");

    let data = |i: usize| story[i]["data"].clone();
    assert_eq!(
        data(0),
        json!({ "groupId": group_id, "name": "Event club", "description": "for tests",
            "visibility": "PUBLIC", "joinPolicy": "APPROVAL", "ownerId": own })
    );
    assert_eq!(
        data(1),
        json!({ "groupId": group_id, "name": "Event club 2", "description": "for tests",
            "visibility": "PUBLIC", "joinPolicy": "APPROVAL", "changed": ["name"] })
    );
    let joined = |user: &str, via: &str| json!({ "groupId": group_id, "userId": user, "role": "MEMBER", "via": via });
    assert_eq!(data(2), joined(mem, "added"));
    assert_eq!(
        data(3),
        json!({ "groupId": group_id, "userId": mem, "previousRole": "MEMBER", "role": "ADMIN" })
    );
    let request = |id: &Value, user: &str| json!({ "requestId": key(id), "groupId": group_id, "userId": user });
    assert_eq!(data(4), request(&asked, req));
    assert_eq!(data(5), joined(req, "join_request"));
    assert_eq!(data(6), request(&asked, req));
    assert_eq!(data(8), request(&cancelled, req2));
    assert_eq!(data(10), request(&rejected, req3));
    let invitation = |id: &Value, invitee: &str| {
        json!({ "invitationId": key(id), "groupId": group_id,
            "inviterId": own, "inviteeId": invitee })
    };
    assert_eq!(data(11), invitation(&declined["id"], inv));
    assert_eq!(data(12), invitation(&declined["id"], inv));
    assert_eq!(data(14), invitation(&revoked["id"], inv));
    assert_eq!(data(16), joined(inv, "invitation"));
    assert_eq!(data(17), invitation(&accepted["id"], inv));
    assert_eq!(data(19), joined(req2, "invitation"));
    assert_eq!(data(20), invitation(&taken_up["id"], req2));
    assert_eq!(data(22), joined(req3, "join_request"));
    assert_eq!(data(23), request(&approved_by_invite, req3));
    assert_eq!(data(24), json!({ "groupId": group_id, "userId": req }));
    assert_eq!(data(25), json!({ "groupId": group_id, "userId": inv }));
    assert_eq!(
        data(26),
        json!({ "groupId": group_id, "userId": own, "previousRole": "OWNER", "role": "ADMIN" })
    );
    assert_eq!(
        data(27),
        json!({ "groupId": group_id, "userId": mem, "previousRole": "ADMIN", "role": "OWNER" })
    );
    assert_eq!(data(28), json!({ "groupId": group_id }));
}
