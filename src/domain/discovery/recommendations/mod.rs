//! Recommendations: whom discovery shows a viewer, best first, in pages that
//! never repeat or skip anyone.
//!
//! A first page builds a deck. The candidates come from the discovery index
//! (`discovery::index`: the listed users of the cells around the
//! viewer), checked in Rust against the viewer's limits (genders, distance,
//! birthdates, interests) and the candidate's own (age and gender ranges).
//! One SQL statement says how the viewer stands with others: whom they swiped
//! (a pass only counts during its cooldown; a match always follows the
//! viewer's like), who is blocked either way, and who swiped on them. Rust then
//! measures distances from the viewer's exact position to each candidate's
//! coarse one (their ~1 km cell's centre: the index holds nothing finer, so
//! the box, the limit, the score and the order cannot betray where in the
//! cell they are), scores (`compatibility`) and sorts, counting
//! mutual friends (from the cached friend lists of `social::graph`) only for
//! those who could still make the deck.
//!
//! The deck is kept in process, one per viewer (half an hour idle), and in
//! Redis when there is one (so the next page may land on any replica), and later
//! pages are read from it, checked again for swipes and blocks since: scores
//! that move meanwhile (someone comes online, someone likes the viewer) cannot
//! reorder pages already seen. A cursor whose deck is gone (expired, replaced
//! by a new first page, or made on another replica without Redis) goes on after its card in a
//! fresh deck: near its place, but no longer exactly.
//!
//! Dealing a deck is rate limited per viewer (`KITH_RATE_DECKS_PER_USER`),
//! here rather than in the resolver, because a made-up cursor deals one too:
//! fresh decks from moving positions are how a location is triangulated.
//!
//! Files: `limits` (the limits a deck is dealt with), `deck` (dealing and
//! ranking one), `standing` (whom swipes and blocks hide), `paging` (cursors,
//! and the decks kept for the pages after the first).

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use moka::sync::Cache;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::infra::db::Db;
use crate::infra::redis::Redis;
use crate::{
    domain::{
        discovery::{
            DiscoveryIndex, Preferences, Profile,
            compatibility::{self, AffinityKey, Parts},
        },
        presence::Presence,
        social::Graph,
        users::{self, Profiles},
    },
    error::{AppError, AppResult},
    infra::ratelimit::{Action, RateLimiter},
};

mod deck;
mod limits;
mod paging;
mod standing;

pub use limits::Filter;
use limits::Limits;
use paging::Cursor;

/// Decks kept at once, by their approximate size in bytes.
const DECK_CACHE_BYTES: u64 = 64 * 1024 * 1024;
const DECK_IDLE: Duration = Duration::from_secs(30 * 60);
/// How old a candidate's online status may be when ranking. A deck is kept
/// for half an hour, so its activity part is a snapshot anyway; a few seconds
/// more spare the shared presence store a read per candidate on every deck
/// (about a thousand), which with Redis was half of a deck's cost.
const ONLINE_STALE: Duration = Duration::from_secs(5);
/// Candidates' online statuses kept for ranking at once.
const ONLINE_KEPT: u64 = 200_000;
/// The most cards one deck holds: the best of its pool. Paging past them ends
/// the list; asking again deals a fresh deck without whoever was swiped.
const DECK_SIZE: usize = 200;
const MAX_POOL: u64 = 10_000;
/// About what one card takes in memory, without its interests.
const CARD_BYTES: usize = 160;

/// One recommended user and why.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Card {
    pub user_id: Uuid,
    /// Rounded, to a coarse cell of the candidate's location.
    pub distance_km: i32,
    pub parts: Parts,
    /// The shown score (the shown parts alone).
    pub score: f64,
    /// What the deck is ordered by; never shown (see `compatibility`).
    rank: f64,
    pub common_interests: Vec<String>,
    pub mutual_friends: i64,
    /// Super likes are meant to be seen; plain likes are not.
    pub super_liked_viewer: bool,
}

impl Card {
    /// Roughly what the card takes in memory.
    fn bytes(&self) -> usize {
        CARD_BYTES
            + self
                .common_interests
                .iter()
                .map(|tag| tag.len() + 24)
                .sum::<usize>()
    }
}

#[derive(Serialize, Deserialize)]
struct Deck {
    id: Uuid,
    limits: Limits,
    cards: Vec<Card>,
}

/// The viewer, as a deck is dealt to them.
struct Seeker {
    id: Uuid,
    profile: Profile,
    interests: compatibility::Interests,
    friend_count: i64,
}

/// What one call asks for.
pub struct Request {
    pub use_preferences: bool,
    pub filter: Filter,
    pub first: usize,
    /// The key inside the `after` cursor.
    pub after: Option<String>,
}

/// A page of cards, each with its cursor.
pub struct Page {
    pub cards: Vec<(String, Card)>,
    pub has_next: bool,
}

#[derive(Clone)]
pub struct Recommendations {
    db: Db,
    /// The viewer's own row.
    profiles: Profiles,
    /// Whom discovery may show, by map cell.
    index: DiscoveryIndex,
    presence: Presence,
    /// Whether candidates were online (or away) a moment ago, for ranking.
    online: Cache<Uuid, bool>,
    /// Friend lists, for the mutual friends of the candidates.
    graph: Graph,
    /// Each viewer's current deck.
    decks: Cache<Uuid, Arc<Deck>>,
    /// With Redis, decks are kept there too: a cursor goes on exactly on
    /// whichever replica its next page lands.
    shared: Option<Redis>,
    affinity: AffinityKey,
    /// Most candidates one deck weighs.
    pool: u64,
    pass_cooldown: chrono::Duration,
    /// Counts the decks each viewer is dealt.
    limiter: RateLimiter,
}

impl Recommendations {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        db: Db,
        profiles: Profiles,
        index: DiscoveryIndex,
        presence: Presence,
        graph: Graph,
        affinity: AffinityKey,
        pool: u64,
        pass_cooldown: Duration,
        shared: Option<&Redis>,
        limiter: RateLimiter,
    ) -> Self {
        let decks = Cache::builder()
            .max_capacity(DECK_CACHE_BYTES)
            .weigher(|_, deck: &Arc<Deck>| {
                u32::try_from(deck.cards.iter().map(Card::bytes).sum::<usize>()).unwrap_or(u32::MAX)
            })
            .time_to_idle(DECK_IDLE)
            .build();
        Self {
            db,
            profiles,
            index,
            presence,
            online: Cache::builder()
                .max_capacity(ONLINE_KEPT)
                .time_to_live(ONLINE_STALE)
                .build(),
            graph,
            decks,
            shared: shared.cloned(),
            affinity,
            // Each of the pool may be bound as a parameter: stay well inside
            // the databases' limits.
            pool: pool.clamp(1, MAX_POOL),
            pass_cooldown: chrono::Duration::from_std(pass_cooldown)
                .unwrap_or(chrono::Duration::MAX),
            limiter,
        }
    }

    pub async fn page(&self, viewer: Uuid, request: Request) -> AppResult<Page> {
        let now = Utc::now();
        let viewer_row = users::find_cached(&self.db, &self.profiles, viewer)
            .await?
            .ok_or_else(|| AppError::not_found("account not found"))?;
        let profile = Profile::of_viewer(&viewer_row, now.date_naive())?;
        let limits = Limits::resolve(
            Preferences::of(&viewer_row),
            request.use_preferences,
            &request.filter,
        )?;
        let seeker = Seeker {
            id: viewer,
            profile,
            interests: compatibility::Interests::new(users::interests_of(&viewer_row.interests)),
            friend_count: viewer_row.friend_count,
        };
        let cursor = request.after.as_deref().map(Cursor::parse).transpose()?;
        let kept = match &cursor {
            Some(cursor) => self.kept_deck(viewer, cursor.deck).await,
            None => None,
        }
        .filter(|deck| deck.limits == limits);
        let (deck, start, fresh) = match (cursor, kept) {
            (Some(cursor), Some(deck)) => (deck, cursor.position.saturating_add(1), false),
            (cursor, _) => {
                self.limiter
                    .check(Action::DeckPerUser, &viewer.to_string())
                    .await?;
                let deck = self.build_deck(&seeker, limits, now).await?;
                // Going on from a deck that is gone: after its card, or at its
                // place when that card is no longer there.
                let start = cursor.map_or(0, |cursor| {
                    deck.cards
                        .iter()
                        .position(|card| card.user_id == cursor.user_id)
                        .map_or(cursor.position, |found| found + 1)
                });
                self.keep_deck(viewer, deck.clone()).await;
                (deck, start, true)
            }
        };

        // Enough cards still open for the page and one more (to know whether
        // another page follows); a kept deck's are checked again, in chunks.
        let first = request.first;
        let mut shown: Vec<(usize, &Card)> = Vec::with_capacity(first + 1);
        let mut position = start.min(deck.cards.len());
        while shown.len() <= first && position < deck.cards.len() {
            let end = (position + first + 1 - shown.len()).min(deck.cards.len());
            let chunk = &deck.cards[position..end];
            let open = if fresh {
                None
            } else {
                let ids: Vec<Uuid> = chunk.iter().map(|card| card.user_id).collect();
                Some(self.still_open(viewer, &ids, now).await?)
            };
            for (offset, card) in chunk.iter().enumerate() {
                if open
                    .as_ref()
                    .is_none_or(|open| open.contains(&card.user_id))
                {
                    shown.push((position + offset, card));
                }
            }
            position = end;
        }
        let has_next = shown.len() > first;
        shown.truncate(first);
        Ok(Page {
            cards: shown
                .into_iter()
                .map(|(position, card)| {
                    let cursor = Cursor {
                        deck: deck.id,
                        position,
                        user_id: card.user_id,
                    };
                    (cursor.encode(), card.clone())
                })
                .collect(),
            has_next,
        })
    }
}
