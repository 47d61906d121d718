//! Friend requests, friendships and blocks: each answer to a request, a
//! friendship ended by removal or by a block, a block and its lifting, in
//! the order they were made; nothing for a refused change, nor for a repeat
//! that changes nothing.

use serde_json::{Value, json};

use super::*;
use crate::common::{PASSWORD, Session, TestApp, error_code, spawn_app_with};

const ASK: &str = "mutation($to: ID!, $note: String) {
    sendFriendRequest(input: { userId: $to, message: $note }) { id status } }";

async fn ask(app: &TestApp, from: &Session, to: &Session, note: Option<&str>) -> Value {
    app.data(ASK, json!({ "to": to.user_id, "note": note }), from.token())
        .await["sendFriendRequest"]
        .clone()
}

async fn answer(app: &TestApp, mutation: &str, request: &Value, who: &Session) {
    app.data(
        &format!("mutation($id: ID!) {{ {mutation}(id: $id) {{ id }} }}"),
        json!({ "id": request["id"] }),
        who.token(),
    )
    .await;
}

async fn on_user(app: &TestApp, mutation: &str, who: &Session, other: &Session) -> Value {
    app.graphql(
        &format!("mutation($u: ID!) {{ {mutation}(userId: $u) {{ id }} }}"),
        json!({ "u": other.user_id }),
        who.token(),
    )
    .await
}

/// The social events of `events` (not the sign-ups and sign-ins).
fn social(events: &[Value]) -> Vec<&Value> {
    events
        .iter()
        .filter(|e| {
            let kind = e["type"].as_str().unwrap();
            kind.starts_with("friend.") || kind == "user.blocked" || kind == "user.unblocked"
        })
        .collect()
}

#[tokio::test]
async fn friend_and_block_events_tell_each_change_once_in_order() {
    let Some(nats) = OwnNats::start().await else {
        return;
    };
    let app = spawn_app_with(|s| s.nats_url = Some(nats.url())).await;
    let ann = app.register("ann_social").await;
    let bob = app.register("bob_social").await;
    let cy = app.register("cy_social").await;
    let (ann_id, bob_id, cy_id) = (user_key(&ann), user_key(&bob), user_key(&cy));

    // Asked, asked again (the same request: nothing new), declined.
    let first = ask(&app, &ann, &bob, Some("hello bob")).await;
    let again = ask(&app, &ann, &bob, Some("hello again")).await;
    assert_eq!(again["id"], first["id"]);
    answer(&app, "declineFriendRequest", &first, &bob).await;
    // Asked and withdrawn; then asked and accepted.
    let second = ask(&app, &ann, &bob, None).await;
    answer(&app, "cancelFriendRequest", &second, &ann).await;
    let third = ask(&app, &ann, &bob, None).await;
    answer(&app, "acceptFriendRequest", &third, &bob).await;
    // Refused: they are friends already; answering an answered request.
    let refused = app
        .graphql(ASK, json!({ "to": bob.user_id }), ann.token())
        .await;
    assert_eq!(error_code(&refused), "CONFLICT");
    let stale = app
        .graphql(
            "mutation($id: ID!) { acceptFriendRequest(id: $id) { id } }",
            json!({ "id": third["id"] }),
            bob.token(),
        )
        .await;
    assert_eq!(error_code(&stale), "NOT_FOUND");
    // Requests that cross: cy's is accepted by ann asking back.
    let crossing = ask(&app, &cy, &ann, None).await;
    let back = ask(&app, &ann, &cy, None).await;
    assert_eq!(back["status"], "ACCEPTED");
    assert_eq!(back["id"], crossing["id"]);
    // A friendship removed; removing it again changes nothing.
    for _ in 0..2 {
        let removed = on_user(&app, "removeFriend", &ann, &cy).await;
        assert!(removed.get("errors").is_none(), "{removed}");
    }
    // A block ends the friendship; blocking again changes nothing; the one
    // blocked cannot ask, nor can the blocker (FORBIDDEN), and nothing is
    // told of their tries.
    for _ in 0..2 {
        let blocked = on_user(&app, "blockUser", &bob, &ann).await;
        assert!(blocked.get("errors").is_none(), "{blocked}");
    }
    let from_blocker = app
        .graphql(ASK, json!({ "to": ann.user_id }), bob.token())
        .await;
    assert_eq!(error_code(&from_blocker), "FORBIDDEN");
    let from_blocked = app
        .graphql(ASK, json!({ "to": bob.user_id }), ann.token())
        .await;
    assert_eq!(error_code(&from_blocked), "NOT_FOUND");
    // Lifted; lifting again changes nothing.
    for _ in 0..2 {
        let lifted = on_user(&app, "unblockUser", &bob, &ann).await;
        assert!(lifted.get("errors").is_none(), "{lifted}");
    }

    nats.until("user.unblocked", 1).await;
    let events = settled(&app, &nats).await;
    assert_no_duplicates(&events);
    assert_no_secrets(
        &events,
        &[
            PASSWORD,
            &ann.access_token,
            &ann.refresh_token,
            &bob.access_token,
        ],
    );
    let social = social(&events);
    let (a, b, c) = (ann_id.as_str(), bob_id.as_str(), cy_id.as_str());
    let summary: Vec<(&str, &str)> = social
        .iter()
        .map(|e| (e["type"].as_str().unwrap(), e["actor"].as_str().unwrap()))
        .collect();
    assert_eq!(
        summary,
        [
            ("friend.request_sent", a),
            ("friend.request_declined", b),
            ("friend.request_sent", a),
            ("friend.request_cancelled", a),
            ("friend.request_sent", a),
            ("friend.request_accepted", b),
            ("friend.request_sent", c),
            ("friend.request_accepted", a),
            ("friend.removed", a),
            ("friend.removed", b),
            ("user.blocked", b),
            ("user.unblocked", b),
        ],
        "{social:#?}"
    );

    let request = |id: &Value, from: &str, to: &str| json!({ "requestId": key(id), "fromUserId": from, "toUserId": to });
    let mut sent = request(&first["id"], &ann_id, &bob_id);
    sent["message"] = json!("hello bob");
    assert_eq!(social[0]["data"], sent);
    assert_eq!(
        social[1]["data"],
        request(&first["id"], &ann_id, &bob_id),
        "the note goes with the asking only"
    );
    assert_eq!(social[2]["data"]["message"], Value::Null);
    assert_eq!(social[3]["data"], request(&second["id"], &ann_id, &bob_id));
    assert_eq!(social[5]["data"], request(&third["id"], &ann_id, &bob_id));
    assert_eq!(social[7]["data"], request(&crossing["id"], &cy_id, &ann_id));
    assert_eq!(
        social[8]["data"],
        json!({ "userId": ann_id, "friendId": cy_id, "reason": "removed" })
    );
    assert_eq!(
        social[9]["data"],
        json!({ "userId": bob_id, "friendId": ann_id, "reason": "blocked" })
    );
    for blocking in &social[10..] {
        assert_eq!(
            blocking["data"],
            json!({ "blockerId": bob_id, "blockedId": ann_id })
        );
    }
}
