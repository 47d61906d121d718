//! A Bloom filter of every taken username, loaded from the database at start and
//! kept current on register, so `usernameAvailable` answers "certainly free" from
//! memory and asks the database only when the name may be taken.

use std::sync::{Arc, RwLock};

use bloomfilter::Bloom;
use entity::user;
use futures_util::TryStreamExt;
use sea_orm::{DatabaseConnection, EntityTrait, QuerySelect};

/// False positives stay near 1% up to this many names; past it they grow
/// gradually, and a positive is always confirmed in the database anyway.
const EXPECTED_USERNAMES: usize = 2_000_000;
const FALSE_POSITIVE_RATE: f64 = 0.01;

#[derive(Clone)]
pub struct UsernameFilter {
    bloom: Arc<RwLock<Bloom<str>>>,
}

impl UsernameFilter {
    pub async fn load(db: &DatabaseConnection) -> anyhow::Result<Self> {
        let mut bloom = Bloom::new_for_fp_rate(EXPECTED_USERNAMES, FALSE_POSITIVE_RATE)
            .map_err(|err| anyhow::anyhow!("sizing the username filter: {err}"))?;
        let mut names = user::Entity::find()
            .select_only()
            .column(user::Column::Username)
            .into_tuple::<String>()
            .stream(db)
            .await?;
        while let Some(name) = names.try_next().await? {
            bloom.set(name.as_str());
        }
        Ok(Self {
            bloom: Arc::new(RwLock::new(bloom)),
        })
    }

    pub fn insert(&self, username: &str) {
        self.bloom
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .set(username);
    }

    /// False means the name is certainly free; true means it may be taken.
    pub fn may_be_taken(&self, username: &str) -> bool {
        self.bloom
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .check(username)
    }
}
