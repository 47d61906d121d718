//! The HTTP surface: GraphQL over HTTP status codes and media types, GraphiQL,
//! health, readiness and metrics.

mod common;

use common::spawn_app;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde_json::{Value, json};

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

#[tokio::test]
async fn queries_run_over_get_but_mutations_do_not() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/graphql"))
        .query(&[("query", "{ usernameAvailable(username: \"someone\") }")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["data"]["usernameAvailable"], true);

    let response = app
        .client
        .get(app.url("/graphql"))
        .query(&[("query", "mutation { logout }")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "POST");
}

#[tokio::test]
async fn the_graphql_response_media_type_is_used_when_accepted() {
    let app = spawn_app().await;
    let post = |accept: &'static str, body: &'static str| {
        app.client
            .post(app.url("/graphql"))
            .header(ACCEPT, accept)
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .send()
    };

    let ok = post(GRAPHQL_RESPONSE, r#"{"query":"{ __typename }"}"#)
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert!(
        ok.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with(GRAPHQL_RESPONSE)
    );

    // A document that does not validate never executed: 400, no data entry.
    let invalid = post(GRAPHQL_RESPONSE, r#"{"query":"{ noSuchField }"}"#)
        .await
        .unwrap();
    assert_eq!(invalid.status(), 400);
    let body: Value = invalid.json().await.unwrap();
    assert!(body.get("data").is_none());
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");

    // The same over plain JSON is a 200 with errors, as older clients expect.
    let legacy = post("application/json", r#"{"query":"{ noSuchField }"}"#)
        .await
        .unwrap();
    assert_eq!(legacy.status(), 200);
    assert!(
        legacy.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );

    // Errors during execution keep 200 under either media type.
    let unauthenticated = post(GRAPHQL_RESPONSE, r#"{"query":"{ me { id } }"}"#)
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 200);
}

#[tokio::test]
async fn malformed_and_unsupported_requests_get_4xx() {
    let app = spawn_app().await;
    let send = |content_type: &'static str, body: &'static str| {
        app.client
            .post(app.url("/graphql"))
            .header(CONTENT_TYPE, content_type)
            .body(body)
            .send()
    };
    let malformed = send("application/json", "{not json").await.unwrap();
    assert_eq!(malformed.status(), 400);
    let body: Value = malformed.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");

    assert_eq!(send("application/json", "").await.unwrap().status(), 400);
    assert_eq!(
        send("text/plain", r#"{"query":"{ __typename }"}"#)
            .await
            .unwrap()
            .status(),
        415
    );
    assert_eq!(
        send("application/json", r#"{"query": 1}"#)
            .await
            .unwrap()
            .status(),
        400
    );

    let put = app.client.put(app.url("/graphql")).send().await.unwrap();
    assert_eq!(put.status(), 405);
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let app = spawn_app().await;
    let huge = json!({ "query": format!("{{ __typename }} #{}", "x".repeat(3 * 1024 * 1024)) });
    let response = app
        .client
        .post(app.url("/graphql"))
        .json(&huge)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
}

#[tokio::test]
async fn deep_queries_and_big_batches_are_refused() {
    let app = spawn_app().await;
    // 20 levels, past the default limit of 12.
    let outermost_first: Vec<&str> = ["__schema", "types", "fields", "type"]
        .into_iter()
        .chain(std::iter::repeat_n("ofType", 16))
        .collect();
    let selection = outermost_first
        .iter()
        .rev()
        .fold("name".to_owned(), |inner, field| {
            format!("{field} {{ {inner} }}")
        });
    let response = app
        .graphql(&format!("{{ {selection} }}"), json!({}), None)
        .await;
    assert_eq!(
        response["errors"][0]["extensions"]["code"],
        "BAD_USER_INPUT"
    );
    let message = response["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("nested too deep"), "{message}");

    let batch: Vec<Value> = (0..11)
        .map(|_| json!({ "query": "{ __typename }" }))
        .collect();
    let response = app
        .client
        .post(app.url("/graphql"))
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let small: Vec<Value> = (0..3)
        .map(|_| json!({ "query": "{ __typename }" }))
        .collect();
    let response = app
        .client
        .post(app.url("/graphql"))
        .json(&small)
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body.as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn graphiql_is_served_to_browsers() {
    let app = spawn_app().await;
    for path in ["/graphiql", "/graphql"] {
        let page = app
            .client
            .get(app.url(path))
            .header(ACCEPT, "text/html,application/xhtml+xml")
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200, "{path}");
        assert!(
            page.headers()[CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        let html = page.text().await.unwrap();
        assert!(
            html.contains("graphiql") || html.contains("GraphiQL"),
            "{path}"
        );
        assert!(
            html.contains("/graphql/ws"),
            "subscriptions are wired: {path}"
        );
    }
}

#[tokio::test]
async fn health_readiness_and_metrics_answer() {
    let app = spawn_app().await;
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);

    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["database"], "ok");
    if std::env::var("KITH_TEST_REDIS_URL").is_ok() {
        assert_eq!(body["redis"], "ok");
    }

    app.data("query ReadinessProbe { __typename }", json!({}), None)
        .await;
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .contains(r#"kith_graphql_operations_total{operation="ReadinessProbe",outcome="ok"}"#)
    );
    assert!(metrics.contains("kith_graphql_operation_duration_seconds_bucket"));
    assert!(metrics.contains("kith_db_pool_connections"));
}

#[tokio::test]
async fn readiness_fails_when_redis_is_unreachable() {
    // A port nothing listens on: the app must still start, and say it is not ready.
    let app = common::spawn_app_with(|s| s.redis_url = Some("redis://127.0.0.1:1".into())).await;
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["redis"], "unavailable");
}

#[tokio::test]
async fn unknown_paths_are_not_found() {
    let app = spawn_app().await;
    let response = app.client.get(app.url("/nope")).send().await.unwrap();
    assert_eq!(response.status(), 404);
}
