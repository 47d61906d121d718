//! The one error type of kith and its mapping to GraphQL `extensions.code`.
//!
//! Policy: domain code returns `AppError`; resolvers turn it into a GraphQL error
//! here and only here. Client mistakes carry a message written for the app
//! developer; anything internal is logged with its cause and answered with a bare
//! "internal server error", so no SQL, path or stack reaches a client.
//! `AppError` deliberately does not implement `Display`: async-graphql converts any
//! `Display` type into an error without extensions, and that path must not exist.

use async_graphql::{ErrorExtensions, Value};
use sea_orm::{DbErr, SqlErr};

#[derive(Debug)]
pub enum AppError {
    Unauthenticated(String),
    Forbidden(String),
    NotFound(String),
    BadUserInput {
        field: Option<&'static str>,
        message: String,
    },
    Conflict {
        field: Option<&'static str>,
        message: String,
    },
    RateLimited {
        retry_after_secs: u64,
        /// What ran out, for a quota the user should understand (super likes).
        reason: Option<String>,
    },
    /// A dependency (the database, or Redis where it is required) did not
    /// answer in time: the client may retry after a while.
    Unavailable {
        retry_after_secs: u64,
        message: String,
    },
    Internal(anyhow::Error),
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::Unauthenticated(message.into())
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::Forbidden(message.into())
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::NotFound(message.into())
    }

    pub fn bad_input(field: &'static str, message: impl Into<String>) -> Self {
        Self::BadUserInput {
            field: Some(field),
            message: message.into(),
        }
    }

    pub fn conflict(field: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict {
            field: Some(field),
            message: message.into(),
        }
    }

    pub fn unavailable(retry_after_secs: u64, message: impl Into<String>) -> Self {
        Self::Unavailable {
            retry_after_secs,
            message: message.into(),
        }
    }

    /// This request's own copy of an error shared by several waiters (a
    /// DataLoader's, a single-flight load's): an outage stays one, so each
    /// may retry; anything else is internal, said with `context`.
    pub fn from_shared(err: &AppError, context: &str) -> Self {
        match err {
            Self::Unavailable {
                retry_after_secs,
                message,
            } => Self::unavailable(*retry_after_secs, message.clone()),
            other => Self::Internal(anyhow::anyhow!("{context}: {other:?}")),
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthenticated(_) => "UNAUTHENTICATED",
            Self::Forbidden(_) => "FORBIDDEN",
            Self::NotFound(_) => "NOT_FOUND",
            Self::BadUserInput { .. } => "BAD_USER_INPUT",
            Self::Conflict { .. } => "CONFLICT",
            Self::RateLimited { .. } => "RATE_LIMITED",
            Self::Unavailable { .. } => "UNAVAILABLE",
            Self::Internal(_) => "INTERNAL_SERVER_ERROR",
        }
    }
}

impl AppError {
    /// As an error of a whole request rather than of a field: no path, no
    /// location.
    pub fn into_request_error(self) -> async_graphql::ServerError {
        let error = async_graphql::Error::from(self);
        let mut server_error = async_graphql::ServerError::new(error.message, None);
        server_error.extensions = error.extensions;
        server_error
    }
}

/// How long a client should wait before retrying when the database is away:
/// the time a restart or a failover usually takes to begin answering again.
pub const DATABASE_RETRY_AFTER_SECS: u64 = 2;

impl From<DbErr> for AppError {
    fn from(err: DbErr) -> Self {
        if database_unavailable(&err) {
            tracing::warn!(error = %err, "database unavailable");
            return Self::Unavailable {
                retry_after_secs: DATABASE_RETRY_AFTER_SECS,
                message: "the database is not answering; retry shortly".into(),
            };
        }
        Self::Internal(err.into())
    }
}

impl From<anyhow::Error> for AppError {
    fn from(err: anyhow::Error) -> Self {
        match err.downcast::<DbErr>() {
            Ok(db_err) => db_err.into(),
            Err(err) => Self::Internal(err),
        }
    }
}

/// True when `err` says the database could not be reached (no connection to
/// be had in time, a connection cut, a server shutting down or starting up),
/// not that a statement was wrong: the request may succeed if retried.
pub fn database_unavailable(err: &DbErr) -> bool {
    use sea_orm::{RuntimeErr, sqlx::Error as Sqlx};
    match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(sqlx)) | DbErr::Query(RuntimeErr::SqlxError(sqlx)) => {
            match sqlx.as_ref() {
                Sqlx::Io(_)
                | Sqlx::Tls(_)
                | Sqlx::PoolTimedOut
                | Sqlx::PoolClosed
                | Sqlx::WorkerCrashed => true,
                // SQLSTATE class 08 (connection exception) and 57P01–57P03
                // (the server is shutting down, crashed, or not yet up).
                Sqlx::Database(db) => db
                    .code()
                    .is_some_and(|code| code.starts_with("08") || code.starts_with("57P")),
                _ => false,
            }
        }
        _ => false,
    }
}

/// True when the database refused a row for breaking a unique constraint: the
/// loser of a race for a username, email or phone.
pub fn is_unique_violation(err: &DbErr) -> bool {
    matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

/// The unique constraint `err` broke, by the database's name for it:
/// PostgreSQL's constraint name (`users_email_key`), or, since SQLite names
/// none, the columns its message lists (`users.email`). `None` for any other
/// error. Read from the driver's error, never from text a value could be in.
pub fn unique_constraint(err: &DbErr) -> Option<String> {
    use sea_orm::{RuntimeErr, SqlxError};
    if !is_unique_violation(err) {
        return None;
    }
    let (DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e))) = err
    else {
        return None;
    };
    let SqlxError::Database(e) = &**e else {
        return None;
    };
    if let Some(name) = e.constraint() {
        return Some(name.to_owned());
    }
    e.message()
        .strip_prefix("UNIQUE constraint failed: ")
        .map(str::to_owned)
}

impl From<AppError> for async_graphql::Error {
    fn from(err: AppError) -> Self {
        let code = err.code();
        let (message, field, retry_after) = match err {
            AppError::Unauthenticated(m) | AppError::Forbidden(m) | AppError::NotFound(m) => {
                (m, None, None)
            }
            AppError::BadUserInput { field, message } | AppError::Conflict { field, message } => {
                (message, field, None)
            }
            AppError::RateLimited {
                retry_after_secs,
                reason,
            } => (
                format!(
                    "{}; retry after {retry_after_secs} s",
                    reason.as_deref().unwrap_or("too many requests")
                ),
                None,
                Some(retry_after_secs),
            ),
            AppError::Unavailable {
                retry_after_secs,
                message,
            } => (message, None, Some(retry_after_secs)),
            AppError::Internal(cause) => {
                tracing::error!(error = ?cause, "internal error");
                ("internal server error".to_owned(), None, None)
            }
        };
        async_graphql::Error::new(message).extend_with(|_, ext| {
            ext.set("code", code);
            if let Some(field) = field {
                ext.set("field", field);
            }
            if let Some(secs) = retry_after {
                ext.set("retryAfter", Value::from(secs));
            }
        })
    }
}
