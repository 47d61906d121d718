//! Sign-in by Telegram WebApp: `initData` checked as Telegram documents it.

use serde_json::json;

use super::*;
use crate::common::{error_code, spawn_app};

#[tokio::test]
async fn signed_init_data_signs_in_a_new_account_then_the_same_one() {
    let (app, _, _) = providers_app().await;
    let first = login_with_telegram(
        &app,
        &init_data(TELEGRAM_BOT_TOKEN, 279058397, "VdkFrost", 5),
    )
    .await;
    let user = &first["data"]["loginWithTelegram"]["user"];
    assert_eq!(user["username"], "vdkfrost", "{first:#}");
    assert_eq!(user["displayName"], "Tele Gram");
    // The payload's user is the owner's view, identities included.
    assert_eq!(user["identities"], json!([{ "method": "TELEGRAM" }]));
    let session = Session::from_payload(&first["data"]["loginWithTelegram"]);
    let (identities, method) = me_methods(&app, &session).await;
    assert_eq!(
        identities,
        vec![("TELEGRAM".into(), Some("279058397".into()))]
    );
    assert_eq!(method, "TELEGRAM");
    let photo = app
        .data(
            "{ me { identities { username photoUrl displayName } } }",
            json!({}),
            session.token(),
        )
        .await;
    assert_eq!(
        photo["me"]["identities"][0],
        json!({ "username": "VdkFrost", "photoUrl": "https://t.me/i/userpic/320/VdkFrost.jpg", "displayName": "Tele Gram" })
    );

    let again = login_with_telegram(
        &app,
        &init_data(TELEGRAM_BOT_TOKEN, 279058397, "VdkFrost", 1),
    )
    .await;
    assert_eq!(again["data"]["loginWithTelegram"]["user"]["id"], user["id"]);

    // Another Telegram user whose name is taken gets a name of their own.
    let other =
        login_with_telegram(&app, &init_data(TELEGRAM_BOT_TOKEN, 1001, "vdkfrost", 5)).await;
    let name = other["data"]["loginWithTelegram"]["user"]["username"]
        .as_str()
        .unwrap();
    assert!(name.starts_with("vdkfrost_"), "{name}");
}

#[tokio::test]
async fn init_data_not_signed_for_this_bot_or_not_recent_is_refused() {
    let (app, _, _) = providers_app().await;
    let good = init_data(TELEGRAM_BOT_TOKEN, 42, "someone", 5);
    let mut refused = vec![
        // A field changed after signing.
        ("tampered user", good.replace("someone", "admin")),
        ("tampered auth_date", {
            let stale = (chrono::Utc::now().timestamp() - 10).to_string();
            let fresh = (chrono::Utc::now().timestamp() - 5).to_string();
            good.replace(&format!("auth_date={fresh}"), &format!("auth_date={stale}"))
        }),
        ("wrong hash", {
            let (rest, hash) = good.rsplit_once("hash=").unwrap();
            let flipped = if hash.starts_with('0') { "1" } else { "0" };
            format!("{rest}hash={flipped}{}", &hash[1..])
        }),
        (
            "missing hash",
            good.split('&')
                .filter(|f| !f.starts_with("hash="))
                .collect::<Vec<_>>()
                .join("&"),
        ),
        (
            "stale",
            init_data(TELEGRAM_BOT_TOKEN, 42, "someone", 86_400 + 60),
        ),
        (
            "future",
            init_data(TELEGRAM_BOT_TOKEN, 42, "someone", -3_600),
        ),
        (
            "another bot",
            init_data("7000000002:AnotherBotsToken", 42, "someone", 5),
        ),
        ("a field twice", format!("{good}&auth_date=1")),
        ("not a query string", "{\"user\":42}".into()),
        ("empty", String::new()),
        ("huge", format!("{good}&pad={}", "x".repeat(8_000))),
    ];
    // The tampered auth_date is only a test when the signed one was in it.
    refused.retain(|(_, data)| data != &good);
    for (what, data) in refused {
        let answer = login_with_telegram(&app, &data).await;
        assert_eq!(error_code(&answer), "UNAUTHENTICATED", "{what}: {answer:#}");
    }
    // None of them made an account; the good one does.
    assert!(login_with_telegram(&app, &good).await["errors"].is_null());
}

#[tokio::test]
async fn without_a_bot_token_telegram_is_forbidden_and_the_schema_the_same() {
    let app = spawn_app().await;
    let answer = login_with_telegram(&app, &init_data(TELEGRAM_BOT_TOKEN, 42, "someone", 5)).await;
    assert_eq!(error_code(&answer), "FORBIDDEN");
    assert!(
        answer["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("not configured"),
        "{answer:#}"
    );
    let facebook = login_with_facebook(&app, "EAAGsometoken").await;
    assert_eq!(error_code(&facebook), "FORBIDDEN");
}
