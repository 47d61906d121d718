//! Query arguments that reach the database as text: one holding a control
//! character (a NUL, which PostgreSQL refuses in any statement) is refused,
//! or finds nothing, and never fails the server. Not part of the mutation
//! table: queries write nothing, so there is nothing to snapshot.

use kith::graphql::pagination::encode_cursor;
use serde_json::{Value, json};

use super::{Expect, bad};
use crate::common::spawn_app;

#[tokio::test]
async fn query_text_with_a_nul_is_refused_or_finds_nothing() {
    let app = spawn_app().await;
    let ann = app.register("ann").await;
    let search_users = "query($q: String!, $after: String) {
        searchUsers(query: $q, after: $after) { nodes { id } } }";
    let search_groups = "query($q: String!, $after: String) {
        searchGroups(query: $q, after: $after) { nodes { id } } }";
    // A group cursor is `id:name`.
    let group_cursor = encode_cursor("01a24d8a-0000-7000-8000-000000000000:a\u{0}");
    let refused: [(&str, Value, Expect); 4] = [
        (search_users, json!({ "q": "an\u{0}" }), bad("query")),
        (search_groups, json!({ "q": "an\u{0}" }), bad("query")),
        (
            search_users,
            json!({ "q": "a", "after": encode_cursor("ann\u{0}") }),
            bad("after"),
        ),
        (
            search_groups,
            json!({ "q": "a", "after": group_cursor }),
            bad("after"),
        ),
    ];
    let mut failures = Vec::new();
    for (query, variables, expect) in refused {
        let response = app.graphql(query, variables.clone(), ann.token()).await;
        let error = &response["errors"][0]["extensions"];
        if (error["code"].as_str(), error["field"].as_str()) != (Some(expect.code), expect.field) {
            failures.push(format!("{variables}: {response}"));
        }
    }

    let nobody = app
        .graphql(
            "query($name: String!) { userByUsername(username: $name) { id } }",
            json!({ "name": "ann\u{0}" }),
            ann.token(),
        )
        .await;
    if nobody != json!({ "data": { "userByUsername": null } }) {
        failures.push(format!("userByUsername: {nobody}"));
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
