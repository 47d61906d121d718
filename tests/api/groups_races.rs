//! Races on one group, run with the requests in flight at once: the member cap
//! holds, an invitation is either accepted or revoked, and a group never has two
//! owners. CI runs these on SQLite and on PostgreSQL, where they are real races
//! between connections.

use crate::common;

use common::{Session, TestApp, spawn_app_with};
use futures_util::future::join_all;
use serde_json::{Value, json};

const CAP: usize = 10;
const JOINERS: usize = 30;

async fn create_group(app: &TestApp, owner: &Session, policy: &str) -> Value {
    app.data(
        "mutation($p: GroupJoinPolicy!) { createGroup(input: { name: \"race\",
            visibility: PUBLIC, joinPolicy: $p }) { id } }",
        json!({ "p": policy }),
        owner.token(),
    )
    .await["createGroup"]["id"]
        .clone()
}

/// memberCount as stored, and the members actually listed.
async fn counts(app: &TestApp, owner: &Session, group: &Value) -> (i64, usize) {
    let data = app
        .data(
            "query($g: ID!) { group(id: $g) { memberCount members(first: 100) { edges { role } } } }",
            json!({ "g": group }),
            owner.token(),
        )
        .await;
    (
        data["group"]["memberCount"].as_i64().unwrap(),
        data["group"]["members"]["edges"].as_array().unwrap().len(),
    )
}

#[tokio::test]
async fn concurrent_joins_never_pass_the_member_cap() {
    let app = spawn_app_with(|settings| {
        settings.group_member_cap = CAP as u32;
        settings.db_max_connections = 10;
    })
    .await;
    let owner = app.register("owner").await;
    let app = &app;
    let joiners =
        join_all((0..JOINERS).map(|i| async move { app.register(&format!("joiner{i}")).await }))
            .await;
    for policy in ["OPEN", "APPROVAL"] {
        let group = create_group(app, &owner, policy).await;
        let joins = join_all(joiners.iter().map(|joiner| {
            app.graphql(
                "mutation($g: ID!) { requestToJoinGroup(groupId: $g) { joined joinRequest { id } } }",
                json!({ "g": group }),
                joiner.token(),
            )
        }))
        .await;
        let mut admitted = 0;
        let mut requests = Vec::new();
        for response in &joins {
            match response["errors"][0]["extensions"]["code"].as_str() {
                None if response["data"]["requestToJoinGroup"]["joined"] == true => admitted += 1,
                None => requests
                    .push(response["data"]["requestToJoinGroup"]["joinRequest"]["id"].clone()),
                Some(code) => assert_eq!(code, "CONFLICT", "{response}"),
            }
        }
        if policy == "APPROVAL" {
            assert_eq!(requests.len(), JOINERS, "every request is recorded");
            let approvals = join_all(requests.iter().map(|id| {
                app.graphql(
                    "mutation($id: ID!) { approveJoinRequest(id: $id) { status } }",
                    json!({ "id": id }),
                    owner.token(),
                )
            }))
            .await;
            for response in &approvals {
                match response["errors"][0]["extensions"]["code"].as_str() {
                    None => admitted += 1,
                    Some(code) => assert_eq!(code, "CONFLICT", "{response}"),
                }
            }
        }
        assert_eq!(
            admitted,
            CAP - 1,
            "{policy}: the owner and {} others fit",
            CAP - 1
        );
        assert_eq!(
            counts(app, &owner, &group).await,
            (CAP as i64, CAP),
            "{policy}"
        );
    }
}

#[tokio::test]
async fn an_invitation_accepted_while_revoked_has_one_outcome() {
    let app = spawn_app_with(|_| {}).await;
    let owner = app.register("owner").await;
    let group = create_group(&app, &owner, "INVITE_ONLY").await;
    for round in 0..8 {
        let guest = app.register(&format!("guest{round}")).await;
        let invitation = app
            .data(
                "mutation($g: ID!, $u: ID!) { inviteToGroup(input: { groupId: $g, userId: $u }) { id } }",
                json!({ "g": group, "u": guest.user_id }),
                owner.token(),
            )
            .await["inviteToGroup"]["id"]
            .clone();
        let answers = app
            .at_once(&[
                (
                    "mutation($id: ID!) { acceptGroupInvitation(id: $id) { status } }",
                    json!({ "id": invitation }),
                    guest.token(),
                ),
                (
                    "mutation($id: ID!) { revokeGroupInvitation(id: $id) { status } }",
                    json!({ "id": invitation }),
                    owner.token(),
                ),
            ])
            .await;
        common::the_loser(&answers, "NOT_FOUND");
        let accepted = answers[0].get("errors").is_none();
        let role = app
            .data(
                "query($g: ID!) { group(id: $g) { viewerRole } }",
                json!({ "g": group }),
                guest.token(),
            )
            .await["group"]["viewerRole"]
            .clone();
        assert_eq!(role == "MEMBER", accepted, "round {round}: {role}");
    }
    let (count, listed) = counts(&app, &owner, &group).await;
    assert_eq!(count as usize, listed, "memberCount matches the rows");
}

#[tokio::test]
async fn ownership_handed_to_two_members_at_once_goes_to_one() {
    let app = spawn_app_with(|_| {}).await;
    let owner = app.register("owner").await;
    let (ann, bob) = (app.register("ann").await, app.register("bob").await);
    let transfer = "mutation($g: ID!, $u: ID!) {
        transferGroupOwnership(input: { groupId: $g, userId: $u }) { id } }";
    for round in 0..8 {
        let group = create_group(&app, &owner, "OPEN").await;
        for member in [&ann, &bob] {
            app.data(
                "mutation($g: ID!) { requestToJoinGroup(groupId: $g) { joined } }",
                json!({ "g": group }),
                member.token(),
            )
            .await;
        }
        let answers = app
            .at_once(&[
                (
                    transfer,
                    json!({ "g": group, "u": ann.user_id }),
                    owner.token(),
                ),
                (
                    transfer,
                    json!({ "g": group, "u": bob.user_id }),
                    owner.token(),
                ),
            ])
            .await;
        // The old owner is an admin by then.
        common::the_loser(&answers, "FORBIDDEN");
        let owners = app
            .data(
                "query($g: ID!) { group(id: $g) { members(role: OWNER) { edges { node { id } } } } }",
                json!({ "g": group }),
                owner.token(),
            )
            .await;
        assert_eq!(
            owners["group"]["members"]["edges"]
                .as_array()
                .unwrap()
                .len(),
            1,
            "round {round}"
        );
    }
}
