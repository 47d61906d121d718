//! Discovery: preferences, swipes and matches.

use serde_json::json;

use super::{Bad::*, Call, Table, World, bad, invalid, not_found};

#[rustfmt::skip]
pub fn table(world: &World) -> Table {
    let mut table = Table::default();
    let ann = Some(&world.ann);
    let cat = json!(world.cat.user_id);

    table.add(
        Call::new(
            "updateDiscoveryPreferences(input: UpdateDiscoveryPreferencesInput!) { minAge }",
            ann,
            json!({ "input": {} }),
        )
        .row("input.minAge", OutOfRange, json!(17), bad("minAge"))
        .row("input.minAge", OutOfRange, json!(100), bad("minAge"))
        .row("input.minAge", OutOfRange, json!(-1), bad("minAge"))
        .row("input.minAge", Invalid, json!(18.5), invalid())
        .row("input.minAge", Invalid, json!(1_i64 << 31), invalid())
        .row("input.maxAge", OutOfRange, json!(17), bad("maxAge"))
        .row("input.maxAge", OutOfRange, json!(100), bad("maxAge"))
        .row("input.genders", Empty, json!([]), bad("genders"))
        .row("input.genders", Invalid, json!(["OTHER"]), invalid())
        .row("input.maxDistanceKm", OutOfRange, json!(0), bad("maxDistanceKm"))
        .row("input.maxDistanceKm", OutOfRange, json!(301), bad("maxDistanceKm"))
        .row("input.maxDistanceKm", OutOfRange, json!(-5), bad("maxDistanceKm")),
    );
    // One bound past the other one as stored: the bound sent is the wrong one.
    table.add(
        Call::new(
            "updateDiscoveryPreferences(input: UpdateDiscoveryPreferencesInput!) { minAge }",
            ann,
            json!({ "input": {} }),
        )
        .row("input.minAge", OutOfRange, json!(99), bad("minAge"))
        .row("input.maxAge", OutOfRange, json!(18), bad("maxAge")),
    );

    for swipe in [
        "like(userId: ID!) { user { id } }",
        "pass(userId: ID!) { user { id } }",
        "superLike(userId: ID!) { user { id } }",
    ] {
        table.add(
            Call::new(swipe, ann, json!({}))
                .ids("userId", &cat, not_found())
                .row("userId", ForeignId, json!(world.dan.user_id), not_found())
                .row("userId", Oneself, json!(world.ann.user_id), bad("userId")),
        );
    }
    table.add(
        Call::new("unmatch(matchId: ID!)", ann, json!({}))
            .ids("matchId", &world.ann_eve_match, not_found())
            .row("matchId", ForeignId, world.foreign_match.clone(), not_found()),
    );
    table
}

#[tokio::test]
async fn discovery_refuses_bad_input_and_writes_nothing() {
    super::run_table(table).await;
}
