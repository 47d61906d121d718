//! The HTTP surface: GraphQL over HTTP status codes and media types, GraphiQL,
//! health, readiness and metrics.

use crate::common;

use common::{spawn_app, spawn_app_with};
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use sea_orm::ConnectionTrait;
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
    // 20 levels of fields, past the default limit of 12. (Introspection's
    // `ofType` chains are left out of the depth: see tests/limits.rs.)
    let selection = (0..19).fold("id".to_owned(), |inner, level| match level % 2 {
        0 => format!("nodes {{ {inner} }}"),
        _ => format!("friends {{ {inner} }}"),
    });
    let response = app
        .graphql(&format!("{{ me {{ {selection} }} }}"), json!({}), None)
        .await;
    assert_eq!(
        response["errors"][0]["extensions"]["code"],
        "BAD_USER_INPUT"
    );
    let message = response["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("deeper than 12"), "{message}");

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
        // Subscriptions are wired: the page's own script opens graphql-ws on
        // /graphql/ws.
        let script = html
            .split('"')
            .find(|part| {
                part.starts_with("/graphiql/assets/kith-graphiql.") && part.ends_with(".js")
            })
            .unwrap_or_else(|| panic!("the page loads kith's script: {html}"));
        let script = app.client.get(app.url(script)).send().await.unwrap();
        let script = script.text().await.unwrap();
        assert!(
            script.contains("graphqlWs.createClient") && script.contains(r#"+ "/ws""#),
            "subscriptions are wired: {path}"
        );
    }
}

#[tokio::test]
async fn health_readiness_and_metrics_answer() {
    // Labels are process-wide: once 500 names are seen, a new one is "other".
    if common::in_own_process(module_path!(), "health_readiness_and_metrics_answer").await {
        return;
    }
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
    let metrics = app.metrics().await;
    assert!(
        metrics
            .contains(r#"kith_graphql_operations_total{operation="ReadinessProbe",outcome="ok"}"#)
    );
    assert!(metrics.contains("kith_graphql_operation_duration_seconds_bucket"));
    assert!(metrics.contains("kith_db_pool_connections"));
}

#[tokio::test]
async fn without_redis_the_app_serves_degraded() {
    // A port nothing listens on: the app must still start and serve, and say
    // it is degraded while staying in the load balancer.
    let app = common::spawn_app_with(|s| s.redis_url = Some("redis://127.0.0.1:1".into())).await;
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "degraded");
    assert_eq!(body["redis"], "unavailable");
    assert_eq!(body["database"], "ok");
    let ada = app.register("ada").await;
    let me = app
        .data("{ me { username } }", json!({}), ada.token())
        .await;
    assert_eq!(me["me"]["username"], "ada");
}

#[tokio::test]
async fn unknown_paths_are_not_found() {
    let app = spawn_app().await;
    let response = app.client.get(app.url("/nope")).send().await.unwrap();
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn the_pool_reconnects_after_the_database_drops_its_connections() {
    let Ok(admin_url) = std::env::var("KITH_TEST_DATABASE_URL") else {
        common::skipped("needs PostgreSQL (KITH_TEST_DATABASE_URL)");
        return;
    };
    let app = spawn_app().await;
    let ada = app.register("ada").await;
    let me = "{ me { username } }";
    app.data(me, json!({}), ada.token()).await;

    // What a PostgreSQL restart does to the pool: every connection it holds
    // is cut.
    let admin = sea_orm::Database::connect(&admin_url).await.unwrap();
    let database = app.database_name().expect("a PostgreSQL test database");
    let cut = admin
        .execute_unprepared(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}'"
        ))
        .await
        .unwrap();
    assert!(cut.rows_affected() > 0, "the app held connections");
    // A restart is down for longer than the pool trusts an idle connection
    // without pinging it (a second), so every cut one is pinged and replaced.
    tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;

    // The pool notices and reconnects: requests keep being served.
    for _ in 0..5 {
        let data = app.data(me, json!({}), ada.token()).await;
        assert_eq!(data["me"]["username"], "ada");
    }
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
}

#[tokio::test]
async fn every_pooled_postgres_connection_plans_for_its_own_values() {
    let Ok(url) = std::env::var("KITH_TEST_DATABASE_URL") else {
        common::skipped("needs PostgreSQL (KITH_TEST_DATABASE_URL)");
        return;
    };
    let settings = kith::config::Settings {
        database_url: url,
        db_max_connections: 4,
        ..kith::config::Settings::default()
    };
    let db = kith::app::connect_database(&settings).await.unwrap();
    // Four transactions at once hold four different connections.
    let mut open = Vec::new();
    for _ in 0..4 {
        open.push(sea_orm::TransactionTrait::begin(&db).await.unwrap());
    }
    for txn in &open {
        let row = txn
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Postgres,
                "SHOW plan_cache_mode",
            ))
            .await
            .unwrap()
            .unwrap();
        let mode: String = row.try_get_by_index(0).unwrap();
        assert_eq!(mode, "force_custom_plan");
    }
}

#[tokio::test]
async fn cors_answers_only_the_origins_configured() {
    let app = spawn_app_with(|settings| {
        settings.cors_origins = "https://app.example.com, https://admin.example.com".into();
    })
    .await;
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url("/graphql"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            )
            .send()
    };
    let allowed = preflight("https://admin.example.com").await.unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://admin.example.com"
    );
    let other = preflight("https://evil.example.net").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());

    // The default lets any page call with its user's token.
    let open = spawn_app().await;
    let response = open
        .client
        .post(open.url("/graphql"))
        .header("origin", "https://anywhere.example.org")
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
}

/// A multipart request (`media::post_multipart`) with a one-byte file part
/// per name in `files`, signed out.
async fn post_multipart(
    app: &common::TestApp,
    operations: Value,
    map: Value,
    files: &[String],
) -> (u16, Value) {
    let files: Vec<(&str, &[u8])> = files
        .iter()
        .map(|name| (name.as_str(), b"x".as_slice()))
        .collect();
    crate::media::post_multipart(app, None, operations, map, &files).await
}

/// Temporary files where async-graphql (through `tempfile`) would leave any
/// it named: the top of the temporary directory.
fn temp_files() -> usize {
    std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().starts_with(".tmp"))
        .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_file()))
        .count()
}

#[tokio::test]
async fn a_multipart_request_with_thousands_of_files_is_refused_before_any_is_stored() {
    let app = spawn_app().await;
    let before = temp_files();
    let files: Vec<String> = (0..20_000).map(|n| n.to_string()).collect();
    let (status, body) = post_multipart(
        &app,
        json!({ "query": "{ __typename }" }),
        json!({}),
        &files,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(common::error_code(&body), "BAD_USER_INPUT");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("at most 10 files"), "{message}");
    assert!(!message.contains("os error"), "{message}");
    assert_eq!(temp_files(), before, "no temporary file left behind");
    // A map with many paths to one file is held to the same cap (each path
    // would open the file again).
    let paths: Vec<String> = (0..1_000).map(|n| format!("variables.f{n}")).collect();
    let (status, body) = post_multipart(
        &app,
        json!({ "query": "{ __typename }" }),
        json!({ "0": paths }),
        &["0".to_owned()],
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(common::error_code(&body), "BAD_USER_INPUT");
    // Still healthy, and multipart without files still runs.
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let (status, body) =
        post_multipart(&app, json!({ "query": "{ __typename }" }), json!({}), &[]).await;
    assert_eq!(
        (status, &body["data"]["__typename"]),
        (200, &json!("Query"))
    );
}

#[tokio::test]
async fn a_file_for_a_variable_no_field_accepts_is_refused() {
    let app = spawn_app().await;
    let file = ["0".to_owned()];
    for (query, variables) in [
        // Not declared at all: the file would go nowhere.
        ("{ __typename }", json!({ "file": null })),
        // Declared, but not as an Upload: it would arrive as a string.
        (
            "query($file: String) { usernameAvailable(username: $file) }",
            json!({ "file": null }),
        ),
        // Declared as an Upload, which no field of the schema takes.
        (
            "query($file: Upload) { __typename }",
            json!({ "file": null }),
        ),
    ] {
        let (_, body) = post_multipart(
            &app,
            json!({ "query": query, "variables": variables }),
            json!({ "0": ["variables.file"] }),
            &file,
        )
        .await;
        assert_eq!(
            common::error_code(&body),
            "BAD_USER_INPUT",
            "{query}: {body}"
        );
        assert!(body["data"].is_null(), "{query}: {body}");
    }
}

#[tokio::test]
async fn metrics_can_move_off_the_public_listener() {
    let app = spawn_app_with(|settings| {
        settings.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let public = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(public.status(), 404);
    let apart = app.metrics_addr.expect("a metrics listener");
    let metrics = app
        .client
        .get(format!("http://{apart}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), 200);
    assert!(metrics.text().await.unwrap().contains("kith_"));
}
