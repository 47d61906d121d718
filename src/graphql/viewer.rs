//! The viewer of a request: the user and session its access token names, checked
//! once per request (lazily, so `login` with a stale header still works) against the
//! session store, so a revoked session's token is refused at once.

use chrono::{DateTime, TimeZone, Utc};
use tokio::sync::OnceCell;
use uuid::Uuid;

use crate::{
    domain::accounts::Accounts,
    error::{AppError, AppResult},
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Viewer {
    pub user_id: Uuid,
    pub session_id: Uuid,
    pub token_expires_at: DateTime<Utc>,
}

#[derive(Clone, Debug)]
enum Failure {
    Rejected(&'static str),
    /// The database did not answer: retryable, like every call that needs it.
    Unavailable {
        retry_after_secs: u64,
        message: String,
    },
    Internal,
}

/// The credentials a request or socket came with, and what they turned out to be.
pub struct RequestAuth {
    token: Option<String>,
    resolved: OnceCell<Result<Option<Viewer>, Failure>>,
    /// Check again on every use: a socket lives longer than its token may.
    recheck: bool,
}

impl RequestAuth {
    /// From an `Authorization` header value or a `connection_init` field: a token
    /// with or without the `Bearer ` prefix; blank means anonymous.
    pub fn from_credentials(value: Option<&str>) -> Self {
        let token = value
            .map(|v| {
                let v = v.trim();
                match v.split_once(char::is_whitespace) {
                    Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
                    None if v.eq_ignore_ascii_case("bearer") => "",
                    _ => v,
                }
            })
            .filter(|t| !t.is_empty())
            .map(str::to_owned);
        Self {
            token,
            resolved: OnceCell::new(),
            recheck: false,
        }
    }

    /// The bearer token, if one was given.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// Credentials of a WebSocket connection: every operation on the socket checks
    /// the token and session again, so one that was revoked or expired stops
    /// working there too, not only on HTTP.
    pub fn for_socket(value: Option<&str>) -> Self {
        Self {
            recheck: true,
            ..Self::from_credentials(value)
        }
    }

    /// The viewer, `None` when no token was given. A token that is invalid,
    /// expired or names an ended session is `UNAUTHENTICATED`.
    pub async fn viewer(&self, accounts: &Accounts) -> AppResult<Option<Viewer>> {
        let fresh;
        let outcome = if self.recheck {
            fresh = resolve(self.token.as_deref(), accounts).await;
            &fresh
        } else {
            self.resolved
                .get_or_init(|| resolve(self.token.as_deref(), accounts))
                .await
        };
        match outcome {
            Ok(viewer) => Ok(*viewer),
            Err(Failure::Rejected(message)) => Err(AppError::unauthenticated(*message)),
            Err(Failure::Unavailable {
                retry_after_secs,
                message,
            }) => Err(AppError::Unavailable {
                retry_after_secs: *retry_after_secs,
                message: message.clone(),
            }),
            Err(Failure::Internal) => Err(AppError::Internal(anyhow::anyhow!(
                "checking the session failed (logged above)"
            ))),
        }
    }
}

async fn resolve(token: Option<&str>, accounts: &Accounts) -> Result<Option<Viewer>, Failure> {
    let Some(token) = token else {
        return Ok(None);
    };
    let claims = accounts
        .tokens()
        .verify(token)
        .map_err(|rejection| Failure::Rejected(rejection.message()))?;
    match accounts.session_validity(claims.sid).await {
        Ok(Some(session)) if session.user_id == claims.sub => Ok(Some(Viewer {
            user_id: claims.sub,
            session_id: claims.sid,
            token_expires_at: Utc
                .timestamp_opt(claims.exp, 0)
                .single()
                .unwrap_or_else(Utc::now),
        })),
        Ok(_) => Err(Failure::Rejected("session has ended")),
        // Logged (as a warning) where the database error was mapped.
        Err(AppError::Unavailable {
            retry_after_secs,
            message,
        }) => Err(Failure::Unavailable {
            retry_after_secs,
            message,
        }),
        Err(err) => {
            tracing::error!(error = ?err, "checking a session failed");
            Err(Failure::Internal)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_prefix_is_optional() {
        for value in ["Bearer abc", "bearer abc", "abc", "  Bearer   abc "] {
            assert_eq!(
                RequestAuth::from_credentials(Some(value)).token.as_deref(),
                Some("abc")
            );
        }
        assert!(
            RequestAuth::from_credentials(Some("Bearer "))
                .token
                .is_none()
        );
        assert!(
            RequestAuth::from_credentials(Some("bearer"))
                .token
                .is_none()
        );
        assert!(RequestAuth::from_credentials(None).token.is_none());
    }
}
