//! Presence through the real server: a socket makes a user online, its close
//! makes them offline after the grace period, `setPresence` chooses AWAY or
//! INVISIBLE, and friends hear about it on `presenceChanged`.

use crate::common;

use common::{Session, Socket, TestApp, spawn_app_with};
use serde_json::{Value, json};

const GRACE_MS: u64 = 300;

async fn app() -> TestApp {
    spawn_app_with(|settings| settings.presence_grace_millis = GRACE_MS).await
}

/// A signed-in socket: the user is online while it is open.
async fn connect(app: &TestApp, user: &Session) -> Socket {
    app.signed_in_socket(user).await
}

/// `user`'s `presenceChanged`, live when it returns.
async fn watch_friends(app: &TestApp, user: &Session) -> Socket {
    let mut socket = connect(app, user).await;
    let live = app.live_subscriptions().await;
    socket
        .send(json!({ "id": "p", "type": "subscribe", "payload": {
            "query": "subscription { presenceChanged { presence lastSeenAt user { username } } }" } }))
        .await;
    app.until_live_subscriptions(live + 1).await;
    socket
}

async fn next_change(socket: &mut Socket) -> Value {
    let message = socket.receive().await;
    assert_eq!(message["type"], "next", "{message}");
    message["payload"]["data"]["presenceChanged"].clone()
}

/// A new friend of `user`'s, whose comings and goings mark the windows in
/// which nothing else may reach `user`'s feed.
async fn marker_friend(app: &TestApp, user: &Session) -> Session {
    let marker = app.register("marker").await;
    app.befriend(user, &marker).await;
    marker
}

/// Proves that nothing reached `watch` before `marker` went online, and,
/// when `and_offline`, before their goodbye either. A goodbye comes a grace
/// period after its socket closed, so one due for a socket closed earlier
/// would have come first. Returns the marker's socket, open unless
/// `and_offline`: a goodbye of theirs would otherwise come later, unasked.
async fn nothing_before_marker(
    app: &TestApp,
    watch: &mut Socket,
    marker: &Session,
    and_offline: bool,
) -> Option<Socket> {
    let is_change = |presence: &'static str| {
        move |frame: &Value| {
            let change = &frame["payload"]["data"]["presenceChanged"];
            change["user"]["username"] == "marker" && change["presence"] == presence
        }
    };
    let socket = connect(app, marker).await;
    watch.nothing_before(is_change("ONLINE")).await;
    if !and_offline {
        return Some(socket);
    }
    drop(socket);
    watch.nothing_before(is_change("OFFLINE")).await;
    None
}

async fn presence(app: &TestApp, viewer: &Session, of: &Session) -> Value {
    app.data(
        "query($id: ID!) { user(id: $id) { presence lastSeenAt } }",
        json!({ "id": of.user_id }),
        viewer.token(),
    )
    .await["user"]
        .clone()
}

async fn set(app: &TestApp, user: &Session, status: &str) -> Value {
    app.data(
        "mutation($s: PresenceStatus!) { setPresence(status: $s) }",
        json!({ "s": status }),
        user.token(),
    )
    .await["setPresence"]
        .clone()
}

#[tokio::test]
async fn friends_see_each_other_come_and_go() {
    let app = app().await;
    let (ann, bob, cat) = (
        app.register("ann").await,
        app.register("bob").await,
        app.register("cat").await,
    );
    app.befriend(&ann, &bob).await;
    let mut bob_watch = watch_friends(&app, &bob).await;
    let mut cat_watch = watch_friends(&app, &cat).await;
    assert_eq!(presence(&app, &bob, &ann).await["presence"], "OFFLINE");

    let ann_socket = connect(&app, &ann).await;
    let online = next_change(&mut bob_watch).await;
    assert_eq!(
        online,
        json!({ "presence": "ONLINE", "lastSeenAt": null, "user": { "username": "ann" } })
    );
    assert_eq!(presence(&app, &bob, &ann).await["presence"], "ONLINE");

    assert_eq!(set(&app, &ann, "AWAY").await, "AWAY");
    assert_eq!(next_change(&mut bob_watch).await["presence"], "AWAY");
    assert_eq!(set(&app, &ann, "ONLINE").await, "ONLINE");
    assert_eq!(next_change(&mut bob_watch).await["presence"], "ONLINE");

    drop(ann_socket);
    let offline = next_change(&mut bob_watch).await;
    assert_eq!(offline["presence"], "OFFLINE");
    assert!(offline["lastSeenAt"].is_string(), "{offline}");
    let seen = presence(&app, &bob, &ann).await;
    assert_eq!(seen["presence"], "OFFLINE");
    assert_eq!(seen["lastSeenAt"], offline["lastSeenAt"]);

    // Not cat's friend: nothing of ann's before cat's own friend's news.
    let marker = marker_friend(&app, &cat).await;
    let _marker_online = nothing_before_marker(&app, &mut cat_watch, &marker, false).await;
}

#[tokio::test]
async fn a_new_friend_is_followed_from_the_moment_they_are_friends() {
    let app = app().await;
    let (ann, bob, cat) = (
        app.register("ann").await,
        app.register("bob").await,
        app.register("cat").await,
    );
    let mut ann_watch = watch_friends(&app, &ann).await;
    let marker = marker_friend(&app, &ann).await;
    // Not friends yet: bob's coming and his goodbye, after the grace
    // period, are not ann's business.
    drop(connect(&app, &bob).await);
    nothing_before_marker(&app, &mut ann_watch, &marker, true).await;
    // Ann accepts bob's request; then cat accepts ann's: both ways count.
    app.befriend(&bob, &ann).await;
    app.befriend(&ann, &cat).await;
    let _bob_again = connect(&app, &bob).await;
    let online = next_change(&mut ann_watch).await;
    assert_eq!(online["user"]["username"], "bob");
    assert_eq!(online["presence"], "ONLINE");
    let _cat_socket = connect(&app, &cat).await;
    let online = next_change(&mut ann_watch).await;
    assert_eq!(online["user"]["username"], "cat");
}

#[tokio::test]
async fn a_quick_reconnect_is_not_a_goodbye() {
    let app = app().await;
    let (ann, bob) = (app.register("ann").await, app.register("bob").await);
    app.befriend(&ann, &bob).await;
    let mut bob_watch = watch_friends(&app, &bob).await;
    let first = connect(&app, &ann).await;
    assert_eq!(next_change(&mut bob_watch).await["presence"], "ONLINE");
    drop(first);
    let _second = connect(&app, &ann).await;
    // Back within the grace period: no change.
    let marker = marker_friend(&app, &bob).await;
    nothing_before_marker(&app, &mut bob_watch, &marker, true).await;
    assert_eq!(presence(&app, &bob, &ann).await["presence"], "ONLINE");
}

#[tokio::test]
async fn invisible_looks_offline_to_others_and_leaves_no_last_seen() {
    let app = app().await;
    let (ann, bob) = (app.register("ann").await, app.register("bob").await);
    app.befriend(&ann, &bob).await;
    let mut bob_watch = watch_friends(&app, &bob).await;
    let ann_socket = connect(&app, &ann).await;
    assert_eq!(next_change(&mut bob_watch).await["presence"], "ONLINE");

    assert_eq!(set(&app, &ann, "INVISIBLE").await, "INVISIBLE");
    assert_eq!(next_change(&mut bob_watch).await["presence"], "OFFLINE");
    assert_eq!(presence(&app, &bob, &ann).await["presence"], "OFFLINE");
    assert_eq!(presence(&app, &ann, &ann).await["presence"], "INVISIBLE");

    drop(ann_socket);
    let marker = marker_friend(&app, &bob).await;
    nothing_before_marker(&app, &mut bob_watch, &marker, true).await;
    assert_eq!(presence(&app, &bob, &ann).await["lastSeenAt"], Value::Null);

    // Still invisible on the next connection: the choice lasts.
    let _again = connect(&app, &ann).await;
    let _marker_online = nothing_before_marker(&app, &mut bob_watch, &marker, false).await;
    assert_eq!(presence(&app, &ann, &ann).await["presence"], "INVISIBLE");
}

#[tokio::test]
async fn an_unfriended_user_stops_hearing() {
    let app = app().await;
    let (ann, bob) = (app.register("ann").await, app.register("bob").await);
    app.befriend(&ann, &bob).await;
    let mut bob_watch = watch_friends(&app, &bob).await;
    app.data(
        "mutation($u: ID!) { removeFriend(userId: $u) { id } }",
        json!({ "u": bob.user_id }),
        ann.token(),
    )
    .await;
    // No longer friends: no presence.
    let _ann_socket = connect(&app, &ann).await;
    let marker = marker_friend(&app, &bob).await;
    let _marker_online = nothing_before_marker(&app, &mut bob_watch, &marker, false).await;
}

async fn presence_as(app: &TestApp, viewer: Option<&Session>, of: &Session) -> Value {
    app.data(
        "query($id: ID!) { user(id: $id) { presence lastSeenAt } }",
        json!({ "id": of.user_id }),
        viewer.and_then(Session::token),
    )
    .await["user"]
        .clone()
}

async fn show_presence_to(app: &TestApp, user: &Session, visibility: &str) {
    app.data(
        "mutation($v: PresenceVisibility!) {
            updateProfile(input: { presenceVisibility: $v }) { presenceVisibility } }",
        json!({ "v": visibility }),
        user.token(),
    )
    .await;
}

#[tokio::test]
async fn presence_goes_to_friends_only_unless_the_user_says_otherwise() {
    let app = app().await;
    let (ann, bob, cat) = (
        app.register("ann").await,
        app.register("bob").await,
        app.register("cat").await,
    );
    app.befriend(&ann, &bob).await;
    let hidden = json!({ "presence": "OFFLINE", "lastSeenAt": null });

    // Ann was online once, and is again.
    drop(connect(&app, &ann).await);
    let seen = common::eventually("ann's goodbye, after the grace period", || async {
        Some(presence_as(&app, Some(&bob), &ann).await)
            .filter(|seen| seen["lastSeenAt"].is_string())
    })
    .await;
    assert_eq!(seen["presence"], "OFFLINE");
    let _ann_socket = connect(&app, &ann).await;
    common::eventually("ann online again", || async {
        (presence_as(&app, Some(&bob), &ann).await["presence"] == "ONLINE").then_some(())
    })
    .await;
    assert_eq!(
        presence_as(&app, Some(&cat), &ann).await,
        hidden,
        "a stranger"
    );
    assert_eq!(presence_as(&app, None, &ann).await, hidden, "signed out");
    let me = app
        .data(
            "{ me { presence presenceVisibility } }",
            json!({}),
            ann.token(),
        )
        .await;
    assert_eq!(
        me["me"],
        json!({ "presence": "ONLINE", "presenceVisibility": "FRIENDS" })
    );
    // The setting is the owner's business alone.
    let other = app
        .data(
            "query($id: ID!) { user(id: $id) { presenceVisibility } }",
            json!({ "id": ann.user_id }),
            bob.token(),
        )
        .await;
    assert_eq!(other["user"]["presenceVisibility"], Value::Null);

    show_presence_to(&app, &ann, "EVERYONE").await;
    assert_eq!(
        presence_as(&app, Some(&cat), &ann).await["presence"],
        "ONLINE"
    );
    assert_eq!(
        presence_as(&app, None, &ann).await,
        hidden,
        "never signed out"
    );

    show_presence_to(&app, &ann, "ONLY_ME").await;
    assert_eq!(
        presence_as(&app, Some(&bob), &ann).await,
        hidden,
        "friends too"
    );
    assert_eq!(presence_as(&app, Some(&cat), &ann).await, hidden);
    let me = app
        .data("{ me { presence } }", json!({}), ann.token())
        .await;
    assert_eq!(me["me"]["presence"], "ONLINE", "to herself");
}

#[tokio::test]
async fn a_friend_hiding_their_presence_goes_quiet_in_presence_changed() {
    let app = app().await;
    let (ann, bob) = (app.register("ann").await, app.register("bob").await);
    app.befriend(&ann, &bob).await;
    let mut bob_watch = watch_friends(&app, &bob).await;
    let _ann_socket = connect(&app, &ann).await;
    assert_eq!(next_change(&mut bob_watch).await["presence"], "ONLINE");

    // Hidden: told once, as if she went offline, then nothing.
    show_presence_to(&app, &ann, "ONLY_ME").await;
    let hidden = next_change(&mut bob_watch).await;
    assert_eq!(hidden["presence"], "OFFLINE");
    assert_eq!(hidden["lastSeenAt"], Value::Null);
    set(&app, &ann, "AWAY").await;
    set(&app, &ann, "ONLINE").await;
    let marker = marker_friend(&app, &bob).await;
    let _marker_online = nothing_before_marker(&app, &mut bob_watch, &marker, false).await;

    // Shown again: what she is now.
    set(&app, &ann, "AWAY").await;
    show_presence_to(&app, &ann, "FRIENDS").await;
    assert_eq!(next_change(&mut bob_watch).await["presence"], "AWAY");
}
