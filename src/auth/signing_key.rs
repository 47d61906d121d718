//! The key access tokens are signed with: the configured one, or else one the
//! server generates once and keeps in the database, so restarts and every replica
//! on the same database agree without anyone configuring it.

use chrono::Utc;
use entity::server_secret;
use sea_orm::{ActiveValue::Set, DatabaseConnection, EntityTrait};

const JWT_SECRET: &str = "jwt_secret";

pub async fn load_or_create(
    db: &DatabaseConnection,
    configured: Option<&str>,
) -> anyhow::Result<Vec<u8>> {
    if let Some(secret) = configured.filter(|s| !s.is_empty()) {
        if secret.len() < 32 {
            anyhow::bail!("KITH_JWT_SECRET must be at least 32 characters");
        }
        return Ok(secret.as_bytes().to_vec());
    }
    let candidate: [u8; 64] = rand::random();
    // Insert-if-absent, then read: of replicas starting together, one key wins
    // and all of them read that one.
    server_secret::Entity::insert(server_secret::ActiveModel {
        name: Set(JWT_SECRET.into()),
        value: Set(hex::encode(candidate)),
        created_at: Set(Utc::now()),
    })
    .on_conflict_do_nothing()
    .exec_without_returning(db)
    .await?;
    let stored = server_secret::Entity::find_by_id(JWT_SECRET)
        .one(db)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the generated JWT secret was not stored"))?;
    tracing::warn!(
        "KITH_JWT_SECRET is not set: using the signing key generated and stored in the database; \
         set KITH_JWT_SECRET to manage it yourself"
    );
    Ok(hex::decode(stored.value)?)
}
