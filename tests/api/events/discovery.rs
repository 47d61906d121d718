//! Likes and matches: a like and a super like are told, a pass never is;
//! a mutual like makes a match; a match ends by unmatching, by a block or
//! by an account's deletion, each once, in the order it happened.

use serde_json::{Value, json};

use super::*;
use crate::common::{PASSWORD, Session, TestApp, error_code, spawn_app_with};

/// Someone on the dating side: an adult with a complete profile in Berlin.
async fn dater(app: &TestApp, name: &str, gender: &str) -> Session {
    let session = app.register(name).await;
    app.make_dater(&session, gender).await;
    session
}

async fn swipe(app: &TestApp, how: &str, who: &Session, on: &Session) -> Value {
    app.graphql(
        &format!("mutation($id: ID!) {{ {how}(userId: $id) {{ match {{ id }} }} }}"),
        json!({ "id": on.user_id }),
        who.token(),
    )
    .await
}

/// A swipe that must succeed: its match's id, or null.
async fn swiped(app: &TestApp, how: &str, who: &Session, on: &Session) -> Value {
    let response = swipe(app, how, who, on).await;
    assert!(response.get("errors").is_none(), "{how}: {response:#}");
    response["data"][how]["match"]["id"].clone()
}

#[tokio::test]
async fn likes_and_matches_are_told_and_a_pass_never_is() {
    let Some(nats) = OwnNats::start().await else {
        return;
    };
    let app = spawn_app_with(|s| s.nats_url = Some(nats.url())).await;
    let ann = dater(&app, "ann_swipes", "FEMALE").await;
    let bob = dater(&app, "bob_swipes", "MALE").await;
    let cy = dater(&app, "cy_swipes", "MALE").await;
    let dee = dater(&app, "dee_swipes", "MALE").await;
    let bare = app.register("bare_swipes").await;

    // A pass: nothing, ever. A like, liked again (nothing), liked back:
    // a match; liking or passing the match then changes nothing.
    assert_eq!(swiped(&app, "pass", &ann, &cy).await, Value::Null);
    assert_eq!(swiped(&app, "like", &ann, &bob).await, Value::Null);
    assert_eq!(swiped(&app, "like", &ann, &bob).await, Value::Null);
    let with_bob = swiped(&app, "like", &bob, &ann).await;
    assert!(with_bob.is_string());
    assert_eq!(swiped(&app, "like", &ann, &bob).await, with_bob);
    assert_eq!(
        error_code(&swipe(&app, "pass", &ann, &bob).await),
        "CONFLICT"
    );
    // Someone discovery would not show may not be liked.
    assert_eq!(
        error_code(&swipe(&app, "like", &ann, &bare).await),
        "FORBIDDEN"
    );
    // A super like of the one passed; a plain like after it (nothing).
    assert_eq!(swiped(&app, "superLike", &ann, &cy).await, Value::Null);
    assert_eq!(swiped(&app, "like", &ann, &cy).await, Value::Null);
    let with_cy = swiped(&app, "like", &cy, &ann).await;
    // Unmatched (again: NOT_FOUND); ended by a block; by a deletion.
    let unmatch = "mutation($id: ID!) { unmatch(matchId: $id) }";
    app.data(unmatch, json!({ "id": with_bob }), ann.token())
        .await;
    let again = app
        .graphql(unmatch, json!({ "id": with_bob }), bob.token())
        .await;
    assert_eq!(error_code(&again), "NOT_FOUND");
    app.data(
        "mutation($id: ID!) { blockUser(userId: $id) { id } }",
        json!({ "id": ann.user_id }),
        cy.token(),
    )
    .await;
    swiped(&app, "like", &dee, &ann).await;
    let with_dee = swiped(&app, "like", &ann, &dee).await;
    app.data(
        "mutation($p: String!) { deleteAccount(input: { password: $p }) }",
        json!({ "p": PASSWORD }),
        dee.token(),
    )
    .await;

    nats.until("user.deleted", 1).await;
    let events = settled(&app, &nats).await;
    assert_no_duplicates(&events);
    assert_no_secrets(&events, &[PASSWORD, &ann.access_token, &dee.refresh_token]);
    let [a, b, c, d] = [&ann, &bob, &cy, &dee].map(user_key);
    let (a, b, c, d) = (a.as_str(), b.as_str(), c.as_str(), d.as_str());
    let story: Vec<&Value> = events
        .iter()
        .filter(|e| {
            let kind = e["type"].as_str().unwrap();
            kind.starts_with("swipe.")
                || kind.starts_with("match.")
                || kind == "user.blocked"
                || kind == "user.deleted"
        })
        .collect();
    let summary: Vec<(&str, &str)> = story
        .iter()
        .map(|e| (e["type"].as_str().unwrap(), e["actor"].as_str().unwrap()))
        .collect();
    assert_eq!(
        summary,
        [
            ("swipe.liked", a),
            ("swipe.liked", b),
            ("match.created", b),
            ("swipe.liked", a),
            ("swipe.liked", c),
            ("match.created", c),
            ("match.ended", a),
            ("match.ended", c),
            ("user.blocked", c),
            ("swipe.liked", d),
            ("swipe.liked", a),
            ("match.created", a),
            ("match.ended", d),
            ("user.deleted", d),
        ],
        "{story:#?}"
    );
    let like = |from: &str, to: &str, super_like: bool| json!({ "swiperId": from, "targetId": to, "superLike": super_like });
    assert_eq!(story[0]["data"], like(a, b, false));
    assert_eq!(story[1]["data"], like(b, a, false));
    assert_eq!(story[3]["data"], like(a, c, true));
    assert_eq!(story[4]["data"], like(c, a, false));
    let pair = |x: &str, y: &str| {
        let mut pair = [x.to_owned(), y.to_owned()];
        pair.sort();
        pair
    };
    let users_of = |event: &Value| {
        let mut users: Vec<String> = event["data"]["userIds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u.as_str().unwrap().to_owned())
            .collect();
        users.sort();
        users
    };
    for (created, ended, matched, users, reason) in [
        (2, 6, &with_bob, pair(a, b), "unmatched"),
        (5, 7, &with_cy, pair(a, c), "blocked"),
        (11, 12, &with_dee, pair(a, d), "deleted"),
    ] {
        assert_eq!(story[created]["data"]["matchId"], key(matched).as_str());
        assert_eq!(users_of(story[created]), users);
        assert!(story[created]["data"]["createdAt"].is_string());
        assert_eq!(story[ended]["data"]["matchId"], key(matched).as_str());
        assert_eq!(users_of(story[ended]), users);
        assert_eq!(story[ended]["data"]["reason"], reason);
    }
    // The passes left no trace.
    assert!(
        !events
            .iter()
            .any(|e| e["type"].as_str().unwrap().contains("pass")),
        "{events:#?}"
    );
}
