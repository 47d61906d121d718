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

/// The name a new account made by a provider's sign-in starts from: the
/// first hint that leaves at least 3 of `a-z 0-9 _ .` once lower-cased
/// (spaces and dashes become `_`, anything else is dropped), cut to 24 so
/// a suffix fits; `user` when none does.
pub fn username_base(hints: &[Option<&str>]) -> String {
    hints
        .iter()
        .flatten()
        .map(|hint| {
            let mut name: String = hint
                .trim()
                .chars()
                .filter_map(|c| match c.to_ascii_lowercase() {
                    c @ ('a'..='z' | '0'..='9' | '_' | '.') => Some(c),
                    ' ' | '-' => Some('_'),
                    _ => None,
                })
                .collect();
            name.truncate(24);
            name.trim_matches(|c| c == '_' || c == '.').to_owned()
        })
        .find(|name| name.len() >= 3)
        .unwrap_or_else(|| "user".to_owned())
}

/// Names to try for `base`, in order: the base itself (unless it is the
/// bare `user`), then the base with a random number.
pub fn username_candidates(base: &str, count: usize) -> Vec<String> {
    use rand::Rng;
    let mut rng = rand::rng();
    let plain = (base != "user").then(|| base.to_owned());
    // As many digits as the 32 a username may have leave room for (7 for a
    // base of 24), at most 9: every phone sign-up shares the base `user`, and
    // 1000..100000 ran out after ~99,000 of them (no account could be made).
    let digits = 31usize.saturating_sub(base.len()).clamp(4, 9) as u32;
    let end = 10u64.pow(digits);
    plain
        .into_iter()
        .chain(std::iter::repeat_with(|| {
            format!("{base}_{}", rng.random_range(1000..end))
        }))
        .take(count)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bases_come_from_the_first_usable_hint() {
        assert_eq!(
            username_base(&[Some("Vdk_Frost"), Some("Vladislav")]),
            "vdk_frost"
        );
        assert_eq!(
            username_base(&[None, Some("Mary-Jane Watson")]),
            "mary_jane_watson"
        );
        assert_eq!(username_base(&[Some("Владислав"), Some("Jo")]), "user");
        assert_eq!(username_base(&[Some("__ab__")]), "user");
        assert_eq!(username_base(&[Some(&"x".repeat(40))]).len(), 24);
        let candidates = username_candidates("alice", 3);
        assert_eq!(candidates[0], "alice");
        assert!(candidates[1].starts_with("alice_"));
        assert!(
            username_candidates("user", 2)
                .iter()
                .all(|c| c.starts_with("user_"))
        );
    }
}
