//! Test doubles on loopback that speak the providers' documented protocols:
//! Twilio's Messages API (recording what it is asked to send) and the Graph
//! API's `debug_token` and `me` (answering for the tokens a test hands out).

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{
    Form, Json, Router,
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

pub const TWILIO_SID: &str = "AC0123456789abcdef0123456789abcdef";
pub const TWILIO_TOKEN: &str = "twilio-auth-token-for-tests";
pub const SMS_FROM: &str = "+15005550006";
pub const FACEBOOK_APP_ID: &str = "424242424242";
pub const FACEBOOK_APP_SECRET: &str = "fb-app-secret-never-logged-7f3a9c";
pub const TELEGRAM_BOT_TOKEN: &str = "7000000001:AAEtestBotTokenForKithSignIn";

/// How a double answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Answer,
    /// 400 (Twilio: a number it will not send to).
    Refuse,
    /// 500.
    Fail,
    /// Never answers.
    Hang,
}

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

async fn misbehave(mode: Mode) -> Option<Response> {
    match mode {
        Mode::Answer => None,
        Mode::Refuse => Some(
            (
                StatusCode::BAD_REQUEST,
                Json(json!({ "code": 21211, "message": "The 'To' number is not a valid phone number.", "status": 400 })),
            )
                .into_response(),
        ),
        Mode::Fail => Some(StatusCode::INTERNAL_SERVER_ERROR.into_response()),
        Mode::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            None
        }
    }
}

/// A message Twilio was asked to send.
#[derive(Clone, Debug)]
pub struct Sent {
    pub to: String,
    pub from: String,
    pub body: String,
}

impl Sent {
    /// The six digits in the body.
    pub fn code(&self) -> String {
        self.body
            .split(|c: char| !c.is_ascii_digit())
            .find(|word| word.len() == 6)
            .unwrap_or_else(|| panic!("no code in {:?}", self.body))
            .to_owned()
    }
}

#[derive(Clone, Default)]
pub struct FakeTwilio {
    pub url: String,
    sent: Arc<Mutex<Vec<Sent>>>,
    mode: Arc<Mutex<Option<Mode>>>,
    pub calls: Arc<AtomicUsize>,
}

impl FakeTwilio {
    pub async fn start() -> Self {
        let mut twilio = Self::default();
        let router = Router::new()
            .route(
                "/2010-04-01/Accounts/{sid}/Messages.json",
                post(twilio_send),
            )
            .with_state(twilio.clone());
        twilio.url = serve(router).await;
        twilio
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.mode.lock().unwrap() = Some(mode);
    }

    pub fn sent(&self) -> Vec<Sent> {
        self.sent.lock().unwrap().clone()
    }

    /// The code of the latest message to `phone`.
    pub fn code_for(&self, phone: &str) -> String {
        self.sent()
            .iter()
            .rev()
            .find(|m| m.to == phone)
            .unwrap_or_else(|| panic!("nothing was sent to {phone}"))
            .code()
    }
}

async fn twilio_send(
    State(twilio): State<FakeTwilio>,
    Path(sid): Path<String>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    twilio.calls.fetch_add(1, Ordering::SeqCst);
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{TWILIO_SID}:{TWILIO_TOKEN}"))
    );
    if sid != TWILIO_SID
        || headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(&expected)
    {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({ "code": 20003, "status": 401 })),
        )
            .into_response();
    }
    let mode = (*twilio.mode.lock().unwrap()).unwrap_or(Mode::Answer);
    if let Some(response) = misbehave(mode).await {
        return response;
    }
    let (Some(to), Some(from), Some(body)) = (form.get("To"), form.get("From"), form.get("Body"))
    else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({ "code": 21604, "status": 400 })),
        )
            .into_response();
    };
    twilio.sent.lock().unwrap().push(Sent {
        to: to.clone(),
        from: from.clone(),
        body: body.clone(),
    });
    (
        StatusCode::CREATED,
        Json(json!({ "sid": "SM0123", "status": "queued", "to": to, "from": from, "body": body })),
    )
        .into_response()
}

/// A user access token the fake Graph API knows.
#[derive(Clone, Debug)]
pub struct FacebookToken {
    pub app_id: String,
    pub user_id: String,
    pub name: String,
    pub valid: bool,
    pub expires_at: i64,
}

#[derive(Clone, Default)]
pub struct FakeGraph {
    pub url: String,
    tokens: Arc<Mutex<HashMap<String, FacebookToken>>>,
    mode: Arc<Mutex<Option<Mode>>>,
    pub calls: Arc<AtomicUsize>,
}

impl FakeGraph {
    pub async fn start() -> Self {
        let mut graph = Self::default();
        let router = Router::new()
            .route("/debug_token", get(debug_token))
            .route("/me", get(me))
            .with_state(graph.clone());
        graph.url = serve(router).await;
        graph
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.mode.lock().unwrap() = Some(mode);
    }

    /// A valid token of this app for `user_id`, a day from expiring.
    pub fn token_for(&self, user_id: &str, name: &str) -> String {
        self.add_token(FacebookToken {
            app_id: FACEBOOK_APP_ID.into(),
            user_id: user_id.into(),
            name: name.into(),
            valid: true,
            expires_at: chrono::Utc::now().timestamp() + 86_400,
        })
    }

    pub fn add_token(&self, token: FacebookToken) -> String {
        let value = format!("EAAG{}", uuid::Uuid::now_v7().simple());
        self.tokens.lock().unwrap().insert(value.clone(), token);
        value
    }
}

fn graph_error(message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({ "error": { "message": message, "type": "OAuthException", "code": 190 } })),
    )
        .into_response()
}

async fn debug_token(
    State(graph): State<FakeGraph>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    graph.calls.fetch_add(1, Ordering::SeqCst);
    let mode = (*graph.mode.lock().unwrap()).unwrap_or(Mode::Answer);
    if let Some(response) = misbehave(mode).await {
        return response;
    }
    if query.get("access_token").map(String::as_str)
        != Some(&format!("{FACEBOOK_APP_ID}|{FACEBOOK_APP_SECRET}"))
    {
        return graph_error("Invalid OAuth access token - Cannot parse access token");
    }
    let input = query.get("input_token").cloned().unwrap_or_default();
    let Some(token) = graph.tokens.lock().unwrap().get(&input).cloned() else {
        return Json(json!({ "data": { "error": { "code": 190, "message": "Invalid OAuth access token." }, "is_valid": false, "scopes": [] } })).into_response();
    };
    Json(json!({ "data": {
        "app_id": token.app_id, "type": "USER", "application": "kith tests",
        "expires_at": token.expires_at, "is_valid": token.valid,
        "scopes": ["public_profile", "email"], "user_id": token.user_id,
    } }))
    .into_response()
}

async fn me(
    State(graph): State<FakeGraph>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    graph.calls.fetch_add(1, Ordering::SeqCst);
    let input = query.get("access_token").cloned().unwrap_or_default();
    let Some(token) = graph.tokens.lock().unwrap().get(&input).cloned() else {
        return graph_error("Invalid OAuth access token.");
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(FACEBOOK_APP_SECRET.as_bytes()).unwrap();
    mac.update(input.as_bytes());
    if query.get("appsecret_proof") != Some(&hex::encode(mac.finalize().into_bytes())) {
        return graph_error("Invalid appsecret_proof provided in the API argument");
    }
    assert_eq!(
        query.get("fields").map(String::as_str),
        Some("id,name,email")
    );
    Json(json!({ "id": token.user_id, "name": token.name, "email": format!("{}@example.com", token.user_id) }))
        .into_response()
}
