//! Argon2id password hashing at OWASP's parameters (19 MiB, 2 passes, 1 lane), run
//! on blocking threads with a bound on how many run at once, so a burst of logins
//! neither stalls the async runtime nor exhausts memory.

use std::sync::Arc;

use anyhow::Context as _;
use argon2::{
    Algorithm, Argon2, Params, Version,
    password_hash::{PasswordHasher as _, PasswordVerifier as _, phc::PasswordHash},
};
use tokio::sync::Semaphore;

#[derive(Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    /// A hash of a random password, verified against when the account does not
    /// exist, so an unknown user costs the same time as a wrong password.
    decoy: Arc<str>,
}

fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("OWASP parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

impl PasswordHasher {
    pub async fn new(concurrency: usize) -> anyhow::Result<Self> {
        let permits = Arc::new(Semaphore::new(concurrency.max(1)));
        let random: [u8; 16] = rand::random();
        let decoy = hash_blocking(&permits, hex::encode(random)).await?;
        Ok(Self {
            permits,
            decoy: decoy.into(),
        })
    }

    pub async fn hash(&self, password: &str) -> anyhow::Result<String> {
        hash_blocking(&self.permits, password.to_owned()).await
    }

    /// Checks `password` against `hash`, or against the decoy when there is no
    /// hash (unknown user, or an account without a password); false in that case.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> anyhow::Result<bool> {
        let real = hash.is_some();
        let hash = hash.unwrap_or(&self.decoy).to_owned();
        let password = password.to_owned();
        let _permit = self.permits.acquire().await.context("hasher closed")?;
        let matches = tokio::task::spawn_blocking(move || -> anyhow::Result<bool> {
            let parsed = PasswordHash::new(&hash).context("stored password hash is malformed")?;
            Ok(argon2()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok())
        })
        .await
        .context("password verification panicked")??;
        Ok(real && matches)
    }
}

async fn hash_blocking(permits: &Semaphore, password: String) -> anyhow::Result<String> {
    let _permit = permits.acquire().await.context("hasher closed")?;
    tokio::task::spawn_blocking(move || {
        argon2()
            .hash_password(password.as_bytes())
            .map(|hash| hash.to_string())
            .map_err(|err| anyhow::anyhow!("hashing a password failed: {err}"))
    })
    .await
    .context("password hashing panicked")?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let hasher = PasswordHasher::new(2).await.unwrap();
        let hash = hasher.hash("correct horse").await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(hasher.verify("correct horse", Some(&hash)).await.unwrap());
        assert!(!hasher.verify("wrong horse", Some(&hash)).await.unwrap());
        assert!(!hasher.verify("correct horse", None).await.unwrap());
    }
}
