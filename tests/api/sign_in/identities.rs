//! The ways an account signs in: linking a phone, Telegram and Facebook to
//! one account, what belongs to another account, unlinking (never the
//! last), and who sees them.

use serde_json::{Value, json};

use super::*;
use crate::common::{PASSWORD, error_code, error_field};

async fn link(app: &TestApp, session: &Session, mutation: &str, input: Value) -> Value {
    app.graphql(
        &format!(
            "mutation($input: {}) {{ {mutation}(input: $input) {{ method subject }} }}",
            match mutation {
                "linkPhone" => "SmsCodeInput!",
                "linkTelegram" => "TelegramInput!",
                _ => "FacebookInput!",
            }
        ),
        json!({ "input": input }),
        session.token(),
    )
    .await
}

async fn unlink(app: &TestApp, session: &Session, method: &str) -> Value {
    app.graphql(
        "mutation($method: SignInMethod!) { unlinkIdentity(method: $method) { method } }",
        json!({ "method": method }),
        session.token(),
    )
    .await
}

#[tokio::test]
async fn a_password_account_links_every_provider_and_each_signs_it_in() {
    let (app, twilio, graph) = providers_app().await;
    let ann = app.register("ann_links").await;

    request_code(&app, "+14155550200").await;
    let phone = link(
        &app,
        &ann,
        "linkPhone",
        json!({ "phone": "+14155550200", "code": twilio.code_for("+14155550200") }),
    )
    .await;
    assert_eq!(
        phone["data"]["linkPhone"],
        json!({ "method": "PHONE", "subject": "+14155550200" }),
        "{phone:#}"
    );
    let telegram = link(
        &app,
        &ann,
        "linkTelegram",
        json!({ "initData": init_data(TELEGRAM_BOT_TOKEN, 555, "ann_tg", 5) }),
    )
    .await;
    assert_eq!(
        telegram["data"]["linkTelegram"]["method"], "TELEGRAM",
        "{telegram:#}"
    );
    let token = graph.token_for("10158000000000100", "Ann");
    let facebook = link(&app, &ann, "linkFacebook", json!({ "accessToken": token })).await;
    assert_eq!(
        facebook["data"]["linkFacebook"]["method"], "FACEBOOK",
        "{facebook:#}"
    );

    let (identities, _) = me_methods(&app, &ann).await;
    let methods: Vec<_> = identities.iter().map(|(m, _)| m.as_str()).collect();
    assert_eq!(methods, ["PASSWORD", "PHONE", "TELEGRAM", "FACEBOOK"]);
    assert_eq!(
        app.data("{ me { phone } }", json!({}), ann.token()).await["me"]["phone"],
        "+14155550200"
    );

    // Each one now signs Ann in, and the session says how.
    let by_sms = sms_session(&app, &twilio, "+14155550200").await;
    assert_eq!(by_sms.user_id, ann.user_id);
    assert_eq!(me_methods(&app, &by_sms).await.1, "PHONE");
    let by_telegram =
        login_with_telegram(&app, &init_data(TELEGRAM_BOT_TOKEN, 555, "ann_tg", 1)).await;
    assert_eq!(
        by_telegram["data"]["loginWithTelegram"]["user"]["id"],
        ann.user_id.as_str()
    );
    let by_facebook = login_with_facebook(&app, &token).await;
    let by_facebook = Session::from_payload(&by_facebook["data"]["loginWithFacebook"]);
    assert_eq!(by_facebook.user_id, ann.user_id);

    // A refreshed session keeps the way it began.
    let refreshed = app
        .data(
            "mutation($t: String!) { refreshSession(input: { refreshToken: $t }) { accessToken refreshToken user { id username } } }",
            json!({ "t": by_facebook.refresh_token }),
            None,
        )
        .await;
    let refreshed = Session::from_payload(&refreshed["refreshSession"]);
    assert_eq!(me_methods(&app, &refreshed).await.1, "FACEBOOK");
}

#[tokio::test]
async fn an_identity_of_another_account_is_a_conflict() {
    let (app, twilio, graph) = providers_app().await;
    let owner = sms_session(&app, &twilio, "+14155550210").await;
    let tg_owner =
        login_with_telegram(&app, &init_data(TELEGRAM_BOT_TOKEN, 777, "taken_tg", 5)).await;
    assert!(tg_owner["errors"].is_null());
    let token = graph.token_for("10158000000000110", "Taken");
    assert!(login_with_facebook(&app, &token).await["errors"].is_null());
    let bob = app.register("bob_conflicts").await;

    request_code(&app, "+14155550210").await;
    let phone = link(
        &app,
        &bob,
        "linkPhone",
        json!({ "phone": "+14155550210", "code": twilio.code_for("+14155550210") }),
    )
    .await;
    assert_eq!(error_code(&phone), "CONFLICT");
    assert_eq!(error_field(&phone), Some("phone"));
    let telegram = link(
        &app,
        &bob,
        "linkTelegram",
        json!({ "initData": init_data(TELEGRAM_BOT_TOKEN, 777, "taken_tg", 5) }),
    )
    .await;
    assert_eq!(error_code(&telegram), "CONFLICT");
    let facebook = link(&app, &bob, "linkFacebook", json!({ "accessToken": token })).await;
    assert_eq!(error_code(&facebook), "CONFLICT");
    // Bob has only his password still; the owner keeps the phone.
    assert_eq!(
        me_methods(&app, &bob).await.0,
        vec![("PASSWORD".into(), None)]
    );
    assert_eq!(
        me_methods(&app, &owner).await.0,
        vec![("PHONE".into(), Some("+14155550210".into()))]
    );
}

#[tokio::test]
async fn bad_proofs_when_linking_are_bad_input_on_their_field() {
    let (app, twilio, _) = providers_app().await;
    let cy = app.register("cy_bad_links").await;
    request_code(&app, "+14155550220").await;
    let code = twilio.code_for("+14155550220");
    let wrong = if code == "111111" { "222222" } else { "111111" };
    for (mutation, input, field) in [
        (
            "linkPhone",
            json!({ "phone": "+14155550220", "code": wrong }),
            "code",
        ),
        (
            "linkPhone",
            json!({ "phone": "555", "code": code }),
            "phone",
        ),
        (
            "linkTelegram",
            json!({ "initData": init_data("1:other", 9, "x_y", 5) }),
            "initData",
        ),
        (
            "linkFacebook",
            json!({ "accessToken": "EAAGunknown" }),
            "accessToken",
        ),
    ] {
        let answer = link(&app, &cy, mutation, input).await;
        assert_eq!(
            error_code(&answer),
            "BAD_USER_INPUT",
            "{mutation}: {answer:#}"
        );
        assert_eq!(error_field(&answer), Some(field), "{mutation}");
    }
    // The session is fine: nothing there looked like it ended.
    assert_eq!(me_methods(&app, &cy).await.0.len(), 1);
}

#[tokio::test]
async fn the_last_way_to_sign_in_cannot_be_unlinked() {
    let (app, twilio, _) = providers_app().await;
    let dee = sms_session(&app, &twilio, "+14155550230").await;
    let last = unlink(&app, &dee, "PHONE").await;
    assert_eq!(error_code(&last), "CONFLICT", "{last:#}");
    assert_eq!(error_field(&last), Some("method"));
    assert_eq!(
        error_code(&unlink(&app, &dee, "PASSWORD").await),
        "NOT_FOUND"
    );
    assert_eq!(
        error_code(&unlink(&app, &dee, "FACEBOOK").await),
        "NOT_FOUND"
    );

    // With Telegram linked, the phone may go (and with it the number).
    link(
        &app,
        &dee,
        "linkTelegram",
        json!({ "initData": init_data(TELEGRAM_BOT_TOKEN, 888, "dee_tg", 5) }),
    )
    .await;
    let left = unlink(&app, &dee, "PHONE").await;
    assert_eq!(
        left["data"]["unlinkIdentity"],
        json!([{ "method": "TELEGRAM" }]),
        "{left:#}"
    );
    assert_eq!(
        app.data("{ me { phone } }", json!({}), dee.token()).await["me"]["phone"],
        Value::Null
    );
    // Now a code to that number makes a new account.
    let stranger = sms_session(&app, &twilio, "+14155550230").await;
    assert_ne!(stranger.user_id, dee.user_id);
}

#[tokio::test]
async fn unlinking_the_password_stops_password_logins() {
    let (app, twilio, _) = providers_app().await;
    let eve = app.register("eve_unlinks").await;
    assert_eq!(
        error_code(&unlink(&app, &eve, "PASSWORD").await),
        "CONFLICT"
    );
    request_code(&app, "+14155550240").await;
    link(
        &app,
        &eve,
        "linkPhone",
        json!({ "phone": "+14155550240", "code": twilio.code_for("+14155550240") }),
    )
    .await;
    let left = unlink(&app, &eve, "PASSWORD").await;
    assert_eq!(
        left["data"]["unlinkIdentity"],
        json!([{ "method": "PHONE" }]),
        "{left:#}"
    );
    assert_eq!(
        error_code(&app.login("eve_unlinks", PASSWORD).await),
        "UNAUTHENTICATED"
    );
}

#[tokio::test]
async fn concurrent_unlinks_leave_one_way_in() {
    let (app, twilio, _) = providers_app().await;
    let fay = app.register("fay_races").await;
    request_code(&app, "+14155550250").await;
    link(
        &app,
        &fay,
        "linkPhone",
        json!({ "phone": "+14155550250", "code": twilio.code_for("+14155550250") }),
    )
    .await;
    let query = "mutation($m: SignInMethod!) { unlinkIdentity(method: $m) { method } }";
    let answers = app
        .at_once(&[
            (query, json!({ "m": "PASSWORD" }), fay.token()),
            (query, json!({ "m": "PHONE" }), fay.token()),
        ])
        .await;
    let won = answers.iter().filter(|a| a["errors"].is_null()).count();
    assert_eq!(won, 1, "{answers:#?}");
    assert_eq!(me_methods(&app, &fay).await.0.len(), 1);
}

#[tokio::test]
async fn identities_and_the_session_method_are_the_owners_alone() {
    let (app, twilio, _) = providers_app().await;
    let gil = sms_session(&app, &twilio, "+14155550260").await;
    let hal = app.register("hal_looks").await;
    let seen = app
        .data(
            "query($id: ID!) { user(id: $id) { identities { method subject } sessions { method } phone } }",
            json!({ "id": gil.user_id }),
            hal.token(),
        )
        .await;
    assert_eq!(
        seen["user"],
        json!({ "identities": null, "sessions": null, "phone": null })
    );
    let anonymous = app
        .graphql(
            "query($id: ID!) { user(id: $id) { identities { method } } }",
            json!({ "id": gil.user_id }),
            None,
        )
        .await;
    assert!(
        anonymous["data"]["user"].is_null() || anonymous["data"]["user"]["identities"].is_null(),
        "{anonymous:#}"
    );
}

#[tokio::test]
async fn an_account_without_a_password_is_deleted_with_its_session_alone() {
    let (app, twilio, _) = providers_app().await;
    let ida = sms_session(&app, &twilio, "+14155550270").await;
    let deleted = app
        .graphql(
            "mutation { deleteAccount(input: {}) }",
            json!({}),
            ida.token(),
        )
        .await;
    assert_eq!(deleted["data"]["deleteAccount"], true, "{deleted:#}");
    // The number is free for a new account, and a password account still
    // needs its password.
    let next = sms_session(&app, &twilio, "+14155550270").await;
    assert_ne!(next.user_id, ida.user_id);
    let jo = app.register("jo_deletes").await;
    let refused = app
        .graphql(
            "mutation { deleteAccount(input: {}) }",
            json!({}),
            jo.token(),
        )
        .await;
    assert_eq!(error_code(&refused), "BAD_USER_INPUT");
    assert_eq!(error_field(&refused), Some("password"));
}

#[tokio::test]
async fn a_session_that_signed_in_long_ago_cannot_change_how_the_account_signs_in() {
    let (app, twilio, _) = providers_app_with(|s| s.recent_sign_in_secs = 1).await;
    let kim = sms_session(&app, &twilio, "+14155550280").await;
    let refreshed = app
        .data(
            "mutation($t: String!) { refreshSession(input: { refreshToken: $t }) { accessToken refreshToken user { id username } } }",
            json!({ "t": kim.refresh_token }),
            None,
        )
        .await;
    let kim = Session::from_payload(&refreshed["refreshSession"]);
    tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
    // A refresh is no sign-in: the session is as old as its sign-in.
    let stale_link = link(
        &app,
        &kim,
        "linkTelegram",
        json!({ "initData": init_data(TELEGRAM_BOT_TOKEN, 999, "kim_tg", 5) }),
    )
    .await;
    assert_eq!(error_code(&stale_link), "FORBIDDEN", "{stale_link:#}");
    assert!(
        stale_link["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("sign in again")
    );
    assert_eq!(error_code(&unlink(&app, &kim, "PHONE").await), "FORBIDDEN");
    let stale_delete = app
        .graphql(
            "mutation { deleteAccount(input: {}) }",
            json!({}),
            kim.token(),
        )
        .await;
    assert_eq!(error_code(&stale_delete), "FORBIDDEN");
    assert_eq!(me_methods(&app, &kim).await.0.len(), 1, "nothing changed");

    // Signing in again, any way, opens the window.
    let fresh = sms_session(&app, &twilio, "+14155550280").await;
    let linked = link(
        &app,
        &fresh,
        "linkTelegram",
        json!({ "initData": init_data(TELEGRAM_BOT_TOKEN, 999, "kim_tg", 5) }),
    )
    .await;
    assert_eq!(
        linked["data"]["linkTelegram"]["method"], "TELEGRAM",
        "{linked:#}"
    );
}
