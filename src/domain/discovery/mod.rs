//! Discovery, the dating half: what each user wants recommended (their
//! preferences), their swipes, and their matches. Owns the `discovery_*`
//! columns of `users`, and the `swipes` and `matches` tables. Recommendations
//! themselves are `recommendations`.
//!
//! - A swipe is the latest of LIKE, SUPER_LIKE or PASS per (swiper, target). A
//!   PASS holds a candidate back for a cooldown (restarted by passing again); a
//!   LIKE may still turn into a PASS; a SUPER_LIKE, counted against the day's
//!   quota and shown to its target, is for good.
//! - Two likes make a match, exactly once: a swipe locks both users' rows first
//!   (as every change to a pair does), so the second like of a pair always sees
//!   the first; the pair's unique key is the last line of defence.
//! - A match opens the pair's direct conversation (the chat policy lets matched
//!   users message) and notifies both. Unmatching, or a block, ends it for good:
//!   the pair is never recommended or matched again and cannot message unless
//!   they are friends.
//! - Super likes are limited per rolling day, counted under the swiper's lock.
//!
//! Files:
//! - `preferences`: whom each user wants recommended, and the [`Profile`]
//!   discovery needs of a user (an adult age, a gender, a location).
//! - `swipes`: likes, super likes (a daily quota) and passes; two likes match.
//! - `matches`: listing, reading and ending matches.
//! - `recommendations`: whom discovery shows a viewer, in decks and pages.
//! - `index`: the listed users by map cell, which decks are dealt from.
//! - `compatibility`: distances, the score and the rank of a candidate.

use crate::domain::{chat::Chat, events::Events, outbox::Outbox, users};
use crate::infra::db::Db;

pub mod compatibility;
pub mod index;
mod matches;
mod preferences;
pub mod recommendations;
mod swipes;

pub use compatibility::AffinityKey;
pub use index::DiscoveryIndex;
pub use matches::{Match, announce_match_ended, forget_user, match_ended_by_deletion};
pub use preferences::{
    ADULT_AGE, GenderSet, MAX_AGE, MAX_DISTANCE_KM, PreferenceChanges, Preferences, Profile,
    check_age_range, check_distance, default_age_range, follow_birthdate, new_account_defaults,
};
pub use recommendations::Recommendations;
pub use swipes::{SwipeKind, SwipeOutcome};

#[derive(Clone)]
pub struct Discovery {
    db: Db,
    pubsub: Events,
    chat: Chat,
    super_likes_per_day: u32,
    /// Preferences live in users' rows: changed ones are forgotten here.
    profiles: users::Profiles,
    /// Likes and matches, for services outside kith.
    outbox: Outbox,
}

impl Discovery {
    pub fn new(
        db: Db,
        pubsub: Events,
        chat: Chat,
        super_likes_per_day: u32,
        profiles: users::Profiles,
        outbox: Outbox,
    ) -> Self {
        Self {
            profiles,
            db,
            pubsub,
            chat,
            super_likes_per_day,
            outbox,
        }
    }
}
