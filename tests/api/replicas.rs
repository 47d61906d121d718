//! A scaled-out deployment in miniature: two `kith` processes sharing one
//! database and one Redis. Whatever a user does through one replica, the other
//! must show at once. These need a Redis (`KITH_TEST_REDIS_URL`, set in CI's
//! PostgreSQL + Redis run); without one they are reported skipped.

use crate::common;

use std::time::Duration;

use common::{Session, Socket, TestApp, error_code};
use serde_json::{Value, json};

/// Two replicas, or a skipped test when there is no Redis to share.
macro_rules! replicas {
    ($count:expr) => {
        replicas!($count, |_| {})
    };
    ($count:expr, $configure:expr) => {
        match common::spawn_replicas($count, $configure).await {
            Some(replicas) => replicas,
            None => {
                common::skipped("replicas need KITH_TEST_REDIS_URL");
                return;
            }
        }
    };
}

const MESSAGE_ADDED: &str = "subscription($c: ID!) {
    messageAdded(conversationId: $c, sinceSeq: 0) { seq body } }";

/// Two friends, registered on different replicas, and their conversation.
async fn friends_apart(a: &TestApp, b: &TestApp) -> (Session, Session, Value) {
    let ann = a.register("ann").await;
    let bob = b.register("bob").await;
    a.befriend(&ann, &bob).await;
    let conversation = a.direct_conversation(&ann, &bob).await;
    (ann, bob, conversation)
}

async fn send(app: &TestApp, from: &Session, conversation: &Value, body: &str) -> i64 {
    app.data(
        "mutation($c: ID!, $b: String!, $k: String!) {
            sendMessage(input: { conversationId: $c, body: $b, clientMessageId: $k }) { seq } }",
        json!({ "c": conversation, "b": body, "k": uuid::Uuid::now_v7().to_string() }),
        from.token(),
    )
    .await["sendMessage"]["seq"]
        .as_i64()
        .unwrap()
}

/// The `messageAdded` payload of the next data message (`next` or `data`).
async fn added(socket: &mut Socket) -> Value {
    let message = socket.receive().await;
    assert!(
        matches!(message["type"].as_str(), Some("next" | "data")),
        "{message}"
    );
    message["payload"]["data"]["messageAdded"].clone()
}

#[tokio::test]
async fn messages_sent_through_one_replica_reach_sockets_on_the_other() {
    let replicas = replicas!(2);
    let (a, b) = (&replicas[0], &replicas[1]);
    let (ann, bob, conversation) = friends_apart(a, b).await;
    assert_eq!(send(a, &ann, &conversation, "before").await, 1);

    // Bob listens on replica B over both protocols. Each replays the first
    // message, which proves it listens live from then on.
    let mut modern = b.signed_in_socket(&bob).await;
    modern
        .send(json!({ "id": "m", "type": "subscribe", "payload": {
            "query": MESSAGE_ADDED, "variables": { "c": conversation } } }))
        .await;
    // Legacy `graphql-ws` (subscriptions-transport-ws).
    let mut legacy = b
        .signed_in_socket_on("/graphql/ws", "graphql-ws", &bob)
        .await;
    legacy
        .send(json!({ "id": "l", "type": "start", "payload": {
            "query": MESSAGE_ADDED, "variables": { "c": conversation } } }))
        .await;
    for socket in [&mut modern, &mut legacy] {
        assert_eq!(added(socket).await["body"], "before");
    }

    // Sent through A, delivered by B, in order.
    for (index, body) in ["across", "and again"].into_iter().enumerate() {
        let seq = send(a, &ann, &conversation, body).await;
        assert_eq!(seq, index as i64 + 2);
        for socket in [&mut modern, &mut legacy] {
            let message = added(socket).await;
            assert_eq!(
                (message["seq"].as_i64(), &message["body"]),
                (Some(seq), &json!(body))
            );
        }
    }
    // And back: Bob answers through B, Ann hears it on A.
    let mut ann_socket = a.signed_in_socket(&ann).await;
    ann_socket
        .send(json!({ "id": "a", "type": "subscribe", "payload": {
            "query": MESSAGE_ADDED, "variables": { "c": conversation } } }))
        .await;
    for expected in 1..=3 {
        assert_eq!(added(&mut ann_socket).await["seq"], expected);
    }
    send(b, &bob, &conversation, "hello from B").await;
    assert_eq!(added(&mut ann_socket).await["body"], "hello from B");
}

#[tokio::test]
async fn a_logout_on_one_replica_holds_on_the_other() {
    let replicas = replicas!(2);
    let (a, b) = (&replicas[0], &replicas[1]);
    let ann = a.register("ann").await;
    let mut socket = b.signed_in_socket(&ann).await;
    socket
        .send(json!({ "id": "n", "type": "subscribe", "payload": {
            "query": "subscription { notifications { __typename } }" } }))
        .await;
    b.until_live_subscriptions(1).await;
    let me = "{ me { username } }";
    assert_eq!(
        b.data(me, json!({}), ann.token()).await["me"]["username"],
        "ann"
    );

    a.data("mutation { logout }", json!({}), ann.token()).await;
    // Refused on B at once, and B's socket of that session closes (4403),
    // its subscription perhaps completed just before.
    let refused = b.graphql(me, json!({}), ann.token()).await;
    assert_eq!(error_code(&refused), "UNAUTHENTICATED");
    assert_eq!(socket.closes_with(&["complete"]).await.0, 4403);
}

#[tokio::test]
async fn notifications_cross_replicas() {
    let replicas = replicas!(2);
    let (a, b) = (&replicas[0], &replicas[1]);
    let (ann, bob) = (a.register("ann").await, b.register("bob").await);
    let mut socket = b.signed_in_socket(&bob).await;
    socket
        .send(json!({ "id": "n", "type": "subscribe", "payload": {
            "query": "subscription { notifications { __typename } }" } }))
        .await;
    b.until_live_subscriptions(1).await;
    a.data(
        "mutation($to: ID!) { sendFriendRequest(input: { userId: $to }) { id } }",
        json!({ "to": bob.user_id }),
        ann.token(),
    )
    .await;
    let notified = socket.receive().await;
    assert_eq!(
        notified["payload"]["data"]["notifications"]["__typename"],
        "FriendRequestReceivedNotification",
        "{notified}"
    );
}

#[tokio::test]
async fn a_rate_limit_holds_across_replicas() {
    let replicas = replicas!(2, |command| {
        command
            .env("KITH_RATE_LIMITS", "on")
            .env("KITH_RATE_LOGIN_FAILURES_PER_ACCOUNT_AND_IP", "4/min");
    });
    // Four attempts in all, spread over both replicas, are let through...
    for attempt in 0..4 {
        let response = login_as_nobody(&replicas[attempt % 2]).await;
        assert_ne!(error_code(&response), "RATE_LIMITED", "attempt {attempt}");
    }
    // ...and the fifth is refused whichever replica it reaches.
    for app in &replicas {
        let response = login_as_nobody(app).await;
        assert_eq!(error_code(&response), "RATE_LIMITED", "{response}");
        assert!(response["errors"][0]["extensions"]["retryAfter"].as_u64() >= Some(1));
    }
}

async fn login_as_nobody(app: &TestApp) -> Value {
    app.graphql(
        "mutation { login(input: { identifier: \"nobody\", password: \"wrong-password\" }) {
            accessToken } }",
        json!({}),
        None,
    )
    .await
}

#[tokio::test]
async fn a_stopping_replica_sends_its_sockets_elsewhere() {
    let mut replicas = replicas!(2);
    let ann = replicas[0].register("ann").await;
    let mut socket = replicas[0].signed_in_socket(&ann).await;
    socket
        .send(json!({ "id": "n", "type": "subscribe", "payload": {
            "query": "subscription { notifications { __typename } }" } }))
        .await;
    replicas[0].until_live_subscriptions(1).await;

    let status = replicas[0].terminate().await;
    assert!(status.success(), "a clean exit on SIGTERM: {status}");
    match socket.receive_within(Duration::from_secs(5)).await {
        common::Received::Closed(code) => assert_eq!(code, Some(1001), "going away"),
        common::Received::Json(message) => panic!("expected a close, got {message}"),
    }
    // The client reconnects to the other replica and carries on.
    let mut again = replicas[1].signed_in_socket(&ann).await;
    again
        .send(json!({ "id": "n", "type": "subscribe", "payload": {
            "query": "subscription { notifications { __typename } }" } }))
        .await;
    replicas[1].until_live_subscriptions(1).await;
}

/// The `status` field of the replica's `/readyz`.
async fn readiness(app: &TestApp) -> Value {
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(
        ready.status(),
        200,
        "a replica without Redis stays in service"
    );
    ready.json::<Value>().await.unwrap()["status"].clone()
}

async fn until_ready_is(app: &TestApp, status: &str) {
    common::eventually(&format!("/readyz saying {status}"), || async {
        (readiness(app).await == status).then_some(())
    })
    .await;
}

/// Two replicas on a Redis of the test's own, which it may kill: `None`
/// where tests have no Redis (nor, then, redis-server).
async fn replicas_on_own_redis() -> Option<(common::OwnRedis, Vec<TestApp>)> {
    std::env::var("KITH_TEST_REDIS_URL").ok()?;
    let redis = common::OwnRedis::start().await;
    let replicas = common::spawn_replicas_on(&redis.url(), 2, |_| {}).await;
    Some((redis, replicas))
}

#[tokio::test]
async fn replicas_serve_through_a_redis_outage_and_heal() {
    let Some((mut redis, replicas)) = replicas_on_own_redis().await else {
        common::skipped("needs KITH_TEST_REDIS_URL (and redis-server)");
        return;
    };
    let (a, b) = (&replicas[0], &replicas[1]);
    let (ann, bob, conversation) = friends_apart(a, b).await;
    send(a, &ann, &conversation, "before").await;
    let mut on_a = listen_from_the_start(a, &ann, &conversation).await;
    let mut on_b = listen_from_the_start(b, &bob, &conversation).await;
    assert_eq!(readiness(b).await, "ok");

    redis.kill().await;
    for app in [a, b] {
        until_ready_is(app, "degraded").await;
    }
    // Still serving: sends work, and reach the sender's own replica live.
    let during = send(a, &ann, &conversation, "during").await;
    assert_eq!(added(&mut on_a).await["body"], "during");
    let me = b.data("{ me { username } }", json!({}), bob.token()).await;
    assert_eq!(me["me"]["username"], "bob");

    redis.restart().await;
    until_ready_is(a, "ok").await;
    until_ready_is(b, "ok").await;
    // B's subscription, opened before the outage, is live again: a message
    // sent now arrives, after the one B missed, which it fetches itself.
    let mut received = Vec::new();
    for attempt in 0..20 {
        let sent = send(a, &ann, &conversation, &format!("after {attempt}")).await;
        while let Ok(message) =
            tokio::time::timeout(Duration::from_millis(500), added(&mut on_b)).await
        {
            received.push(message["seq"].as_i64().unwrap());
        }
        if received.last() == Some(&sent) {
            break;
        }
    }
    let expected: Vec<i64> = (during..=*received.last().expect("B hears again")).collect();
    assert_eq!(received, expected, "no gap, no duplicate after the outage");
}

#[tokio::test]
async fn a_logout_during_a_redis_outage_holds_everywhere_and_ends_subscriptions() {
    let Some((mut redis, replicas)) = replicas_on_own_redis().await else {
        common::skipped("needs KITH_TEST_REDIS_URL (and redis-server)");
        return;
    };
    let (a, b) = (&replicas[0], &replicas[1]);
    let (ann, _bob, conversation) = friends_apart(a, b).await;
    send(a, &ann, &conversation, "before").await;
    let me = "{ me { username } }";
    // B has seen the session (and so cached its validity in Redis).
    assert_eq!(
        b.data(me, json!({}), ann.token()).await["me"]["username"],
        "ann"
    );
    // A conversation's feed outlives a gap in the events (it catches up from
    // the database): only its session's end may end it.
    let mut socket = listen_from_the_start(b, &ann, &conversation).await;

    redis.kill().await;
    for app in [a, b] {
        until_ready_is(app, "degraded").await;
    }
    // The revocation cannot travel through Redis now: B asks the database.
    a.data("mutation { logout }", json!({}), ann.token()).await;
    let refused = b.graphql(me, json!({}), ann.token()).await;
    assert_eq!(error_code(&refused), "UNAUTHENTICATED", "{refused}");

    // Once B's events flow again it learns it may have missed some, checks
    // the session, and ends its subscription and closes its socket (4403).
    redis.restart().await;
    assert_eq!(socket.closes_with(&["complete"]).await.0, 4403);
    let refused = b.graphql(me, json!({}), ann.token()).await;
    assert_eq!(error_code(&refused), "UNAUTHENTICATED", "{refused}");
}

/// A socket on `app` following the conversation, past its first message.
async fn listen_from_the_start(app: &TestApp, user: &Session, conversation: &Value) -> Socket {
    let mut socket = app.signed_in_socket(user).await;
    socket
        .send(json!({ "id": "m", "type": "subscribe", "payload": {
            "query": MESSAGE_ADDED, "variables": { "c": conversation } } }))
        .await;
    assert_eq!(added(&mut socket).await["seq"], 1);
    socket
}

#[tokio::test]
async fn online_on_any_replica_counts() {
    let replicas = replicas!(2, |command| {
        command.env("KITH_PRESENCE_GRACE_MILLIS", "300");
    });
    let (a, b) = (&replicas[0], &replicas[1]);
    let (ann, bob) = (a.register("ann").await, b.register("bob").await);
    a.befriend(&ann, &bob).await;
    let presence_of_ann = || async {
        b.data(
            "query($id: ID!) { user(id: $id) { presence lastSeenAt } }",
            json!({ "id": ann.user_id }),
            bob.token(),
        )
        .await["user"]
            .clone()
    };
    let mut watch = b.signed_in_socket(&bob).await;
    watch
        .send(json!({ "id": "p", "type": "subscribe", "payload": {
            "query": "subscription { presenceChanged { presence lastSeenAt user { username } } }" } }))
        .await;
    b.until_live_subscriptions(1).await;
    assert_eq!(presence_of_ann().await["presence"], "OFFLINE");

    // Ann connects through A: Bob, on B, hears it and reads it.
    let on_a = a.signed_in_socket(&ann).await;
    let change = |message: Value| message["payload"]["data"]["presenceChanged"].clone();
    assert_eq!(change(watch.receive().await)["presence"], "ONLINE");
    assert_eq!(presence_of_ann().await["presence"], "ONLINE");

    // Her socket on B keeps her online when the one on A closes.
    let on_b = b.signed_in_socket(&ann).await;
    drop(on_a);
    // Still online on B: nothing before a friend's coming and going through
    // A, whose goodbye is due a grace period after ann's would have been.
    let marker = a.register("marker").await;
    a.befriend(&bob, &marker).await;
    for presence in ["ONLINE", "OFFLINE"] {
        if presence == "ONLINE" {
            drop(a.signed_in_socket(&marker).await);
        }
        watch
            .nothing_before(|frame| {
                let change = &frame["payload"]["data"]["presenceChanged"];
                change["user"]["username"] == "marker" && change["presence"] == presence
            })
            .await;
    }
    assert_eq!(presence_of_ann().await["presence"], "ONLINE");

    // A choice made through one replica shows through the other.
    a.data(
        "mutation { setPresence(status: AWAY) }",
        json!({}),
        ann.token(),
    )
    .await;
    assert_eq!(change(watch.receive().await)["presence"], "AWAY");
    assert_eq!(presence_of_ann().await["presence"], "AWAY");

    drop(on_b);
    let offline = change(watch.receive().await);
    assert_eq!(offline["presence"], "OFFLINE");
    assert!(offline["lastSeenAt"].is_string(), "{offline}");
    assert_eq!(presence_of_ann().await["presence"], "OFFLINE");
}

#[tokio::test]
async fn the_users_of_a_replica_that_dies_go_offline_for_their_friends() {
    let mut replicas = replicas!(2, |command| {
        command
            .env("KITH_PRESENCE_GRACE_MILLIS", "200")
            .env("KITH_PRESENCE_CLAIM_TTL_MILLIS", "1500");
    });
    let (ann, bob) = (
        replicas[0].register("ann").await,
        replicas[1].register("bob").await,
    );
    replicas[0].befriend(&ann, &bob).await;
    let mut watch = replicas[1].signed_in_socket(&bob).await;
    watch
        .send(json!({ "id": "p", "type": "subscribe", "payload": {
            "query": "subscription { presenceChanged { presence lastSeenAt } }" } }))
        .await;
    replicas[1].until_live_subscriptions(1).await;
    let _on_a = replicas[0].signed_in_socket(&ann).await;
    let change = |message: Value| message["payload"]["data"]["presenceChanged"].clone();
    assert_eq!(change(watch.receive().await)["presence"], "ONLINE");
    // Past a few renewals, the claim still stands. Time passing is what is
    // tested here, so this one window is a length of time; the read after it
    // would see a claim swept meanwhile.
    assert!(watch.stays_quiet(Duration::from_millis(2_000)).await);
    let ann_then = replicas[1]
        .data(
            "query($id: ID!) { user(id: $id) { presence } }",
            json!({ "id": ann.user_id }),
            bob.token(),
        )
        .await;
    assert_eq!(ann_then["user"]["presence"], "ONLINE");

    // A dies without a word: its claim on Ann lapses, B sweeps it and tells Bob.
    replicas[0].kill().await;
    let offline = match watch.receive_within(Duration::from_secs(10)).await {
        common::Received::Json(message) => change(message),
        common::Received::Closed(code) => panic!("socket closed ({code:?})"),
    };
    assert_eq!(offline["presence"], "OFFLINE", "{offline}");
    assert!(offline["lastSeenAt"].is_string(), "{offline}");
    let ann_now = replicas[1]
        .data(
            "query($id: ID!) { user(id: $id) { presence } }",
            json!({ "id": ann.user_id }),
            bob.token(),
        )
        .await;
    assert_eq!(ann_now["user"]["presence"], "OFFLINE");
}

/// What `read` gives once `wanted` holds for it, polling for up to a second:
/// an invalidation reaches the other replica within moments.
async fn once<F, Fut>(mut read: F, wanted: impl Fn(&Value) -> bool) -> Value
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Value>,
{
    let mut seen = Value::Null;
    for _ in 0..50 {
        seen = read().await;
        if wanted(&seen) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    seen
}

#[tokio::test]
async fn a_profile_change_through_one_replica_shows_through_the_other() {
    let replicas = replicas!(2);
    let (a, b) = (&replicas[0], &replicas[1]);
    let (ann, bob) = (a.register("ann").await, b.register("bob").await);
    a.befriend(&ann, &bob).await;
    let friends_on_b = || async {
        b.data(
            "{ me { friends(first: 10) { edges { node { username bio friendsCount } } } } }",
            json!({}),
            bob.token(),
        )
        .await["me"]["friends"]["edges"][0]["node"]
            .clone()
    };
    // Past the befriending's own (repeated) invalidations, B reads Ann, and
    // so caches her, in B and in Redis.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let before = friends_on_b().await;
    assert_eq!(
        (&before["bio"], &before["friendsCount"]),
        (&Value::Null, &json!(1))
    );

    a.data(
        "mutation { updateProfile(input: { bio: \"changed on A\" }) { id } }",
        json!({}),
        ann.token(),
    )
    .await;
    // B forgets its copy as the invalidation reaches it: within moments, not
    // the cache's 30 s lifetime.
    let seen = once(friends_on_b, |seen| seen["bio"] == "changed on A").await;
    assert_eq!(seen["bio"], "changed on A", "B still shows the old profile");

    // A friend count moved through A shows on B too.
    let cat = a.register("cat").await;
    a.befriend(&cat, &ann).await;
    let seen = once(friends_on_b, |seen| seen["friendsCount"] == 2).await;
    assert_eq!(seen["friendsCount"], 2);
}

#[tokio::test]
async fn friendships_and_blocks_through_one_replica_show_through_the_other() {
    let replicas = replicas!(2);
    let (a, b) = (&replicas[0], &replicas[1]);
    let (ann, bob, cat) = (
        a.register("ann").await,
        a.register("bob").await,
        a.register("cat").await,
    );
    a.befriend(&ann, &bob).await;
    a.befriend(&bob, &cat).await;
    let graph_on_b = || async {
        b.data(
            "{ me { friends(first: 10) { edges { node { username
                    mutualFriends(first: 3) { totalCount } } } } }
               friendSuggestions(first: 5) { mutualFriendsCount user { username } } }",
            json!({}),
            ann.token(),
        )
        .await
    };
    // Past the befriendings' own (repeated) invalidations, B reads Ann's
    // friends and suggestions, and so caches their lists.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let before = graph_on_b().await;
    assert_eq!(
        before["me"]["friends"]["edges"][0]["node"]["username"],
        "bob"
    );
    assert_eq!(
        before["friendSuggestions"],
        json!([{ "mutualFriendsCount": 1, "user": { "username": "cat" } }])
    );

    // Ann asks Cat through A: B stops suggesting Cat while the request is
    // pending, and suggests Cat again once Ann withdraws it.
    let asked = a
        .data(
            "mutation($id: ID!) { sendFriendRequest(input: { userId: $id }) { id } }",
            json!({ "id": cat.user_id }),
            ann.token(),
        )
        .await;
    let pending = once(graph_on_b, |seen| seen["friendSuggestions"] == json!([])).await;
    assert_eq!(pending["friendSuggestions"], json!([]), "{pending}");
    a.data(
        "mutation($id: ID!) { cancelFriendRequest(id: $id) { id } }",
        json!({ "id": asked["sendFriendRequest"]["id"] }),
        ann.token(),
    )
    .await;
    let withdrawn = once(graph_on_b, |seen| seen["friendSuggestions"] != json!([])).await;
    assert_eq!(
        withdrawn["friendSuggestions"], before["friendSuggestions"],
        "{withdrawn}"
    );

    // Cat and Ann become friends through A: B counts Bob as mutual, and
    // stops suggesting Cat.
    a.befriend(&cat, &ann).await;
    let seen = once(graph_on_b, |seen| {
        seen["friendSuggestions"] == json!([])
            && seen["me"]["friends"]["edges"].as_array().map(Vec::len) == Some(2)
    })
    .await;
    assert_eq!(seen["friendSuggestions"], json!([]), "{seen}");
    let mutual: Vec<&Value> = seen["me"]["friends"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|edge| &edge["node"]["mutualFriends"]["totalCount"])
        .collect();
    assert_eq!(mutual, [&json!(1), &json!(1)], "{seen}");

    // Bob blocks Ann through A: the friendship ends, and B hides Bob from
    // Ann's friends and from Cat's friends as Ann sees them.
    a.data(
        "mutation($id: ID!) { blockUser(userId: $id) { id } }",
        json!({ "id": ann.user_id }),
        bob.token(),
    )
    .await;
    let cats_friends_on_b = || async {
        b.data(
            "query($id: ID!) { user(id: $id) { friends(first: 10) {
                edges { node { username } } } } }",
            json!({ "id": cat.user_id }),
            ann.token(),
        )
        .await["user"]["friends"]["edges"]
            .clone()
    };
    let only_ann = json!([{ "node": { "username": "ann" } }]);
    assert_eq!(
        once(cats_friends_on_b, |seen| *seen == only_ann).await,
        only_ann,
        "B still shows Bob among Cat's friends to Ann"
    );
    let seen = once(graph_on_b, |seen| {
        seen["me"]["friends"]["edges"].as_array().map(Vec::len) == Some(1)
    })
    .await;
    assert_eq!(
        seen["me"]["friends"]["edges"][0]["node"]["username"], "cat",
        "{seen}"
    );
}

/// A dater of `gender`, 30 years old, in Berlin.
async fn dater(app: &TestApp, name: &str, gender: &str) -> Session {
    let session = app.register(name).await;
    app.make_dater(&session, gender).await;
    session
}

#[tokio::test]
async fn recommendations_page_on_whichever_replica_without_repeats() {
    let replicas = replicas!(2);
    let (a, b) = (&replicas[0], &replicas[1]);
    let viewer = dater(a, "viewer", "FEMALE").await;
    for index in 0..7 {
        dater(&replicas[index % 2], &format!("candidate_{index}"), "MALE").await;
    }
    // Pages alternate between the replicas; each goes on exactly where the
    // last one ended, in the deck the first one dealt.
    let mut seen = Vec::new();
    let mut decks = Vec::new();
    let mut after = None;
    for index in 0..3 {
        let app = if index % 2 == 0 { a } else { b };
        let page = recommendations_page(app, &viewer, after).await;
        for edge in page["edges"].as_array().unwrap() {
            seen.push(edge["node"]["username"].as_str().unwrap().to_owned());
        }
        after = page["pageInfo"]["endCursor"].as_str().map(str::to_owned);
        decks.extend(after.as_deref().map(deck_of));
        if page["pageInfo"]["hasNextPage"] == false {
            break;
        }
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "no repeats: {seen:?}");
    assert_eq!(seen.len(), 7, "everyone, once: {seen:?}");
    decks.dedup();
    assert_eq!(
        decks.len(),
        1,
        "one deck throughout, not one dealt afresh per replica"
    );

    // The same order as one replica deals it: the deck travelled whole.
    let mut again = Vec::new();
    let mut after = None;
    loop {
        let page = recommendations_page(b, &viewer, after).await;
        for edge in page["edges"].as_array().unwrap() {
            again.push(edge["node"]["username"].as_str().unwrap().to_owned());
        }
        after = page["pageInfo"]["endCursor"].as_str().map(str::to_owned);
        if page["pageInfo"]["hasNextPage"] == false {
            break;
        }
    }
    assert_eq!(again.len(), 7);
}

/// Each replica keeps its own index of whom discovery may show: a change
/// made through one reaches the other's decks within moments.
#[tokio::test]
async fn discovery_changes_through_one_replica_show_in_the_others_decks() {
    let replicas = replicas!(2);
    let (a, b) = (&replicas[0], &replicas[1]);
    let viewer = dater(b, "viewer", "FEMALE").await;
    let ben = dater(a, "ben", "MALE").await;
    let names_on_b = || async {
        let page = recommendations_page(b, &viewer, None).await;
        json!(
            page["edges"]
                .as_array()
                .unwrap()
                .iter()
                .map(|edge| edge["node"]["username"].clone())
                .collect::<Vec<_>>()
        )
    };
    // B holds the area now.
    assert_eq!(
        once(names_on_b, |seen| seen == &json!(["ben"])).await,
        json!(["ben"])
    );

    a.data(
        "mutation { updateDiscoveryPreferences(input: { discoverable: false }) { discoverable } }",
        json!({}),
        ben.token(),
    )
    .await;
    let seen = once(names_on_b, |seen| seen == &json!([])).await;
    assert_eq!(seen, json!([]), "B still deals the hidden user");

    a.data(
        "mutation { updateDiscoveryPreferences(input: { discoverable: true }) { discoverable } }",
        json!({}),
        ben.token(),
    )
    .await;
    let cal = dater(a, "cal", "MALE").await;
    let seen = once(names_on_b, |seen| seen.as_array().unwrap().len() == 2).await;
    let mut names: Vec<&str> = seen
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    names.sort();
    assert_eq!(names, ["ben", "cal"], "B misses a change made through A");
    let _ = cal;
}

async fn recommendations_page(app: &TestApp, viewer: &Session, after: Option<String>) -> Value {
    app.data(
        "query($after: String) { recommendations(first: 3, after: $after) {
            pageInfo { hasNextPage endCursor } edges { node { username } } } }",
        json!({ "after": after }),
        viewer.token(),
    )
    .await["recommendations"]
        .clone()
}

/// The deck a recommendations cursor points into (its first part).
fn deck_of(cursor: &str) -> String {
    use base64::Engine as _;
    let key = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .expect("a base64 cursor");
    let key = String::from_utf8(key).unwrap();
    key.split(':').next().unwrap().to_owned()
}
