//! Conversations and messages through the real server: who may message whom,
//! gapless seqs under concurrent senders, idempotent retries, read pointers,
//! paging, and `messageAdded` with `sinceSeq` replay.

use crate::common;

use common::{Session, Socket, TestApp, error_code, error_field, spawn_app};
use futures_util::future::join_all;
use serde_json::{Value, json};

const DIRECT: &str = "mutation($u: ID!) { directConversation(userId: $u) { id kind unreadCount
    participants { username } } }";
const SEND: &str = "mutation($c: ID!, $b: String!, $k: String!) {
    sendMessage(input: { conversationId: $c, body: $b, clientMessageId: $k }) {
        id seq body sender { username } } }";

async fn send(app: &TestApp, from: &Session, conversation: &Value, body: &str, key: &str) -> Value {
    app.data(
        SEND,
        json!({ "c": conversation, "b": body, "k": key }),
        from.token(),
    )
    .await["sendMessage"]
        .clone()
}

async fn subscribe(
    app: &TestApp,
    viewer: &Session,
    conversation: &Value,
    since: Option<i64>,
) -> Socket {
    let mut socket = app.signed_in_socket(viewer).await;
    socket
        .send(json!({ "id": "m", "type": "subscribe", "payload": {
            "query": "subscription($c: ID!, $s: Int) { messageAdded(conversationId: $c, sinceSeq: $s) {
                seq body sender { username } } }",
            "variables": { "c": conversation, "s": since } } }))
        .await;
    socket
}

/// The next `messageAdded` payload on the socket.
async fn added(socket: &mut Socket) -> Value {
    let message = socket.receive().await;
    assert_eq!(message["type"], "next", "{message}");
    message["payload"]["data"]["messageAdded"].clone()
}

/// The seq of the next `next` message on the socket.
async fn next_seq(socket: &mut Socket) -> i64 {
    let message = socket.receive().await;
    assert_eq!(message["type"], "next", "{message}");
    message["payload"]["data"]["messageAdded"]["seq"]
        .as_i64()
        .unwrap_or_else(|| panic!("a message: {message}"))
}

#[tokio::test]
async fn friends_open_one_direct_conversation_and_strangers_none() {
    let app = spawn_app().await;
    let (ann, bob, conversation) = app.friends_chatting().await;
    let from_bob = app
        .data(DIRECT, json!({ "u": ann.user_id }), bob.token())
        .await["directConversation"]
        .clone();
    assert_eq!(from_bob["id"], conversation, "one conversation per pair");
    assert_eq!(from_bob["kind"], "DIRECT");
    let mut names: Vec<&str> = from_bob["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["username"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["ann", "bob"]);

    let cat = app.register("cat").await;
    let stranger = app
        .graphql(DIRECT, json!({ "u": cat.user_id }), ann.token())
        .await;
    assert_eq!(error_code(&stranger), "FORBIDDEN");
    let myself = app
        .graphql(DIRECT, json!({ "u": ann.user_id }), ann.token())
        .await;
    assert_eq!(error_code(&myself), "BAD_USER_INPUT");
    // A stranger cannot read or write the conversation.
    let peek = app
        .data(
            "query($c: ID!) { conversation(id: $c) { id } }",
            json!({ "c": conversation }),
            cat.token(),
        )
        .await;
    assert_eq!(peek["conversation"], Value::Null);
    let intrude = app
        .graphql(
            SEND,
            json!({ "c": conversation, "b": "hi", "k": "x" }),
            cat.token(),
        )
        .await;
    assert_eq!(error_code(&intrude), "NOT_FOUND");
}

/// A reply quotes its message (`replyTo { body }`): one from another
/// conversation would leak that message to whoever reads the reply.
#[tokio::test]
async fn a_reply_quotes_only_a_message_of_its_own_conversation() {
    const REPLY: &str = "mutation($c: ID!, $r: ID!, $k: String!) {
        sendMessage(input: { conversationId: $c, body: \"re\", clientMessageId: $k,
                             replyToId: $r }) { id replyTo { body } } }";
    let app = spawn_app().await;
    let (ann, bob, with_bob) = app.friends_chatting().await;
    let cat = app.register("cat").await;
    app.befriend(&ann, &cat).await;
    let with_cat = app.direct_conversation(&ann, &cat).await;
    let for_bob = send(&app, &ann, &with_bob, "for bob", "a").await;
    let secret = send(&app, &ann, &with_cat, "for cat only", "b").await;

    let reply = app
        .data(
            REPLY,
            json!({ "c": with_bob, "r": for_bob["id"], "k": "r1" }),
            bob.token(),
        )
        .await;
    assert_eq!(reply["sendMessage"]["replyTo"]["body"], "for bob");
    // Bob is not in Ann's conversation with Cat; Ann is, and may not either.
    for (who, key) in [(&bob, "r2"), (&ann, "r3")] {
        let leak = app
            .graphql(
                REPLY,
                json!({ "c": with_bob, "r": secret["id"], "k": key }),
                who.token(),
            )
            .await;
        assert_eq!(error_code(&leak), "BAD_USER_INPUT", "{leak}");
        assert_eq!(error_field(&leak), Some("replyToId"));
        assert!(!leak.to_string().contains("for cat only"), "{leak}");
    }
}

#[tokio::test]
async fn messages_are_numbered_and_a_retry_is_the_same_message() {
    let app = spawn_app().await;
    let (ann, bob, conversation) = app.friends_chatting().await;
    let first = send(&app, &ann, &conversation, "  hello  ", "k1").await;
    assert_eq!(first["seq"], 1);
    assert_eq!(first["body"], "hello");
    assert_eq!(first["sender"]["username"], "ann");
    let retry = send(&app, &ann, &conversation, "hello (again)", "k1").await;
    assert_eq!(retry, first, "the same clientMessageId is the same message");
    let second = send(&app, &bob, &conversation, "hi ann", "k1").await;
    assert_eq!(second["seq"], 2, "client ids are per sender");
    let cat = app.register("cat").await;
    app.befriend(&ann, &cat).await;
    let with_cat = app
        .data(DIRECT, json!({ "u": cat.user_id }), ann.token())
        .await["directConversation"]["id"]
        .clone();
    let elsewhere = app
        .graphql(
            SEND,
            json!({ "c": with_cat, "b": "hi cat", "k": "k1" }),
            ann.token(),
        )
        .await;
    assert_eq!(
        error_code(&elsewhere),
        "CONFLICT",
        "a client id names one message"
    );

    for (body, key, field) in [
        ("   ", "k9", "body"),
        (&"x".repeat(4001) as &str, "k9", "body"),
        ("ok", "", "clientMessageId"),
    ] {
        let refused = app
            .graphql(
                SEND,
                json!({ "c": conversation, "b": body, "k": key }),
                ann.token(),
            )
            .await;
        assert_eq!(error_code(&refused), "BAD_USER_INPUT");
        assert_eq!(error_field(&refused), Some(field));
    }
    let page = app
        .data(
            "query($c: ID!) { conversation(id: $c) { lastSeq messages { edges { node { seq body } } } } }",
            json!({ "c": conversation }),
            ann.token(),
        )
        .await;
    assert_eq!(
        page["conversation"]["lastSeq"], 2,
        "refused sends took no number"
    );
    assert_eq!(
        page["conversation"]["messages"]["edges"],
        json!([{ "node": { "seq": 1, "body": "hello" } }, { "node": { "seq": 2, "body": "hi ann" } }])
    );
}

#[tokio::test]
async fn concurrent_senders_get_gapless_seqs() {
    let app = spawn_app().await;
    let owner = app.register("owner").await;
    let group = app.open_group(&owner, "busy").await;
    let conversation = group["conversation"]["id"].clone();
    let mut senders = vec![owner];
    for i in 0..3 {
        let member = app.register(&format!("member{i}")).await;
        app.data(
            "mutation($g: ID!) { requestToJoinGroup(groupId: $g) { joined } }",
            json!({ "g": group["id"] }),
            member.token(),
        )
        .await;
        senders.push(member);
    }
    const EACH: usize = 10;
    let (app, conversation) = (&app, &conversation);
    let jobs: Vec<(&Session, String)> = senders
        .iter()
        .flat_map(|sender| (0..EACH).map(move |i| (sender, format!("{}-{i}", sender.username))))
        .collect();
    let sends = jobs.iter().map(|(sender, key)| async move {
        app.data(
            SEND,
            json!({ "c": conversation, "b": format!("message {key}"), "k": key }),
            sender.token(),
        )
        .await["sendMessage"]["seq"]
            .as_i64()
            .unwrap()
    });
    let mut seqs = join_all(sends).await;
    seqs.sort_unstable();
    let expected: Vec<i64> = (1..=(senders.len() * EACH) as i64).collect();
    assert_eq!(seqs, expected);
}

#[tokio::test]
async fn conversations_are_listed_by_activity_with_unread_counts() {
    let app = spawn_app().await;
    let (ann, bob, with_bob) = app.friends_chatting().await;
    let cat = app.register("cat").await;
    app.befriend(&ann, &cat).await;
    let with_cat = app
        .data(DIRECT, json!({ "u": cat.user_id }), ann.token())
        .await["directConversation"]["id"]
        .clone();
    send(&app, &bob, &with_bob, "one", "b1").await;
    send(&app, &bob, &with_bob, "two", "b2").await;
    send(&app, &cat, &with_cat, "meow", "c1").await;
    send(&app, &ann, &with_cat, "hi cat", "a1").await;

    let list = "{ conversations { edges { node { id unreadCount lastMessage { body seq } } } } }";
    let seen = app.data(list, json!({}), ann.token()).await;
    assert_eq!(
        seen["conversations"]["edges"],
        json!([
            { "node": { "id": with_cat, "unreadCount": 0, "lastMessage": { "body": "hi cat", "seq": 2 } } },
            { "node": { "id": with_bob, "unreadCount": 2, "lastMessage": { "body": "two", "seq": 2 } } },
        ]),
        "most recent first; your own message reads what came before it"
    );
    let read = app
        .data(
            "mutation($c: ID!) { markConversationRead(input: { conversationId: $c, upToSeq: 1 }) { unreadCount } }",
            json!({ "c": with_bob }),
            ann.token(),
        )
        .await;
    assert_eq!(read["markConversationRead"]["unreadCount"], 1);
    let back = app
        .data(
            "mutation($c: ID!) { markConversationRead(input: { conversationId: $c, upToSeq: 0 }) { unreadCount } }",
            json!({ "c": with_bob }),
            ann.token(),
        )
        .await;
    assert_eq!(
        back["markConversationRead"]["unreadCount"], 1,
        "a read pointer never moves back"
    );
}

#[tokio::test]
async fn messages_page_forward_and_back_by_seq() {
    let app = spawn_app().await;
    let (ann, _bob, conversation) = app.friends_chatting().await;
    for i in 1..=7 {
        send(
            &app,
            &ann,
            &conversation,
            &format!("m{i}"),
            &format!("k{i}"),
        )
        .await;
    }
    let query = "query($c: ID!, $first: Int, $after: String, $last: Int, $before: String) {
        conversation(id: $c) { messages(first: $first, after: $after, last: $last, before: $before) {
            edges { node { seq } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } } }";
    let seqs = |page: &Value| -> Vec<i64> {
        page["conversation"]["messages"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"]["seq"].as_i64().unwrap())
            .collect()
    };
    let mut forward = Vec::new();
    let mut after = Value::Null;
    loop {
        let page = app
            .data(
                query,
                json!({ "c": conversation, "first": 3, "after": after }),
                ann.token(),
            )
            .await;
        forward.extend(seqs(&page));
        let info = &page["conversation"]["messages"]["pageInfo"];
        if info["hasNextPage"] == false {
            break;
        }
        after = info["endCursor"].clone();
    }
    assert_eq!(forward, (1..=7).collect::<Vec<_>>());

    let latest = app
        .data(query, json!({ "c": conversation, "last": 3 }), ann.token())
        .await;
    assert_eq!(seqs(&latest), [5, 6, 7]);
    let info = &latest["conversation"]["messages"]["pageInfo"];
    assert_eq!(info["hasPreviousPage"], true);
    let earlier = app
        .data(
            query,
            json!({ "c": conversation, "last": 3, "before": info["startCursor"] }),
            ann.token(),
        )
        .await;
    assert_eq!(seqs(&earlier), [2, 3, 4]);
    let both = app
        .graphql(
            query,
            json!({ "c": conversation, "first": 1, "last": 1 }),
            ann.token(),
        )
        .await;
    assert_eq!(error_code(&both), "BAD_USER_INPUT");
}

#[tokio::test]
async fn message_added_delivers_live_messages_to_every_participant() {
    let app = spawn_app().await;
    let (ann, bob, conversation) = app.friends_chatting().await;
    let mut ann_socket = subscribe(&app, &ann, &conversation, None).await;
    let mut bob_socket = subscribe(&app, &bob, &conversation, None).await;
    app.until_live_subscriptions(2).await;
    send(&app, &ann, &conversation, "hello", "k1").await;
    for socket in [&mut ann_socket, &mut bob_socket] {
        let message = socket.receive().await;
        assert_eq!(
            message["payload"]["data"]["messageAdded"],
            json!({ "seq": 1, "body": "hello", "sender": { "username": "ann" } })
        );
    }
    // A retry notifies nobody: the next message is the next frame.
    send(&app, &ann, &conversation, "hello", "k1").await;
    send(&app, &ann, &conversation, "marker", "k2").await;
    let marker = bob_socket.nothing_before(|_| true).await;
    assert_eq!(
        marker["payload"]["data"]["messageAdded"]["body"], "marker",
        "{marker}"
    );

    let cat = app.register("cat").await;
    let mut intruder = subscribe(&app, &cat, &conversation, None).await;
    let refused = intruder.receive().await;
    // Refused at setup: one `error` message, nothing more.
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(
        refused["payload"][0]["extensions"]["code"], "NOT_FOUND",
        "{refused}"
    );
    intruder.send(json!({ "type": "ping" })).await;
    assert_eq!(intruder.receive_with_pongs().await["type"], "pong");
}

#[tokio::test]
async fn since_seq_replays_then_goes_live_with_no_gap_or_duplicate() {
    let app = spawn_app().await;
    let (ann, bob, conversation) = app.friends_chatting().await;
    for i in 1..=30 {
        send(
            &app,
            &ann,
            &conversation,
            &format!("m{i}"),
            &format!("a{i}"),
        )
        .await;
    }
    // Resume from seq 10 while both keep sending.
    let mut socket = subscribe(&app, &bob, &conversation, Some(10)).await;
    let sending = {
        let (app, ann, bob, conversation) = (&app, &ann, &bob, conversation.clone());
        async move {
            let ann_sends = async {
                for i in 31..=50 {
                    send(app, ann, &conversation, &format!("m{i}"), &format!("a{i}")).await;
                }
            };
            let bob_sends = async {
                for i in 0..20 {
                    send(app, bob, &conversation, &format!("b{i}"), &format!("b{i}")).await;
                }
            };
            tokio::join!(ann_sends, bob_sends);
        }
    };
    let receiving = async {
        let mut seqs = Vec::new();
        while seqs.len() < 60 {
            seqs.push(next_seq(&mut socket).await);
        }
        seqs
    };
    let ((), seqs) = tokio::join!(sending, receiving);
    assert_eq!(seqs, (11..=70).collect::<Vec<_>>());
    // No duplicate after them: the next message is the next frame.
    send(&app, &ann, &conversation, "marker", "marker").await;
    let marker = socket.nothing_before(|_| true).await;
    assert_eq!(
        marker["payload"]["data"]["messageAdded"]["seq"], 71,
        "{marker}"
    );
}

#[tokio::test]
async fn leaving_a_group_or_a_block_ends_the_conversation() {
    let app = spawn_app().await;
    let (ann, bob, conversation) = app.friends_chatting().await;
    let mut bob_socket = subscribe(&app, &bob, &conversation, None).await;
    app.until_live_subscriptions(1).await;
    app.data(
        "mutation($u: ID!) { blockUser(userId: $u) { id } }",
        json!({ "u": bob.user_id }),
        ann.token(),
    )
    .await;
    assert_eq!(bob_socket.receive().await["type"], "complete");
    app.until_live_subscriptions(0).await;
    let after_block = app
        .graphql(
            SEND,
            json!({ "c": conversation, "b": "hey?", "k": "k" }),
            bob.token(),
        )
        .await;
    assert_eq!(
        error_code(&after_block),
        "NOT_FOUND",
        "ann blocked bob: she is gone to him"
    );

    let group = app.open_group(&ann, "club").await;
    let cat = app.register("cat").await;
    let joined = app
        .data(
            "mutation($g: ID!) { requestToJoinGroup(groupId: $g) { group { conversation { id } } } }",
            json!({ "g": group["id"] }),
            cat.token(),
        )
        .await;
    let group_conversation = group["conversation"]["id"].clone();
    assert_eq!(
        joined["requestToJoinGroup"]["group"]["conversation"]["id"],
        group_conversation
    );
    let mut cat_socket = subscribe(&app, &cat, &group_conversation, None).await;
    app.until_live_subscriptions(1).await;
    send(&app, &ann, &group_conversation, "welcome", "w").await;
    assert_eq!(next_seq(&mut cat_socket).await, 1);
    app.data(
        "mutation($g: ID!, $u: ID!) { removeGroupMember(input: { groupId: $g, userId: $u }) { id } }",
        json!({ "g": group["id"], "u": cat.user_id }),
        ann.token(),
    )
    .await;
    assert_eq!(cat_socket.receive().await["type"], "complete");
    let removed = app
        .graphql(
            SEND,
            json!({ "c": group_conversation, "b": "wait", "k": "c" }),
            cat.token(),
        )
        .await;
    assert_eq!(error_code(&removed), "NOT_FOUND");
}

#[tokio::test]
async fn subscriptions_refuse_blocked_users_and_impossible_resume_points() {
    let app = spawn_app().await;
    let (ann, bob, conversation) = app.friends_chatting().await;
    send(&app, &ann, &conversation, "one", "k1").await;
    let mut ahead = subscribe(&app, &bob, &conversation, Some(5)).await;
    let refused = ahead.receive().await;
    // Refused at setup: one `error` message, nothing more.
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(
        refused["payload"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{refused}"
    );

    app.data(
        "mutation($u: ID!) { blockUser(userId: $u) { id } }",
        json!({ "u": ann.user_id }),
        bob.token(),
    )
    .await;
    for viewer in [&ann, &bob] {
        let mut socket = subscribe(&app, viewer, &conversation, Some(0)).await;
        let refused = socket.receive().await;
        // Refused at setup: one `error` message, nothing more.
        assert_eq!(refused["type"], "error", "{refused}");
        assert_eq!(
            refused["payload"][0]["extensions"]["code"], "NOT_FOUND",
            "{refused}"
        );
    }
}

#[tokio::test]
async fn a_deleted_account_leaves_the_other_side_its_conversation() {
    let app = spawn_app().await;
    let (ann, bob, conversation) = app.friends_chatting().await;
    send(&app, &ann, &conversation, "bye", "k1").await;
    app.data(
        "mutation($p: String!) { deleteAccount(input: { password: $p }) }",
        json!({ "p": common::PASSWORD }),
        ann.token(),
    )
    .await;
    let kept = app
        .data(
            "query($c: ID!) { conversation(id: $c) { participants { username }
                messages { edges { node { body sender { username } } } } } }",
            json!({ "c": conversation }),
            bob.token(),
        )
        .await;
    assert_eq!(
        kept["conversation"],
        json!({ "participants": [{ "username": "bob" }],
                "messages": { "edges": [{ "node": { "body": "bye", "sender": null } }] } })
    );
    let to_nobody = app
        .graphql(
            SEND,
            json!({ "c": conversation, "b": "hello?", "k": "b1" }),
            bob.token(),
        )
        .await;
    assert_eq!(error_code(&to_nobody), "NOT_FOUND");
}

#[tokio::test]
async fn a_deleted_group_takes_its_conversation_even_from_a_recent_sender() {
    let app = spawn_app().await;
    let ann = app.register("ann").await;
    let group = app.open_group(&ann, "brief").await;
    let conversation = group["conversation"]["id"].clone();
    // A send just before: the server has seen this conversation and may keep
    // what it learnt of it.
    send(&app, &ann, &conversation, "last words", "l1").await;
    app.data(
        "mutation($id: ID!) { deleteGroup(groupId: $id) }",
        json!({ "id": group["id"] }),
        ann.token(),
    )
    .await;
    let into_nothing = app
        .graphql(
            SEND,
            json!({ "c": conversation, "b": "anyone?", "k": "l2" }),
            ann.token(),
        )
        .await;
    assert_eq!(error_code(&into_nothing), "NOT_FOUND", "{into_nothing}");
}

#[tokio::test]
async fn message_added_without_a_conversation_follows_all_of_them_and_new_ones() {
    let app = spawn_app().await;
    let (ann, bob, direct) = app.friends_chatting().await;
    let mut socket = app.signed_in_socket(&bob).await;
    socket
        .send(json!({ "id": "all", "type": "subscribe", "payload": {
            "query": "subscription { messageAdded { seq body conversation { kind } } }" } }))
        .await;
    app.until_live_subscriptions(1).await;
    send(&app, &ann, &direct, "direct one", "a1").await;
    assert_eq!(
        added(&mut socket).await,
        json!({ "seq": 1, "body": "direct one", "conversation": { "kind": "DIRECT" } })
    );

    // A group joined after subscribing is followed from the join on.
    let group = app.open_group(&ann, "later").await;
    let group_conversation = group["conversation"]["id"].clone();
    send(&app, &ann, &group_conversation, "before bob", "g1").await;
    app.data(
        "mutation($g: ID!) { requestToJoinGroup(groupId: $g) { joined } }",
        json!({ "g": group["id"] }),
        bob.token(),
    )
    .await;
    send(&app, &ann, &group_conversation, "welcome bob", "g2").await;
    assert_eq!(
        added(&mut socket).await,
        json!({ "seq": 2, "body": "welcome bob", "conversation": { "kind": "GROUP" } })
    );

    // Removed from the group: its messages stop, the rest go on.
    app.data(
        "mutation($g: ID!, $u: ID!) { removeGroupMember(input: { groupId: $g, userId: $u }) { id } }",
        json!({ "g": group["id"], "u": bob.user_id }),
        ann.token(),
    )
    .await;
    send(&app, &ann, &group_conversation, "without bob", "g3").await;
    send(&app, &ann, &direct, "direct two", "a2").await;
    assert_eq!(added(&mut socket).await["body"], "direct two");

    let mut resume_all = app.signed_in_socket(&bob).await;
    resume_all
        .send(json!({ "id": "r", "type": "subscribe", "payload": {
            "query": "subscription { messageAdded(sinceSeq: 1) { seq } }" } }))
        .await;
    let refused = resume_all.receive().await;
    // Refused at setup: one `error` message, nothing more.
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(
        refused["payload"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{refused}"
    );
}
