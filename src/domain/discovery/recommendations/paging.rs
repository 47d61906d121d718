//! Paging: where a page ended (the cursor), and the decks later pages are
//! read from, kept in process and in Redis.

use std::sync::Arc;

use uuid::Uuid;

use super::{DECK_IDLE, Deck, Recommendations};
use crate::error::{AppError, AppResult};

/// Where a page ended: the deck, the position in it, and the card's user (to
/// find the place again when the deck is gone). Nothing in it is secret: the
/// rank a deck is ordered by stays in the deck.
pub(super) struct Cursor {
    pub(super) deck: Uuid,
    pub(super) position: usize,
    pub(super) user_id: Uuid,
}

impl Cursor {
    pub(super) fn encode(&self) -> String {
        format!(
            "{}:{}:{}",
            self.deck.simple(),
            self.position,
            self.user_id.simple()
        )
    }

    pub(super) fn parse(key: &str) -> AppResult<Self> {
        let mut parts = key.split(':');
        let mut next = || parts.next().ok_or_else(not_a_cursor);
        let deck = Uuid::try_parse(next()?).map_err(|_| not_a_cursor())?;
        let position = next()?.parse().map_err(|_| not_a_cursor())?;
        let user_id = Uuid::try_parse(next()?).map_err(|_| not_a_cursor())?;
        Ok(Self {
            deck,
            position,
            user_id,
        })
    }
}

fn not_a_cursor() -> AppError {
    AppError::bad_input("after", "after is not a cursor from this list")
}

impl Recommendations {
    /// The viewer's deck `id`: this replica's, or the one another replica
    /// dealt (kept in Redis).
    pub(super) async fn kept_deck(&self, viewer: Uuid, id: Uuid) -> Option<Arc<Deck>> {
        if let Some(deck) = self.decks.get(&viewer).filter(|deck| deck.id == id) {
            return Some(deck);
        }
        let redis = self.shared.as_ref().filter(|r| r.is_up())?;
        let mut connection = redis.connection();
        // Read, and kept as long again: the deck lives while it is used.
        let mut get = redis::cmd("GETEX");
        get.arg(redis.key(&format!("deck:{viewer}")))
            .arg("PX")
            .arg(DECK_IDLE.as_millis() as u64);
        let bytes = redis
            .within(get.query_async::<Option<Vec<u8>>>(&mut connection))
            .await
            .ok()??;
        let deck: Deck = serde_json::from_slice(&bytes).ok()?;
        if deck.id != id {
            return None;
        }
        let deck = Arc::new(deck);
        self.decks.insert(viewer, deck.clone());
        Some(deck)
    }

    /// Keeps the viewer's new deck here, and in Redis for the other replicas.
    pub(super) async fn keep_deck(&self, viewer: Uuid, deck: Arc<Deck>) {
        self.decks.insert(viewer, deck.clone());
        let Some(redis) = self.shared.as_ref().filter(|r| r.is_up()) else {
            return;
        };
        let Ok(bytes) = serde_json::to_vec(&*deck) else {
            return;
        };
        let mut connection = redis.connection();
        let mut set = redis::cmd("SET");
        set.arg(redis.key(&format!("deck:{viewer}")))
            .arg(bytes)
            .arg("PX")
            .arg(DECK_IDLE.as_millis() as u64);
        let _ = redis.within(set.exec_async(&mut connection)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip() {
        let cursor = Cursor {
            deck: Uuid::now_v7(),
            position: 41,
            user_id: Uuid::now_v7(),
        };
        let parsed = Cursor::parse(&cursor.encode()).unwrap();
        assert_eq!(parsed.deck, cursor.deck);
        assert_eq!(parsed.position, 41);
        assert_eq!(parsed.user_id, cursor.user_id);
        assert!(Cursor::parse("nonsense").is_err());
    }
}
