//! Attacks on the password-less sign-in (review of 50aaa51..8fbe7eb): each
//! test is a problem found, shown through the real server.

use kith::config::{Rate, Switch};
use serde_json::{Value, json};

use super::*;
use crate::common::{TestApp, error_code};

/// `initData` for a Telegram user with the given names.
fn init_data_named(user_id: i64, first_name: &str, last_name: &str) -> String {
    let user = json!({
        "id": user_id, "first_name": first_name, "last_name": last_name,
        "language_code": "en",
    })
    .to_string();
    let auth_date = chrono::Utc::now().timestamp().to_string();
    kith::infra::identity_providers::telegram::sign_init_data(
        TELEGRAM_BOT_TOKEN,
        &[("user", &user), ("auth_date", &auth_date)],
    )
}

/// Telegram allows a first and a last name of 64 characters each, so a full
/// name is up to 129. The first sign-in clips it to the column's 128; a
/// later sign-in stored it unclipped: on PostgreSQL (`varchar(128)`) that is
/// an INTERNAL error, so such a user signed in once and never again; on
/// SQLite the owner's view showed a name past the limit.
#[tokio::test]
async fn a_returning_telegram_user_with_a_long_name_signs_in_again() {
    let (app, _, _) = providers_app().await;
    let init_data = init_data_named(555_000_001, &"a".repeat(64), &"b".repeat(64));
    let first = login_with_telegram(&app, &init_data).await;
    assert!(first["errors"].is_null(), "{first:#}");
    let again = login_with_telegram(&app, &init_data).await;
    assert!(again["errors"].is_null(), "{again:#}");
    let session = Session::from_payload(&again["data"]["loginWithTelegram"]);
    let data = app
        .data(
            "{ me { identities { method displayName } } }",
            json!({}),
            session.token(),
        )
        .await;
    let name = data["me"]["identities"][0]["displayName"].as_str().unwrap();
    assert!(name.len() <= 128, "{} bytes kept", name.len());
}

/// Every phone sign-up (and every Telegram or Facebook user whose names
/// have no Latin letters) is named `user_NNNNN` from 1000..100000: after
/// about 99,000 of them no new account can be made (`UNAVAILABLE`, "no free
/// username"), and well before that many sign-ups fail. The suffix must
/// range far wider, within the 32 characters a username may have.
#[test]
fn generated_usernames_do_not_run_out() {
    use kith::domain::accounts::{Username, usernames::username_candidates};
    let candidates = username_candidates("user", 2000);
    let widest = candidates
        .iter()
        .map(|c| c["user_".len()..].parse::<u64>().unwrap())
        .max()
        .unwrap();
    assert!(
        widest > 100_000_000,
        "suffixes stay under {widest}: the pool of `user_` names is tiny"
    );
    for base in ["user", &"x".repeat(24)] {
        for candidate in username_candidates(base, 200) {
            assert!(candidate.len() <= 32, "{candidate}");
            Username::parse(&candidate).unwrap();
        }
    }
}

async fn request_code_from(app: &TestApp, address: &str, phone: &str) -> Value {
    app.graphql_from(
        address,
        "mutation($phone: String!) { requestSmsCode(input: { phone: $phone }) { phone } }",
        json!({ "phone": phone }),
    )
    .await
}

/// SMS pumping: the per-address limit keyed a whole IPv6 address, and any
/// host is given a /64 (2^64 addresses), so one machine sent codes to as
/// many numbers as it liked (each SMS paid by the deployment). An IPv6
/// client is one /64.
#[tokio::test]
async fn the_per_address_sms_limit_holds_across_an_ipv6_prefix() {
    let (app, twilio, _) = providers_app_with(|s| {
        s.rate_limits = Switch::On;
        s.trust_forwarded_for = true;
        s.rate_sms_per_ip = Rate::per_hour(2);
    })
    .await;
    let first = request_code_from(&app, "2001:db8:1:2::1", "+14155550201").await;
    assert!(first["errors"].is_null(), "{first:#}");
    let second = request_code_from(&app, "2001:db8:1:2::2", "+14155550202").await;
    assert!(second["errors"].is_null(), "{second:#}");
    let third = request_code_from(&app, "2001:db8:1:2:abcd::3", "+14155550203").await;
    assert!(
        !third["errors"].is_null(),
        "a third address of the same /64 sent a third code"
    );
    assert_eq!(error_code(&third), "RATE_LIMITED", "{third:#}");
    // Another /64 is another client; IPv4 is unchanged.
    let other = request_code_from(&app, "2001:db8:1:3::1", "+14155550204").await;
    assert!(other["errors"].is_null(), "{other:#}");
    assert_eq!(twilio.sent().len(), 3);
}

/// Guessing codes: each new request for a number restored its attempts, so
/// with the default limits (5 requests a number an hour, 5 attempts a code)
/// anyone could try 25 codes an hour on any number, 600 a day, ~20% to take
/// an account over in a year, and in parallel on many numbers. Wrong
/// guesses on a number should be bounded across its codes.
#[tokio::test]
async fn wrong_guesses_on_a_number_are_bounded_across_its_codes() {
    let (app, twilio, _) = providers_app_with(|s| {
        s.rate_limits = Switch::On;
        // Defaults for the number and the code; the address's limits are
        // out of the way (an attacker has many addresses).
        s.rate_sms_per_ip = Rate::per_hour(1000);
        s.rate_login_per_ip = Rate::per_minute(1000);
    })
    .await;
    let phone = "+14155550300";
    let mut guessed = 0;
    for _ in 0..5 {
        if !request_code(&app, phone).await["errors"].is_null() {
            break;
        }
        let code = twilio.code_for(phone);
        let wrong = if code == "000000" { "000001" } else { "000000" };
        for _ in 0..5 {
            let answer = login_with_sms(&app, phone, wrong).await;
            if error_code(&answer) == "RATE_LIMITED" {
                break;
            }
            guessed += 1;
        }
    }
    assert!(
        guessed <= 10,
        "{guessed} wrong codes were tried on one number within the hour"
    );
}

// What held up, kept as guards.

/// Eight first sign-ins of one Telegram user at once make one account.
#[tokio::test]
async fn concurrent_first_sign_ins_of_one_person_make_one_account() {
    let (app, _, _) = providers_app().await;
    let init_data = init_data(TELEGRAM_BOT_TOKEN, 555_000_010, "racer", 5);
    let query = format!(
        "mutation($i: String!) {{ loginWithTelegram(input: {{ initData: $i }}) {{ {AUTH_FIELDS} }} }}"
    );
    let calls: Vec<_> = (0..8)
        .map(|_| (query.as_str(), json!({ "i": init_data }), None))
        .collect();
    let answers = app.at_once(&calls).await;
    let ids: std::collections::HashSet<_> = answers
        .iter()
        .map(|a| {
            assert!(a["errors"].is_null(), "{a:#}");
            a["data"]["loginWithTelegram"]["user"]["id"].clone()
        })
        .collect();
    assert_eq!(ids.len(), 1, "{answers:#?}");
    assert_eq!(app.count_rows("identities").await, 1);
}

/// One Telegram user linked by two accounts at once: one wins, the other
/// is CONFLICT.
#[tokio::test]
async fn concurrent_links_of_one_person_give_it_to_one_account() {
    let (app, _, _) = providers_app().await;
    let a = app.register("link_race_a").await;
    let b = app.register("link_race_b").await;
    let init_data = init_data(TELEGRAM_BOT_TOKEN, 555_000_011, "linked", 5);
    let query = "mutation($i: String!) { linkTelegram(input: { initData: $i }) { subject } }";
    let answers = app
        .at_once(&[
            (query, json!({ "i": init_data }), a.token()),
            (query, json!({ "i": init_data }), b.token()),
        ])
        .await;
    let won = answers.iter().filter(|a| a["errors"].is_null()).count();
    assert_eq!(won, 1, "{answers:#?}");
    let lost = answers.iter().find(|a| !a["errors"].is_null()).unwrap();
    assert_eq!(error_code(lost), "CONFLICT", "{lost:#}");
}

/// initData re-encoded (`%20` for `+`, a percent-encoded key) still means
/// what Telegram signed; a key smuggled in twice through its encoding is
/// refused, not read either way.
#[tokio::test]
async fn init_data_encodings_mean_what_was_signed() {
    let (app, _, _) = providers_app().await;
    let user = json!({ "id": 555_000_012, "first_name": "Two Words" }).to_string();
    let now = chrono::Utc::now().timestamp().to_string();
    let signed = kith::infra::identity_providers::telegram::sign_init_data(
        TELEGRAM_BOT_TOKEN,
        &[("user", &user), ("auth_date", &now)],
    );
    assert!(signed.contains('+'));
    let reencoded = signed
        .replace('+', "%20")
        .replace("auth_date=", "auth%5Fdate=");
    let answer = login_with_telegram(&app, &reencoded).await;
    assert!(answer["errors"].is_null(), "{answer:#}");
    let smuggled = format!("{signed}&auth%5Fdate=1");
    assert_eq!(
        error_code(&login_with_telegram(&app, &smuggled).await),
        "UNAUTHENTICATED"
    );
}

/// A Graph API that redirects `debug_token` elsewhere (a captive proxy, a
/// bad base URL): reqwest follows, but the query holding `app_id|secret`
/// stays with the first URL; the other host never sees the secret.
#[tokio::test]
async fn a_redirecting_graph_api_does_not_carry_the_app_secret_elsewhere() {
    use std::sync::{Arc, Mutex};

    use axum::{Router, extract::OriginalUri, response::Redirect, routing::get};

    async fn serve(router: Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        format!("http://{addr}")
    }
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let recorded = seen.clone();
    let elsewhere = serve(Router::new().fallback(move |uri: OriginalUri| {
        let recorded = recorded.clone();
        async move {
            recorded.lock().unwrap().push(uri.0.to_string());
            "{}"
        }
    }))
    .await;
    let target = format!("{elsewhere}/collect");
    let graph = serve(Router::new().route(
        "/debug_token",
        get(move || {
            let target = target.clone();
            async move { Redirect::temporary(&target) }
        }),
    ))
    .await;
    let (app, _, _) = providers_app_with(|s| s.facebook_graph_url = graph.clone()).await;
    let answer = login_with_facebook(&app, "EAAGsomeusertoken").await;
    assert!(!answer["errors"].is_null(), "{answer:#}");
    let seen = seen.lock().unwrap().clone();
    assert!(!seen.is_empty(), "the redirect was followed");
    assert!(
        seen.iter().all(|uri| !uri.contains(FACEBOOK_APP_SECRET)),
        "{seen:?}"
    );
}
