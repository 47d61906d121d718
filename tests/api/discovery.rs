//! Discovery through the real server: preferences, every exclusion rule of
//! `recommendations` (both sides' preferences), distance rounding, what an edge
//! reveals, stable paging while others swipe, the pass cooldown, the super-like
//! quota, matches (also under concurrent likes), unmatching, blocks, and the SQL
//! cost of a page.

use crate::common;

use std::{collections::HashSet, time::Duration};

use chrono::{Months, Utc};
use common::{Session, TestApp, error_code, error_field, spawn_app, spawn_app_with};
use serde_json::{Value, json};

/// A grid point in Berlin: distances from here are easy to reason about.
const HOME: (f64, f64) = (52.50, 13.40);

const PROFILE: &str =
    "mutation($input: UpdateProfileInput!) { updateProfile(input: $input) { id } }";
const PREFERENCES: &str = "mutation($input: UpdateDiscoveryPreferencesInput!) {
    updateDiscoveryPreferences(input: $input) {
        minAge maxAge genders maxDistanceKm discoverable } }";
const RECOMMENDATIONS: &str = "query($first: Int, $after: String, $use: Boolean! = true,
        $filter: RecommendationFilter) {
    recommendations(first: $first, after: $after, usePreferences: $use, filter: $filter) {
        pageInfo { hasNextPage hasPreviousPage endCursor }
        edges { cursor distanceKm commonInterests mutualFriendsCount superLikedViewer
            compatibility { score sharedInterests distance recentActivity mutualFriends }
            node { id username location { latitude } } } } }";
const LIKE: &str = "mutation($id: ID!) { like(userId: $id) {
    user { username } match { id user { username } conversation { id kind } } } }";
const PASS: &str = "mutation($id: ID!) { pass(userId: $id) { match { id } } }";
const SUPER_LIKE: &str = "mutation($id: ID!) { superLike(userId: $id) {
    superLikesRemaining match { id } } }";
const MATCHES: &str = "{ matches { edges { node { id createdAt user { username } } } } }";

/// Someone on the dating side: `age` years old, of `gender`, at `at`.
struct Dater<'a> {
    name: &'a str,
    age: u32,
    gender: &'a str,
    at: (f64, f64),
    interests: &'a [&'a str],
}

impl<'a> Dater<'a> {
    fn new(name: &'a str, age: u32, gender: &'a str) -> Self {
        Self {
            name,
            age,
            gender,
            at: HOME,
            interests: &[],
        }
    }

    fn at(self, at: (f64, f64)) -> Self {
        Self { at, ..self }
    }

    fn likes(self, interests: &'a [&'a str]) -> Self {
        Self { interests, ..self }
    }

    async fn join(self, app: &TestApp) -> Session {
        let session = app.register(self.name).await;
        let birthdate = Utc::now()
            .date_naive()
            .checked_sub_months(Months::new(self.age * 12 + 1))
            .unwrap();
        app.data(
            PROFILE,
            json!({ "input": {
                "birthdate": birthdate.to_string(),
                "gender": self.gender,
                "interests": self.interests,
                "location": { "latitude": self.at.0, "longitude": self.at.1 },
            } }),
            session.token(),
        )
        .await;
        session
    }
}

async fn prefer(app: &TestApp, who: &Session, input: Value) -> Value {
    app.data(PREFERENCES, json!({ "input": input }), who.token())
        .await["updateDiscoveryPreferences"]
        .clone()
}

async fn recommendations(app: &TestApp, viewer: &Session, variables: Value) -> Value {
    app.data(RECOMMENDATIONS, variables, viewer.token()).await["recommendations"].clone()
}

fn usernames(connection: &Value) -> Vec<String> {
    connection["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|edge| edge["node"]["username"].as_str().unwrap().to_owned())
        .collect()
}

/// The edge of `page` (a `recommendations` answer) showing `name`.
fn edge_of<'a>(page: &'a Value, name: &str) -> &'a Value {
    page["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["node"]["username"] == name)
        .unwrap_or_else(|| panic!("{name} recommended: {page:#}"))
}

/// Every username recommended to `viewer`, page by page.
async fn all_recommended(app: &TestApp, viewer: &Session, variables: Value) -> Vec<String> {
    let mut variables = variables;
    variables["first"] = json!(100);
    usernames(&recommendations(app, viewer, variables).await)
}

async fn swipe(app: &TestApp, query: &str, who: &Session, on: &Session) -> Value {
    let response = app
        .graphql(query, json!({ "id": on.user_id }), who.token())
        .await;
    assert!(
        response.get("errors").is_none(),
        "unexpected errors: {response:#}"
    );
    response["data"]
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap()
        .clone()
}

async fn block(app: &TestApp, blocker: &Session, blocked: &Session) {
    app.data(
        "mutation($id: ID!) { blockUser(userId: $id) { id } }",
        json!({ "id": blocked.user_id }),
        blocker.token(),
    )
    .await;
}

#[tokio::test]
async fn preferences_start_around_the_users_age_and_are_validated() {
    let app = spawn_app().await;
    let ann = Dater::new("ann", 30, "FEMALE").join(&app).await;
    let bob = app.register("bob").await;
    let query = "query($id: ID!) { me { discoveryPreferences {
            minAge maxAge genders maxDistanceKm discoverable } }
        user(id: $id) { discoveryPreferences { minAge } } }";
    let data = app
        .data(query, json!({ "id": ann.user_id }), ann.token())
        .await;
    assert_eq!(
        data["me"]["discoveryPreferences"],
        json!({ "minAge": 20, "maxAge": 40, "genders": ["FEMALE", "MALE", "NONBINARY"],
                "maxDistanceKm": 50, "discoverable": true })
    );
    let seen_by_bob = app
        .data(query, json!({ "id": ann.user_id }), bob.token())
        .await;
    assert_eq!(
        seen_by_bob["user"]["discoveryPreferences"],
        Value::Null,
        "preferences are their owner's alone"
    );

    let updated = prefer(
        &app,
        &ann,
        json!({ "minAge": 28, "maxAge": 35, "genders": ["MALE"], "maxDistanceKm": 10 }),
    )
    .await;
    assert_eq!(
        updated,
        json!({ "minAge": 28, "maxAge": 35, "genders": ["MALE"], "maxDistanceKm": 10,
                "discoverable": true })
    );
    // A chosen range no longer follows the birthdate.
    app.data(
        PROFILE,
        json!({ "input": { "birthdate": "1960-01-01" } }),
        ann.token(),
    )
    .await;
    let after = app
        .data(query, json!({ "id": ann.user_id }), ann.token())
        .await;
    assert_eq!(after["me"]["discoveryPreferences"]["minAge"], 28);

    for (input, field) in [
        (json!({ "minAge": 17 }), "minAge"),
        (json!({ "maxAge": 100 }), "maxAge"),
        (json!({ "minAge": 40, "maxAge": 30 }), "maxAge"),
        (json!({ "genders": [] }), "genders"),
        (json!({ "maxDistanceKm": 0 }), "maxDistanceKm"),
        (json!({ "maxDistanceKm": 301 }), "maxDistanceKm"),
    ] {
        let refused = app
            .graphql(PREFERENCES, json!({ "input": input }), ann.token())
            .await;
        assert_eq!(error_code(&refused), "BAD_USER_INPUT", "{input}");
        assert_eq!(error_field(&refused), Some(field), "{input}");
    }
    let unchanged = app
        .data(query, json!({ "id": ann.user_id }), ann.token())
        .await;
    assert_eq!(unchanged["me"]["discoveryPreferences"], updated);
    let anonymous = app
        .graphql(PREFERENCES, json!({ "input": { "minAge": 20 } }), None)
        .await;
    assert_eq!(error_code(&anonymous), "UNAUTHENTICATED");
}

#[tokio::test]
async fn discovery_needs_an_adult_with_a_complete_profile() {
    let app = spawn_app().await;
    let bare = app.register("bare").await;
    let refused = app.graphql(RECOMMENDATIONS, json!({}), bare.token()).await;
    assert_eq!(error_code(&refused), "FORBIDDEN");
    let message = refused["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("birthdate") && message.contains("gender") && message.contains("location"),
        "{message}"
    );
    let teen = Dater::new("teen", 16, "MALE").join(&app).await;
    let refused = app.graphql(RECOMMENDATIONS, json!({}), teen.token()).await;
    assert_eq!(error_code(&refused), "FORBIDDEN");
    let adult = Dater::new("adult", 30, "FEMALE").join(&app).await;
    let refused = app
        .graphql(LIKE, json!({ "id": adult.user_id }), teen.token())
        .await;
    assert_eq!(error_code(&refused), "FORBIDDEN", "minors cannot swipe");
    let anonymous = app.graphql(RECOMMENDATIONS, json!({}), None).await;
    assert_eq!(error_code(&anonymous), "UNAUTHENTICATED");
}

#[tokio::test]
async fn recommendations_keep_every_exclusion_rule_on_both_sides() {
    let app = spawn_app().await;
    let viewer = Dater::new("viewer", 30, "FEMALE").join(&app).await;
    prefer(
        &app,
        &viewer,
        json!({ "genders": ["MALE"], "maxDistanceKm": 50 }),
    )
    .await;

    let ok = Dater::new("okay", 31, "MALE").join(&app).await;
    Dater::new("far", 31, "MALE")
        .at((53.40, 13.40)) // 100 km north
        .join(&app)
        .await;
    let old = Dater::new("old", 45, "MALE").join(&app).await;
    prefer(&app, &old, json!({ "minAge": 18, "maxAge": 99 })).await;
    Dater::new("woman", 30, "FEMALE").join(&app).await;
    Dater::new("teen", 17, "MALE").join(&app).await;
    app.register("nowhere").await; // no profile at all
    let wants_men = Dater::new("wants.men", 31, "MALE").join(&app).await;
    prefer(&app, &wants_men, json!({ "genders": ["MALE"] })).await;
    let wants_young = Dater::new("wants.young", 31, "MALE").join(&app).await;
    prefer(&app, &wants_young, json!({ "minAge": 18, "maxAge": 25 })).await;
    let hidden = Dater::new("hidden", 31, "MALE").join(&app).await;
    prefer(&app, &hidden, json!({ "discoverable": false })).await;
    let blocked = Dater::new("blocked", 31, "MALE").join(&app).await;
    block(&app, &viewer, &blocked).await;
    let blocker = Dater::new("blocker", 31, "MALE").join(&app).await;
    block(&app, &blocker, &viewer).await;
    let liked = Dater::new("liked", 31, "MALE").join(&app).await;
    let passed = Dater::new("passed", 31, "MALE").join(&app).await;
    let matched = Dater::new("matched", 31, "MALE").join(&app).await;

    let before = all_recommended(&app, &viewer, json!({})).await;
    let mut expected = vec!["liked", "matched", "okay", "passed"];
    let mut seen: Vec<&str> = before.iter().map(String::as_str).collect();
    seen.sort();
    assert_eq!(seen, expected, "only those inside both sides' limits");

    swipe(&app, LIKE, &viewer, &liked).await;
    swipe(&app, PASS, &viewer, &passed).await;
    swipe(&app, LIKE, &matched, &viewer).await;
    let made = swipe(&app, LIKE, &viewer, &matched).await;
    assert!(made["match"]["id"].is_string());
    expected.retain(|name| *name == "okay");
    assert_eq!(all_recommended(&app, &viewer, json!({})).await, expected);
    // The matched user no longer sees the viewer either.
    assert!(
        !all_recommended(&app, &matched, json!({}))
            .await
            .contains(&"viewer".to_owned())
    );

    // Without preferences the viewer's own limits widen; the candidates' stay.
    let mut wide = all_recommended(&app, &viewer, json!({ "use": false })).await;
    wide.sort();
    assert_eq!(wide, ["far", "okay", "old", "woman"]);
    // A filter narrows one call.
    let near = all_recommended(
        &app,
        &viewer,
        json!({ "use": false, "filter": { "maxDistanceKm": 20, "genders": ["FEMALE"] } }),
    )
    .await;
    assert_eq!(near, ["woman"]);
    // Only those sharing one of the asked interests.
    let chess = Dater::new("chess.player", 31, "MALE")
        .likes(&["chess", "jazz"])
        .join(&app)
        .await;
    let chess_only = all_recommended(
        &app,
        &viewer,
        json!({ "filter": { "interests": ["Chess", "surfing"] } }),
    )
    .await;
    assert_eq!(chess_only, ["chess.player"]);
    let _ = chess;
    let refused = app
        .graphql(
            RECOMMENDATIONS,
            json!({ "filter": { "minAge": 16 } }),
            viewer.token(),
        )
        .await;
    assert_eq!(error_code(&refused), "BAD_USER_INPUT");
    assert_eq!(error_field(&refused), Some("minAge"));
    let _ = ok;
}

/// The candidates come from an index the server keeps in memory: each change
/// below follows a read that already holds the viewer's area, so a change the
/// index missed would show as a stale deck.
#[tokio::test]
async fn recommendations_follow_profile_and_preference_changes_at_once() {
    let app = spawn_app().await;
    let viewer = Dater::new("viewer", 30, "FEMALE").join(&app).await;
    prefer(&app, &viewer, json!({ "genders": ["MALE"] })).await;
    let ben = Dater::new("ben", 31, "MALE").join(&app).await;
    let seen = || all_recommended(&app, &viewer, json!({}));
    assert_eq!(seen().await, ["ben"]);

    prefer(&app, &ben, json!({ "discoverable": false })).await;
    assert!(seen().await.is_empty(), "hidden at once");
    prefer(&app, &ben, json!({ "discoverable": true })).await;
    assert_eq!(seen().await, ["ben"], "back at once");

    let move_to = |at: (f64, f64)| {
        let app = &app;
        let ben = &ben;
        async move {
            app.data(
                PROFILE,
                json!({ "input": { "location": { "latitude": at.0, "longitude": at.1 } } }),
                ben.token(),
            )
            .await;
        }
    };
    move_to((48.14, 11.58)).await; // Munich
    assert!(seen().await.is_empty(), "moved out of range");
    move_to((52.52, 13.30)).await;
    assert_eq!(seen().await, ["ben"], "moved back");

    prefer(&app, &ben, json!({ "genders": ["MALE"] })).await;
    assert!(seen().await.is_empty(), "his own limits leave her out");
    prefer(&app, &ben, json!({ "genders": ["FEMALE"] })).await;
    app.data(
        PROFILE,
        json!({ "input": { "gender": "NONBINARY" } }),
        ben.token(),
    )
    .await;
    assert!(
        seen().await.is_empty(),
        "no longer of a gender she asked for"
    );
    app.data(
        PROFILE,
        json!({ "input": { "gender": "MALE" } }),
        ben.token(),
    )
    .await;
    app.data(
        PROFILE,
        json!({ "input": { "interests": ["sailing"] } }),
        ben.token(),
    )
    .await;
    let sailing = all_recommended(
        &app,
        &viewer,
        json!({ "filter": { "interests": ["sailing"] } }),
    )
    .await;
    assert_eq!(sailing, ["ben"], "his new interests count");

    // Someone new nearby shows in the next deck; a deleted account does not.
    let cal = Dater::new("cal", 29, "MALE").join(&app).await;
    let mut both = seen().await;
    both.sort();
    assert_eq!(both, ["ben", "cal"]);
    app.data(
        "mutation($p: String!) { deleteAccount(input: { password: $p }) }",
        json!({ "p": common::PASSWORD }),
        cal.token(),
    )
    .await;
    assert_eq!(seen().await, ["ben"], "a deleted account is gone");
}

#[tokio::test]
async fn recent_activity_is_full_while_a_candidate_is_online_and_visible() {
    let app = spawn_app().await;
    let viewer = Dater::new("viewer", 30, "FEMALE").join(&app).await;
    let online = Dater::new("online", 31, "MALE").join(&app).await;
    let invisible = Dater::new("invisible", 31, "MALE").join(&app).await;
    Dater::new("never.here", 31, "MALE").join(&app).await;
    let _online_socket = app.signed_in_socket(&online).await;
    let _invisible_socket = app.signed_in_socket(&invisible).await;
    app.data(
        "mutation { setPresence(status: INVISIBLE) }",
        json!({}),
        invisible.token(),
    )
    .await;

    let page = recommendations(&app, &viewer, json!({})).await;
    let activity = |name: &str| {
        edge_of(&page, name)["compatibility"]["recentActivity"]
            .as_f64()
            .unwrap()
    };
    assert_eq!(activity("online"), 1.0, "an open socket is full activity");
    assert!(
        activity("invisible") < 1.0,
        "INVISIBLE must not show through the ranking"
    );
    assert!(activity("never.here") < 1.0);
}

#[tokio::test]
async fn edges_show_rounded_distances_and_the_parts_of_compatibility() {
    let app = spawn_app().await;
    let viewer = Dater::new("viewer", 30, "FEMALE")
        .likes(&["jazz", "chess", "hiking"])
        .join(&app)
        .await;
    let next_door = Dater::new("next.door", 31, "MALE")
        .at((52.5003, 13.4004))
        .likes(&["chess", "yoga"])
        .join(&app)
        .await;
    let farther = Dater::new("farther", 31, "MALE")
        .at((52.60, 13.40)) // 11.1 km north
        .join(&app)
        .await;
    let friend = app.register("friend").await;
    app.befriend(&viewer, &friend).await;
    app.befriend(&next_door, &friend).await;

    let page = recommendations(&app, &viewer, json!({})).await;
    let edges = page["edges"].as_array().unwrap();
    let edge = |name: &str| edge_of(&page, name);
    let near = edge("next.door");
    assert_eq!(near["distanceKm"], 1, "never below 1 km");
    assert_eq!(near["node"]["location"], Value::Null, "no exact location");
    assert_eq!(near["commonInterests"], json!(["chess"]));
    assert_eq!(near["mutualFriendsCount"], 1);
    assert_eq!(near["superLikedViewer"], false);
    let parts = &near["compatibility"];
    assert!((parts["sharedInterests"].as_f64().unwrap() - 0.4).abs() < 1e-9);
    assert!(parts["mutualFriends"].as_f64().unwrap() > 0.0);
    assert_eq!(edge("farther")["distanceKm"], 11);
    assert_eq!(edge("farther")["mutualFriendsCount"], 0);
    for edge in edges {
        let c = &edge["compatibility"];
        for part in [
            "score",
            "sharedInterests",
            "distance",
            "recentActivity",
            "mutualFriends",
        ] {
            let value = c[part].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&value), "{part} = {value}");
        }
    }
    // Mutual friends are counted from the candidates' side while the viewer
    // has many friends for so few candidates, and from the viewer's side once
    // candidates outnumber them; both count the same.
    for i in 0..4 {
        Dater::new(&format!("more{i}"), 31, "MALE")
            .at((52.55, 13.40))
            .join(&app)
            .await;
    }
    let wider = recommendations(&app, &viewer, json!({})).await;
    let again = edge_of(&wider, "next.door");
    assert_eq!(wider["edges"].as_array().unwrap().len(), 6);
    assert_eq!(again["mutualFriendsCount"], 1);
    let _ = farther;
}

#[tokio::test]
async fn a_plain_like_shows_nowhere_but_a_super_like_does() {
    let app = spawn_app().await;
    let viewer = Dater::new("viewer", 30, "FEMALE").join(&app).await;
    let fan = Dater::new("fan", 31, "MALE").join(&app).await;
    let star = Dater::new("star", 31, "MALE").join(&app).await;
    let edge_of = |page: &Value, name: &str| {
        let mut edge = edge_of(page, name).clone();
        // Cursors differ per deck; everything else must not move.
        edge.as_object_mut().unwrap().remove("cursor");
        edge
    };
    let before = recommendations(&app, &viewer, json!({})).await;
    swipe(&app, LIKE, &fan, &viewer).await;
    swipe(&app, SUPER_LIKE, &star, &viewer).await;
    let after = recommendations(&app, &viewer, json!({})).await;
    assert_eq!(
        edge_of(&before, "fan"),
        edge_of(&after, "fan"),
        "a plain like changes nothing the viewer can read"
    );
    assert_eq!(edge_of(&after, "fan")["superLikedViewer"], false);
    assert_eq!(edge_of(&after, "star")["superLikedViewer"], true);
    assert_eq!(
        edge_of(&before, "star")["compatibility"],
        edge_of(&after, "star")["compatibility"]
    );
}

#[tokio::test]
async fn pages_never_repeat_or_skip_while_others_swipe() {
    let app = spawn_app().await;
    let viewer = Dater::new("viewer", 30, "FEMALE").join(&app).await;
    let mut candidates = Vec::new();
    for i in 0..23 {
        let at = (52.50 + f64::from(i) * 0.01, 13.40);
        candidates.push(
            Dater::new(&format!("c{i:02}"), 28 + i % 5, "MALE")
                .at(at)
                .join(&app)
                .await,
        );
    }
    let first = recommendations(&app, &viewer, json!({ "first": 5 })).await;
    assert_eq!(first["pageInfo"]["hasPreviousPage"], false);
    let mut seen: Vec<String> = usernames(&first);
    let mut cursor = first["pageInfo"]["endCursor"].clone();
    let mut page_number = 0;
    let mut passed_on = None;
    while !cursor.is_null() {
        // Meanwhile candidates like the viewer (which moves their scores),
        // and the viewer passes on one not yet shown.
        let liker = &candidates[(page_number * 7) % candidates.len()];
        swipe(&app, LIKE, liker, &viewer).await;
        if passed_on.is_none() {
            let unseen = candidates
                .iter()
                .zip(0..)
                .find(|(_, i)| !seen.contains(&format!("c{i:02}")))
                .map(|(c, i)| (c.clone(), format!("c{i:02}")))
                .unwrap();
            swipe(&app, PASS, &viewer, &unseen.0).await;
            passed_on = Some(unseen.1);
        }
        let page = recommendations(&app, &viewer, json!({ "first": 5, "after": cursor })).await;
        assert_eq!(page["pageInfo"]["hasPreviousPage"], true);
        seen.extend(usernames(&page));
        cursor = if page["pageInfo"]["hasNextPage"] == true {
            page["pageInfo"]["endCursor"].clone()
        } else {
            Value::Null
        };
        page_number += 1;
    }
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no repeats: {seen:?}");
    let passed_on = passed_on.unwrap();
    assert!(
        !seen.contains(&passed_on),
        "a pass meanwhile leaves them out"
    );
    assert_eq!(seen.len(), candidates.len() - 1, "nobody skipped: {seen:?}");

    // A cursor of another list (another user's, other limits) only places a
    // fresh deck; it shows nothing of that list.
    let someone = &candidates[0];
    prefer(&app, someone, json!({ "genders": ["FEMALE"] })).await;
    let foreign = recommendations(
        &app,
        someone,
        json!({ "first": 5, "after": first["pageInfo"]["endCursor"] }),
    )
    .await;
    assert!(usernames(&foreign).iter().all(|name| name == "viewer"));
    let other_filter = recommendations(
        &app,
        &viewer,
        json!({ "first": 5, "after": first["pageInfo"]["endCursor"],
                "filter": { "maxDistanceKm": 5 } }),
    )
    .await;
    assert_eq!(other_filter["pageInfo"]["hasPreviousPage"], true);
    let garbage = app
        .graphql(
            RECOMMENDATIONS,
            json!({ "after": "bm9wZQ" }),
            viewer.token(),
        )
        .await;
    assert_eq!(error_field(&garbage), Some("after"));
}

#[tokio::test]
async fn a_passed_user_comes_back_after_the_cooldown() {
    let app = spawn_app_with(|settings| settings.pass_cooldown_secs = 1).await;
    let viewer = Dater::new("viewer", 30, "FEMALE").join(&app).await;
    let maybe = Dater::new("maybe", 31, "MALE").join(&app).await;
    swipe(&app, PASS, &viewer, &maybe).await;
    assert!(all_recommended(&app, &viewer, json!({})).await.is_empty());
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert_eq!(all_recommended(&app, &viewer, json!({})).await, ["maybe"]);
    // Passing again restarts the cooldown.
    swipe(&app, PASS, &viewer, &maybe).await;
    assert!(all_recommended(&app, &viewer, json!({})).await.is_empty());
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    // A pass can turn into a like.
    let liked = swipe(&app, LIKE, &viewer, &maybe).await;
    assert_eq!(liked["user"]["username"], "maybe");
    assert!(all_recommended(&app, &viewer, json!({})).await.is_empty());
}

#[tokio::test]
async fn super_likes_run_out_for_the_day() {
    let app = spawn_app_with(|settings| settings.super_likes_per_day = 2).await;
    let viewer = Dater::new("viewer", 30, "FEMALE").join(&app).await;
    let [a, b, c] = [
        Dater::new("amir", 31, "MALE").join(&app).await,
        Dater::new("bert", 31, "MALE").join(&app).await,
        Dater::new("carl", 31, "MALE").join(&app).await,
    ];
    assert_eq!(
        swipe(&app, SUPER_LIKE, &viewer, &a).await["superLikesRemaining"],
        1
    );
    // Again on the same person spends nothing.
    assert_eq!(
        swipe(&app, SUPER_LIKE, &viewer, &a).await["superLikesRemaining"],
        Value::Null
    );
    assert_eq!(
        swipe(&app, SUPER_LIKE, &viewer, &b).await["superLikesRemaining"],
        0
    );
    // A super like cannot be taken back (nor its quota spent again).
    let taken_back = app
        .graphql(PASS, json!({ "id": b.user_id }), viewer.token())
        .await;
    assert_eq!(error_code(&taken_back), "CONFLICT");
    let refused = app
        .graphql(SUPER_LIKE, json!({ "id": c.user_id }), viewer.token())
        .await;
    assert_eq!(error_code(&refused), "RATE_LIMITED");
    let retry_after = refused["errors"][0]["extensions"]["retryAfter"]
        .as_u64()
        .unwrap();
    assert!((86_000..=86_400).contains(&retry_after), "{retry_after}");
    assert!(
        refused["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("super likes")
    );
    // A plain like is still fine, and the refused super like left nothing.
    let liked = swipe(&app, LIKE, &viewer, &c).await;
    assert_eq!(liked["match"], Value::Null);
    swipe(&app, LIKE, &c, &viewer).await;
    let matched = app.data(MATCHES, json!({}), c.token()).await;
    assert_eq!(
        matched["matches"]["edges"][0]["node"]["user"]["username"],
        "viewer"
    );
}

#[tokio::test]
async fn swipes_refuse_what_discovery_would_not_show() {
    let app = spawn_app().await;
    let viewer = Dater::new("viewer", 30, "FEMALE").join(&app).await;
    let hidden = Dater::new("hidden", 31, "MALE").join(&app).await;
    prefer(&app, &hidden, json!({ "discoverable": false })).await;
    let blocker = Dater::new("blocker", 31, "MALE").join(&app).await;
    block(&app, &blocker, &viewer).await;
    let blocked = Dater::new("blocked", 31, "MALE").join(&app).await;
    block(&app, &viewer, &blocked).await;
    let bare = app.register("bare").await;
    let cases = [
        (viewer.user_id.clone(), "BAD_USER_INPUT"),
        (hidden.user_id.clone(), "FORBIDDEN"),
        (blocker.user_id.clone(), "NOT_FOUND"),
        (blocked.user_id.clone(), "FORBIDDEN"),
        (bare.user_id.clone(), "FORBIDDEN"),
        (
            "VXNlcjowMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMA".into(),
            "NOT_FOUND",
        ),
    ];
    for (id, code) in cases {
        for query in [LIKE, SUPER_LIKE] {
            let refused = app
                .graphql(query, json!({ "id": id }), viewer.token())
                .await;
            assert_eq!(error_code(&refused), code, "{id}");
        }
    }
    // Someone hidden who liked the viewer earlier may still be liked back.
    let shy = Dater::new("shy", 31, "MALE").join(&app).await;
    swipe(&app, LIKE, &shy, &viewer).await;
    prefer(&app, &shy, json!({ "discoverable": false })).await;
    let matched = swipe(&app, LIKE, &viewer, &shy).await;
    assert!(matched["match"]["id"].is_string());
    let anonymous = app.graphql(LIKE, json!({ "id": shy.user_id }), None).await;
    assert_eq!(error_code(&anonymous), "UNAUTHENTICATED");
}

#[tokio::test]
async fn a_mutual_like_matches_opens_a_conversation_and_tells_both() {
    let app = spawn_app().await;
    let ann = Dater::new("ann", 30, "FEMALE").join(&app).await;
    let bob = Dater::new("bob", 31, "MALE").join(&app).await;
    let subscription = "subscription { notifications { __typename
        ... on MatchNotification { match { id user { username } conversation { id } } }
        ... on MatchEndedNotification { matchId } } }";
    let mut sockets = Vec::new();
    for who in [&ann, &bob] {
        let mut socket = app.signed_in_socket(who).await;
        socket
            .send(json!({ "id": "1", "type": "subscribe", "payload": { "query": subscription } }))
            .await;
        sockets.push(socket);
    }
    app.until_live_subscriptions(2).await;

    let first = swipe(&app, LIKE, &ann, &bob).await;
    assert_eq!(first["match"], Value::Null);
    let second = swipe(&app, LIKE, &bob, &ann).await;
    let matched = &second["match"];
    assert_eq!(matched["user"]["username"], "ann");
    assert_eq!(matched["conversation"]["kind"], "DIRECT");
    let match_id = matched["id"].clone();
    for (socket, other) in sockets.iter_mut().zip(["bob", "ann"]) {
        let event = socket.receive().await;
        let notification = &event["payload"]["data"]["notifications"];
        assert_eq!(notification["__typename"], "MatchNotification");
        assert_eq!(notification["match"]["id"], match_id);
        assert_eq!(notification["match"]["user"]["username"], other);
        assert_eq!(
            notification["match"]["conversation"]["id"],
            matched["conversation"]["id"]
        );
    }
    for who in [&ann, &bob] {
        let listed = app.data(MATCHES, json!({}), who.token()).await;
        assert_eq!(listed["matches"]["edges"].as_array().unwrap().len(), 1);
        assert_eq!(listed["matches"]["edges"][0]["node"]["id"], match_id);
    }
    // Liking again answers the same match; passing on it is a conflict.
    let again = swipe(&app, LIKE, &ann, &bob).await;
    assert_eq!(again["match"]["id"], match_id);
    let refused = app
        .graphql(PASS, json!({ "id": bob.user_id }), ann.token())
        .await;
    assert_eq!(error_code(&refused), "CONFLICT");

    // Matched users may message though they are not friends.
    let send = "mutation($c: ID!, $m: String!) { sendMessage(input: {
        conversationId: $c, body: \"hi\", clientMessageId: $m }) { seq } }";
    let conversation = matched["conversation"]["id"].clone();
    let sent = app
        .data(send, json!({ "c": conversation, "m": "1" }), ann.token())
        .await;
    assert_eq!(sent["sendMessage"]["seq"], 1);
    let node = app
        .data(
            "query($id: ID!) { node(id: $id) { ... on Match { user { username } } } }",
            json!({ "id": match_id }),
            ann.token(),
        )
        .await;
    assert_eq!(node["node"]["user"]["username"], "bob");
    let stranger = app.register("stranger").await;
    let hidden = app
        .data(
            "query($id: ID!) { node(id: $id) { id } }",
            json!({ "id": match_id }),
            stranger.token(),
        )
        .await;
    assert_eq!(hidden["node"], Value::Null, "a match is its pair's alone");
    let refused = app
        .graphql(
            "mutation($id: ID!) { unmatch(matchId: $id) }",
            json!({ "id": match_id }),
            stranger.token(),
        )
        .await;
    assert_eq!(error_code(&refused), "NOT_FOUND");

    // Unmatching ends it for both, for good.
    let ended = app
        .data(
            "mutation($id: ID!) { unmatch(matchId: $id) }",
            json!({ "id": match_id }),
            bob.token(),
        )
        .await;
    assert_eq!(ended["unmatch"], match_id);
    for socket in &mut sockets {
        let event = socket.receive().await;
        let notification = &event["payload"]["data"]["notifications"];
        assert_eq!(notification["__typename"], "MatchEndedNotification");
        assert_eq!(notification["matchId"], match_id);
    }
    let closed = app
        .graphql(send, json!({ "c": conversation, "m": "2" }), ann.token())
        .await;
    assert_eq!(error_code(&closed), "FORBIDDEN");
    // Nothing new reaches the other side: no reactions, no typing.
    let message_id = app
        .data(
            "query($c: ID!) { conversation(id: $c) { messages { edges { node { id body } } } } }",
            json!({ "c": conversation }),
            bob.token(),
        )
        .await["conversation"]["messages"]["edges"][0]["node"]["id"]
        .clone();
    let reaction = app
        .graphql(
            "mutation($m: ID!) { addReaction(input: { messageId: $m, emoji: \"👍\" }) { id } }",
            json!({ "m": message_id }),
            bob.token(),
        )
        .await;
    assert_eq!(error_code(&reaction), "FORBIDDEN");
    let typing = app
        .graphql(
            "mutation($c: ID!) { setTyping(input: { conversationId: $c, typing: true }) }",
            json!({ "c": conversation }),
            bob.token(),
        )
        .await;
    assert_eq!(error_code(&typing), "FORBIDDEN");
    let unreact = app
        .graphql(
            "mutation($m: ID!) { removeReaction(input: { messageId: $m, emoji: \"👍\" }) { id } }",
            json!({ "m": message_id }),
            bob.token(),
        )
        .await;
    assert_eq!(error_code(&unreact), "FORBIDDEN");
    let read = app
        .graphql(
            "mutation($c: ID!) { markConversationRead(input: { conversationId: $c, upToSeq: 1 }) { id } }",
            json!({ "c": conversation }),
            bob.token(),
        )
        .await;
    assert_eq!(
        error_code(&read),
        "FORBIDDEN",
        "a read receipt is a write too"
    );
    for who in [&ann, &bob] {
        let listed = app.data(MATCHES, json!({}), who.token()).await;
        assert_eq!(listed["matches"]["edges"], json!([]));
    }
    let relike = swipe(&app, LIKE, &ann, &bob).await;
    assert_eq!(
        relike["match"],
        Value::Null,
        "an unmatched pair never matches again"
    );
    let twice = app
        .graphql(
            "mutation($id: ID!) { unmatch(matchId: $id) }",
            json!({ "id": match_id }),
            ann.token(),
        )
        .await;
    assert_eq!(error_code(&twice), "NOT_FOUND");
}

#[tokio::test]
async fn a_block_ends_a_match() {
    let app = spawn_app().await;
    let ann = Dater::new("ann", 30, "FEMALE").join(&app).await;
    let bob = Dater::new("bob", 31, "MALE").join(&app).await;
    swipe(&app, LIKE, &ann, &bob).await;
    let matched = swipe(&app, LIKE, &bob, &ann).await;
    let conversation = matched["match"]["conversation"]["id"].clone();
    let mut socket = app.signed_in_socket(&bob).await;
    socket
        .send(json!({ "id": "1", "type": "subscribe", "payload": { "query":
            "subscription { notifications { __typename ... on MatchEndedNotification { matchId } } }" } }))
        .await;
    app.until_live_subscriptions(1).await;
    block(&app, &ann, &bob).await;
    let ended = socket.receive().await;
    assert_eq!(
        ended["payload"]["data"]["notifications"]["matchId"],
        matched["match"]["id"]
    );
    app.data(
        "mutation($id: ID!) { unblockUser(userId: $id) { id } }",
        json!({ "id": bob.user_id }),
        ann.token(),
    )
    .await;
    for who in [&ann, &bob] {
        let listed = app.data(MATCHES, json!({}), who.token()).await;
        assert_eq!(listed["matches"]["edges"], json!([]));
    }
    let send = app
        .graphql(
            "mutation($c: ID!) { sendMessage(input: {
                conversationId: $c, body: \"still there?\", clientMessageId: \"x\" }) { seq } }",
            json!({ "c": conversation }),
            bob.token(),
        )
        .await;
    assert_eq!(error_code(&send), "FORBIDDEN");
}

#[tokio::test]
async fn a_deleted_account_ends_its_matches() {
    let app = spawn_app().await;
    let ann = Dater::new("ann", 30, "FEMALE").join(&app).await;
    let bob = Dater::new("bob", 31, "MALE").join(&app).await;
    swipe(&app, LIKE, &ann, &bob).await;
    let matched = swipe(&app, LIKE, &bob, &ann).await;
    let mut socket = app.signed_in_socket(&bob).await;
    socket
        .send(
            json!({ "id": "1", "type": "subscribe", "payload": { "query":
            "subscription { notifications { ... on MatchEndedNotification { matchId } } }" } }),
        )
        .await;
    app.until_live_subscriptions(1).await;
    app.data(
        "mutation($p: String!) { deleteAccount(input: { password: $p }) }",
        json!({ "p": common::PASSWORD }),
        ann.token(),
    )
    .await;
    let ended = socket.receive().await;
    assert_eq!(
        ended["payload"]["data"]["notifications"]["matchId"],
        matched["match"]["id"]
    );
    let listed = app.data(MATCHES, json!({}), bob.token()).await;
    assert_eq!(listed["matches"]["edges"], json!([]));
}

#[tokio::test]
async fn concurrent_mutual_likes_make_exactly_one_match() {
    let app = spawn_app().await;
    let mut pairs = Vec::new();
    for i in 0..8 {
        pairs.push((
            Dater::new(&format!("fem{i}"), 30, "FEMALE")
                .join(&app)
                .await,
            Dater::new(&format!("male{i}"), 31, "MALE").join(&app).await,
        ));
    }
    let results =
        futures_util::future::join_all(pairs.iter().map(|(f, m)| async {
            tokio::join!(swipe(&app, LIKE, f, m), swipe(&app, LIKE, m, f))
        }))
        .await;
    for ((f, m), (one, other)) in pairs.iter().zip(results) {
        let ids: Vec<&Value> = [&one["match"]["id"], &other["match"]["id"]]
            .into_iter()
            .filter(|id| id.is_string())
            .collect();
        assert!(!ids.is_empty(), "the second like sees the first");
        for who in [f, m] {
            let listed = app.data(MATCHES, json!({}), who.token()).await;
            let edges = listed["matches"]["edges"].as_array().unwrap();
            assert_eq!(edges.len(), 1, "exactly one match");
            assert_eq!(&edges[0]["node"]["id"], ids[0]);
        }
    }
}

#[tokio::test]
async fn a_page_costs_the_same_few_statements_whatever_its_size() {
    let app = spawn_app().await;
    let viewer = Dater::new("viewer", 30, "FEMALE").join(&app).await;
    for i in 0..25 {
        Dater::new(&format!("c{i:02}"), 31, "MALE")
            .at((52.50 + f64::from(i) * 0.01, 13.40))
            .join(&app)
            .await;
    }
    let query =
        "query($first: Int, $after: String) { recommendations(first: $first, after: $after) {
        pageInfo { endCursor }
        edges { distanceKm compatibility { score } node { username age interests
            friendsCount viewerRelationship } } } }";
    // Once first, so both sizes find the same lists cached (the viewer's
    // friend list is read once, then kept).
    app.data(query, json!({ "first": 1 }), viewer.token()).await;
    // Past the joins' repeated invalidations (500 ms on), which the discovery
    // index answers by reading those users again: a statement of its own, not
    // of any page.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let mut costs = Vec::new();
    for first in [5, 20] {
        let before = app.statements.get();
        let data = app
            .data(query, json!({ "first": first }), viewer.token())
            .await;
        costs.push(app.statements.get() - before);
        assert_eq!(
            data["recommendations"]["edges"].as_array().unwrap().len(),
            first
        );
        // A later page, from the kept deck.
        let before = app.statements.get();
        app.data(
            query,
            json!({ "first": first, "after": data["recommendations"]["pageInfo"]["endCursor"] }),
            viewer.token(),
        )
        .await;
        costs.push(app.statements.get() - before);
    }
    assert_eq!(costs[0], costs[2], "first pages of 5 and 20: {costs:?}");
    assert_eq!(costs[1], costs[3], "later pages of 5 and 20: {costs:?}");
    assert!(costs.iter().all(|c| *c <= 6), "a few statements: {costs:?}");
}

#[tokio::test]
async fn swipes_are_rate_limited_per_user() {
    let app = spawn_app_with(|settings| {
        settings.rate_limits = kith::config::Switch::On;
        settings.rate_swipes_per_user = "2/min".parse().unwrap();
    })
    .await;
    let viewer = Dater::new("viewer", 30, "FEMALE").join(&app).await;
    let other = Dater::new("other", 31, "MALE").join(&app).await;
    for _ in 0..2 {
        swipe(&app, PASS, &viewer, &other).await;
    }
    let refused = app
        .graphql(LIKE, json!({ "id": other.user_id }), viewer.token())
        .await;
    assert_eq!(error_code(&refused), "RATE_LIMITED");
    assert!(
        refused["errors"][0]["extensions"]["retryAfter"]
            .as_u64()
            .unwrap()
            >= 1
    );
    // Someone else's swipes count apart.
    swipe(&app, LIKE, &other, &viewer).await;
}

/// What an attacker learns of `target` by walking north past it in small
/// steps, asking at each step for a fresh deck within 1 km: whether the
/// target is in it, and at what shown distance.
async fn walk_past(app: &TestApp, attacker: &Session, target: &str) -> Vec<Option<i64>> {
    let mut seen = Vec::new();
    for step in 0..=30 {
        let latitude = 52.49 + f64::from(step) * 0.002;
        app.data(
            PROFILE,
            json!({ "input": { "location": { "latitude": latitude, "longitude": 13.40 } } }),
            attacker.token(),
        )
        .await;
        let deck = recommendations(
            app,
            attacker,
            json!({ "first": 100, "filter": { "maxDistanceKm": 1 } }),
        )
        .await;
        seen.push(
            deck["edges"]
                .as_array()
                .unwrap()
                .iter()
                .find(|edge| edge["node"]["username"] == target)
                .map(|edge| edge["distanceKm"].as_i64().unwrap()),
        );
    }
    seen
}

#[tokio::test]
async fn moving_about_cannot_tell_two_spots_in_one_cell_apart() {
    let app = spawn_app().await;
    let attacker = Dater::new("attacker", 30, "FEMALE").join(&app).await;
    // Two spots 0.85 km apart, both in the ~1 km cell centred on 52.52, 13.40.
    let target = Dater::new("target", 31, "MALE")
        .at((52.5162, 13.4013))
        .join(&app)
        .await;
    let south = walk_past(&app, &attacker, "target").await;
    app.data(
        PROFILE,
        json!({ "input": { "location": { "latitude": 52.5238, "longitude": 13.3987 } } }),
        target.token(),
    )
    .await;
    let north = walk_past(&app, &attacker, "target").await;
    assert!(
        south.iter().any(Option::is_some) && south.iter().any(Option::is_none),
        "the walk passes the target: {south:?}"
    );
    assert_eq!(south, north, "the decks tell the two spots apart");
}

#[tokio::test]
async fn location_changes_and_fresh_decks_are_rate_limited_per_user() {
    let app = spawn_app_with(|settings| {
        settings.rate_limits = kith::config::Switch::On;
        settings.rate_location_per_user = "2/h".parse().unwrap();
        settings.rate_decks_per_user = "2/h".parse().unwrap();
    })
    .await;
    // Joining sets a location: the first of two.
    let viewer = Dater::new("viewer", 30, "FEMALE").join(&app).await;
    for i in 0..3 {
        Dater::new(&format!("other{i}"), 31, "MALE")
            .join(&app)
            .await;
    }
    let move_to = |latitude: f64| json!({ "input": { "location": { "latitude": latitude, "longitude": 13.40 } } });
    app.data(PROFILE, move_to(52.501), viewer.token()).await;
    let refused = app.graphql(PROFILE, move_to(52.502), viewer.token()).await;
    assert_eq!(error_code(&refused), "RATE_LIMITED");
    assert!(
        refused["errors"][0]["extensions"]["retryAfter"]
            .as_u64()
            .unwrap()
            >= 1
    );
    // Other profile changes are not counted.
    app.data(PROFILE, json!({ "input": { "bio": "hi" } }), viewer.token())
        .await;

    let first = recommendations(&app, &viewer, json!({ "first": 1 })).await;
    let second = recommendations(&app, &viewer, json!({ "first": 1 })).await;
    // Reading on in a kept deck deals nothing new.
    let next = recommendations(
        &app,
        &viewer,
        json!({ "first": 1, "after": second["pageInfo"]["endCursor"] }),
    )
    .await;
    assert_eq!(usernames(&next).len(), 1);
    // A cursor of a deck that is gone deals a fresh one: counted too.
    let stale = app
        .graphql(
            RECOMMENDATIONS,
            json!({ "first": 1, "after": first["pageInfo"]["endCursor"] }),
            viewer.token(),
        )
        .await;
    assert_eq!(error_code(&stale), "RATE_LIMITED");
    let refused = app
        .graphql(RECOMMENDATIONS, json!({ "first": 1 }), viewer.token())
        .await;
    assert_eq!(error_code(&refused), "RATE_LIMITED");
    assert!(
        refused["errors"][0]["extensions"]["retryAfter"]
            .as_u64()
            .unwrap()
            >= 1
    );
}

/// Each side's `MatchEnded` notifications up to a marker (a friend request
/// sent after the race): exactly one each, however the race went.
async fn match_endings_before_a_marker(socket: &mut common::Socket) -> usize {
    let mut endings = 0;
    loop {
        let frame = socket.receive().await;
        match frame["payload"]["data"]["notifications"]["__typename"].as_str() {
            Some("MatchEndedNotification") => endings += 1,
            Some("FriendRequestReceivedNotification") => return endings,
            _ => panic!("unexpected frame: {frame}"),
        }
    }
}

#[tokio::test]
async fn a_match_ended_from_both_sides_at_once_ends_once() {
    let app = spawn_app().await;
    let marker = app.register("marker").await;
    let unmatch = "mutation($id: ID!) { unmatch(matchId: $id) }";
    let block = "mutation($id: ID!) { blockUser(userId: $id) { id } }";
    for round in 0..8 {
        let ann = Dater::new(&format!("ann{round}"), 30, "FEMALE")
            .join(&app)
            .await;
        let bob = Dater::new(&format!("bob{round}"), 31, "MALE")
            .join(&app)
            .await;
        swipe(&app, LIKE, &ann, &bob).await;
        let matched = swipe(&app, LIKE, &bob, &ann).await["match"]["id"].clone();
        let mut sockets = Vec::new();
        for who in [&ann, &bob] {
            let mut socket = app.signed_in_socket(who).await;
            socket
                .send(
                    json!({ "id": "n", "type": "subscribe", "payload": { "query":
                    "subscription { notifications { __typename } }" } }),
                )
                .await;
            sockets.push(socket);
        }
        app.until_live_subscriptions(2).await;

        // Odd rounds race a block against the other side's unmatch.
        let calls = if round % 2 == 0 {
            [
                (unmatch, json!({ "id": matched }), ann.token()),
                (unmatch, json!({ "id": matched }), bob.token()),
            ]
        } else {
            [
                (block, json!({ "id": bob.user_id }), ann.token()),
                (unmatch, json!({ "id": matched }), bob.token()),
            ]
        };
        let answers = app.at_once(&calls).await;
        let refused: Vec<_> = answers
            .iter()
            .filter(|a| a.get("errors").is_some())
            .collect();
        if round % 2 == 0 {
            // One of them ended it; the other finds no match to end.
            common::the_loser(&answers, "NOT_FOUND");
        } else {
            // The block always stands; the unmatch either ended the match
            // first or finds it ended (or ann gone from bob's view).
            assert!(answers[0].get("errors").is_none(), "{}", answers[0]);
            if let Some(loser) = refused.first() {
                assert_eq!(error_code(loser), "NOT_FOUND", "round {round}: {loser}");
            }
        }
        for (who, socket) in [&ann, &bob].into_iter().zip(&mut sockets) {
            app.data(
                "mutation($id: ID!) { sendFriendRequest(input: { userId: $id }) { id } }",
                json!({ "id": who.user_id }),
                marker.token(),
            )
            .await;
            assert_eq!(
                match_endings_before_a_marker(socket).await,
                1,
                "round {round}: {} is told once",
                who.username
            );
            assert!(
                app.data(MATCHES, json!({}), who.token()).await["matches"]["edges"]
                    .as_array()
                    .unwrap()
                    .is_empty()
            );
        }
        drop(sockets);
        app.until_live_subscriptions(0).await;
    }
}
