//! A user's profile and presence.

use serde_json::json;

use super::{Bad::*, Call, Table, World, bad, chars, invalid};

#[rustfmt::skip]
pub fn table(world: &World) -> Table {
    let mut table = Table::default();
    let profile = "updateProfile(input: UpdateProfileInput!) { id }";
    table.add(
        Call::new(profile, Some(&world.ann), json!({ "input": {} }))
            .row("input.displayName", TooLong, chars(65), bad("displayName"))
            .row("input.displayName", WrongFormat, json!("Ann\u{1b}[31m"), bad("displayName"))
            .row("input.displayName", WrongFormat, json!("Ann\u{0}"), bad("displayName"))
            .row("input.bio", TooLong, chars(501), bad("bio"))
            .row("input.bio", WrongFormat, json!("hi\u{0}there"), bad("bio"))
            .row("input.birthdate", WrongFormat, json!("1990-13-01"), invalid())
            .row("input.birthdate", WrongFormat, json!(19900517), invalid())
            .row("input.birthdate", OutOfRange, json!("2999-01-01"), bad("birthdate"))
            .row("input.birthdate", OutOfRange, json!("1800-01-01"), bad("birthdate"))
            .row("input.gender", Invalid, json!("OTHER"), invalid())
            .row("input.interests", TooLong, json!(tags(21)), bad("interests"))
            .row("input.interests", Empty, json!([""]), bad("interests"))
            .row("input.interests", Blank, json!(["  "]), bad("interests"))
            .row("input.interests", TooLong, json!([chars(33)]), bad("interests"))
            .row("input.interests", WrongFormat, json!(["chess\u{0}"]), bad("interests"))
            .row("input.interests", Invalid, json!([1, 2]), invalid()),
    );
    // The whole location is sent with one of its coordinates wrong.
    let here = json!({ "input": { "location": { "latitude": 52.5, "longitude": 13.4 } } });
    table.add(
        Call::new(profile, Some(&world.ann), here)
            .row("input.location.latitude", OutOfRange, json!(90.5), bad("latitude"))
            .row("input.location.latitude", OutOfRange, json!(-91), bad("latitude"))
            .row("input.location.latitude", Invalid, json!("north"), invalid())
            .row("input.location.longitude", OutOfRange, json!(180.5), bad("longitude"))
            .row("input.location.longitude", OutOfRange, json!(-1000), bad("longitude"))
            .row("input.location.longitude", Invalid, json!(true), invalid())
            .missing("input.location.longitude"),
    );

    table.add(
        Call::new(
            "setPresence(status: PresenceStatus!)",
            Some(&world.ann),
            json!({}),
        )
        .row("status", Invalid, json!("BUSY"), invalid())
        .row("status", Invalid, json!("online"), invalid())
        .missing("status"),
    );
    table
}

/// `count` distinct interests.
fn tags(count: usize) -> Vec<String> {
    (0..count).map(|i| format!("tag{i}")).collect()
}

#[tokio::test]
async fn profiles_refuse_bad_input_and_write_nothing() {
    super::run_table(table).await;
}
