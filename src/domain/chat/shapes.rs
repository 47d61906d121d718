//! What a send needs of its conversation, kept in memory: whether it is DIRECT
//! or GROUP, and a direct one's pair. That shape never changes once the
//! conversation exists, except that a deleted account's side is cleared (and a
//! group's conversation goes with the group). A send never trusts a kept shape
//! for those: it share-locks both users and finds one gone, and its numbering
//! finds no conversation or no participant. So a shape is kept without
//! invalidation, on every replica alike, and a send reads one row fewer (one
//! round trip of the five it had on PostgreSQL).

use std::time::Duration;

use entity::conversation;
use moka::sync::Cache;
use uuid::Uuid;

use super::Kind;

/// Conversations kept: about 100 bytes each, so a few MiB at most.
const KEPT: u64 = 50_000;
/// Conversations nobody sends in for this long make room for others.
const IDLE: Duration = Duration::from_secs(600);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    pub kind: Kind,
    /// A direct conversation's two users; `None` for a side whose account is gone.
    pub pair: [Option<Uuid>; 2],
}

impl Shape {
    pub fn of(conversation: &conversation::Model) -> Self {
        Self {
            kind: Kind::of(conversation),
            pair: [conversation.direct_low, conversation.direct_high],
        }
    }

    /// Whom `sender`'s direct message goes to: the pair's other side, if there
    /// still is one. `None` for a group's conversation too.
    pub fn recipient(&self, sender: Uuid) -> Option<Uuid> {
        if self.kind != Kind::Direct {
            return None;
        }
        self.pair.into_iter().flatten().find(|id| *id != sender)
    }
}

/// Shapes by conversation id. Only conversations found are kept: one created
/// a moment ago (or on a lagging replica's view) is looked up again next time.
#[derive(Clone)]
pub struct Shapes(Cache<Uuid, Shape>);

impl Default for Shapes {
    fn default() -> Self {
        Self(
            Cache::builder()
                .max_capacity(KEPT)
                .time_to_idle(IDLE)
                .build(),
        )
    }
}

impl Shapes {
    pub fn get(&self, conversation_id: Uuid) -> Option<Shape> {
        self.0.get(&conversation_id)
    }

    pub fn keep(&self, conversation: &conversation::Model) -> Shape {
        let shape = Shape::of(conversation);
        self.0.insert(conversation.id, shape);
        shape
    }
}
