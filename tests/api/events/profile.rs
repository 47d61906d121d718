//! Profile events: which fields changed, with the values a profile page
//! shows anyway; a birthdate and a location only named, never their
//! values; nothing for a refused update nor for one naming no field.

use serde_json::{Value, json};

use super::*;
use crate::common::{PASSWORD, error_code, spawn_app_with};

const UPDATE: &str =
    "mutation($input: UpdateProfileInput!) { updateProfile(input: $input) { id } }";

#[tokio::test]
async fn profile_events_name_what_changed_and_never_where_or_when_born() {
    let Some(nats) = OwnNats::start().await else {
        return;
    };
    let app = spawn_app_with(|s| s.nats_url = Some(nats.url())).await;
    let ann = app.register("ann_profile").await;
    let update = |input: Value| {
        let app = &app;
        let token = ann.access_token.clone();
        async move {
            app.graphql(UPDATE, json!({ "input": input }), Some(&token))
                .await
        }
    };
    let everything = update(json!({
        "displayName": "Ann E.",
        "bio": "likes events",
        "birthdate": "1990-04-17",
        "gender": "FEMALE",
        "interests": [" Hiking ", "hiking", "Chess"],
        "location": { "latitude": 52.5123, "longitude": 13.4049 },
        "friendListVisibility": "ONLY_ME",
        "presenceVisibility": "EVERYONE",
    }))
    .await;
    assert!(everything.get("errors").is_none(), "{everything:#}");
    // Refused: too young; nothing told.
    let refused = update(json!({ "birthdate": "2024-01-01", "bio": "young" })).await;
    assert_eq!(error_code(&refused), "BAD_USER_INPUT");
    // A field cleared; a move; an update naming nothing (nothing told).
    for input in [
        json!({ "bio": null }),
        json!({ "location": { "latitude": -33.8688, "longitude": 151.2093 } }),
        json!({}),
    ] {
        let answer = update(input).await;
        assert!(answer.get("errors").is_none(), "{answer:#}");
    }

    nats.until("user.profile_updated", 3).await;
    let events = settled(&app, &nats).await;
    assert_no_duplicates(&events);
    assert_no_secrets(&events, &[PASSWORD, &ann.access_token, &ann.refresh_token]);
    let ann_id = user_key(&ann);
    let updates = of_type(&events, "user.profile_updated");
    assert_eq!(updates.len(), 3, "{updates:#?}");
    for event in &updates {
        assert_eq!(event["actor"], ann_id.as_str());
    }
    // Each `data` whole: a birthdate and a location are named in `changed`,
    // and their values are nowhere.
    assert_eq!(
        updates[0]["data"],
        json!({
            "userId": ann_id,
            "changed": ["displayName", "bio", "birthdate", "gender", "interests",
                "location", "friendListVisibility", "presenceVisibility"],
            "displayName": "Ann E.",
            "bio": "likes events",
            "gender": "FEMALE",
            "interests": ["hiking", "chess"],
            "friendListVisibility": "ONLY_ME",
            "presenceVisibility": "EVERYONE",
        })
    );
    assert_eq!(
        updates[1]["data"],
        json!({ "userId": ann_id, "changed": ["bio"], "bio": null })
    );
    assert_eq!(
        updates[2]["data"],
        json!({ "userId": ann_id, "changed": ["location"] })
    );
}
