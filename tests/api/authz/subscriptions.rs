//! Subscriptions: who may not start one is answered at once (an `error`
//! frame with its code, or, for a session that ended, the socket refused at
//! `connection_init` with 4403); who may not hear something hears nothing
//! (proved with a marker that travels the same subscription after the
//! action); and every subscription of a session ends when the session does,
//! by `revokeSession`, `logoutAllSessions` or `deleteAccount`.

use std::time::Duration;

use serde_json::{Value, json};

use super::{Caller, Caller::*, Person, World, another_session, person};
use crate::common::{PASSWORD, Received, Session, Socket, TestApp, spawn_app};

const NOTIFICATIONS: &str = "subscription { notifications { __typename
    ... on FriendRequestReceivedNotification { request { from { username } } } } }";
const MESSAGES: &str = "subscription($c: ID) { messageAdded(conversationId: $c) { body } }";
const HISTORY: &str =
    "subscription($c: ID) { messageAdded(conversationId: $c, sinceSeq: 0) { body } }";
const EVENTS: &str = "subscription($c: ID!) { conversationEvents(conversationId: $c) {
    __typename ... on MessageAddedEvent { message { body } } } }";
const PRESENCE: &str = "subscription { presenceChanged { user { username } presence } }";

/// One subscription started on one thing of the world, and everyone who
/// must be refused it, with the code of the `error` frame.
struct Row {
    name: &'static str,
    on: String,
    document: &'static str,
    variables: Value,
    /// One who may start it: their ended sessions are refused, as is a socket
    /// without a token.
    signer: Person,
    refusals: Vec<(Caller, Session, &'static str)>,
}

impl Row {
    fn new(
        name: &'static str,
        on: impl Into<String>,
        document: &'static str,
        variables: Value,
        signer: &Person,
    ) -> Self {
        Self {
            name,
            on: on.into(),
            document,
            variables,
            signer: signer.clone(),
            refusals: Vec::new(),
        }
    }

    fn refuse(mut self, caller: Caller, who: &Person, code: &'static str) -> Self {
        self.refusals.push((caller, who.session.clone(), code));
        self
    }
}

fn rows(w: &World) -> Vec<Row> {
    let mut rows = vec![
        Row::new(
            "notifications",
            "the caller's",
            NOTIFICATIONS,
            json!({}),
            &w.ann,
        ),
        Row::new(
            "presenceChanged",
            "the caller's friends",
            PRESENCE,
            json!({}),
            &w.ann,
        ),
        Row::new(
            "messageAdded",
            "every conversation of the caller",
            MESSAGES,
            json!({}),
            &w.ann,
        ),
    ];
    let mut conversation =
        |on: String, id: &Value, signer: &Person, refused: &[(Caller, &Person)]| {
            for (name, document) in [
                ("messageAdded", MESSAGES),
                ("messageAdded", HISTORY),
                ("conversationEvents", EVENTS),
            ] {
                let row = Row::new(name, on.clone(), document, json!({ "c": id }), signer);
                rows.push(refused.iter().fold(row, |row, (caller, who)| {
                    row.refuse(*caller, who, "NOT_FOUND")
                }));
            }
        };
    conversation(
        "ann and bob's conversation".into(),
        &w.friends.id,
        &w.ann,
        &[(Stranger, &w.stranger)],
    );
    // A block ends a direct conversation's feeds, both ways.
    conversation(
        "carl and dora's conversation, carl blocked dora".into(),
        &w.blocked.id,
        &w.carl,
        &[(Blocker, &w.carl), (BlockedBy, &w.dora)],
    );
    for group in &w.groups {
        conversation(
            format!("the conversation of {}", group.label()),
            &group.conversation,
            &w.member,
            &w.group_outsiders(),
        );
    }
    rows
}

/// The subscriptions the table covers, for the completeness test.
pub fn names(w: &World) -> impl Iterator<Item = &'static str> {
    rows(w).into_iter().map(|row| row.name)
}

fn subscribe(id: &str, document: &str, variables: &Value) -> Value {
    json!({ "id": id, "type": "subscribe",
        "payload": { "query": document, "variables": variables } })
}

/// How long a refusal may take to come back.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);

/// The two protocols, each with the type of its subscribing frame.
const PROTOCOLS: [(&str, &str); 2] = [
    ("graphql-transport-ws", "subscribe"),
    ("graphql-ws", "start"),
];

/// An acknowledged socket without a token, speaking `protocol`.
async fn anonymous_socket(app: &TestApp, protocol: &str) -> Socket {
    let mut socket = app.websocket("/graphql", protocol).await;
    socket
        .send(json!({ "type": "connection_init", "payload": {} }))
        .await;
    assert_eq!(socket.receive().await["type"], "connection_ack");
    socket
}

/// What a refused subscription must get: one `error` frame with `code`.
async fn refused(socket: &mut Socket, start: &str, row: &Row, code: &str) -> Result<(), String> {
    let mut frame = subscribe("s", row.document, &row.variables);
    frame["type"] = json!(start);
    socket.send(frame).await;
    // A refusal comes at once; a subscription that started sends nothing.
    let answer = tokio::time::timeout(ANSWER_WITHIN, socket.receive_within(ANSWER_WITHIN * 2));
    let Ok(answer) = answer.await else {
        return Err(format!(
            "expected an error frame {code}, got nothing in {ANSWER_WITHIN:?}: it started"
        ));
    };
    match answer {
        Received::Json(frame)
            if frame["type"] == "error"
                && frame["id"] == "s"
                && frame["payload"][0]["extensions"]["code"] == code =>
        {
            Ok(())
        }
        Received::Json(frame) => Err(format!("expected an error frame {code}, got {frame}")),
        Received::Closed(close) => Err(format!("expected an error frame {code}, closed {close:?}")),
    }
}

/// What a session that ended must get: its socket refused at
/// `connection_init`, 4403, before any subscription.
async fn refused_at_init(app: &TestApp, session: &Session) -> Result<(), String> {
    let mut socket = app.websocket("/graphql", "graphql-transport-ws").await;
    socket
        .send(json!({ "type": "connection_init",
            "payload": { "authorization": format!("Bearer {}", session.access_token) } }))
        .await;
    match socket.receive_within(Duration::from_secs(10)).await {
        Received::Closed(Some(4403)) => Ok(()),
        Received::Json(frame) => Err(format!("expected a close 4403, got {frame}")),
        Received::Closed(close) => Err(format!("expected a close 4403, closed {close:?}")),
    }
}

#[tokio::test]
async fn subscriptions_refuse_who_may_not_start_them() {
    let app = spawn_app().await;
    let world = World::build(&app).await;
    let rows = rows(&world);
    let mut failures = Vec::new();
    let mut count = 0;
    for row in &rows {
        let mut outcomes = Vec::new();
        for (protocol, start) in PROTOCOLS {
            let mut socket = anonymous_socket(&app, protocol).await;
            let outcome = refused(&mut socket, start, row, "UNAUTHENTICATED").await;
            outcomes.push((Anonymous, outcome.map_err(|e| format!("{protocol}: {e}"))));
        }
        for (caller, session) in [
            (LoggedOut, &row.signer.logged_out),
            (Revoked, &row.signer.revoked),
            (DeletedAccount, &world.deleted),
            (LoggedOutEverywhere, &world.logged_out_everywhere),
        ] {
            outcomes.push((caller, refused_at_init(&app, session).await));
        }
        for (caller, session, code) in &row.refusals {
            let mut socket = app.signed_in_socket(session).await;
            outcomes.push((*caller, refused(&mut socket, "subscribe", row, code).await));
        }
        for (caller, outcome) in outcomes {
            count += 1;
            if let Err(failure) = outcome {
                failures.push(format!("{} on {} as {caller}: {failure}", row.name, row.on));
            }
        }
    }
    // None of them is left running.
    app.until_live_subscriptions(0).await;
    println!("{count} rows");
    assert!(
        failures.is_empty(),
        "{} of {count} subscription rows broke the authorization matrix:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A `next` frame of any subscription of the socket carrying `body`, as a
/// message (`messageAdded`) or a message-added event (`conversationEvents`).
fn carries(body: &'static str) -> impl Fn(&Value) -> bool {
    move |frame| {
        let data = &frame["payload"]["data"];
        frame["type"] == "next"
            && (data["messageAdded"]["body"] == body
                || data["conversationEvents"]["message"]["body"] == body)
    }
}

/// Every write of a conversation, as `writer` tries it: each must be
/// refused, FORBIDDEN as after an unmatch.
async fn try_every_write(
    app: &TestApp,
    writer: &Person,
    conversation: &Value,
    own: &Value,
    theirs: &Value,
) {
    for (name, _, document, variables) in super::chat::writes(conversation, own, theirs) {
        let response = app
            .graphql(document, variables, writer.session.token())
            .await;
        assert_eq!(
            response["errors"][0]["extensions"]["code"], "FORBIDDEN",
            "{name} by {}: {response}",
            writer.session.username
        );
    }
}

/// After an unmatch, nothing either side tries reaches the other: not on
/// `messageAdded`, not on `conversationEvents` (edits, tombstones, reactions,
/// typing, read receipts). The marker: a message they may send once they
/// become friends, which travels the same subscriptions.
#[tokio::test]
async fn after_an_unmatch_nothing_reaches_the_other_side() {
    let app = spawn_app().await;
    let w = World::build(&app).await;
    let conversation = json!({ "c": w.unmatched.id });
    let mut sockets = Vec::new();
    for who in [&w.eve, &w.finn] {
        let mut socket = app.signed_in_socket(&who.session).await;
        socket.send(subscribe("m", MESSAGES, &conversation)).await;
        socket.send(subscribe("e", EVENTS, &conversation)).await;
        sockets.push(socket);
    }
    app.until_live_subscriptions(4).await;

    let u = &w.unmatched;
    try_every_write(&app, &w.eve, &u.id, &u.first_message, &u.second_message).await;
    try_every_write(&app, &w.finn, &u.id, &u.second_message, &u.first_message).await;

    app.befriend(&w.eve.session, &w.finn.session).await;
    app.data(
        "mutation($c: ID!) { sendMessage(input: { conversationId: $c, body: \"marker\",
            clientMessageId: \"marker\" }) { id } }",
        conversation.clone(),
        w.eve.session.token(),
    )
    .await;
    for socket in &mut sockets {
        // Once on each subscription.
        socket.nothing_before(carries("marker")).await;
        socket.nothing_before(carries("marker")).await;
    }
}

/// The frames that end a subscription `id` the server ended: `complete`, or
/// an `error` saying why.
async fn ends(socket: &mut Socket, ids: &[&str]) {
    let mut ended = Vec::new();
    while ended.len() < ids.len() {
        let frame = socket.receive().await;
        let id = frame["id"].as_str().unwrap_or_default().to_owned();
        assert!(
            matches!(frame["type"].as_str(), Some("complete" | "error"))
                && ids.contains(&id.as_str()),
            "expected {ids:?} to end, got {frame}"
        );
        ended.push(id);
    }
}

/// A block ends the pair's conversation feeds at once, both sides'; and
/// removing a member ends theirs of the group's conversation.
#[tokio::test]
async fn a_block_or_a_removal_ends_the_feeds_at_once() {
    let app = spawn_app().await;
    let w = World::build(&app).await;
    let direct = json!({ "c": w.ivy_and_jon });
    let mut pair = Vec::new();
    for who in [&w.ivy, &w.jon] {
        let mut socket = app.signed_in_socket(&who.session).await;
        socket.send(subscribe("m", MESSAGES, &direct)).await;
        socket.send(subscribe("e", EVENTS, &direct)).await;
        pair.push(socket);
    }
    let group = json!({ "c": w.groups[0].conversation });
    let mut member = app.signed_in_socket(&w.member.session).await;
    member.send(subscribe("m", MESSAGES, &group)).await;
    member.send(subscribe("e", EVENTS, &group)).await;
    // And every conversation of the member's, which goes on without the
    // group's.
    let mut everything = app.signed_in_socket(&w.member.session).await;
    everything
        .send(subscribe("all", MESSAGES, &json!({})))
        .await;
    app.until_live_subscriptions(7).await;

    app.data(
        "mutation($id: ID!) { blockUser(userId: $id) { id } }",
        json!({ "id": w.jon.id() }),
        w.ivy.session.token(),
    )
    .await;
    for socket in &mut pair {
        ends(socket, &["m", "e"]).await;
    }
    app.until_live_subscriptions(3).await;

    app.data(
        "mutation($g: ID!, $u: ID!) { removeGroupMember(input: { groupId: $g, userId: $u }) { id } }",
        json!({ "g": w.groups[0].id, "u": w.member.id() }),
        w.owner.session.token(),
    )
    .await;
    ends(&mut member, &["m", "e"]).await;
    app.until_live_subscriptions(1).await;

    // The group goes on without the member; the marker, a friend's direct
    // message, comes on the same feed after the group's.
    let send = "mutation($c: ID!, $b: String!) { sendMessage(input: { conversationId: $c,
        body: $b, clientMessageId: $b }) { id } }";
    app.data(
        send,
        json!({ "c": w.groups[0].conversation, "b": "members only" }),
        w.owner.session.token(),
    )
    .await;
    let direct = app
        .direct_conversation(&w.owner.session, &w.member.session)
        .await;
    app.data(
        send,
        json!({ "c": direct, "b": "marker" }),
        w.owner.session.token(),
    )
    .await;
    everything.nothing_before(carries("marker")).await;
}

/// Whom carl blocked cannot reach him with a notification: the marker, a
/// stranger's friend request, comes after dora's tries on the same feed.
#[tokio::test]
async fn a_blocked_user_notifies_nothing() {
    let app = spawn_app().await;
    let w = World::build(&app).await;
    let mut carl = app.signed_in_socket(&w.carl.session).await;
    carl.send(subscribe("n", NOTIFICATIONS, &json!({}))).await;
    app.until_live_subscriptions(1).await;

    for document in [
        "mutation($u: ID!) { sendFriendRequest(input: { userId: $u }) { id } }",
        "mutation($u: ID!) { like(userId: $u) { match { id } } }",
        "mutation($u: ID!) { superLike(userId: $u) { match { id } } }",
    ] {
        let response = app
            .graphql(
                document,
                json!({ "u": w.carl.id() }),
                w.dora.session.token(),
            )
            .await;
        assert_eq!(
            response["errors"][0]["extensions"]["code"], "NOT_FOUND",
            "{response}"
        );
    }
    app.data(
        "mutation($u: ID!) { sendFriendRequest(input: { userId: $u }) { id } }",
        json!({ "u": w.carl.id() }),
        w.stranger.session.token(),
    )
    .await;
    let marker = carl
        .nothing_before(|frame| {
            frame["payload"]["data"]["notifications"]["request"]["from"]["username"] == "stranger"
        })
        .await;
    assert_eq!(marker["type"], "next");
}

/// A join request is told to the group's owner and admins only: not to a
/// plain member, a removed one, nor the owner of another group. The marker
/// for each: a friend request, on the same feed, after the join request.
#[tokio::test]
async fn join_requests_are_told_to_the_groups_managers_only() {
    let app = spawn_app().await;
    let w = World::build(&app).await;
    let approval = w
        .groups
        .iter()
        .find(|group| group.policy == "APPROVAL")
        .expect("an APPROVAL group");
    // Public, so that someone new may ask.
    app.data(
        "mutation($g: ID!) { updateGroup(input: { groupId: $g, visibility: PUBLIC }) { id } }",
        json!({ "g": approval.id }),
        w.owner.session.token(),
    )
    .await;
    let mut sockets = Vec::new();
    for who in [&w.admin, &w.member, &w.removed, &w.other_owner] {
        let mut socket = app.signed_in_socket(&who.session).await;
        socket.send(subscribe("n", NOTIFICATIONS, &json!({}))).await;
        sockets.push(socket);
    }
    app.until_live_subscriptions(4).await;

    app.data(
        "mutation($g: ID!) { requestToJoinGroup(groupId: $g) { joinRequest { id } } }",
        json!({ "g": approval.id }),
        w.asker.session.token(),
    )
    .await;
    let told = sockets[0].receive().await;
    assert_eq!(
        told["payload"]["data"]["notifications"]["__typename"], "GroupJoinRequestNotification",
        "the admin is told: {told}"
    );
    for (socket, who) in sockets[1..]
        .iter_mut()
        .zip([&w.member, &w.removed, &w.other_owner])
    {
        app.data(
            "mutation($u: ID!) { sendFriendRequest(input: { userId: $u }) { id } }",
            json!({ "u": who.id() }),
            w.asked.session.token(),
        )
        .await;
        socket
            .nothing_before(|frame| {
                frame["payload"]["data"]["notifications"]["request"]["from"]["username"] == "asked"
            })
            .await;
    }
}

/// Presence goes to friends only, while they stay friends and let friends
/// see it: not a stranger's, nor across a block made before or while the
/// feed runs, nor a friend's removed meanwhile, nor a friend's who chose
/// ONLY_ME meanwhile, whatever they do. The marker: a friend coming online,
/// on the same feed.
#[tokio::test]
async fn presence_reaches_friends_only() {
    let app = spawn_app().await;
    let w = World::build(&app).await;
    // Friends of carl's when the feed starts: bob is removed and ivy blocks
    // carl while it runs.
    app.befriend(&w.carl.session, &w.bob.session).await;
    app.befriend(&w.carl.session, &w.ivy.session).await;
    app.befriend(&w.carl.session, &w.jon.session).await;
    let mut carl = app.signed_in_socket(&w.carl.session).await;
    carl.send(subscribe("p", PRESENCE, &json!({}))).await;
    app.until_live_subscriptions(1).await;
    app.data(
        "mutation($u: ID!) { removeFriend(userId: $u) { id } }",
        json!({ "u": w.bob.id() }),
        w.carl.session.token(),
    )
    .await;
    app.data(
        "mutation($u: ID!) { blockUser(userId: $u) { id } }",
        json!({ "u": w.carl.id() }),
        w.ivy.session.token(),
    )
    .await;

    app.data(
        "mutation { updateProfile(input: { presenceVisibility: ONLY_ME }) { id } }",
        json!({}),
        w.jon.session.token(),
    )
    .await;

    let mut others = Vec::new();
    for who in [&w.dora, &w.stranger, &w.bob, &w.ivy, &w.jon] {
        others.push(app.signed_in_socket(&who.session).await);
        for status in ["AWAY", "INVISIBLE", "ONLINE"] {
            app.data(
                "mutation($s: PresenceStatus!) { setPresence(status: $s) }",
                json!({ "s": status }),
                who.session.token(),
            )
            .await;
        }
    }
    let _ann = app.signed_in_socket(&w.ann.session).await;
    carl.nothing_before(|frame| {
        frame["payload"]["data"]["presenceChanged"]["user"]["username"] == "ann"
    })
    .await;
}

/// Every subscription of a session ends with it, however it ends: revoked
/// from another device, every session logged out, the account deleted. The
/// socket closes 4403, and nothing is left running.
#[tokio::test]
async fn subscriptions_end_with_their_session() {
    let app = spawn_app().await;
    let ways = [
        (
            "revokeSession",
            "mutation($id: ID!) { revokeSession(id: $id) }",
        ),
        ("logoutAllSessions", "mutation { logoutAllSessions }"),
        (
            "deleteAccount",
            "mutation($p: String!) { deleteAccount(input: { password: $p }) }",
        ),
    ];
    for (index, (way, document)) in ways.into_iter().enumerate() {
        let who = person(&app, &format!("ends_by_{index}")).await;
        // A second live session, the one subscribed: `revokeSession` ends
        // it from the first.
        let (phone, phones) = another_session(&app, &who.session.username).await;
        let mut socket = app.signed_in_socket(&phone).await;
        socket.send(subscribe("n", NOTIFICATIONS, &json!({}))).await;
        socket.send(subscribe("m", MESSAGES, &json!({}))).await;
        socket.send(subscribe("p", PRESENCE, &json!({}))).await;
        app.until_live_subscriptions(3).await;

        // From the first session: the subscribed one is ended by another.
        app.data(
            document,
            json!({ "id": phones, "p": PASSWORD }),
            who.session.token(),
        )
        .await;
        // Before the close, a subscription may end on its own, hearing of
        // the end first: with `complete`, or an error saying the session
        // ended. Nothing else.
        let mut seen = Vec::new();
        let code = loop {
            match socket.receive_within(Duration::from_secs(10)).await {
                Received::Closed(code) => break code,
                Received::Json(frame) => seen.push(frame),
            }
        };
        assert_eq!(code, Some(4403), "{way}: closed 4403 Forbidden");
        for frame in &seen {
            let ended = ["n", "m", "p"].contains(&frame["id"].as_str().unwrap_or_default())
                && (frame["type"] == "complete"
                    || frame["type"] == "error"
                        && frame["payload"][0]["extensions"]["code"] == "UNAUTHENTICATED");
            assert!(ended, "{way}: before the close, {frame}");
        }
        app.until_live_subscriptions(0).await;
    }
}
