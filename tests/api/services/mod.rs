//! Service-level tests of the rules with branches: the domain services called
//! directly, as the resolvers call them, with no HTTP or GraphQL in between.
//! Each test gets a fresh SQLite database in a temporary directory, migrated,
//! and every service wired over it by `AppState::build` (no Redis), with the
//! test defaults of the HTTP harness: a known JWT secret, rate limits off.
//!
//! - `messaging`: who may message whom.
//! - `groups`: roles, invitations, join requests, the member cap.
//! - `matching`: swipes, super likes, matches and their end.
//! - `media`: the sweeper, which removes what is released or left unsent.
//! - `sessions`: registering, logging in, refresh rotation, revocation,
//!   deleting an account.

mod groups;
mod matching;
mod media;
mod messaging;
mod sessions;

use std::{ops::Deref, sync::Arc};

use chrono::NaiveDate;
use kith::{
    app::connect_migrated,
    config::{Settings, Switch},
    domain::{
        accounts::{ClientInfo, IssuedSession, Registration},
        chat::{Message, Outgoing},
        discovery::{Match, SwipeKind},
        groups::{JoinOutcome, JoinPolicy, NewGroup, Visibility},
        users::{Gender, ProfileChanges},
    },
    error::{AppError, AppResult},
    infra::db::Db,
    state::{AppState, Background},
};
use uuid::Uuid;

/// The tests' JWT secret, as `tests/common` has it.
pub const JWT_SECRET: &str = "kith-tests-8Fq2Lz0Rw5Yx3Nc7Vb1Hm4Jd6Kp9Gt";
pub const PASSWORD: &str = "correct horse battery";

/// Every domain service over a fresh database. Dereferences to the
/// [`AppState`], so `services.chat`, `services.groups` and so on.
pub struct Services {
    pub state: AppState,
    /// The tasks that keep shared state; stopped with the services.
    _background: Background,
    /// The database's directory, deleted when the test ends.
    _dir: tempfile::TempDir,
}

impl Deref for Services {
    type Target = AppState;

    fn deref(&self) -> &AppState {
        &self.state
    }
}

/// A registered user and the session registering opened.
pub struct User {
    pub id: Uuid,
    pub session: IssuedSession,
}

impl User {
    /// The session the access token names.
    pub fn session_id(&self, services: &Services) -> Uuid {
        services
            .accounts
            .tokens()
            .verify(&self.session.access_token)
            .expect("an issued access token verifies")
            .sid
    }
}

/// Services with the test defaults.
pub async fn services() -> Services {
    services_with(|_| {}).await
}

/// Services after `configure` adjusts the test defaults.
pub async fn services_with(configure: impl FnOnce(&mut Settings)) -> Services {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut settings = Settings {
        database_url: format!("sqlite://{}?mode=rwc", dir.path().join("kith.db").display()),
        jwt_secret: Some(JWT_SECRET.into()),
        rate_limits: Switch::Off,
        db_max_connections: 5,
        ..Settings::default()
    };
    configure(&mut settings);
    let primary = connect_migrated(&settings)
        .await
        .expect("the test database opens and migrates");
    let media = kith::app::open_media_store(&settings).expect("the media store opens");
    let (state, background) =
        AppState::build(Arc::new(settings), Db::new(primary, None), None, media)
            .await
            .expect("the services build");
    Services {
        state,
        _background: background,
        _dir: dir,
    }
}

impl Services {
    /// Registers `username` with the tests' password and nothing else.
    pub async fn register(&self, username: &str) -> User {
        self.register_with(username, None).await
    }

    pub async fn register_with(&self, username: &str, birthdate: Option<NaiveDate>) -> User {
        let session = self
            .accounts
            .register(
                Registration {
                    username: username.into(),
                    password: PASSWORD.into(),
                    email: None,
                    phone: None,
                    display_name: None,
                    birthdate,
                },
                &ClientInfo::default(),
            )
            .await
            .unwrap_or_else(|err| panic!("registering {username}: {err:?}"));
        User {
            id: session.user.id,
            session,
        }
    }

    /// A new user's id.
    pub async fn user(&self, username: &str) -> Uuid {
        self.register(username).await.id
    }

    /// A new user with all discovery needs (an adult birthdate, a gender, a
    /// location), so they may swipe and be liked.
    pub async fn dater(&self, username: &str) -> Uuid {
        let birthdate = NaiveDate::from_ymd_opt(1995, 5, 17).unwrap();
        let id = self.register_with(username, Some(birthdate)).await.id;
        self.accounts
            .update_profile(
                id,
                ProfileChanges {
                    gender: Some(Some(Gender::Nonbinary)),
                    location: Some(Some((52.52, 13.405))),
                    ..ProfileChanges::default()
                },
            )
            .await
            .expect("the dating profile saves");
        id
    }

    /// Makes `a` and `b` friends: `a` asks, `b` accepts.
    pub async fn befriend(&self, a: Uuid, b: Uuid) {
        let request = self
            .social
            .send_request(a, b, None)
            .await
            .expect("the request is sent");
        self.social
            .accept_request(b, request.id)
            .await
            .expect("the request is accepted");
        assert!(self.social.are_friends(a, b).await.unwrap());
    }

    /// Two daters like each other: their match.
    pub async fn match_pair(&self, a: Uuid, b: Uuid) -> Match {
        let first = self.discovery.swipe(a, b, SwipeKind::Like).await.unwrap();
        assert!(first.matched.is_none(), "one like makes no match");
        self.discovery
            .swipe(b, a, SwipeKind::Like)
            .await
            .unwrap()
            .matched
            .expect("two likes make a match")
    }

    /// The pair's direct conversation, opened (or found) by `a`.
    pub async fn direct(&self, a: Uuid, b: Uuid) -> Uuid {
        self.chat
            .direct_conversation(a, b)
            .await
            .expect("the conversation opens")
            .conversation
            .id
    }

    /// Sends `body` with a fresh client message id.
    pub async fn send(
        &self,
        sender: Uuid,
        conversation_id: Uuid,
        body: &str,
    ) -> AppResult<Message> {
        self.send_reply(sender, conversation_id, body, None).await
    }

    pub async fn send_reply(
        &self,
        sender: Uuid,
        conversation_id: Uuid,
        body: &str,
        reply_to_id: Option<Uuid>,
    ) -> AppResult<Message> {
        self.chat
            .send(
                sender,
                Outgoing {
                    conversation_id,
                    body: body.into(),
                    client_message_id: Uuid::now_v7().to_string(),
                    reply_to_id,
                    attachment_ids: Vec::new(),
                },
            )
            .await
    }

    /// A group owned by `owner`.
    pub async fn group(&self, owner: Uuid, visibility: Visibility, policy: JoinPolicy) -> Uuid {
        self.groups
            .create(
                owner,
                NewGroup {
                    name: "Hikers".into(),
                    description: None,
                    visibility,
                    join_policy: policy,
                },
            )
            .await
            .expect("the group is created")
            .id
    }

    /// `user` joins an open group (or one they are invited to).
    pub async fn join(&self, group_id: Uuid, user: Uuid) {
        let outcome = self.groups.request_to_join(user, group_id).await.unwrap();
        assert_eq!(outcome, JoinOutcome::Joined);
    }
}

/// The error of `result`, which must have failed with `code`
/// (`AppError::code`, what clients read as `extensions.code`).
#[track_caller]
pub fn expect_code<T>(result: AppResult<T>, code: &str) -> AppError {
    match result {
        Ok(_) => panic!("expected {code}, got Ok"),
        Err(err) => {
            assert_eq!(err.code(), code, "{err:?}");
            err
        }
    }
}

/// The input field an error names, if any.
pub fn field_of(err: &AppError) -> Option<&'static str> {
    match err {
        AppError::BadUserInput { field, .. } | AppError::Conflict { field, .. } => *field,
        _ => None,
    }
}

/// The message an error carries for the client.
pub fn message_of(err: &AppError) -> String {
    match err {
        AppError::Unauthenticated(m) | AppError::Forbidden(m) | AppError::NotFound(m) => m.clone(),
        AppError::BadUserInput { message, .. } | AppError::Conflict { message, .. } => {
            message.clone()
        }
        AppError::RateLimited { reason, .. } => reason.clone().unwrap_or_default(),
        AppError::Unavailable { message, .. } => message.clone(),
        AppError::Internal(cause) => format!("{cause:#}"),
    }
}
