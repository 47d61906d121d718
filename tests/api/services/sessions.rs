//! Accounts and sessions (`Accounts`): registering, logging in, refresh
//! rotation and reuse detection, revoking one session or all, and deleting
//! an account.

use kith::{
    config::{Rate, Switch},
    domain::accounts::{ClientInfo, Identifier, Registration},
};

use super::{PASSWORD, Services, expect_code, field_of, message_of, services, services_with};

fn client() -> ClientInfo {
    ClientInfo {
        ip: Some("203.0.113.7".parse().unwrap()),
        user_agent: Some("kith-tests".into()),
    }
}

fn registration(username: &str) -> Registration {
    Registration {
        username: username.into(),
        password: PASSWORD.into(),
        email: None,
        phone: None,
        display_name: None,
        birthdate: None,
    }
}

/// Whether the session still lets requests in, as every request asks.
async fn valid(s: &Services, session_id: uuid::Uuid) -> bool {
    s.accounts
        .session_validity(session_id)
        .await
        .unwrap()
        .is_some()
}

#[tokio::test]
async fn registering_signs_the_new_user_in() {
    let s = services().await;

    let issued = s
        .accounts
        .register(
            Registration {
                email: Some("Ann@Example.com".into()),
                ..registration("Ann.B")
            },
            &client(),
        )
        .await
        .unwrap();

    // Stored normalised.
    assert_eq!(issued.user.username, "ann.b");
    assert_eq!(issued.user.email.as_deref(), Some("ann@example.com"));
    let claims = s.accounts.tokens().verify(&issued.access_token).unwrap();
    assert_eq!(claims.sub, issued.user.id);
    let validity = s
        .accounts
        .session_validity(claims.sid)
        .await
        .unwrap()
        .expect("the new session holds");
    assert_eq!(validity.user_id, issued.user.id);
    let sessions = s.accounts.sessions(issued.user.id).await.unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].ip.as_deref(), Some("203.0.113.7"));
    assert!(!s.accounts.username_available("ANN.B").await.unwrap());
}

#[tokio::test]
async fn a_taken_username_email_or_phone_is_a_conflict_naming_it() {
    let s = services().await;
    s.accounts
        .register(
            Registration {
                email: Some("ann@example.com".into()),
                phone: Some("+14155550123".into()),
                ..registration("ann")
            },
            &client(),
        )
        .await
        .unwrap();

    for (taken, field) in [
        (registration("ANN"), "username"),
        (
            Registration {
                email: Some("ANN@example.com".into()),
                ..registration("ann2")
            },
            "email",
        ),
        (
            Registration {
                phone: Some("+1 415 555 0123".into()),
                ..registration("ann3")
            },
            "phone",
        ),
    ] {
        let err = expect_code(s.accounts.register(taken, &client()).await, "CONFLICT");
        assert_eq!(field_of(&err), Some(field));
    }
}

#[tokio::test]
async fn each_invalid_registration_field_is_named() {
    let s = services().await;

    for (invalid, field) in [
        (registration("a"), "username"),
        (registration("semi;colon"), "username"),
        (
            Registration {
                password: "short".into(),
                ..registration("ann")
            },
            "password",
        ),
        (
            Registration {
                email: Some("ann@localhost".into()),
                ..registration("ann")
            },
            "email",
        ),
        (
            Registration {
                phone: Some("0123".into()),
                ..registration("ann")
            },
            "phone",
        ),
        (
            Registration {
                birthdate: chrono::NaiveDate::from_ymd_opt(1850, 1, 1),
                ..registration("ann")
            },
            "birthdate",
        ),
    ] {
        let err = expect_code(
            s.accounts.register(invalid, &client()).await,
            "BAD_USER_INPUT",
        );
        assert_eq!(field_of(&err), Some(field));
    }
    // Nothing was created on the way.
    assert!(s.accounts.username_available("ann").await.unwrap());
}

#[tokio::test]
async fn login_by_username_email_or_phone_opens_a_session_each() {
    let s = services().await;
    let issued = s
        .accounts
        .register(
            Registration {
                email: Some("ann@example.com".into()),
                phone: Some("+14155550123".into()),
                ..registration("ann")
            },
            &client(),
        )
        .await
        .unwrap();

    for identifier in ["ANN", "Ann@Example.com", "+1 415 555 0123"] {
        let login = s
            .accounts
            .login(&Identifier::parse(identifier), PASSWORD, &client())
            .await
            .unwrap_or_else(|err| panic!("{identifier}: {err:?}"));
        assert_eq!(login.user.id, issued.user.id);
    }
    assert_eq!(s.accounts.sessions(issued.user.id).await.unwrap().len(), 4);
}

#[tokio::test]
async fn an_unknown_account_and_a_wrong_password_fail_alike() {
    let s = services().await;
    s.register("ann").await;

    let wrong = expect_code(
        s.accounts
            .login(&Identifier::parse("ann"), "not the password", &client())
            .await,
        "UNAUTHENTICATED",
    );
    let unknown = expect_code(
        s.accounts
            .login(&Identifier::parse("nobody"), PASSWORD, &client())
            .await,
        "UNAUTHENTICATED",
    );
    assert_eq!(message_of(&wrong), message_of(&unknown));
}

#[tokio::test]
async fn failed_logins_are_limited_per_account_and_address() {
    let s = services_with(|settings| {
        settings.rate_limits = Switch::On;
        settings.rate_login_failures_per_account_and_ip = Rate::per_hour(2);
    })
    .await;
    s.register("ann").await;
    let ann = Identifier::parse("ann");
    let other_address = ClientInfo {
        ip: Some("198.51.100.9".parse().unwrap()),
        ..client()
    };

    // A success counts nothing.
    s.accounts.login(&ann, PASSWORD, &client()).await.unwrap();
    for _ in 0..2 {
        expect_code(
            s.accounts.login(&ann, "wrong password", &client()).await,
            "UNAUTHENTICATED",
        );
    }
    // The third failure is refused before the password is checked, even
    // the right one, from that address...
    expect_code(
        s.accounts.login(&ann, PASSWORD, &client()).await,
        "RATE_LIMITED",
    );
    // ...while the owner elsewhere still gets in.
    s.accounts
        .login(&ann, PASSWORD, &other_address)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_refresh_token_is_spent_by_its_first_use() {
    let s = services().await;
    let ann = s.register("ann").await;
    let session = ann.session_id(&s);

    let rotated = s
        .accounts
        .refresh(&ann.session.refresh_token, &client())
        .await
        .unwrap();

    assert_ne!(rotated.refresh_token, ann.session.refresh_token);
    assert_eq!(rotated.user.id, ann.id);
    // The same session goes on, under the new pair.
    let claims = s.accounts.tokens().verify(&rotated.access_token).unwrap();
    assert_eq!(claims.sid, session);
    assert!(valid(&s, session).await);
    // Rotation goes on with the new token.
    let again = s
        .accounts
        .refresh(&rotated.refresh_token, &client())
        .await
        .unwrap();
    assert_ne!(again.refresh_token, rotated.refresh_token);
    assert!(valid(&s, session).await);
}

#[tokio::test]
async fn reusing_a_spent_refresh_token_revokes_its_session_only() {
    let s = services().await;
    let ann = s.register("ann").await;
    let session = ann.session_id(&s);
    let other_device = s
        .accounts
        .login(&Identifier::parse("ann"), PASSWORD, &client())
        .await
        .unwrap();
    let rotated = s
        .accounts
        .refresh(&ann.session.refresh_token, &client())
        .await
        .unwrap();

    let err = expect_code(
        s.accounts
            .refresh(&ann.session.refresh_token, &client())
            .await,
        "UNAUTHENTICATED",
    );
    assert!(message_of(&err).contains("already used"));

    // The whole session ends: its current refresh token and access tokens too.
    assert!(!valid(&s, session).await);
    let err = expect_code(
        s.accounts.refresh(&rotated.refresh_token, &client()).await,
        "UNAUTHENTICATED",
    );
    assert!(message_of(&err).contains("session has ended"));
    // The account's other sessions are not touched.
    let other = s
        .accounts
        .tokens()
        .verify(&other_device.access_token)
        .unwrap()
        .sid;
    assert!(valid(&s, other).await);
    s.accounts
        .refresh(&other_device.refresh_token, &client())
        .await
        .unwrap();
    let live: Vec<_> = s
        .accounts
        .sessions(ann.id)
        .await
        .unwrap()
        .into_iter()
        .map(|session| session.id)
        .collect();
    assert_eq!(live, [other]);
}

#[tokio::test]
async fn an_unknown_refresh_token_is_refused() {
    let s = services().await;
    s.register("ann").await;

    let err = expect_code(
        s.accounts.refresh("not-a-token", &client()).await,
        "UNAUTHENTICATED",
    );
    assert!(message_of(&err).contains("refresh token invalid"));
}

#[tokio::test]
async fn revoking_one_session_leaves_the_others() {
    let s = services().await;
    let ann = s.register("ann").await;
    let bob = s.register("bob").await;
    let phone = s
        .accounts
        .login(&Identifier::parse("ann"), PASSWORD, &client())
        .await
        .unwrap();
    let (laptop, phone_id) = (
        ann.session_id(&s),
        s.accounts.tokens().verify(&phone.access_token).unwrap().sid,
    );

    // Nobody revokes another's session: it is not found, and holds.
    expect_code(s.accounts.revoke_session(bob.id, laptop).await, "NOT_FOUND");
    assert!(valid(&s, laptop).await);

    s.accounts.revoke_session(ann.id, laptop).await.unwrap();

    assert!(!valid(&s, laptop).await);
    assert!(valid(&s, phone_id).await);
    expect_code(
        s.accounts
            .refresh(&ann.session.refresh_token, &client())
            .await,
        "UNAUTHENTICATED",
    );
    // Revoking it again: it has ended.
    expect_code(s.accounts.revoke_session(ann.id, laptop).await, "NOT_FOUND");
    s.accounts
        .refresh(&phone.refresh_token, &client())
        .await
        .unwrap();
}

#[tokio::test]
async fn revoking_all_sessions_ends_every_one_and_only_the_users() {
    let s = services().await;
    let ann = s.register("ann").await;
    let bob = s.register("bob").await;
    let phone = s
        .accounts
        .login(&Identifier::parse("ann"), PASSWORD, &client())
        .await
        .unwrap();

    s.accounts.revoke_all_sessions(ann.id).await.unwrap();

    assert!(s.accounts.sessions(ann.id).await.unwrap().is_empty());
    assert!(!valid(&s, ann.session_id(&s)).await);
    for token in [&ann.session.refresh_token, &phone.refresh_token] {
        expect_code(
            s.accounts.refresh(token, &client()).await,
            "UNAUTHENTICATED",
        );
    }
    assert!(valid(&s, bob.session_id(&s)).await);
    // A new login opens a session as before.
    s.accounts
        .login(&Identifier::parse("ann"), PASSWORD, &client())
        .await
        .unwrap();
}

#[tokio::test]
async fn deleting_an_account_needs_its_password_and_ends_it_all() {
    let s = services().await;
    let ann = s.register("ann").await;
    let bob = s.register("bob").await;
    s.befriend(ann.id, bob.id).await;

    let err = expect_code(
        s.accounts
            .delete_account(
                ann.id,
                uuid::Uuid::nil(),
                Some("not the password"),
                &client(),
            )
            .await,
        "BAD_USER_INPUT",
    );
    assert_eq!(field_of(&err), Some("password"));
    assert!(valid(&s, ann.session_id(&s)).await);

    s.accounts
        .delete_account(ann.id, uuid::Uuid::nil(), Some(PASSWORD), &client())
        .await
        .unwrap();

    assert!(!valid(&s, ann.session_id(&s)).await);
    expect_code(
        s.accounts
            .refresh(&ann.session.refresh_token, &client())
            .await,
        "UNAUTHENTICATED",
    );
    expect_code(
        s.accounts
            .login(&Identifier::parse("ann"), PASSWORD, &client())
            .await,
        "UNAUTHENTICATED",
    );
    expect_code(
        s.accounts
            .delete_account(ann.id, uuid::Uuid::nil(), Some(PASSWORD), &client())
            .await,
        "NOT_FOUND",
    );
    // Their friend lost a friend, and the name is free again.
    let bob_row = kith::domain::users::find(&s.db, bob.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(bob_row.friend_count, 0);
    assert!(s.accounts.username_available("ann").await.unwrap());
}
