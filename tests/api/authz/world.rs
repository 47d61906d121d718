//! The world every row of the matrix calls into: users in every relation the
//! rules tell apart, built once per test, so that each row is one call and
//! two looks.

use serde_json::{Value, json};

use super::{Caller, Person, another_session, person};
use crate::common::{Session, TestApp};

/// A group of the world, with everyone in a role in it.
pub struct Group {
    /// `OPEN`, `APPROVAL` or `INVITE_ONLY`.
    pub policy: &'static str,
    pub private: bool,
    pub id: Value,
    pub conversation: Value,
    /// The invitee's pending invitation.
    pub invitation: Value,
    /// The uninvited's invitation, revoked by the owner.
    pub revoked_invitation: Value,
    /// The decliner's invitation, declined.
    pub declined_invitation: Value,
    /// The requester's pending join request (APPROVAL only).
    pub join_request: Option<Value>,
    pub member_message: Value,
    pub admin_message: Value,
    /// Sent by the removed member before their removal.
    pub removed_message: Value,
}

impl Group {
    /// How the group is named in failures: `the PRIVATE APPROVAL group`.
    pub fn label(&self) -> String {
        let visibility = if self.private { "PRIVATE" } else { "PUBLIC" };
        format!("the {visibility} {} group", self.policy)
    }

    /// What a non-member is answered: a private group does not exist to them.
    pub fn outside(&self) -> &'static str {
        if self.private {
            "NOT_FOUND"
        } else {
            "FORBIDDEN"
        }
    }
}

/// A direct conversation of the world and a message of each side.
pub struct Direct {
    pub id: Value,
    /// Sent by the first of the pair.
    pub first_message: Value,
    /// Sent by the second; the first reacted to it with 👍.
    pub second_message: Value,
}

pub struct World {
    /// Friends, chatting in `friends`; ann is also carl's friend.
    pub ann: Person,
    pub bob: Person,
    pub friends: Direct,
    /// Another session of ann's, live: what others try to revoke.
    pub anns_phone: Value,
    pub stranger: Person,
    /// Friends who chatted in `blocked`, until carl blocked dora. Both daters.
    pub carl: Person,
    pub dora: Person,
    pub blocked: Direct,
    /// Matched, chatted in `unmatched`, then finn unmatched.
    pub eve: Person,
    pub finn: Person,
    pub unmatched: Direct,
    pub ended_match: Value,
    /// Matched with hal, and still are.
    pub gina: Person,
    pub current_match: Value,
    /// Friends chatting in `ivy_and_jon`, for what must end live.
    pub ivy: Person,
    pub jon: Person,
    pub ivy_and_jon: Value,
    /// The groups' roles: the same people in each group.
    pub owner: Person,
    pub admin: Person,
    pub member: Person,
    pub removed: Person,
    /// Blocked by the groups' owner.
    pub shunned: Person,
    /// Holds a pending invitation to each group.
    pub invitee: Person,
    /// Was invited to each group, until the invitation was revoked.
    pub uninvited: Person,
    /// Declined an invitation to each group.
    pub decliner: Person,
    /// Asked to join the APPROVAL group.
    pub requester: Person,
    /// One group of each join policy.
    pub groups: Vec<Group>,
    /// Owns a group of their own, where `other_member` is a member.
    pub other_owner: Person,
    pub other_member: Person,
    /// `asker` asked `asked` to be friends; nobody answered yet.
    pub asker: Person,
    pub asked: Person,
    pub friend_request: Value,
    /// A session of an account deleted since: its token must open nothing.
    pub deleted: Session,
    /// A session its user ended with every other, by `logoutAllSessions`
    /// from another.
    pub logged_out_everywhere: Session,
    /// A profile photo of ann's.
    pub ann_photo: Value,
}

const SEND: &str = "mutation($c: ID!, $b: String!, $k: String!) {
    sendMessage(input: { conversationId: $c, body: $b, clientMessageId: $k }) { id } }";
const REACT: &str =
    "mutation($m: ID!) { addReaction(input: { messageId: $m, emoji: \"👍\" }) { id } }";
const LIKE: &str = "mutation($id: ID!) { like(userId: $id) { match { id conversation { id } } } }";

impl World {
    /// Everyone with no part in the groups' conversations, by how each stands
    /// to a group: none of them may read or write there.
    pub fn group_outsiders(&self) -> [(Caller, &Person); 8] {
        [
            (Caller::Stranger, &self.stranger),
            (Caller::RemovedMember, &self.removed),
            (Caller::OwnerOfAnotherGroup, &self.other_owner),
            (Caller::MemberOfAnotherGroup, &self.other_member),
            (Caller::BlockedBy, &self.shunned),
            (Caller::Invitee, &self.invitee),
            (Caller::Uninvited, &self.uninvited),
            (Caller::Decliner, &self.decliner),
        ]
    }

    pub async fn build(app: &TestApp) -> Self {
        let ann = person(app, "ann").await;
        let bob = person(app, "bob").await;
        let stranger = person(app, "stranger").await;
        let carl = person(app, "carl").await;
        let dora = person(app, "dora").await;
        let eve = person(app, "eve").await;
        let finn = person(app, "finn").await;
        let gina = person(app, "gina").await;
        let hal = person(app, "hal").await;
        let ivy = person(app, "ivy").await;
        let jon = person(app, "jon").await;
        let owner = person(app, "owner").await;
        let admin = person(app, "admin").await;
        let member = person(app, "member").await;
        let removed = person(app, "removed").await;
        let shunned = person(app, "shunned").await;
        let invitee = person(app, "invitee").await;
        let uninvited = person(app, "uninvited").await;
        let decliner = person(app, "decliner").await;
        let requester = person(app, "requester").await;
        let other_owner = person(app, "other_owner").await;
        let other_member = person(app, "other_member").await;
        let asker = person(app, "asker").await;
        let asked = person(app, "asked").await;

        for (a, b) in [
            (&ann, &bob),
            (&carl, &dora),
            (&carl, &ann),
            (&ivy, &jon),
            (&owner, &admin),
            (&owner, &member),
            (&owner, &removed),
        ] {
            app.befriend(&a.session, &b.session).await;
        }
        let friends = chat(app, &ann, &bob, None).await;
        let ivy_and_jon = app.direct_conversation(&ivy.session, &jon.session).await;
        let blocked = chat(app, &carl, &dora, None).await;
        block(app, &carl, &dora).await;

        for (who, gender) in [
            (&eve, "FEMALE"),
            (&finn, "MALE"),
            (&gina, "FEMALE"),
            (&hal, "MALE"),
            (&carl, "MALE"),
            (&dora, "FEMALE"),
        ] {
            dater(app, who, gender).await;
        }
        let (ended_match, conversation) = matched(app, &eve, &finn).await;
        let unmatched = chat(app, &eve, &finn, Some(conversation)).await;
        app.data(
            "mutation($id: ID!) { unmatch(matchId: $id) }",
            json!({ "id": ended_match }),
            finn.session.token(),
        )
        .await;
        let (current_match, _) = matched(app, &gina, &hal).await;

        block(app, &owner, &shunned).await;
        let mut groups = Vec::new();
        for (policy, private) in [("OPEN", false), ("APPROVAL", true), ("INVITE_ONLY", false)] {
            groups.push(
                group(
                    app,
                    policy,
                    private,
                    [
                        &owner, &admin, &member, &removed, &invitee, &uninvited, &decliner,
                        &requester,
                    ],
                )
                .await,
            );
        }
        let elsewhere = app.open_group(&other_owner.session, "elsewhere").await["id"].clone();
        app.data(
            "mutation($g: ID!) { requestToJoinGroup(groupId: $g) { joined } }",
            json!({ "g": elsewhere }),
            other_member.session.token(),
        )
        .await;

        let friend_request = app
            .data(
                "mutation($to: ID!) { sendFriendRequest(input: { userId: $to }) { id } }",
                json!({ "to": asked.id() }),
                asker.session.token(),
            )
            .await["sendFriendRequest"]["id"]
            .clone();

        let (_, anns_phone) = another_session(app, "ann").await;

        let deleted = app.register("gone").await;
        app.data(
            "mutation($p: String!) { deleteAccount(input: { password: $p }) }",
            json!({ "p": crate::common::PASSWORD }),
            deleted.token(),
        )
        .await;

        let everywhere = app.register("everywhere").await;
        let logged_out_everywhere = Session::from_payload(
            &app.login("everywhere", crate::common::PASSWORD).await["data"]["login"],
        );
        app.data(
            "mutation { logoutAllSessions }",
            json!({}),
            everywhere.token(),
        )
        .await;

        let picture = crate::media::jpeg(64, 48);
        let ann_photo = crate::media::upload_photo(app, ann.token().as_deref(), &picture, None)
            .await["data"]["uploadPhoto"]["id"]
            .clone();

        Self {
            ann,
            bob,
            friends,
            anns_phone,
            stranger,
            carl,
            dora,
            blocked,
            eve,
            finn,
            unmatched,
            ended_match,
            gina,
            current_match,
            ivy,
            jon,
            ivy_and_jon,
            owner,
            admin,
            member,
            removed,
            shunned,
            invitee,
            uninvited,
            decliner,
            requester,
            groups,
            other_owner,
            other_member,
            asker,
            asked,
            friend_request,
            deleted,
            logged_out_everywhere,
            ann_photo,
        }
    }
}

async fn send(app: &TestApp, from: &Person, conversation: &Value, body: &str) -> Value {
    app.data(
        SEND,
        // A key is the sender's across their conversations: one each.
        json!({ "c": conversation, "b": body, "k": uuid::Uuid::now_v7().to_string() }),
        from.session.token(),
    )
    .await["sendMessage"]["id"]
        .clone()
}

/// `first` and `second`'s direct conversation (opened, unless given), a
/// message of each, and `first`'s 👍 on `second`'s.
async fn chat(app: &TestApp, first: &Person, second: &Person, id: Option<Value>) -> Direct {
    let id = match id {
        Some(id) => id,
        None => {
            app.direct_conversation(&first.session, &second.session)
                .await
        }
    };
    let first_message = send(app, first, &id, "first").await;
    let second_message = send(app, second, &id, "second").await;
    app.data(REACT, json!({ "m": second_message }), first.session.token())
        .await;
    Direct {
        id,
        first_message,
        second_message,
    }
}

async fn block(app: &TestApp, blocker: &Person, blocked: &Person) {
    app.data(
        "mutation($id: ID!) { blockUser(userId: $id) { id } }",
        json!({ "id": blocked.id() }),
        blocker.session.token(),
    )
    .await;
}

/// Gives `who` what discovery needs (`TestApp::make_dater`).
async fn dater(app: &TestApp, who: &Person, gender: &str) {
    app.make_dater(&who.session, gender).await;
}

/// `a` and `b` like each other: their match's id and conversation's.
async fn matched(app: &TestApp, a: &Person, b: &Person) -> (Value, Value) {
    app.data(LIKE, json!({ "id": b.id() }), a.session.token())
        .await;
    let like = app
        .data(LIKE, json!({ "id": a.id() }), b.session.token())
        .await;
    let found = &like["like"]["match"];
    (found["id"].clone(), found["conversation"]["id"].clone())
}

/// A group of `policy` owned by `owner`, with `admin`, `member` and `removed`
/// added (each sends a message, then `removed` is removed), an invitation to
/// `invitee` (and one each to `uninvited`, revoked, and to `decliner`,
/// declined), and for APPROVAL a request from `requester`; made private after
/// the request, since only a visible group can be asked to join.
async fn group(
    app: &TestApp,
    policy: &'static str,
    private: bool,
    [
        owner,
        admin,
        member,
        removed,
        invitee,
        uninvited,
        decliner,
        requester,
    ]: [&Person; 8],
) -> Group {
    let created = app
        .data(
            "mutation($p: GroupJoinPolicy!) { createGroup(input: { name: \"club\",
                visibility: PUBLIC, joinPolicy: $p }) { id conversation { id } } }",
            json!({ "p": policy }),
            owner.session.token(),
        )
        .await["createGroup"]
        .clone();
    let id = created["id"].clone();
    let conversation = created["conversation"]["id"].clone();
    for user in [admin, member, removed] {
        app.data(
            "mutation($g: ID!, $u: ID!) { addGroupMember(input: { groupId: $g, userId: $u }) { id } }",
            json!({ "g": id, "u": user.id() }),
            owner.session.token(),
        )
        .await;
    }
    app.data(
        "mutation($g: ID!, $u: ID!) { setGroupMemberRole(input: { groupId: $g, userId: $u,
            role: ADMIN }) { role } }",
        json!({ "g": id, "u": admin.id() }),
        owner.session.token(),
    )
    .await;
    let member_message = send(app, member, &conversation, "from a member").await;
    let admin_message = send(app, admin, &conversation, "from an admin").await;
    let removed_message = send(app, removed, &conversation, "from the removed").await;
    app.data(
        "mutation($g: ID!, $u: ID!) { removeGroupMember(input: { groupId: $g, userId: $u }) { id } }",
        json!({ "g": id, "u": removed.id() }),
        owner.session.token(),
    )
    .await;
    let invite = async |who: &Person| {
        app.data(
            "mutation($g: ID!, $u: ID!) { inviteToGroup(input: { groupId: $g, userId: $u }) { id } }",
            json!({ "g": id, "u": who.id() }),
            owner.session.token(),
        )
        .await["inviteToGroup"]["id"]
            .clone()
    };
    let invitation = invite(invitee).await;
    let revoked_invitation = invite(uninvited).await;
    let declined_invitation = invite(decliner).await;
    app.data(
        "mutation($id: ID!) { revokeGroupInvitation(id: $id) { id } }",
        json!({ "id": revoked_invitation }),
        owner.session.token(),
    )
    .await;
    app.data(
        "mutation($id: ID!) { declineGroupInvitation(id: $id) { id } }",
        json!({ "id": declined_invitation }),
        decliner.session.token(),
    )
    .await;
    let join_request = match policy {
        "APPROVAL" => Some(
            app.data(
                "mutation($g: ID!) { requestToJoinGroup(groupId: $g) { joinRequest { id } } }",
                json!({ "g": id }),
                requester.session.token(),
            )
            .await["requestToJoinGroup"]["joinRequest"]["id"]
                .clone(),
        ),
        _ => None,
    };
    if private {
        app.data(
            "mutation($g: ID!) { updateGroup(input: { groupId: $g, visibility: PRIVATE }) { id } }",
            json!({ "g": id }),
            owner.session.token(),
        )
        .await;
    }
    Group {
        policy,
        private,
        id,
        conversation,
        invitation,
        revoked_invitation,
        declined_invitation,
        join_request,
        member_message,
        admin_message,
        removed_message,
    }
}
