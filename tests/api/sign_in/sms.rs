//! Sign-in by SMS code: the code's life (expiry, attempts, single use,
//! replacement), the limits, the provider's failures, and that nothing
//! tells a known number from an unknown one.

use std::time::{Duration, Instant};

use kith::config::Rate;
use serde_json::json;

use super::*;
use crate::common::{error_code, error_field, spawn_app_with};

#[tokio::test]
async fn a_code_signs_in_a_new_account_once_and_the_same_one_after() {
    let (app, twilio, _) = providers_app().await;
    let sent = request_code(&app, "+1 (415) 555-0100").await;
    assert_eq!(sent["data"]["requestSmsCode"]["phone"], "+14155550100");
    let messages = twilio.sent();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].to, "+14155550100");
    assert_eq!(messages[0].from, SMS_FROM);
    let code = twilio.code_for("+14155550100");

    let first = login_with_sms(&app, "+14155550100", &code).await;
    let user = &first["data"]["loginWithSms"]["user"];
    assert_eq!(user["phone"], "+14155550100", "{first:#}");
    assert!(user["username"].as_str().unwrap().starts_with("user_"));
    let session = Session::from_payload(&first["data"]["loginWithSms"]);
    let (identities, method) = me_methods(&app, &session).await;
    assert_eq!(
        identities,
        vec![("PHONE".into(), Some("+14155550100".into()))]
    );
    assert_eq!(method, "PHONE");

    // Single use.
    let again = login_with_sms(&app, "+14155550100", &code).await;
    assert_eq!(error_code(&again), "UNAUTHENTICATED");

    // A later code signs the same account in.
    let later = sms_session(&app, &twilio, "+14155550100").await;
    assert_eq!(later.user_id, session.user_id);
}

#[tokio::test]
async fn wrong_expired_replaced_and_over_attempted_codes_are_refused() {
    let (app, twilio, _) = providers_app_with(|s| s.sms_code_attempts = 3).await;
    let phone = "+447700900123";

    request_code(&app, phone).await;
    let code = twilio.code_for(phone);
    let wrong = if code == "000000" { "000001" } else { "000000" };
    let answer = login_with_sms(&app, phone, wrong).await;
    assert_eq!(error_code(&answer), "UNAUTHENTICATED");
    // A code for another number does not work here.
    assert_eq!(
        error_code(&login_with_sms(&app, "+447700900124", &code).await),
        "UNAUTHENTICATED"
    );
    // Two more wrong guesses spend the code: the right one then fails.
    login_with_sms(&app, phone, wrong).await;
    login_with_sms(&app, phone, wrong).await;
    assert_eq!(
        error_code(&login_with_sms(&app, phone, &code).await),
        "UNAUTHENTICATED"
    );

    // A new request replaces the old code.
    request_code(&app, phone).await;
    let old = twilio.code_for(phone);
    request_code(&app, phone).await;
    let new = twilio.code_for(phone);
    if old != new {
        assert_eq!(
            error_code(&login_with_sms(&app, phone, &old).await),
            "UNAUTHENTICATED"
        );
    }
    assert!(login_with_sms(&app, phone, &new).await["errors"].is_null());

    // Not six digits is bad input, before any attempt is spent.
    let short = login_with_sms(&app, phone, "12345").await;
    assert_eq!(error_code(&short), "BAD_USER_INPUT");
    assert_eq!(error_field(&short), Some("code"));
}

#[tokio::test]
async fn a_code_expires() {
    let (app, twilio, _) = providers_app_with(|s| s.sms_code_ttl_secs = 1).await;
    request_code(&app, "+14155550101").await;
    let code = twilio.code_for("+14155550101");
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    let late = login_with_sms(&app, "+14155550101", &code).await;
    assert_eq!(error_code(&late), "UNAUTHENTICATED");
}

#[tokio::test]
async fn concurrent_guesses_share_the_attempts() {
    let (app, twilio, _) = providers_app_with(|s| s.sms_code_attempts = 5).await;
    let phone = "+14155550102";
    request_code(&app, phone).await;
    let code = twilio.code_for(phone);
    let wrong = if code == "999999" { "999998" } else { "999999" };
    let query = "mutation($code: String!) { loginWithSms(input: { phone: \"+14155550102\", code: $code }) { accessToken } }";
    let calls: Vec<_> = (0..12)
        .map(|_| (query, json!({ "code": wrong }), None))
        .collect();
    for answer in app.at_once(&calls).await {
        assert_eq!(error_code(&answer), "UNAUTHENTICATED");
    }
    // Twelve guesses at once took all five attempts: the right code is spent.
    assert_eq!(
        error_code(&login_with_sms(&app, phone, &code).await),
        "UNAUTHENTICATED"
    );
}

#[tokio::test]
async fn a_phone_not_in_e164_is_bad_input_and_nothing_is_sent() {
    let (app, twilio, _) = providers_app().await;
    for bad in [
        "4155550100",
        "+0123456",
        "+1",
        "+1234567890123456",
        "phone",
        "",
    ] {
        let answer = request_code(&app, bad).await;
        assert_eq!(error_code(&answer), "BAD_USER_INPUT", "{bad}");
        assert_eq!(error_field(&answer), Some("phone"), "{bad}");
        let login = login_with_sms(&app, bad, "123456").await;
        assert_eq!(error_field(&login), Some("phone"), "{bad}");
    }
    assert!(twilio.sent().is_empty());
}

#[tokio::test]
async fn requests_are_limited_per_phone_and_per_address() {
    let (app, twilio, _) = providers_app_with(|s| {
        s.rate_limits = kith::config::Switch::On;
        s.rate_sms_per_phone = Rate::per_hour(2);
        s.rate_sms_per_ip = Rate::per_hour(4);
    })
    .await;
    assert!(request_code(&app, "+14155550110").await["errors"].is_null());
    assert!(request_code(&app, "+14155550110").await["errors"].is_null());
    let third = request_code(&app, "+14155550110").await;
    assert_eq!(error_code(&third), "RATE_LIMITED");
    assert!(
        third["errors"][0]["extensions"]["retryAfter"]
            .as_u64()
            .unwrap()
            >= 1
    );
    // Other numbers from the same address, up to the address's limit; the
    // refused request above did not count against it.
    assert!(request_code(&app, "+14155550111").await["errors"].is_null());
    assert!(request_code(&app, "+14155550112").await["errors"].is_null());
    assert_eq!(
        error_code(&request_code(&app, "+14155550113").await),
        "RATE_LIMITED"
    );
    assert_eq!(twilio.sent().len(), 4);
}

#[tokio::test]
async fn a_failing_provider_is_a_clear_error_that_costs_no_limit() {
    let (app, twilio, _) = providers_app_with(|s| {
        s.rate_limits = kith::config::Switch::On;
        s.rate_sms_per_phone = Rate::per_hour(1);
    })
    .await;
    twilio.set_mode(Mode::Fail);
    let down = request_code(&app, "+14155550120").await;
    assert_eq!(error_code(&down), "UNAVAILABLE");
    assert!(
        down["errors"][0]["extensions"]["retryAfter"]
            .as_u64()
            .is_some()
    );
    twilio.set_mode(Mode::Refuse);
    let refused = request_code(&app, "+14155550120").await;
    assert_eq!(error_code(&refused), "BAD_USER_INPUT");
    assert_eq!(error_field(&refused), Some("phone"));
    // Two failures later, the number's one request an hour is still there.
    twilio.set_mode(Mode::Answer);
    assert!(request_code(&app, "+14155550120").await["errors"].is_null());
    assert_eq!(twilio.sent().len(), 1);
    assert_eq!(
        error_code(&request_code(&app, "+14155550120").await),
        "RATE_LIMITED"
    );
}

#[tokio::test]
async fn a_provider_that_hangs_is_answered_unavailable_in_bounded_time() {
    let (app, twilio, _) = providers_app().await;
    twilio.set_mode(Mode::Hang);
    let started = Instant::now();
    let answer = request_code(&app, "+14155550121").await;
    assert_eq!(error_code(&answer), "UNAVAILABLE");
    assert!(
        started.elapsed() < Duration::from_secs(11),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn known_and_unknown_numbers_get_the_same_answer_in_the_same_time() {
    let (app, twilio, _) = providers_app().await;
    let known = "+14155550130";
    sms_session(&app, &twilio, known).await;
    app.data(
        "mutation { register(input: { username: \"typed_it\", password: \"correct horse battery\", phone: \"+14155550131\" }) { accessToken } }",
        json!({}),
        None,
    )
    .await;
    let shape = |answer: serde_json::Value| {
        let mut sent = answer["data"]["requestSmsCode"].clone();
        sent["phone"] = json!("…");
        sent["expiresAt"] = json!("…");
        sent
    };
    let unknown = shape(request_code(&app, "+14155550139").await);
    assert_eq!(shape(request_code(&app, known).await), unknown);
    assert_eq!(shape(request_code(&app, "+14155550131").await), unknown);

    // Alternating, so drift on this machine falls on both alike.
    let mut times = [Vec::new(), Vec::new()];
    for round in 0..20 {
        for (which, phone) in [known, "+14155550138"].into_iter().enumerate() {
            let started = Instant::now();
            let answer = request_code(&app, phone).await;
            times[which].push(started.elapsed());
            assert!(answer["errors"].is_null(), "round {round}: {answer:#}");
        }
    }
    let median = |t: &mut Vec<Duration>| {
        t.sort();
        t[t.len() / 2]
    };
    let (a, b) = (median(&mut times[0]), median(&mut times[1]));
    let gap = a.abs_diff(b);
    assert!(
        gap < Duration::from_millis(5).max(a.max(b) / 2),
        "known {a:?} against unknown {b:?}"
    );
}

#[tokio::test]
async fn a_verified_number_wins_over_one_only_typed_at_registration() {
    let (app, twilio, _) = providers_app().await;
    let typist = app
        .data(
            "mutation { register(input: { username: \"typist\", password: \"correct horse battery\", phone: \"+14155550140\" }) { accessToken refreshToken user { id username } } }",
            json!({}),
            None,
        )
        .await;
    let typist = Session::from_payload(&typist["register"]);
    let owner = sms_session(&app, &twilio, "+14155550140").await;
    assert_ne!(
        owner.user_id, typist.user_id,
        "an unverified number signs no one in"
    );
    let phones = |session: &Session| {
        let session = session.clone();
        let app = &app;
        async move {
            app.data("{ me { phone } }", json!({}), session.token())
                .await["me"]["phone"]
                .clone()
        }
    };
    assert_eq!(phones(&owner).await, "+14155550140");
    assert_eq!(phones(&typist).await, serde_json::Value::Null);
    // The typist still signs in with their password.
    assert!(app.login("typist", crate::common::PASSWORD).await["errors"].is_null());
}

#[tokio::test]
async fn the_log_sender_is_the_default_and_sends_nothing_out() {
    // No provider settings at all: codes go to the log, and sign-in works.
    let app = spawn_app_with(|_| {}).await;
    let sent = request_code(&app, "+14155550150").await;
    assert!(sent["errors"].is_null(), "{sent:#}");
}

#[tokio::test]
async fn the_log_sender_writes_the_code_where_a_developer_reads_it() {
    let app = crate::common::spawn_process(|c| {
        c.env("KITH_SMS_SENDER", "log");
    })
    .await;
    assert!(request_code(&app, "+14155550151").await["errors"].is_null());
    let code = crate::common::eventually("the code in the log", || {
        let lines = app.log_lines();
        async move {
            lines
                .iter()
                .find(|l| l.contains("+14155550151"))
                .and_then(|line| {
                    let (_, after) = line.split_once("code is ")?;
                    Some(after[..6].to_owned())
                })
        }
    })
    .await;
    let signed_in = login_with_sms(&app, "+14155550151", &code).await;
    assert!(signed_in["errors"].is_null(), "{signed_in:#}");
}

#[tokio::test]
async fn a_code_that_could_not_be_sent_leaves_the_one_before_working() {
    let (app, twilio, _) = providers_app().await;
    let phone = "+14155550160";
    request_code(&app, phone).await;
    let first = twilio.code_for(phone);
    twilio.set_mode(Mode::Fail);
    assert_eq!(error_code(&request_code(&app, phone).await), "UNAVAILABLE");
    let signed_in = login_with_sms(&app, phone, &first).await;
    assert!(signed_in["errors"].is_null(), "{signed_in:#}");
}

#[tokio::test]
async fn expired_codes_are_forgotten_by_later_requests() {
    let (app, twilio, _) = providers_app_with(|s| s.sms_code_ttl_secs = 1).await;
    request_code(&app, "+14155550161").await;
    let stale = twilio.code_for("+14155550161");
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    // Another number's request sweeps the expired row; the stale code stays
    // refused (no row is no code).
    request_code(&app, "+14155550162").await;
    assert_eq!(
        error_code(&login_with_sms(&app, "+14155550161", &stale).await),
        "UNAUTHENTICATED"
    );
    assert_eq!(app.count_rows("sms_codes").await, 1);
}
