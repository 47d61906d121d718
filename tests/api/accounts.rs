//! Accounts and sessions, through the real server.

use crate::common;

use chrono::Utc;
use common::{JWT_SECRET, PASSWORD, error_code, error_field, spawn_app, spawn_app_with};
use serde_json::{Value, json};

const REGISTER: &str = "mutation($input: RegisterInput!) {
    register(input: $input) { accessToken refreshToken accessTokenExpiresAt
        user { id username displayName email phone age birthdate } } }";
const ME: &str = "{ me { id username } }";
const REFRESH: &str = "mutation($t: String!) { refreshSession(input: { refreshToken: $t }) {
    accessToken refreshToken user { id } } }";

#[tokio::test]
async fn registering_returns_tokens_that_sign_the_new_user_in() {
    let app = spawn_app().await;
    let data = app
        .data(
            REGISTER,
            json!({ "input": {
                "username": "Ada.Lovelace", "password": PASSWORD, "email": "Ada@Example.com",
                "phone": "+44 20 7946 0958", "displayName": "  Ada  ", "birthdate": "1990-12-10" } }),
            None,
        )
        .await;
    let payload = &data["register"];
    let user = &payload["user"];
    assert_eq!(
        user["username"], "ada.lovelace",
        "usernames fold to lower case"
    );
    assert_eq!(user["displayName"], "Ada");
    assert_eq!(
        user["email"], "ada@example.com",
        "the new owner sees their own email"
    );
    assert_eq!(user["phone"], "+442079460958");
    assert_eq!(user["birthdate"], "1990-12-10");
    assert!(user["age"].as_i64().unwrap() >= 35);
    let expires: chrono::DateTime<Utc> = payload["accessTokenExpiresAt"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(expires > Utc::now(), "the access token is not yet expired");

    let token = payload["accessToken"].as_str().unwrap();
    let me = app.data(ME, json!({}), Some(token)).await;
    assert_eq!(me["me"]["id"], user["id"]);
}

#[tokio::test]
async fn each_invalid_register_field_is_named() {
    let app = spawn_app().await;
    let valid = json!({ "username": "valid_name", "password": PASSWORD });
    let cases = [
        ("username", json!("ab")),
        ("username", json!("has space")),
        ("username", json!("x".repeat(33))),
        ("username", json!("émile")),
        ("password", json!("short")),
        ("password", json!("p".repeat(129))),
        ("email", json!("not-an-email")),
        ("email", json!("a@b")),
        ("phone", json!("5550123")),
        ("phone", json!("+0123456")),
        ("displayName", json!("d".repeat(65))),
        ("birthdate", json!("2024-01-01")),
    ];
    for (field, value) in cases {
        let mut input = valid.clone();
        input[field] = value.clone();
        let response = app.graphql(REGISTER, json!({ "input": input }), None).await;
        assert_eq!(error_code(&response), "BAD_USER_INPUT", "{field} = {value}");
        assert_eq!(error_field(&response), Some(field), "{field} = {value}");
    }
    // Nothing was half-written: the valid name is still free.
    let free = app
        .data(
            "{ usernameAvailable(username: \"valid_name\") }",
            json!({}),
            None,
        )
        .await;
    assert_eq!(free["usernameAvailable"], true);
}

#[tokio::test]
async fn a_malformed_date_is_refused_before_anything_runs() {
    let app = spawn_app().await;
    let response = app
        .graphql(
            REGISTER,
            json!({ "input": { "username": "dated", "password": PASSWORD, "birthdate": "10/12/1990" } }),
            None,
        )
        .await;
    assert_eq!(error_code(&response), "BAD_USER_INPUT");
}

#[tokio::test]
async fn taken_usernames_emails_and_phones_conflict() {
    let app = spawn_app().await;
    app.data(
        REGISTER,
        json!({ "input": { "username": "first", "password": PASSWORD,
                           "email": "same@example.com", "phone": "+14155550100" } }),
        None,
    )
    .await;
    app.data(
        REGISTER,
        json!({ "input": { "username": "email_phone", "password": PASSWORD } }),
        None,
    )
    .await;
    let cases = [
        (
            "username",
            json!({ "username": "FIRST", "password": PASSWORD }),
        ),
        (
            "email",
            json!({ "username": "second", "password": PASSWORD, "email": "SAME@example.com" }),
        ),
        (
            "phone",
            json!({ "username": "third", "password": PASSWORD, "phone": "+1 415 555 0100" }),
        ),
        // Told apart by the constraint, not by words in the error's text.
        (
            "username",
            json!({ "username": "EMAIL_PHONE", "password": PASSWORD,
                    "email": "other@example.com", "phone": "+14155550199" }),
        ),
    ];
    for (field, input) in cases {
        let response = app.graphql(REGISTER, json!({ "input": input }), None).await;
        assert_eq!(error_code(&response), "CONFLICT", "{field}");
        assert_eq!(error_field(&response), Some(field));
    }
}

#[tokio::test]
async fn login_accepts_username_email_or_phone() {
    let app = spawn_app().await;
    app.data(
        REGISTER,
        json!({ "input": { "username": "multi", "password": PASSWORD,
                           "email": "multi@example.com", "phone": "+14155550111" } }),
        None,
    )
    .await;
    for identifier in ["multi", "MULTI", "multi@example.com", "+14155550111"] {
        let response = app.login(identifier, PASSWORD).await;
        assert!(response.get("errors").is_none(), "{identifier}: {response}");
        assert_eq!(response["data"]["login"]["user"]["username"], "multi");
    }
}

#[tokio::test]
async fn unknown_user_and_wrong_password_get_the_same_error() {
    let app = spawn_app().await;
    app.register("known").await;
    let wrong_password = app.login("known", "not the password").await;
    let unknown_user = app.login("nobody_here", PASSWORD).await;
    assert_eq!(error_code(&wrong_password), "UNAUTHENTICATED");
    assert_eq!(
        wrong_password["errors"][0]["message"],
        unknown_user["errors"][0]["message"]
    );
    assert_eq!(
        wrong_password["errors"][0]["extensions"],
        unknown_user["errors"][0]["extensions"]
    );
}

#[tokio::test]
async fn refreshing_rotates_the_refresh_token() {
    let app = spawn_app().await;
    let session = app.register("rotator").await;
    let first = app
        .data(REFRESH, json!({ "t": session.refresh_token }), None)
        .await;
    let new_refresh = first["refreshSession"]["refreshToken"].as_str().unwrap();
    let new_access = first["refreshSession"]["accessToken"].as_str().unwrap();
    assert_ne!(new_refresh, session.refresh_token);
    assert_eq!(
        first["refreshSession"]["user"]["id"],
        session.user_id.as_str()
    );
    app.data(ME, json!({}), Some(new_access)).await;

    // The new token works once more; the spent one is refused.
    let second = app.data(REFRESH, json!({ "t": new_refresh }), None).await;
    assert!(second["refreshSession"]["refreshToken"].is_string());
}

#[tokio::test]
async fn reusing_a_rotated_refresh_token_revokes_the_whole_session() {
    let app = spawn_app().await;
    let session = app.register("victim").await;
    let rotated = app
        .data(REFRESH, json!({ "t": session.refresh_token }), None)
        .await;
    let current_refresh = rotated["refreshSession"]["refreshToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let current_access = rotated["refreshSession"]["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();

    // Someone replays the stolen, already-rotated token.
    let replay = app
        .graphql(REFRESH, json!({ "t": session.refresh_token }), None)
        .await;
    assert_eq!(error_code(&replay), "UNAUTHENTICATED");

    // The legitimate holder's tokens of that session stop working too.
    let refresh = app
        .graphql(REFRESH, json!({ "t": current_refresh }), None)
        .await;
    assert_eq!(error_code(&refresh), "UNAUTHENTICATED");
    let me = app.graphql(ME, json!({}), Some(&current_access)).await;
    assert_eq!(error_code(&me), "UNAUTHENTICATED");
}

#[tokio::test]
async fn an_unknown_refresh_token_is_refused() {
    let app = spawn_app().await;
    let response = app.graphql(REFRESH, json!({ "t": "made-up" }), None).await;
    assert_eq!(error_code(&response), "UNAUTHENTICATED");
}

#[tokio::test]
async fn logout_refuses_the_token_at_once_and_leaves_other_sessions() {
    let app = spawn_app().await;
    let phone = app.register("two_devices").await;
    let laptop =
        common::Session::from_payload(&app.login("two_devices", PASSWORD).await["data"]["login"]);

    let out = app
        .data("mutation { logout }", json!({}), phone.token())
        .await;
    assert_eq!(out["logout"], true);
    let me = app.graphql(ME, json!({}), phone.token()).await;
    assert_eq!(error_code(&me), "UNAUTHENTICATED");
    let refresh = app
        .graphql(REFRESH, json!({ "t": phone.refresh_token }), None)
        .await;
    assert_eq!(error_code(&refresh), "UNAUTHENTICATED");

    app.data(ME, json!({}), laptop.token()).await;
}

#[tokio::test]
async fn logout_all_sessions_ends_every_session() {
    let app = spawn_app().await;
    let first = app.register("everywhere").await;
    let second =
        common::Session::from_payload(&app.login("everywhere", PASSWORD).await["data"]["login"]);
    app.data("mutation { logoutAllSessions }", json!({}), first.token())
        .await;
    for session in [&first, &second] {
        let me = app.graphql(ME, json!({}), session.token()).await;
        assert_eq!(error_code(&me), "UNAUTHENTICATED");
    }
}

#[tokio::test]
async fn sessions_are_listed_to_their_owner_and_revocable_one_by_one() {
    let app = spawn_app().await;
    let phone = app.register("lister").await;
    let laptop =
        common::Session::from_payload(&app.login("lister", PASSWORD).await["data"]["login"]);
    let listed = app
        .data(
            "{ me { sessions { id current userAgent ip } } }",
            json!({}),
            phone.token(),
        )
        .await;
    let sessions = listed["me"]["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2);
    assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1);
    assert_eq!(sessions[0]["ip"], "127.0.0.1");
    let laptop_id = sessions.iter().find(|s| s["current"] == false).unwrap()["id"].clone();

    // Someone else can neither see nor end them.
    let stranger = app.register("stranger").await;
    let revoke = "mutation($id: ID!) { revokeSession(id: $id) }";
    let refused = app
        .graphql(revoke, json!({ "id": laptop_id }), stranger.token())
        .await;
    assert_eq!(error_code(&refused), "NOT_FOUND");
    let peek = app
        .data(
            "query($id: ID!) { user(id: $id) { sessions { id } email } node(id: $sid) { id } }"
                .replace("$id: ID!", "$id: ID!, $sid: ID!")
                .as_str(),
            json!({ "id": phone.user_id, "sid": laptop_id }),
            stranger.token(),
        )
        .await;
    assert!(peek["user"]["sessions"].is_null());
    assert!(peek["node"].is_null());
    app.data(ME, json!({}), laptop.token()).await;

    let revoked = app
        .data(revoke, json!({ "id": laptop_id }), phone.token())
        .await;
    assert_eq!(revoked["revokeSession"], true);
    let me = app.graphql(ME, json!({}), laptop.token()).await;
    assert_eq!(error_code(&me), "UNAUTHENTICATED");
    let again = app
        .graphql(revoke, json!({ "id": laptop_id }), phone.token())
        .await;
    assert_eq!(error_code(&again), "NOT_FOUND");
    let garbage = app
        .graphql(revoke, json!({ "id": "garbage" }), phone.token())
        .await;
    assert_eq!(error_code(&garbage), "NOT_FOUND");
}

fn forge(claims: serde_json::Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

fn claims_of(token: &str) -> serde_json::Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn expired_and_tampered_tokens_are_refused() {
    let app = spawn_app().await;
    let session = app.register("tokens").await;
    let claims = claims_of(&session.access_token);

    let mut expired = claims.clone();
    expired["exp"] = json!(Utc::now().timestamp() - 5);
    let response = app
        .graphql(ME, json!({}), Some(&forge(expired, JWT_SECRET)))
        .await;
    assert_eq!(error_code(&response), "UNAUTHENTICATED");
    assert!(
        response["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("expired")
    );

    let forged = forge(claims.clone(), "some-other-secret-some-other-secret-00");
    let response = app.graphql(ME, json!({}), Some(&forged)).await;
    assert_eq!(error_code(&response), "UNAUTHENTICATED");

    // Flip the subject in the payload, keeping the old signature.
    use base64::Engine;
    let mut parts: Vec<String> = session.access_token.split('.').map(str::to_owned).collect();
    let mut tampered = claims.clone();
    tampered["sub"] = json!(uuid::Uuid::now_v7());
    parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tampered.to_string());
    let response = app.graphql(ME, json!({}), Some(&parts.join("."))).await;
    assert_eq!(error_code(&response), "UNAUTHENTICATED");

    let response = app.graphql(ME, json!({}), Some("not-a-token")).await;
    assert_eq!(error_code(&response), "UNAUTHENTICATED");
    let response = app.graphql(ME, json!({}), None).await;
    assert_eq!(error_code(&response), "UNAUTHENTICATED");
}

#[tokio::test]
async fn a_stale_token_does_not_stop_a_login() {
    let app = spawn_app().await;
    let session = app.register("stale").await;
    app.data("mutation { logout }", json!({}), session.token())
        .await;
    let response = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&session.access_token)
        .json(&json!({ "query": "mutation { login(input: { identifier: \"stale\", password: \"correct horse battery\" }) { accessToken } }" }))
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert!(
        response["data"]["login"]["accessToken"].is_string(),
        "{response}"
    );
}

#[tokio::test]
async fn profiles_update_and_private_fields_stay_private() {
    let app = spawn_app().await;
    let owner = app.register("profiled").await;
    let update = "mutation($input: UpdateProfileInput!) { updateProfile(input: $input) {
        displayName bio gender interests birthdate age location { latitude longitude } } }";
    let data = app
        .data(
            update,
            json!({ "input": { "displayName": "Pro Filed", "bio": "Hi\nthere", "gender": "NONBINARY",
                "interests": [" Hiking", "hiking", "JAZZ "], "birthdate": "2000-02-29",
                "location": { "latitude": 52.52, "longitude": 13.405 } } }),
            owner.token(),
        )
        .await;
    let profile = &data["updateProfile"];
    assert_eq!(profile["interests"], json!(["hiking", "jazz"]));
    assert_eq!(profile["gender"], "NONBINARY");
    assert_eq!(profile["location"]["latitude"], 52.52);

    // Left-out fields stay; null clears.
    let data = app
        .data(update, json!({ "input": { "bio": null } }), owner.token())
        .await;
    assert!(data["updateProfile"]["bio"].is_null());
    assert_eq!(data["updateProfile"]["displayName"], "Pro Filed");

    let viewer = app.register("onlooker").await;
    let query = "query($id: ID!) { user(id: $id) { username displayName age email phone birthdate location { latitude } } }";
    for token in [viewer.token(), None] {
        let seen = app.data(query, json!({ "id": owner.user_id }), token).await;
        let user = &seen["user"];
        assert_eq!(user["displayName"], "Pro Filed");
        assert!(user["age"].as_i64().unwrap() >= 26);
        assert!(
            user["birthdate"].is_null() && user["location"].is_null() && user["email"].is_null()
        );
    }

    for (field, input) in [
        (
            "interests",
            json!({ "interests": (0..21).map(|i| format!("t{i}")).collect::<Vec<_>>() }),
        ),
        (
            "latitude",
            json!({ "location": { "latitude": 91.0, "longitude": 0.0 } }),
        ),
        (
            "longitude",
            json!({ "location": { "latitude": 0.0, "longitude": -181.0 } }),
        ),
        ("bio", json!({ "bio": "b".repeat(501) })),
        ("birthdate", json!({ "birthdate": "1800-01-01" })),
    ] {
        let response = app
            .graphql(update, json!({ "input": input }), owner.token())
            .await;
        assert_eq!(error_code(&response), "BAD_USER_INPUT", "{field}");
        assert_eq!(error_field(&response), Some(field));
    }
    let anonymous = app
        .graphql(update, json!({ "input": { "bio": "x" } }), None)
        .await;
    assert_eq!(error_code(&anonymous), "UNAUTHENTICATED");
}

#[tokio::test]
async fn users_are_found_by_id_username_node_and_search() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for name in ["sam_one", "sam_two", "sam_three", "other"] {
        ids.push(app.register(name).await.user_id);
    }
    let data = app
        .data(
            "query($id: ID!, $ids: [ID!]!) {
                user(id: $id) { username }
                userByUsername(username: \"SAM_TWO\") { id }
                node(id: $id) { id ... on User { username } }
                nodes(ids: $ids) { id }
                missing: user(id: \"bm90aGluZw\") { id }
                missingName: userByUsername(username: \"nobody\") { id } }",
            json!({ "id": ids[0], "ids": [ids[1], "garbage", ids[3]] }),
            None,
        )
        .await;
    assert_eq!(data["user"]["username"], "sam_one");
    assert_eq!(data["userByUsername"]["id"], ids[1].as_str());
    assert_eq!(data["node"]["username"], "sam_one");
    assert_eq!(
        data["nodes"],
        json!([{ "id": ids[1] }, null, { "id": ids[3] }])
    );
    assert!(data["missing"].is_null() && data["missingName"].is_null());

    // Search pages by username with no repeats and no gaps.
    let search = "query($after: String) { searchUsers(query: \"sam\", first: 2, after: $after) {
        edges { cursor node { username } } pageInfo { hasNextPage endCursor } } }";
    let first = app.data(search, json!({ "after": null }), None).await;
    let page = &first["searchUsers"];
    let names: Vec<_> = page["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["username"].clone())
        .collect();
    assert_eq!(names, [json!("sam_one"), json!("sam_three")]);
    assert_eq!(page["pageInfo"]["hasNextPage"], true);
    let second = app
        .data(
            search,
            json!({ "after": page["pageInfo"]["endCursor"] }),
            None,
        )
        .await;
    let edges = second["searchUsers"]["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 1);
    assert_eq!(edges[0]["node"]["username"], "sam_two");
    assert_eq!(second["searchUsers"]["pageInfo"]["hasNextPage"], false);

    for (args, field) in [
        ("first: 101", "first"),
        ("first: -1", "first"),
        ("after: \"!!\"", "after"),
    ] {
        let response = app
            .graphql(
                &format!("{{ searchUsers(query: \"sam\", {args}) {{ edges {{ cursor }} }} }}"),
                json!({}),
                None,
            )
            .await;
        assert_eq!(error_code(&response), "BAD_USER_INPUT", "{args}");
        assert_eq!(error_field(&response), Some(field));
    }
    // Wildcards in the query are literal characters.
    let literal = app
        .data(
            "{ searchUsers(query: \"%\") { edges { cursor } } }",
            json!({}),
            None,
        )
        .await;
    assert_eq!(literal["searchUsers"]["edges"], json!([]));
}

#[tokio::test]
async fn username_availability_follows_registrations() {
    let app = spawn_app().await;
    let query = "query($u: String!) { usernameAvailable(username: $u) }";
    let before = app.data(query, json!({ "u": "fresh_name" }), None).await;
    assert_eq!(before["usernameAvailable"], true);
    app.register("fresh_name").await;
    let after = app.data(query, json!({ "u": "Fresh_Name" }), None).await;
    assert_eq!(after["usernameAvailable"], false);
    let invalid = app.graphql(query, json!({ "u": "no" }), None).await;
    assert_eq!(error_field(&invalid), Some("username"));
}

#[tokio::test]
async fn the_username_filter_is_loaded_from_the_database_at_start() {
    // Two apps on one database: the second starts after a registration on the first.
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("shared.db").display()
    );
    let first = spawn_app_with(|s| s.database_url = url.clone()).await;
    if std::env::var("KITH_TEST_DATABASE_URL").is_ok() {
        return; // this test is about start-up loading; one backend proves it
    }
    first.register("early_bird").await;
    let second = spawn_app_with(|s| s.database_url = url.clone()).await;
    let data = second
        .data(
            "{ usernameAvailable(username: \"early_bird\") }",
            json!({}),
            None,
        )
        .await;
    assert_eq!(data["usernameAvailable"], false);
}

#[tokio::test]
async fn deleting_an_account_needs_the_password_and_ends_its_sessions() {
    let app = spawn_app().await;
    let session = app.register("leaving").await;
    let delete = "mutation($p: String!) { deleteAccount(input: { password: $p }) }";
    let wrong = app
        .graphql(delete, json!({ "p": "wrong password" }), session.token())
        .await;
    assert_eq!(error_code(&wrong), "BAD_USER_INPUT");
    assert_eq!(error_field(&wrong), Some("password"));
    let anonymous = app.graphql(delete, json!({ "p": PASSWORD }), None).await;
    assert_eq!(error_code(&anonymous), "UNAUTHENTICATED");

    let done = app
        .data(delete, json!({ "p": PASSWORD }), session.token())
        .await;
    assert_eq!(done["deleteAccount"], true);
    assert_eq!(
        error_code(&app.graphql(ME, json!({}), session.token()).await),
        "UNAUTHENTICATED"
    );
    assert_eq!(
        error_code(&app.login("leaving", PASSWORD).await),
        "UNAUTHENTICATED"
    );
    let gone = app
        .data(
            "query($id: ID!) { user(id: $id) { id } }",
            json!({ "id": session.user_id }),
            None,
        )
        .await;
    assert!(gone["user"].is_null());
}

/// Logs in from the client address `from`, as a proxy trusted with
/// `X-Forwarded-For` would say.
async fn login_from(app: &common::TestApp, from: &str, identifier: &str, password: &str) -> Value {
    app.graphql_from(
        from,
        "mutation($input: LoginInput!) { login(input: $input) { accessToken } }",
        json!({ "input": { "identifier": identifier, "password": password } }),
    )
    .await
}

/// The default login limits, client addresses taken from `X-Forwarded-For`.
async fn app_behind_a_proxy(
    configure: impl FnOnce(&mut kith::config::Settings),
) -> common::TestApp {
    spawn_app_with(|s| {
        s.rate_limits = kith::config::Switch::On;
        s.trust_forwarded_for = true;
        configure(s);
    })
    .await
}

#[tokio::test]
async fn a_stranger_guessing_passwords_cannot_lock_the_owner_out() {
    let app = app_behind_a_proxy(|_| {}).await;
    app.register("owner").await;
    let stranger = "203.0.113.7";
    for _ in 0..10 {
        let guess = login_from(&app, stranger, "owner", "wrong password").await;
        assert_eq!(error_code(&guess), "UNAUTHENTICATED");
    }
    // The stranger is stopped, even with the right password...
    let limited = login_from(&app, stranger, "owner", PASSWORD).await;
    assert_eq!(error_code(&limited), "RATE_LIMITED");
    let retry = limited["errors"][0]["extensions"]["retryAfter"]
        .as_u64()
        .unwrap();
    assert!((1..=60).contains(&retry), "retryAfter {retry}");
    // ...and the owner, from their own address, is not.
    let owner = login_from(&app, "198.51.100.20", "owner", PASSWORD).await;
    assert!(
        owner["data"]["login"]["accessToken"].is_string(),
        "{owner:#}"
    );
}

#[tokio::test]
async fn only_failed_logins_count() {
    let app = app_behind_a_proxy(|s| {
        s.rate_login_failures_per_account_and_ip = "3/min".parse().unwrap();
        s.rate_login_failures_per_account = "3/h".parse().unwrap();
    })
    .await;
    app.register("frequent").await;
    for _ in 0..8 {
        let login = login_from(&app, "198.51.100.1", "frequent", PASSWORD).await;
        assert!(
            login["data"]["login"]["accessToken"].is_string(),
            "{login:#}"
        );
    }
    // An unknown account fails, and is limited, exactly like a wrong password.
    for _ in 0..3 {
        let unknown = login_from(&app, "198.51.100.1", "nobody_here", PASSWORD).await;
        assert_eq!(error_code(&unknown), "UNAUTHENTICATED");
    }
    let unknown = login_from(&app, "198.51.100.1", "nobody_here", PASSWORD).await;
    assert_eq!(error_code(&unknown), "RATE_LIMITED");
}

#[tokio::test]
async fn an_account_counts_once_by_username_email_or_phone() {
    let app = app_behind_a_proxy(|s| {
        s.rate_login_failures_per_account_and_ip = "3/min".parse().unwrap();
    })
    .await;
    app.data(
        REGISTER,
        json!({ "input": { "username": "many.names", "password": PASSWORD,
            "email": "many@example.com", "phone": "+14155550123" } }),
        None,
    )
    .await;
    let from = "192.0.2.44";
    for identifier in ["many.names", "MANY@example.com", "+1 415 555 0123"] {
        let guess = login_from(&app, from, identifier, "wrong password").await;
        assert_eq!(error_code(&guess), "UNAUTHENTICATED", "{identifier}");
    }
    let limited = login_from(&app, from, "many@example.com", PASSWORD).await;
    assert_eq!(error_code(&limited), "RATE_LIMITED");
}

#[tokio::test]
async fn guessing_from_many_addresses_meets_a_ceiling_per_account() {
    let app = app_behind_a_proxy(|s| {
        s.rate_login_failures_per_account = "5/h".parse().unwrap();
    })
    .await;
    app.register("targeted").await;
    for i in 0..5 {
        let guess = login_from(&app, &format!("203.0.113.{i}"), "targeted", "wrong").await;
        assert_eq!(error_code(&guess), "UNAUTHENTICATED");
    }
    let next = login_from(&app, "203.0.113.99", "targeted", "wrong").await;
    assert_eq!(error_code(&next), "RATE_LIMITED");
    // Another account is counted apart.
    app.register("bystander").await;
    let other = login_from(&app, "203.0.113.99", "bystander", PASSWORD).await;
    assert!(
        other["data"]["login"]["accessToken"].is_string(),
        "{other:#}"
    );
}

#[tokio::test]
async fn username_checks_are_limited_per_address_alias_by_alias() {
    let app = app_behind_a_proxy(|s| {
        s.rate_username_checks_per_ip = "5/min".parse().unwrap();
    })
    .await;
    let aliases: String = (0..8)
        .map(|i| format!("n{i}: usernameAvailable(username: \"free_name_{i}\") "))
        .collect();
    let response = app
        .graphql(&format!("{{ {aliases} }}"), json!({}), None)
        .await;
    // Five answered, three refused. `usernameAvailable` is non-null, so
    // (GraphQL spec, "Handling Field Errors") a refusal nulls all of `data`:
    // the three errors, one per refused alias, tell which.
    assert!(response["data"].is_null(), "{response:#}");
    let errors = response["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 3, "{response:#}");
    let mut refused: Vec<&str> = errors
        .iter()
        .map(|error| error["path"][0].as_str().unwrap())
        .collect();
    refused.sort_unstable();
    refused.dedup();
    assert_eq!(refused.len(), 3, "{response:#}");
    for error in errors {
        assert_eq!(error["extensions"]["code"], "RATE_LIMITED");
        assert!(error["extensions"]["retryAfter"].as_u64().unwrap() >= 1);
    }
}

#[tokio::test]
async fn registrations_over_the_per_ip_limit_are_rate_limited() {
    let app = spawn_app_with(|s| {
        s.rate_limits = kith::config::Switch::On;
        s.rate_register_per_ip = "2/h".parse().unwrap();
    })
    .await;
    app.register("one_of_two").await;
    app.register("two_of_two").await;
    let response = app
        .graphql(
            REGISTER,
            json!({ "input": { "username": "three", "password": PASSWORD } }),
            None,
        )
        .await;
    assert_eq!(error_code(&response), "RATE_LIMITED");
}

#[tokio::test]
async fn rate_limits_switched_off_never_refuse() {
    let app = spawn_app_with(|s| {
        s.rate_limits = kith::config::Switch::Off;
        s.rate_login_failures_per_account_and_ip = "1/h".parse().unwrap();
    })
    .await;
    app.register("unlimited").await;
    for _ in 0..3 {
        assert_eq!(
            error_code(&app.login("unlimited", "wrong password").await),
            "UNAUTHENTICATED"
        );
    }
}

#[tokio::test]
async fn operations_for_a_signed_in_user_refuse_anonymous_callers() {
    let app = spawn_app().await;
    let owner = app.register("owner_of_things").await;
    let sessions = app
        .data("{ me { sessions { id } } }", json!({}), owner.token())
        .await;
    let session_id = sessions["me"]["sessions"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let operations = [
        "{ me { id } }".to_owned(),
        "mutation { logout }".to_owned(),
        "mutation { logoutAllSessions }".to_owned(),
        format!("mutation {{ revokeSession(id: \"{session_id}\") }}"),
        "mutation { updateProfile(input: { bio: \"hi\" }) { id } }".to_owned(),
        "mutation { deleteAccount(input: { password: \"correct horse battery\" }) }".to_owned(),
    ];
    for operation in &operations {
        let response = app.graphql(operation, json!({}), None).await;
        assert_eq!(error_code(&response), "UNAUTHENTICATED", "{operation}");
    }
    // Nothing changed: the owner's session and account are intact.
    let me = app
        .data("{ me { id sessions { id } } }", json!({}), owner.token())
        .await;
    assert_eq!(me["me"]["sessions"][0]["id"], session_id.as_str());
}

#[tokio::test]
async fn a_session_is_read_from_the_database_once_then_from_the_cache() {
    let app = spawn_app().await;
    let ada = app.register("cached_ada").await;
    let me = "{ me { username } }";
    let statements_of = |before: u64| app.statements.get() - before;
    let before = app.statements.get();
    app.data(me, json!({}), ada.token()).await;
    let first = statements_of(before);
    let before = app.statements.get();
    app.data(me, json!({}), ada.token()).await;
    let second = statements_of(before);
    // The first request reads the session and Ada's row; the second finds the
    // row in the user cache. Alone on SQLite the process keeps the session
    // too; replicas keep it in Redis. On PostgreSQL without Redis (replicas
    // with nothing shared) every request asks the database for the session,
    // so a logout through any of them holds at once.
    let cached = std::env::var("KITH_TEST_DATABASE_URL").is_err()
        || std::env::var("KITH_TEST_REDIS_URL").is_ok();
    assert_eq!(first, 2, "the session and the row, from the database");
    let expected = if cached { 0 } else { 1 };
    assert_eq!(
        second, expected,
        "the session's validity came from the cache"
    );

    // A logout is seen at once, cache or not.
    app.data("mutation { logout }", json!({}), ada.token())
        .await;
    let refused = app.graphql(me, json!({}), ada.token()).await;
    assert_eq!(common::error_code(&refused), "UNAUTHENTICATED");
}

/// A refresh keeps the session going from then on and says where it was
/// used: `me.sessions` shows the new time, expiry, address and app (the
/// list a user reads to spot a device that is not theirs).
#[tokio::test]
async fn a_refresh_extends_the_session_and_records_where_it_was_used() {
    let app = spawn_app_with(|settings| settings.trust_forwarded_for = true).await;
    let post = |query: &str, variables: Value, token: Option<&str>, from: (&str, &str)| {
        let mut request = app
            .client
            .post(app.url("/graphql"))
            .header("user-agent", from.0)
            .header("x-forwarded-for", from.1)
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move {
            let response: Value = request.send().await.unwrap().json().await.unwrap();
            assert!(response.get("errors").is_none(), "{response}");
            response["data"].clone()
        }
    };
    let sessions = "{ me { sessions { lastUsedAt expiresAt userAgent ip } } }";
    let laptop = ("laptop-app/1", "203.0.113.7");
    let phone = ("phone-app/2", "198.51.100.2");
    let registered = post(
        "mutation { register(input: { username: \"ada\", password: \"correct horse battery\" }) {
            accessToken refreshToken } }",
        json!({}),
        None,
        laptop,
    )
    .await;
    let before = post(
        sessions,
        json!({}),
        registered["register"]["accessToken"].as_str(),
        laptop,
    )
    .await["me"]["sessions"][0]
        .clone();
    assert_eq!(
        (&before["userAgent"], &before["ip"]),
        (&json!("laptop-app/1"), &json!("203.0.113.7"))
    );

    let refreshed = post(
        REFRESH,
        json!({ "t": registered["register"]["refreshToken"] }),
        None,
        phone,
    )
    .await;
    let after = post(
        sessions,
        json!({}),
        refreshed["refreshSession"]["accessToken"].as_str(),
        phone,
    )
    .await["me"]["sessions"][0]
        .clone();
    assert_eq!(
        (&after["userAgent"], &after["ip"]),
        (&json!("phone-app/2"), &json!("198.51.100.2"))
    );
    let time = |session: &Value, field: &str| {
        chrono::DateTime::parse_from_rfc3339(session[field].as_str().unwrap()).unwrap()
    };
    assert!(time(&after, "lastUsedAt") > time(&before, "lastUsedAt"));
    assert!(
        time(&after, "expiresAt") > time(&before, "expiresAt"),
        "extended from the refresh on"
    );
}
