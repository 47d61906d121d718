//! Relay connection arguments: `first` (default 20, at most 100) and an opaque
//! `after` cursor that wraps the keyset key of the last row seen.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

use uuid::Uuid;

use crate::error::{AppError, AppResult};

pub const DEFAULT_PAGE: usize = 20;
pub const MAX_PAGE: usize = 100;

/// A forward page request: how many, after which key.
pub struct Page {
    pub first: usize,
    pub after: Option<String>,
}

impl Page {
    pub fn forward(first: Option<i32>, after: Option<String>) -> AppResult<Self> {
        let first = page_size(first, "first")?;
        let after = after
            .map(|cursor| decode_cursor(&cursor, "after"))
            .transpose()?;
        Ok(Self { first, after })
    }

    /// The `after` cursor of a list keyed by id.
    pub fn after_uuid(&self) -> AppResult<Option<Uuid>> {
        self.after
            .as_deref()
            .map(|cursor| Uuid::try_parse(cursor).map_err(|_| not_a_cursor()))
            .transpose()
    }

    /// Rows to fetch: one more than the page, to learn whether another follows.
    pub fn fetch_limit(&self) -> u64 {
        self.first as u64 + 1
    }
}

pub fn encode_cursor(key: &str) -> String {
    URL_SAFE_NO_PAD.encode(key)
}

/// A page size argument (`first`, or `last` for lists that page back): default
/// 20, at most 100.
pub fn page_size(value: Option<i32>, field: &'static str) -> AppResult<usize> {
    match value {
        None => Ok(DEFAULT_PAGE),
        Some(n) if (0..=MAX_PAGE as i32).contains(&n) => Ok(n as usize),
        Some(_) => Err(AppError::bad_input(
            field,
            format!("{field} must be between 0 and {MAX_PAGE}"),
        )),
    }
}

/// The key inside a cursor given as `field` (`after`, or `before`). No key
/// of ours holds a control character, and one with a NUL would reach the
/// database's comparison, which PostgreSQL refuses outright.
pub fn decode_cursor(cursor: &str, field: &'static str) -> AppResult<String> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .filter(|key| !key.chars().any(char::is_control))
        .ok_or_else(|| {
            AppError::bad_input(field, format!("{field} is not a cursor from this list"))
        })
}

pub fn not_a_cursor() -> AppError {
    AppError::bad_input("after", "after is not a cursor from this list")
}

/// The most one field may cost, so that costs far over any limit still add
/// up without overflowing in async-graphql's sum.
const COST_CEILING: usize = u32::MAX as usize;

/// What a paged list field costs (`#[graphql(complexity = …)]`): one, plus its
/// children once per item the page may hold, so nested connections multiply
/// as the objects they build do. A `first` out of range costs nothing here:
/// the resolver refuses it.
pub fn cost(first: Option<i32>, child_complexity: usize) -> usize {
    let items = match first {
        None => DEFAULT_PAGE,
        Some(n) => usize::try_from(n).unwrap_or(0).min(MAX_PAGE),
    };
    list_cost(items, child_complexity)
}

/// What a list of at most `items` costs. Each item costs at least 1 even
/// when only `__typename` is asked of it (which async-graphql weighs 0): the
/// item is still loaded and answered.
pub fn list_cost(items: usize, child_complexity: usize) -> usize {
    items
        .saturating_mul(child_complexity.max(1))
        .saturating_add(1)
        .min(COST_CEILING)
}
