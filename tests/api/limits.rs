//! What a document may be: the standard tools' queries always answer, and the
//! shapes that once crashed or held the process (deep nesting, fragment
//! fan-out, nested pages, directives, huge operation names) are refused with
//! `BAD_USER_INPUT` before they cost anything, over POST, GET and WebSocket,
//! while the process stays healthy.

use crate::common;

use std::time::Duration;

use common::{Received, error_code, spawn_app};
use serde_json::{Value, json};

/// graphql-js 16's `getIntrospectionQuery()`, with its defaults and with every
/// option on (as GraphiQL 4, graphql-codegen, Rover, Postman and Insomnia send it).
const INTROSPECTION_DEFAULT: &str = include_str!("../fixtures/introspection-default.graphql");
const INTROSPECTION_FULL: &str = include_str!("../fixtures/introspection-full.graphql");

/// A POST whose answer may be a request error (which `TestApp::graphql`, built
/// for operations that run, would not accept).
async fn post(app: &common::TestApp, body: &Value) -> (u16, Value) {
    let response = app
        .client
        .post(app.url("/graphql"))
        .header("accept", "application/graphql-response+json")
        .json(body)
        .send()
        .await
        .expect("request sent");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON response"))
}

async fn still_healthy(app: &common::TestApp) {
    let response = app
        .client
        .get(app.url("/healthz"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .expect("the process is still up");
    assert_eq!(response.status(), 200);
    let answer = app
        .data(
            "{ usernameAvailable(username: \"someone\") }",
            json!({}),
            None,
        )
        .await;
    assert_eq!(answer["usernameAvailable"], true);
}

fn nested_object(levels: usize) -> String {
    format!(
        "{{ usernameAvailable(username: {}1{}) }}",
        "{a:".repeat(levels),
        "}".repeat(levels)
    )
}

fn nested_list(levels: usize) -> String {
    format!(
        "{{ usernameAvailable(username: {}1{}) }}",
        "[".repeat(levels),
        "]".repeat(levels)
    )
}

#[tokio::test]
async fn the_standard_introspection_query_answers_over_http_and_websocket() {
    let app = spawn_app().await;
    for query in [INTROSPECTION_DEFAULT, INTROSPECTION_FULL] {
        let (status, body) = post(
            &app,
            &json!({ "query": query, "operationName": "IntrospectionQuery" }),
        )
        .await;
        assert_eq!(status, 200, "{body:#}");
        assert!(body.get("errors").is_none(), "{body:#}");
        let types = body["data"]["__schema"]["types"].as_array().expect("types");
        assert!(types.iter().any(|t| t["name"] == "User"));
        // The deepest wrapping the schema has ([User!]! and the like) comes back whole.
        let user = types.iter().find(|t| t["name"] == "Query").unwrap();
        let fields = user["fields"].as_array().unwrap();
        assert!(
            fields
                .iter()
                .any(|f| f["type"]["ofType"]["kind"] == "OBJECT"
                    || f["type"]["ofType"]["ofType"].is_object())
        );
    }

    let mut socket = app.websocket("/graphql", "graphql-transport-ws").await;
    socket
        .send(json!({ "type": "connection_init", "payload": {} }))
        .await;
    assert_eq!(socket.receive().await["type"], "connection_ack");
    socket
        .send(json!({ "id": "1", "type": "subscribe",
            "payload": { "query": INTROSPECTION_FULL, "operationName": "IntrospectionQuery" } }))
        .await;
    let next = socket.receive().await;
    assert_eq!(next["type"], "next", "{next:#}");
    assert!(next["payload"].get("errors").is_none(), "{next:#}");
    assert!(next["payload"]["data"]["__schema"]["types"].is_array());
}

#[tokio::test]
async fn the_depth_limit_still_guards_queries_and_introspection_lists() {
    let app = spawn_app().await;
    // 13 fields deep, through real fields.
    let mut deep = String::from("id");
    for _ in 0..6 {
        deep = format!("friends {{ nodes {{ {deep} }} }}");
    }
    let (status, body) = post(&app, &json!({ "query": format!("{{ me {{ {deep} }} }}") })).await;
    assert_eq!(status, 400, "{body:#}");
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("deeper than 12")
    );

    // Introspection that multiplies through `fields` three times.
    let lists =
        "{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }";
    let (status, body) = post(&app, &json!({ "query": lists })).await;
    assert_eq!(status, 400, "{body:#}");
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
}

#[tokio::test]
async fn deeply_nested_values_are_refused_on_every_path_and_the_process_lives() {
    let app = spawn_app().await;
    for query in [nested_object(1_300), nested_list(2_000)] {
        let (status, body) = post(&app, &json!({ "query": query })).await;
        assert_eq!(status, 400, "{body:#}");
        assert_eq!(error_code(&body), "BAD_USER_INPUT");

        let response = app
            .client
            .get(app.url("/graphql"))
            .query(&[("query", query.as_str())])
            .send()
            .await
            .expect("GET sent");
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(error_code(&body), "BAD_USER_INPUT");

        let mut socket = app.websocket("/graphql", "graphql-transport-ws").await;
        socket
            .send(json!({ "type": "connection_init", "payload": {} }))
            .await;
        assert_eq!(socket.receive().await["type"], "connection_ack");
        socket
            .send(json!({ "id": "1", "type": "subscribe", "payload": { "query": query } }))
            .await;
        match socket.receive_within(Duration::from_secs(10)).await {
            Received::Json(message) => {
                let errors = &message["payload"];
                let first = errors
                    .get("errors")
                    .and_then(|e| e.get(0))
                    .or_else(|| errors.get(0))
                    .unwrap_or_else(|| panic!("an error: {message:#}"));
                assert_eq!(first["extensions"]["code"], "BAD_USER_INPUT", "{message:#}");
            }
            Received::Closed(code) => panic!("socket closed ({code:?}) instead of an error"),
        }
        still_healthy(&app).await;
    }

    // At the limit the parser is given the document, and copes.
    let (_, body) = post(&app, &json!({ "query": nested_list(60) })).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "a list is no username");
    assert!(
        !body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("nests deeper")
    );
    still_healthy(&app).await;
}

#[tokio::test]
async fn fragment_fan_out_is_refused_before_validation_expands_it() {
    let app = spawn_app().await;
    let mut query = String::from("query { ...F0 }\n");
    for level in 0..26 {
        query.push_str(&format!(
            "fragment F{level} on Query {{ ...F{next} ...F{next} }}\n",
            next = level + 1
        ));
    }
    query.push_str("fragment F26 on Query { __typename }\n");
    // Two at once, as the attack ran: neither may hold the process.
    let body = json!({ "query": query });
    let (a, b) = tokio::join!(post(&app, &body), post(&app, &body));
    for (status, body) in [a, b] {
        assert_eq!(status, 400, "{body:#}");
        assert_eq!(error_code(&body), "BAD_USER_INPUT");
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("fields")
        );
    }
    still_healthy(&app).await;
}

#[tokio::test]
async fn nested_pages_cost_what_they_would_build() {
    let app = spawn_app().await;
    let attack = "{ searchGroups(query: \"a\", first: 100) { nodes { members(first: 100) {
        nodes { groups(first: 100) { nodes { id name } } } } } } }";
    let (status, body) = post(&app, &json!({ "query": attack })).await;
    assert_eq!(status, 400, "{body:#}");
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("complex")
    );

    // Page sizes given as variables weigh the same.
    let (status, body) = post(
        &app,
        &json!({ "query": "query($n: Int) { searchGroups(query: \"a\", first: $n) { nodes {
            members(first: $n) { nodes { groups(first: $n) { nodes { id } } } } } } }",
            "variables": { "n": 100 } }),
    )
    .await;
    assert_eq!(status, 400, "{body:#}");

    // Aliases count each time.
    let aliased: String = (0..40)
        .map(|i| format!("a{i}: searchGroups(query: \"a\", first: 100) {{ nodes {{ id name }} }} "))
        .collect();
    let (status, body) = post(&app, &json!({ "query": format!("{{ {aliased} }}") })).await;
    assert_eq!(status, 400, "{body:#}");

    // What an app asks for passes.
    let user = app.register("zed").await;
    let everyday = "{ me { friends(first: 50) { nodes { id username } }
        groups { nodes { id name members(first: 10) { nodes { id } } } } } }";
    app.data(everyday, json!({}), user.token()).await;
    // A chat list, and one conversation's latest messages.
    let answer = app
        .data(
            "{ conversations(first: 20) { nodes { id unreadCount
                participants { id username displayName presence }
                lastMessage { id body createdAt sender { id username } } } } }",
            json!({}),
            user.token(),
        )
        .await;
    assert!(answer["conversations"]["nodes"].is_array());
    let (_, friend, conversation) = app.friends_chatting().await;
    app.data(
        "query($id: ID!) { conversation(id: $id) { messages(last: 50) { nodes { id seq body
            createdAt sender { id username } reactions { emoji count viewerReacted }
            readBy { id } } } } }",
        json!({ "id": conversation }),
        friend.token(),
    )
    .await;
}

#[tokio::test]
async fn directives_and_aliases_are_bounded() {
    let app = spawn_app().await;
    let skips = "@skip(if: false) ".repeat(120_000 / 20);
    let (status, body) = post(
        &app,
        &json!({ "query": format!("{{ __typename {skips} }}") }),
    )
    .await;
    assert_eq!(status, 400, "{body:#}");
    assert_eq!(error_code(&body), "BAD_USER_INPUT");

    let aliases: String = (0..3_000).map(|i| format!("a{i}: __typename ")).collect();
    let (status, body) = post(&app, &json!({ "query": format!("{{ {aliases} }}") })).await;
    assert_eq!(status, 400, "{body:#}");
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    still_healthy(&app).await;
}

#[tokio::test]
async fn operation_names_that_are_not_names_share_one_metrics_label() {
    // The labels are process-wide: another test's names may be "other" too, and
    // once 500 names are seen every new one is.
    if common::in_own_process(
        module_path!(),
        "operation_names_that_are_not_names_share_one_metrics_label",
    )
    .await
    {
        return;
    }
    let app = spawn_app().await;
    let long = format!("Op{}", "x".repeat(10_000));
    app.data(&format!("query {long} {{ __typename }}"), json!({}), None)
        .await;
    app.data("query ListFriends { __typename }", json!({}), None)
        .await;
    let metrics = app.metrics().await;
    assert!(!metrics.contains(&long[..100]), "the long name is no label");
    assert!(metrics.contains("operation=\"ListFriends\""));
    assert!(metrics.contains("operation=\"other\""));
}
