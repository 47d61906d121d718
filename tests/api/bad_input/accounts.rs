//! Accounts and sessions: registering, signing in, refreshing, revoking a
//! session and deleting an account.

use serde_json::json;

use super::{Bad::*, Call, Table, UNTAKEN, World, bad, chars, invalid, not_found, unauthenticated};

/// A long value sign-in must refuse like any wrong one, not hash or look up
/// as it is.
fn huge() -> serde_json::Value {
    chars(10_000)
}

#[rustfmt::skip]
pub fn table(world: &World) -> Table {
    let mut table = Table::default();
    let long_email = json!(format!("{}@example.com", "a".repeat(250)));
    // A well-formed token, with its secret part changed.
    let forged_token = json!(format!("{}x", world.ann.refresh_token));
    table.add(
        Call::new(
            "register(input: RegisterInput!) { user { id } }",
            None,
            json!({ "input": { "username": UNTAKEN, "password": "long enough secret" } }),
        )
        .row("input.username", Empty, json!(""), bad("username"))
        .row("input.username", Blank, json!("   "), bad("username"))
        .row("input.username", TooShort, json!("ab"), bad("username"))
        .row("input.username", TooLong, chars(33), bad("username"))
        .row("input.username", WrongFormat, json!("never taken"), bad("username"))
        .row("input.username", WrongFormat, json!("never\u{0}taken"), bad("username"))
        .row("input.username", Invalid, json!(42), invalid())
        .missing("input.username")
        .row("input.password", Empty, json!(""), bad("password"))
        .row("input.password", TooShort, json!("short"), bad("password"))
        .row("input.password", TooLong, chars(129), bad("password"))
        .row("input.password", Invalid, json!(null), invalid())
        .row("input.email", Empty, json!(""), bad("email"))
        .row("input.email", WrongFormat, json!("not-an-address"), bad("email"))
        .row("input.email", WrongFormat, json!("ann@localhost"), bad("email"))
        .row("input.email", WrongFormat, json!("ann\u{0}@example.com"), bad("email"))
        .row("input.email", TooLong, long_email, bad("email"))
        .row("input.phone", Empty, json!(""), bad("phone"))
        .row("input.phone", WrongFormat, json!("4155550123"), bad("phone"))
        .row("input.phone", WrongFormat, json!("+0155550123"), bad("phone"))
        .row("input.phone", WrongFormat, json!("+1415555O123"), bad("phone"))
        .row("input.phone", TooLong, json!("+1234567890123456"), bad("phone"))
        .row("input.displayName", TooLong, chars(65), bad("displayName"))
        .row("input.displayName", WrongFormat, json!("Ann\u{7}"), bad("displayName"))
        .row("input.displayName", WrongFormat, json!("Ann\u{0}"), bad("displayName"))
        .row("input.birthdate", WrongFormat, json!("17/05/1990"), invalid())
        .row("input.birthdate", WrongFormat, json!("1990-02-30"), invalid())
        .row("input.birthdate", OutOfRange, json!("2999-01-01"), bad("birthdate"))
        .row("input.birthdate", OutOfRange, json!("1800-01-01"), bad("birthdate"))
        .row("input.birthdate", OutOfRange, json!(years_ago(5)), bad("birthdate")),
    );

    // A failed sign-in says no more than a wrong password does.
    table.add(
        Call::new(
            "login(input: LoginInput!) { user { id } }",
            None,
            json!({ "input": { "identifier": "ann", "password": "not her password" } }),
        )
        .row("input.identifier", Empty, json!(""), unauthenticated())
        .row("input.identifier", TooLong, huge(), unauthenticated())
        .row("input.identifier", WrongFormat, json!("ann\u{0}"), unauthenticated())
        .row("input.identifier", WrongFormat, json!("+0"), unauthenticated())
        .row("input.identifier", WrongFormat, json!("@"), unauthenticated())
        .row("input.password", Empty, json!(""), unauthenticated())
        .row("input.password", TooLong, huge(), unauthenticated())
        .missing("input.password"),
    );

    table.add(
        Call::new(
            "refreshSession(input: RefreshSessionInput!) { user { id } }",
            None,
            json!({ "input": { "refreshToken": world.ann.refresh_token } }),
        )
        .row("input.refreshToken", Empty, json!(""), unauthenticated())
        .row("input.refreshToken", WrongFormat, json!("not-a-token"), unauthenticated())
        .row("input.refreshToken", WrongFormat, json!("a\u{0}b"), unauthenticated())
        .row("input.refreshToken", TooLong, huge(), unauthenticated())
        .row("input.refreshToken", WrongFormat, forged_token, unauthenticated()),
    );

    table.add(
        Call::new("revokeSession(id: ID!)", Some(&world.ann), json!({}))
            .ids("id", &world.ann_session, not_found())
            .row("id", ForeignId, world.foreign_session.clone(), not_found()),
    );

    // `dan` would be the one to go, should a row be let through.
    table.add(
        Call::new(
            "deleteAccount(input: DeleteAccountInput!)",
            Some(&world.dan),
            json!({ "input": {} }),
        )
        .row("input.password", Empty, json!(""), bad("password"))
        .row("input.password", WrongFormat, json!("not his password"), bad("password"))
        .row("input.password", TooLong, huge(), bad("password"))
        .row("input.password", Invalid, json!(null), bad("password")),
    );

    table.add(
        Call::new(
            "requestSmsCode(input: RequestSmsCodeInput!) { expiresAt }",
            None,
            json!({ "input": { "phone": "+14155550177" } }),
        )
        .row("input.phone", Empty, json!(""), bad("phone"))
        .row("input.phone", Blank, json!("   "), bad("phone"))
        .row("input.phone", WrongFormat, json!("4155550123"), bad("phone"))
        .row("input.phone", WrongFormat, json!("+0155550123"), bad("phone"))
        .row("input.phone", WrongFormat, json!("+1415555\u{0}123"), bad("phone"))
        .row("input.phone", TooLong, huge(), bad("phone"))
        .row("input.phone", Invalid, json!(4155550123u64), invalid())
        .missing("input.phone"),
    );

    // A code never sent: whatever the shape, no sign-in.
    table.add(
        Call::new(
            "loginWithSms(input: SmsCodeInput!) { user { id } }",
            None,
            json!({ "input": { "phone": "+14155550178", "code": "123456" } }),
        )
        .row("input.phone", WrongFormat, json!("4155550123"), bad("phone"))
        .row("input.phone", TooLong, huge(), bad("phone"))
        .row("input.code", Empty, json!(""), bad("code"))
        .row("input.code", TooShort, json!("12345"), bad("code"))
        .row("input.code", TooLong, huge(), bad("code"))
        .row("input.code", WrongFormat, json!("12a456"), bad("code"))
        .row("input.code", WrongFormat, json!("123456"), unauthenticated())
        .missing("input.code"),
    );

    table.add(
        Call::new(
            "loginWithTelegram(input: TelegramInput!) { user { id } }",
            None,
            json!({ "input": {} }),
        )
        .row("input.initData", Empty, json!(""), unauthenticated())
        .row("input.initData", WrongFormat, json!("user=%7B%7D&hash=zz"), unauthenticated())
        .row("input.initData", WrongFormat, json!("a\u{0}b"), unauthenticated())
        .row("input.initData", TooLong, huge(), unauthenticated())
        .missing("input.initData"),
    );

    table.add(
        Call::new(
            "loginWithFacebook(input: FacebookInput!) { user { id } }",
            None,
            json!({ "input": {} }),
        )
        .row("input.accessToken", Empty, json!(""), unauthenticated())
        .row("input.accessToken", WrongFormat, json!("EAAG not a token"), unauthenticated())
        .row("input.accessToken", WrongFormat, json!("EAAG\u{0}"), unauthenticated())
        .row("input.accessToken", TooLong, huge(), unauthenticated())
        .missing("input.accessToken"),
    );

    // `dan` would change, should a row be let through.
    table.add(
        Call::new(
            "linkPhone(input: SmsCodeInput!) { method }",
            Some(&world.dan),
            json!({ "input": { "phone": "+14155550179", "code": "123456" } }),
        )
        .row("input.phone", Empty, json!(""), bad("phone"))
        .row("input.phone", WrongFormat, json!("4155550123"), bad("phone"))
        .row("input.code", Empty, json!(""), bad("code"))
        .row("input.code", WrongFormat, json!("123456"), bad("code"))
        .row("input.code", TooLong, huge(), bad("code"))
        .missing("input.code"),
    );
    table.add(
        Call::new("linkTelegram(input: TelegramInput!) { method }", Some(&world.dan), json!({ "input": {} }))
            .row("input.initData", Empty, json!(""), bad("initData"))
            .row("input.initData", WrongFormat, json!("user=%7B%7D&hash=zz"), bad("initData"))
            .row("input.initData", TooLong, huge(), bad("initData"))
            .missing("input.initData"),
    );
    table.add(
        Call::new("linkFacebook(input: FacebookInput!) { method }", Some(&world.dan), json!({ "input": {} }))
            .row("input.accessToken", Empty, json!(""), bad("accessToken"))
            .row("input.accessToken", WrongFormat, json!("EAAGunknown"), bad("accessToken"))
            .row("input.accessToken", TooLong, huge(), bad("accessToken"))
            .missing("input.accessToken"),
    );
    table.add(
        Call::new("unlinkIdentity(method: SignInMethod!) { method }", Some(&world.dan), json!({}))
            .row("method", Invalid, json!("EMAIL"), invalid())
            .row("method", Invalid, json!("password"), invalid())
            .missing("method"),
    );
    table
}

/// The date `years` years ago, as a `Date`.
fn years_ago(years: u32) -> String {
    chrono::Utc::now()
        .date_naive()
        .checked_sub_months(chrono::Months::new(12 * years))
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn accounts_refuse_bad_input_and_write_nothing() {
    super::run_table(table).await;
}
