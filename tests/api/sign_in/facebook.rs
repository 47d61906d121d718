//! Sign-in by Facebook: the token checked with the Graph API (`debug_token`
//! for this app, then `me`), with bounded time when the Graph API is not
//! well, and the app secret kept out of every answer and log line.

use std::{
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use serde_json::json;

use super::*;
use crate::common::{error_code, spawn_process};

#[tokio::test]
async fn a_valid_token_signs_in_a_new_account_then_the_same_one() {
    let (app, _, graph) = providers_app().await;
    let token = graph.token_for("10158000000000001", "Mary-Jane Watson");
    let first = login_with_facebook(&app, &token).await;
    let user = &first["data"]["loginWithFacebook"]["user"];
    assert_eq!(user["username"], "mary_jane_watson", "{first:#}");
    assert_eq!(user["displayName"], "Mary-Jane Watson");
    let session = Session::from_payload(&first["data"]["loginWithFacebook"]);
    let (identities, method) = me_methods(&app, &session).await;
    assert_eq!(
        identities,
        vec![("FACEBOOK".into(), Some("10158000000000001".into()))]
    );
    assert_eq!(method, "FACEBOOK");

    // A new token of the same person signs the same account in.
    let again = login_with_facebook(&app, &graph.token_for("10158000000000001", "MJ")).await;
    assert_eq!(again["data"]["loginWithFacebook"]["user"]["id"], user["id"]);
}

#[tokio::test]
async fn tokens_for_another_app_invalid_or_expired_are_refused() {
    let (app, _, graph) = providers_app().await;
    let now = chrono::Utc::now().timestamp();
    let token = |app_id: &str, valid: bool, expires_at: i64| {
        graph.add_token(FacebookToken {
            app_id: app_id.into(),
            user_id: "10158000000000002".into(),
            name: "Eve".into(),
            valid,
            expires_at,
        })
    };
    for (what, bad) in [
        ("another app", token("999999999", true, now + 3600)),
        ("invalid", token(FACEBOOK_APP_ID, false, now + 3600)),
        ("expired", token(FACEBOOK_APP_ID, true, now - 10)),
        ("unknown", "EAAGnotatoken".to_owned()),
        ("not a token", "has spaces in it".to_owned()),
        ("empty", String::new()),
        ("huge", "E".repeat(5_000)),
    ] {
        let answer = login_with_facebook(&app, &bad).await;
        assert_eq!(error_code(&answer), "UNAUTHENTICATED", "{what}: {answer:#}");
    }
}

#[tokio::test]
async fn a_failing_graph_api_is_unavailable_after_one_retry() {
    let (app, _, graph) = providers_app().await;
    let token = graph.token_for("10158000000000003", "Sam");
    graph.set_mode(Mode::Fail);
    let answer = login_with_facebook(&app, &token).await;
    assert_eq!(error_code(&answer), "UNAVAILABLE", "{answer:#}");
    assert!(
        answer["errors"][0]["extensions"]["retryAfter"]
            .as_u64()
            .is_some()
    );
    assert_eq!(
        graph.calls.load(Ordering::SeqCst),
        2,
        "one call and one retry"
    );
    graph.set_mode(Mode::Answer);
    assert!(login_with_facebook(&app, &token).await["errors"].is_null());
}

#[tokio::test]
async fn a_graph_api_that_never_answers_is_unavailable_in_bounded_time() {
    let (app, _, graph) = providers_app().await;
    let token = graph.token_for("10158000000000004", "Sam");
    graph.set_mode(Mode::Hang);
    let started = Instant::now();
    let answer = login_with_facebook(&app, &token).await;
    let took = started.elapsed();
    assert_eq!(error_code(&answer), "UNAVAILABLE", "{answer:#}");
    assert!(took < Duration::from_secs(9), "{took:?}");
    // The process is unharmed.
    assert!(
        app.data(
            "{ usernameAvailable(username: \"free_name\") }",
            json!({}),
            None
        )
        .await["usernameAvailable"]
            == true
    );
}

#[tokio::test]
async fn the_app_secret_never_reaches_an_answer_or_the_log() {
    let graph = FakeGraph::start().await;
    let token = graph.token_for("10158000000000005", "Lee");
    // A Graph API that fails, then one that is not there at all: the errors
    // a client and an operator see are where a secret in a URL would leak.
    let app = spawn_process(|c| {
        c.env("KITH_FACEBOOK_APP_ID", FACEBOOK_APP_ID)
            .env("KITH_FACEBOOK_APP_SECRET", FACEBOOK_APP_SECRET)
            .env("KITH_FACEBOOK_GRAPH_URL", &graph.url)
            .env("RUST_LOG", "debug");
    })
    .await;
    graph.set_mode(Mode::Fail);
    let failed = login_with_facebook(&app, &token).await;
    assert_eq!(error_code(&failed), "UNAVAILABLE");
    graph.set_mode(Mode::Answer);
    let signed_in = login_with_facebook(&app, &token).await;
    assert!(signed_in["errors"].is_null(), "{signed_in:#}");
    assert!(!failed.to_string().contains(FACEBOOK_APP_SECRET));
    let log = app.log_lines();
    assert!(
        log.iter().any(|l| l.contains("Graph API")),
        "the failure is logged"
    );
    let leaked: Vec<_> = log
        .iter()
        .filter(|l| l.contains(FACEBOOK_APP_SECRET))
        .collect();
    assert!(
        leaked.is_empty(),
        "the app secret is in the log: {leaked:#?}"
    );
}
