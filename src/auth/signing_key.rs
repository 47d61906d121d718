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
        check_strength(secret)?;
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

/// Words that mark a secret copied from an example rather than generated.
const PLACEHOLDER_MARKERS: [&str; 6] = [
    "change",
    "replace",
    "placeholder",
    "example",
    "your-secret",
    "xxxxxxxx",
];
/// `openssl rand -base64 48` uses about 40 of its 64 letters; a passphrase
/// made of a few repeated words uses a dozen at most.
const MIN_DISTINCT_CHARACTERS: usize = 16;

/// Refuses a configured key that anyone could guess: too short, left as the
/// placeholder some file shipped, or a pattern rather than random. A token
/// signed with a published placeholder was once honoured for ten years.
fn check_strength(secret: &str) -> anyhow::Result<()> {
    if secret.len() < 32 {
        anyhow::bail!("KITH_JWT_SECRET must be at least 32 characters");
    }
    let lower = secret.to_ascii_lowercase();
    if let Some(marker) = PLACEHOLDER_MARKERS.iter().find(|m| lower.contains(*m)) {
        anyhow::bail!(
            "KITH_JWT_SECRET looks like a placeholder (it contains {marker:?}): generate one \
             with `openssl rand -base64 48`, or unset it to have kith generate and keep one"
        );
    }
    let mut distinct: Vec<char> = secret.chars().collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < MIN_DISTINCT_CHARACTERS {
        anyhow::bail!(
            "KITH_JWT_SECRET uses only {} different characters: generate a random one with \
             `openssl rand -base64 48`",
            distinct.len()
        );
    }
    Ok(())
}

/// A key for one purpose, derived from the server's secret: what one
/// purpose signs or hashes can never pass for another's, and every replica
/// derives the same key.
pub fn derive_key(secret: &[u8], purpose: &str) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::new()
        .chain_update(purpose.as_bytes())
        .chain_update([0])
        .chain_update(secret)
        .finalize()
        .into()
}

#[cfg(test)]
mod tests {
    use super::{check_strength, derive_key};

    #[test]
    fn guessable_keys_are_refused_and_random_ones_accepted() {
        for weak in [
            "short",
            "change-me-to-a-long-random-secret-of-32+chars",
            "REPLACE_ME_WITH_32_OR_MORE_RANDOM_CHARACTERS",
            "secretsecretsecretsecretsecretsecret",
            "abababababababababababababababababab",
        ] {
            assert!(check_strength(weak).is_err(), "{weak}");
        }
        assert!(check_strength("q7Vd0pXn3LwZ+eJr9sT2yKb5hMf8uCa1GiO4Nl6Ex").is_ok());
    }

    #[test]
    fn a_derived_key_is_the_hash_of_purpose_nul_and_secret() {
        use sha2::{Digest, Sha256};
        // The construction media URLs and discovery affinity used before
        // they called this: the same bytes, so URLs handed out before an
        // upgrade still verify after it.
        let before: [u8; 32] = Sha256::new()
            .chain_update(b"kith media urls\0a server secret")
            .finalize()
            .into();
        assert_eq!(derive_key(b"a server secret", "kith media urls"), before);
        assert_ne!(
            derive_key(b"a server secret", "kith sms codes"),
            derive_key(b"a server secret", "kith media urls")
        );
    }
}
