//! Finding users: by id (one, many, through the cache), by username, and by
//! search.

use std::collections::HashMap;

use entity::user;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
    sea_query::{Expr, ExprTrait, Func, LikeExpr},
};
use uuid::Uuid;

use crate::{
    error::{AppError, AppResult},
    infra::{cache::TwoLevelCache, db::Db},
};

pub async fn find(db: &Db, id: Uuid) -> AppResult<Option<user::Model>> {
    Ok(user::Entity::find_by_id(id).one(db).await?)
}

/// The user's row, locked for the rest of the transaction on PostgreSQL, so
/// writes that count or order what one user has (their photos, their ways
/// to sign in) run one after the other; SQLite's writers already do. A user
/// gone is `NOT_FOUND`.
pub async fn lock(db: &impl ConnectionTrait, id: Uuid) -> AppResult<user::Model> {
    let mut query = user::Entity::find_by_id(id);
    if db.get_database_backend() == DbBackend::Postgres {
        query = query.lock_exclusive();
    }
    query
        .one(db)
        .await?
        .ok_or_else(|| AppError::not_found("account not found"))
}

/// Users by id as lists and pages show them, through the two-level cache.
/// Whatever changes a user's row forgets it there after committing:
/// `updateProfile`, discovery preferences, friend counts (`Social`), last seen
/// (`Presence`) and account deletion (`Accounts`).
pub type Profiles = TwoLevelCache<user::Model>;

/// One user through the cache, as [`find_many_cached`] (`me`, `user(id)`),
/// waiting for no batch. The writer forgets the row before it answers, so a
/// viewer reads its own writes on the replica that made them; another replica
/// drops its copy when the invalidation reaches it, a few milliseconds later
/// (as for every cached row).
pub async fn find_cached(db: &Db, profiles: &Profiles, id: Uuid) -> AppResult<Option<user::Model>> {
    Ok(find_many_cached(db, profiles, &[id]).await?.remove(&id))
}

/// [`find_many`] through the cache. The password hash is never cached.
pub async fn find_many_cached(
    db: &Db,
    profiles: &Profiles,
    ids: &[Uuid],
) -> AppResult<HashMap<Uuid, user::Model>> {
    profiles
        .get_many_or_load(ids, |missing| async move {
            // From the primary: what is cached serves every replica for minutes,
            // so it must not be a lagging read replica's old row.
            let mut found = find_many(db.primary(), &missing).await?;
            for user in found.values_mut() {
                user.password_hash = None;
            }
            Ok(found)
        })
        .await
}

/// Users by id: one query for the whole batch, none for no ids.
pub async fn find_many(
    db: &impl sea_orm::ConnectionTrait,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, user::Model>, sea_orm::DbErr> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(user::Entity::find()
        .filter(user::Column::Id.is_in(ids.iter().copied()))
        .all(db)
        .await?
        .into_iter()
        .map(|user| (user.id, user))
        .collect())
}

pub async fn find_by_username(db: &Db, username: &str) -> AppResult<Option<user::Model>> {
    // No username holds a control character; PostgreSQL refuses a NUL in a
    // query outright.
    if username.chars().any(char::is_control) {
        return Ok(None);
    }
    Ok(user::Entity::find()
        .filter(user::Column::Username.eq(username.trim().to_ascii_lowercase()))
        .one(db)
        .await?)
}

/// Users whose username starts with, or whose display name contains, `query`
/// (case-insensitive), in username order after `after`, and meeting `shown`
/// when given: the caller's condition on whom the viewer may find (social's
/// `not_hidden_from` leaves out anyone who blocked them). Fetches `limit`
/// rows.
pub async fn search(
    db: &Db,
    query: &str,
    shown: Option<Condition>,
    after: Option<&str>,
    limit: u64,
) -> AppResult<Vec<user::Model>> {
    let needle = escape_like(&query.trim().to_lowercase());
    let matches = Condition::any()
        .add(user::Column::Username.like(LikeExpr::new(format!("{needle}%")).escape('\\')))
        .add(
            Expr::expr(Func::lower(Expr::col(user::Column::DisplayName)))
                .like(LikeExpr::new(format!("%{needle}%")).escape('\\')),
        );
    let mut select = user::Entity::find().filter(matches);
    if let Some(shown) = shown {
        select = select.filter(shown);
    }
    if let Some(after) = after {
        select = select.filter(user::Column::Username.gt(after));
    }
    Ok(select
        .order_by_asc(user::Column::Username)
        .limit(limit)
        .all(db)
        .await?)
}

/// `text` with LIKE's wildcards escaped by a backslash.
pub fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_wildcards_in_queries_are_literal() {
        assert_eq!(escape_like("50%_a\\"), "50\\%\\_a\\\\");
    }
}
