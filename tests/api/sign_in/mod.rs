//! Signing in without a password, through the real server, with the
//! providers' test doubles on loopback: SMS codes (a fake Twilio that
//! records messages), Telegram WebApp (`initData` signed here with the
//! configured bot token), Facebook (a fake Graph API); and the identities
//! an account links and unlinks.

mod attacks;
mod doubles;
mod facebook;
mod identities;
mod sms;
mod telegram;

use kith::config::{Settings, SmsSenderKind};
use serde_json::{Value, json};

pub use doubles::*;

use crate::common::{Session, TestApp, spawn_app_with};

/// Every provider configured, at the given doubles.
pub fn with_providers(settings: &mut Settings, twilio: &FakeTwilio, graph: &FakeGraph) {
    settings.sms_sender = SmsSenderKind::Twilio;
    settings.twilio_base_url = twilio.url.clone();
    settings.twilio_account_sid = Some(TWILIO_SID.into());
    settings.twilio_auth_token = Some(TWILIO_TOKEN.into());
    settings.sms_from = Some(SMS_FROM.into());
    settings.telegram_bot_token = Some(TELEGRAM_BOT_TOKEN.into());
    settings.facebook_app_id = Some(FACEBOOK_APP_ID.into());
    settings.facebook_app_secret = Some(FACEBOOK_APP_SECRET.into());
    settings.facebook_graph_url = graph.url.clone();
}

/// An app with every provider at fresh doubles.
pub async fn providers_app() -> (TestApp, FakeTwilio, FakeGraph) {
    providers_app_with(|_| {}).await
}

pub async fn providers_app_with(
    configure: impl FnOnce(&mut Settings),
) -> (TestApp, FakeTwilio, FakeGraph) {
    let twilio = FakeTwilio::start().await;
    let graph = FakeGraph::start().await;
    let app = spawn_app_with(|s| {
        with_providers(s, &twilio, &graph);
        configure(s);
    })
    .await;
    (app, twilio, graph)
}

/// An app for the matrices (`authz`, `bad_input`): every provider
/// configured, at doubles of its own, so their rows reach the checks rather
/// than stopping at "not configured".
pub async fn matrix_app() -> TestApp {
    providers_app().await.0
}

pub const AUTH_FIELDS: &str =
    "accessToken refreshToken user { id username displayName phone identities { method } }";

pub async fn request_code(app: &TestApp, phone: &str) -> Value {
    app.graphql(
        "mutation($phone: String!) { requestSmsCode(input: { phone: $phone }) { phone expiresAt } }",
        json!({ "phone": phone }),
        None,
    )
    .await
}

pub async fn login_with_sms(app: &TestApp, phone: &str, code: &str) -> Value {
    app.graphql(
        &format!(
            "mutation($phone: String!, $code: String!) {{
                loginWithSms(input: {{ phone: $phone, code: $code }}) {{ {AUTH_FIELDS} }} }}"
        ),
        json!({ "phone": phone, "code": code }),
        None,
    )
    .await
}

/// Requests a code for `phone`, reads it off the fake Twilio and signs in.
pub async fn sms_session(app: &TestApp, twilio: &FakeTwilio, phone: &str) -> Session {
    let sent = request_code(app, phone).await;
    assert!(sent["errors"].is_null(), "{sent:#}");
    let answer = login_with_sms(app, phone, &twilio.code_for(phone)).await;
    Session::from_payload(&answer["data"]["loginWithSms"])
}

/// `initData` for a Telegram user, signed with `bot_token`, dated `age_secs` ago.
pub fn init_data(bot_token: &str, user_id: i64, username: &str, age_secs: i64) -> String {
    let user = json!({
        "id": user_id, "first_name": "Tele", "last_name": "Gram",
        "username": username, "language_code": "en",
        "photo_url": format!("https://t.me/i/userpic/320/{username}.jpg"),
    })
    .to_string();
    let auth_date = (chrono::Utc::now().timestamp() - age_secs).to_string();
    kith::infra::identity_providers::telegram::sign_init_data(
        bot_token,
        &[
            ("query_id", "AAHdF6IQAAAAAN0XohDhrOrc"),
            ("user", &user),
            ("auth_date", &auth_date),
        ],
    )
}

pub async fn login_with_telegram(app: &TestApp, init_data: &str) -> Value {
    app.graphql(
        &format!(
            "mutation($initData: String!) {{
                loginWithTelegram(input: {{ initData: $initData }}) {{ {AUTH_FIELDS} }} }}"
        ),
        json!({ "initData": init_data }),
        None,
    )
    .await
}

pub async fn login_with_facebook(app: &TestApp, token: &str) -> Value {
    app.graphql(
        &format!(
            "mutation($token: String!) {{
                loginWithFacebook(input: {{ accessToken: $token }}) {{ {AUTH_FIELDS} }} }}"
        ),
        json!({ "token": token }),
        None,
    )
    .await
}

/// The viewer's identities as `[method, subject]` pairs, and its current
/// session's method.
pub async fn me_methods(
    app: &TestApp,
    session: &Session,
) -> (Vec<(String, Option<String>)>, String) {
    let data = app
        .data(
            "{ me { identities { method subject } sessions { method current } } }",
            json!({}),
            session.token(),
        )
        .await;
    let identities = data["me"]["identities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["method"].as_str().unwrap().to_owned(),
                i["subject"].as_str().map(str::to_owned),
            )
        })
        .collect();
    let current = data["me"]["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == true)
        .expect("the current session is listed")["method"]
        .as_str()
        .unwrap()
        .to_owned();
    (identities, current)
}
