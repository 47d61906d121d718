//! The authorization matrix of groups: every group mutation called as the
//! group's OWNER, an ADMIN, a MEMBER, a non-member and a user the owner blocked,
//! on a PUBLIC and on a PRIVATE group. Each call's outcome is asserted, and a
//! refused call must leave the group exactly as it was.

use crate::common;

use common::{Session, TestApp, spawn_app};
use serde_json::{Value, json};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Caller {
    Owner,
    Admin,
    Member,
    Outsider,
    /// Blocked by the owner.
    Blocked,
}

const CALLERS: [Caller; 5] = [
    Caller::Owner,
    Caller::Admin,
    Caller::Member,
    Caller::Outsider,
    Caller::Blocked,
];

/// Everyone a group of the matrix involves.
struct Cast {
    owner: Session,
    admin: Session,
    member: Session,
    outsider: Session,
    blocked: Session,
    /// A friend of the owner and the admin, not in the group: added or invited.
    target: Session,
    /// A second member: removed, promoted or made owner.
    extra: Session,
    /// Holds a pending invitation.
    invitee: Session,
    /// Has a pending join request.
    requester: Session,
}

impl Cast {
    async fn new(app: &TestApp) -> Self {
        let cast = Self {
            owner: app.register("owner").await,
            admin: app.register("admin").await,
            member: app.register("member").await,
            outsider: app.register("outsider").await,
            blocked: app.register("blocked").await,
            target: app.register("target").await,
            extra: app.register("extra").await,
            invitee: app.register("invitee").await,
            requester: app.register("requester").await,
        };
        for (a, b) in [
            (&cast.owner, &cast.admin),
            (&cast.owner, &cast.member),
            (&cast.owner, &cast.extra),
            (&cast.owner, &cast.target),
            (&cast.admin, &cast.target),
        ] {
            app.befriend(a, b).await;
        }
        app.data(
            "mutation($id: ID!) { blockUser(userId: $id) { id } }",
            json!({ "id": cast.blocked.user_id }),
            cast.owner.token(),
        )
        .await;
        cast
    }

    fn caller(&self, caller: Caller) -> &Session {
        match caller {
            Caller::Owner => &self.owner,
            Caller::Admin => &self.admin,
            Caller::Member => &self.member,
            Caller::Outsider => &self.outsider,
            Caller::Blocked => &self.blocked,
        }
    }
}

/// A group as the matrix needs it, and the ids the mutations act on.
struct Fixture {
    group: Value,
    invitation: Value,
    join_request: Value,
}

/// A fresh APPROVAL group: owner, admin, member and extra in it, a pending
/// invitation and a pending join request; made private after the request, since
/// only a visible group can be asked to join.
async fn fixture(app: &TestApp, cast: &Cast, private: bool) -> Fixture {
    let owner = cast.owner.token();
    let group = app
        .data(
            "mutation { createGroup(input: { name: \"matrix\", visibility: PUBLIC,
                joinPolicy: APPROVAL }) { id } }",
            json!({}),
            owner,
        )
        .await["createGroup"]["id"]
        .clone();
    for user in [&cast.admin, &cast.member, &cast.extra] {
        app.data(
            "mutation($g: ID!, $u: ID!) { addGroupMember(input: { groupId: $g, userId: $u }) { id } }",
            json!({ "g": group, "u": user.user_id }),
            owner,
        )
        .await;
    }
    app.data(
        "mutation($g: ID!, $u: ID!) { setGroupMemberRole(input: { groupId: $g, userId: $u,
            role: ADMIN }) { role } }",
        json!({ "g": group, "u": cast.admin.user_id }),
        owner,
    )
    .await;
    let invitation = app
        .data(
            "mutation($g: ID!, $u: ID!) { inviteToGroup(input: { groupId: $g, userId: $u }) { id } }",
            json!({ "g": group, "u": cast.invitee.user_id }),
            owner,
        )
        .await["inviteToGroup"]["id"]
        .clone();
    let join_request = app
        .data(
            "mutation($g: ID!) { requestToJoinGroup(groupId: $g) { joinRequest { id } } }",
            json!({ "g": group }),
            cast.requester.token(),
        )
        .await["requestToJoinGroup"]["joinRequest"]["id"]
        .clone();
    if private {
        app.data(
            "mutation($g: ID!) { updateGroup(input: { groupId: $g, visibility: PRIVATE }) { id } }",
            json!({ "g": group }),
            owner,
        )
        .await;
    }
    Fixture {
        group,
        invitation,
        join_request,
    }
}

/// Everything about the group its owner can see.
async fn snapshot(app: &TestApp, cast: &Cast, group: &Value) -> Value {
    app.data(
        "query($g: ID!) { group(id: $g) { name description visibility joinPolicy memberCount
            members(first: 100) { edges { role node { username } } }
            invitations { edges { node { id } } }
            joinRequests { edges { node { id } } } } }",
        json!({ "g": group }),
        cast.owner.token(),
    )
    .await["group"]
        .clone()
}

/// The mutations of the matrix: name, document, variables.
fn mutations(cast: &Cast, fixture: &Fixture) -> Vec<(&'static str, &'static str, Value)> {
    let g = &fixture.group;
    let user = |session: &Session| json!({ "g": g, "u": session.user_id });
    vec![
        (
            "updateGroup",
            "mutation($g: ID!) { updateGroup(input: { groupId: $g, name: \"renamed\" }) { id } }",
            json!({ "g": g }),
        ),
        (
            "deleteGroup",
            "mutation($g: ID!) { deleteGroup(groupId: $g) }",
            json!({ "g": g }),
        ),
        (
            "leaveGroup",
            "mutation($g: ID!) { leaveGroup(groupId: $g) { id } }",
            json!({ "g": g }),
        ),
        (
            "addGroupMember",
            "mutation($g: ID!, $u: ID!) { addGroupMember(input: { groupId: $g, userId: $u }) { id } }",
            user(&cast.target),
        ),
        (
            "removeGroupMember",
            "mutation($g: ID!, $u: ID!) { removeGroupMember(input: { groupId: $g, userId: $u }) { id } }",
            user(&cast.extra),
        ),
        (
            "setGroupMemberRole",
            "mutation($g: ID!, $u: ID!) { setGroupMemberRole(input: { groupId: $g, userId: $u,
                role: ADMIN }) { role } }",
            user(&cast.extra),
        ),
        (
            "transferGroupOwnership",
            "mutation($g: ID!, $u: ID!) { transferGroupOwnership(input: { groupId: $g,
                userId: $u }) { id } }",
            user(&cast.extra),
        ),
        (
            "inviteToGroup",
            "mutation($g: ID!, $u: ID!) { inviteToGroup(input: { groupId: $g, userId: $u }) { id } }",
            user(&cast.target),
        ),
        (
            "revokeGroupInvitation",
            "mutation($id: ID!) { revokeGroupInvitation(id: $id) { status } }",
            json!({ "id": fixture.invitation }),
        ),
        (
            "acceptGroupInvitation",
            "mutation($id: ID!) { acceptGroupInvitation(id: $id) { status } }",
            json!({ "id": fixture.invitation }),
        ),
        (
            "declineGroupInvitation",
            "mutation($id: ID!) { declineGroupInvitation(id: $id) { status } }",
            json!({ "id": fixture.invitation }),
        ),
        (
            "requestToJoinGroup",
            "mutation($g: ID!) { requestToJoinGroup(groupId: $g) { joined } }",
            json!({ "g": g }),
        ),
        (
            "approveJoinRequest",
            "mutation($id: ID!) { approveJoinRequest(id: $id) { status } }",
            json!({ "id": fixture.join_request }),
        ),
        (
            "rejectJoinRequest",
            "mutation($id: ID!) { rejectJoinRequest(id: $id) { status } }",
            json!({ "id": fixture.join_request }),
        ),
        (
            "cancelJoinRequest",
            "mutation($id: ID!) { cancelJoinRequest(id: $id) { status } }",
            json!({ "id": fixture.join_request }),
        ),
    ]
}

/// The rule under test: `None` when the call succeeds, else its error code.
fn expected(mutation: &str, caller: Caller, private: bool) -> Option<&'static str> {
    use Caller::*;
    // To a non-member, a private group does not exist.
    let outside = if private { "NOT_FOUND" } else { "FORBIDDEN" };
    match (mutation, caller) {
        (
            "updateGroup" | "addGroupMember" | "removeGroupMember" | "setGroupMemberRole"
            | "inviteToGroup",
            Owner | Admin,
        ) => None,
        (
            "updateGroup" | "addGroupMember" | "removeGroupMember" | "setGroupMemberRole"
            | "inviteToGroup",
            Member,
        ) => Some("FORBIDDEN"),
        ("deleteGroup" | "transferGroupOwnership", Owner) => None,
        ("deleteGroup" | "transferGroupOwnership", Admin | Member) => Some("FORBIDDEN"),
        ("leaveGroup", Owner) => Some("FORBIDDEN"),
        ("leaveGroup", Admin | Member) => None,
        ("requestToJoinGroup", Owner | Admin | Member) => None,
        ("requestToJoinGroup", Outsider) => (private).then_some("NOT_FOUND"),
        ("requestToJoinGroup", Blocked) => Some(outside),
        ("revokeGroupInvitation" | "approveJoinRequest" | "rejectJoinRequest", Owner | Admin) => {
            None
        }
        ("revokeGroupInvitation" | "approveJoinRequest" | "rejectJoinRequest", _) => {
            Some("NOT_FOUND")
        }
        // Someone else's invitation or request.
        ("acceptGroupInvitation" | "declineGroupInvitation" | "cancelJoinRequest", _) => {
            Some("NOT_FOUND")
        }
        (_, Outsider | Blocked) => Some(outside),
        _ => unreachable!("no rule for {mutation} as {caller:?}"),
    }
}

async fn run_matrix(private: bool) {
    let app = spawn_app().await;
    let cast = Cast::new(&app).await;
    let names: Vec<&str> = {
        let fixture = fixture(&app, &cast, private).await;
        mutations(&cast, &fixture)
            .into_iter()
            .map(|(name, _, _)| name)
            .collect()
    };
    let mut failures = Vec::new();
    for (index, name) in names.iter().enumerate() {
        for caller in CALLERS {
            let fixture = fixture(&app, &cast, private).await;
            let (_, document, variables) = mutations(&cast, &fixture).swap_remove(index);
            let before = snapshot(&app, &cast, &fixture.group).await;
            let response = app
                .graphql(document, variables, cast.caller(caller).token())
                .await;
            let code = response["errors"][0]["extensions"]["code"]
                .as_str()
                .map(str::to_owned);
            let want = expected(name, caller, private);
            if code.as_deref() != want {
                failures.push(format!(
                    "{name} as {caller:?}: expected {want:?}, got {code:?}: {response}"
                ));
                continue;
            }
            let after = snapshot(&app, &cast, &fixture.group).await;
            // A member asking to join is the one success that changes nothing.
            let no_op = *name == "requestToJoinGroup"
                && matches!(caller, Caller::Owner | Caller::Admin | Caller::Member);
            match (want.is_some(), after == before) {
                (true, false) => failures.push(format!(
                    "{name} as {caller:?} was refused but changed the group:\n{before}\n{after}"
                )),
                (false, true) if !no_op => failures.push(format!(
                    "{name} as {caller:?} succeeded but changed nothing: {response}"
                )),
                _ => {}
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} calls broke the matrix:\n{}",
        failures.len(),
        names.len() * CALLERS.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn every_group_mutation_as_every_caller_on_a_public_group() {
    run_matrix(false).await;
}

#[tokio::test]
async fn every_group_mutation_as_every_caller_on_a_private_group() {
    run_matrix(true).await;
}
