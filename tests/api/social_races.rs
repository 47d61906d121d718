//! Races on one pair of users, run with both requests in flight at once: the pair
//! ends in one consistent state, with no half-made friendship or orphan request,
//! and every loser is told why in the code the API gives (never an internal error).
//! CI runs these on SQLite and on PostgreSQL.

use crate::common;

use common::{Session, TestApp, error_code, spawn_app};
use serde_json::{Value, json};

const SEND: &str = "mutation($to: ID!) { sendFriendRequest(input: { userId: $to }) { id status } }";
const ACCEPT: &str = "mutation($id: ID!) { acceptFriendRequest(id: $id) { id } }";
const CANCEL: &str = "mutation($id: ID!) { cancelFriendRequest(id: $id) { id } }";
const BLOCK: &str = "mutation($id: ID!) { blockUser(userId: $id) { id } }";
/// Rounds of each race: each starts its calls together (`TestApp::at_once`).
const ROUNDS: usize = 16;

/// Both sides' view of the pair: relationship, friend count, pending requests.
async fn pair_state(app: &TestApp, a: &Session, b: &Session) -> (Value, Value, usize) {
    let query = "query($id: ID!) { user(id: $id) { viewerRelationship }
        me { friendsCount incomingFriendRequests { edges { cursor } } outgoingFriendRequests { edges { cursor } } } }";
    let mut pending = 0;
    let mut counts = Vec::new();
    let mut relationships = Vec::new();
    for (viewer, other) in [(a, b), (b, a)] {
        let data = app
            .data(query, json!({ "id": other.user_id }), viewer.token())
            .await;
        relationships.push(data["user"]["viewerRelationship"].clone());
        counts.push(data["me"]["friendsCount"].clone());
        for list in ["incomingFriendRequests", "outgoingFriendRequests"] {
            pending += data["me"][list]["edges"].as_array().unwrap().len();
        }
    }
    assert_eq!(
        counts[0], counts[1],
        "a friendship has both sides or neither"
    );
    (relationships[0].clone(), counts[0].clone(), pending)
}

async fn pair(app: &TestApp, round: usize) -> (Session, Session) {
    (
        app.register(&format!("left_{round}")).await,
        app.register(&format!("right_{round}")).await,
    )
}

#[tokio::test]
async fn two_users_asking_each_other_at_once_become_friends_exactly_once() {
    let app = spawn_app().await;
    for round in 0..ROUNDS {
        let (a, b) = pair(&app, round).await;
        let answers = app
            .at_once(&[
                (SEND, json!({ "to": b.user_id }), a.token()),
                (SEND, json!({ "to": a.user_id }), b.token()),
            ])
            .await;
        for response in &answers {
            assert!(response.get("errors").is_none(), "{response}");
        }
        let statuses = answers
            .iter()
            .map(|r| r["data"]["sendFriendRequest"]["status"].clone())
            .collect::<Vec<_>>();
        assert!(
            statuses.contains(&json!("ACCEPTED")),
            "one of them answered the other: {statuses:?}"
        );
        assert_eq!(
            pair_state(&app, &a, &b).await,
            (json!("FRIENDS"), json!(1), 0)
        );
    }
}

#[tokio::test]
async fn a_request_accepted_twice_at_once_is_accepted_once() {
    let app = spawn_app().await;
    for round in 0..ROUNDS {
        let (a, b) = pair(&app, round).await;
        let request = app.data(SEND, json!({ "to": b.user_id }), a.token()).await;
        let id = json!({ "id": request["sendFriendRequest"]["id"] });
        let answers = app
            .at_once(&[(ACCEPT, id.clone(), b.token()), (ACCEPT, id, b.token())])
            .await;
        common::the_loser(&answers, "NOT_FOUND");
        assert_eq!(
            pair_state(&app, &a, &b).await,
            (json!("FRIENDS"), json!(1), 0)
        );
    }
}

#[tokio::test]
async fn accept_racing_cancel_ends_in_one_outcome() {
    let app = spawn_app().await;
    let mut wins = [0, 0];
    for round in 0..ROUNDS {
        let (a, b) = pair(&app, round).await;
        let request = app.data(SEND, json!({ "to": b.user_id }), a.token()).await;
        let id = json!({ "id": request["sendFriendRequest"]["id"] });
        let answers = app
            .at_once(&[(ACCEPT, id.clone(), b.token()), (CANCEL, id, a.token())])
            .await;
        // The loser finds the request no longer pending.
        common::the_loser(&answers, "NOT_FOUND");
        let accept_won = answers[0].get("errors").is_none();
        wins[usize::from(accept_won)] += 1;
        let expected = if accept_won {
            (json!("FRIENDS"), json!(1), 0)
        } else {
            (json!("NONE"), json!(0), 0)
        };
        assert_eq!(pair_state(&app, &a, &b).await, expected);
    }
    println!("accept won {} of {ROUNDS}, cancel {}", wins[1], wins[0]);
}

#[tokio::test]
async fn a_block_racing_a_request_leaves_no_request_behind() {
    let app = spawn_app().await;
    for round in 0..ROUNDS {
        let (a, b) = pair(&app, round).await;
        let answers = app
            .at_once(&[
                (SEND, json!({ "to": b.user_id }), a.token()),
                (BLOCK, json!({ "id": a.user_id }), b.token()),
            ])
            .await;
        let [asked, blocked] = &answers[..] else {
            unreachable!()
        };
        assert!(blocked.get("errors").is_none(), "{blocked}");
        // The request was made before the block, or it finds b gone: a
        // blocked user is not told they are blocked.
        if asked.get("errors").is_some() {
            assert_eq!(error_code(asked), "NOT_FOUND", "{asked}");
        }
        // Whichever came first, the block stands and nothing is pending or shared.
        let (relationship, friends, pending) = pair_state_from_blocker(&app, &b, &a).await;
        assert_eq!(relationship, "BLOCKED");
        assert_eq!((friends, pending), (0, 0));
    }
}

/// The pair seen by the blocker (the blocked user can no longer see them).
async fn pair_state_from_blocker(
    app: &TestApp,
    blocker: &Session,
    blocked: &Session,
) -> (Value, i64, usize) {
    let query = "query($id: ID!) { user(id: $id) { viewerRelationship }
        me { friendsCount incomingFriendRequests { edges { cursor } } outgoingFriendRequests { edges { cursor } } } }";
    let mine = app
        .data(query, json!({ "id": blocked.user_id }), blocker.token())
        .await;
    let theirs = app
        .data(query, json!({ "id": blocker.user_id }), blocked.token())
        .await;
    assert!(
        theirs["user"].is_null(),
        "the blocker is hidden from the blocked user"
    );
    let pending = [&mine, &theirs]
        .iter()
        .flat_map(|d| {
            ["incomingFriendRequests", "outgoingFriendRequests"]
                .map(|l| d["me"][l]["edges"].as_array().unwrap().len())
        })
        .sum();
    let friends = mine["me"]["friendsCount"].as_i64().unwrap()
        + theirs["me"]["friendsCount"].as_i64().unwrap();
    (mine["user"]["viewerRelationship"].clone(), friends, pending)
}
