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

use chrono::{DateTime, Duration, NaiveDate, Utc};
use entity::{swipe, user, user_match};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    Select, TransactionTrait,
    sea_query::{Expr, ExprTrait, OnConflict},
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::infra::db::Db;
use crate::{
    domain::events::{Event, Events, user_topic},
    domain::{
        chat::Chat,
        social,
        users::{self, Gender},
    },
    error::{AppError, AppResult, is_unique_violation},
};

/// Nobody younger is recommended, recommended to, or may swipe.
pub const ADULT_AGE: i32 = 18;
pub const MAX_AGE: i32 = 99;
pub const MAX_DISTANCE_KM: i32 = 300;
const DEFAULT_DISTANCE_KM: i32 = 50;
/// A new account's age range reaches this far either side of its own age.
const DEFAULT_AGE_SPREAD: i32 = 10;

/// A set of genders, stored as bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct GenderSet(i32);

impl GenderSet {
    pub const ALL: Self = Self(0b111);

    pub fn bit(gender: Gender) -> i32 {
        match gender {
            Gender::Female => 1,
            Gender::Male => 2,
            Gender::Nonbinary => 4,
        }
    }

    pub fn from_stored(bits: i32) -> Self {
        Self(bits & Self::ALL.0)
    }

    pub fn of(genders: &[Gender]) -> Self {
        Self(genders.iter().fold(0, |bits, g| bits | Self::bit(*g)))
    }

    /// The genders a user asked for (`genders`): at least one.
    pub fn chosen(genders: &[Gender]) -> AppResult<Self> {
        if genders.is_empty() {
            return Err(AppError::bad_input(
                "genders",
                "genders must name at least one gender",
            ));
        }
        Ok(Self::of(genders))
    }

    pub fn bits(self) -> i32 {
        self.0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The bit of each gender in the set, without allocating.
    pub fn each_bit(self) -> impl Iterator<Item = i32> {
        self.members().map(Self::bit)
    }

    pub fn genders(self) -> Vec<Gender> {
        self.members().collect()
    }

    fn members(self) -> impl Iterator<Item = Gender> {
        [Gender::Female, Gender::Male, Gender::Nonbinary]
            .into_iter()
            .filter(move |g| self.0 & Self::bit(*g) != 0)
    }
}

/// Whom a user wants recommended; the same limits decide whom they are
/// recommended to (their age and gender ranges).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Preferences {
    pub min_age: i32,
    pub max_age: i32,
    pub genders: GenderSet,
    pub max_distance_km: i32,
    pub discoverable: bool,
}

impl Preferences {
    pub fn of(user: &user::Model) -> Self {
        Self {
            min_age: user.discovery_min_age,
            max_age: user.discovery_max_age,
            genders: GenderSet::from_stored(user.discovery_genders),
            max_distance_km: user.discovery_max_distance_km,
            discoverable: user.discoverable,
        }
    }
}

/// A preferences update; `None` keeps the current value.
#[derive(Default)]
pub struct PreferenceChanges {
    pub min_age: Option<i32>,
    pub max_age: Option<i32>,
    pub genders: Option<Vec<Gender>>,
    pub max_distance_km: Option<i32>,
    pub discoverable: Option<bool>,
}

/// Checks an age range (`minAge` ≤ `maxAge`, both within 18–99).
pub fn check_age_range(min_age: i32, max_age: i32) -> AppResult<()> {
    for (field, age) in [("minAge", min_age), ("maxAge", max_age)] {
        if !(ADULT_AGE..=MAX_AGE).contains(&age) {
            return Err(AppError::bad_input(
                field,
                format!("{field} must be between {ADULT_AGE} and {MAX_AGE}"),
            ));
        }
    }
    if min_age > max_age {
        return Err(AppError::bad_input(
            "maxAge",
            "maxAge must not be below minAge",
        ));
    }
    Ok(())
}

pub fn check_distance(max_distance_km: i32) -> AppResult<()> {
    if !(1..=MAX_DISTANCE_KM).contains(&max_distance_km) {
        return Err(AppError::bad_input(
            "maxDistanceKm",
            format!("maxDistanceKm must be between 1 and {MAX_DISTANCE_KM}"),
        ));
    }
    Ok(())
}

/// The age range an account starts with once its birthdate is known: ten
/// years either side of its own age, never below 18.
pub fn default_age_range(age: i32) -> (i32, i32) {
    (
        (age - DEFAULT_AGE_SPREAD).clamp(ADULT_AGE, MAX_AGE),
        (age + DEFAULT_AGE_SPREAD).clamp(ADULT_AGE, MAX_AGE),
    )
}

/// The discovery columns of a new account: discoverable, every gender, 50 km,
/// and an age range around its own age when its birthdate is known.
pub fn new_account_defaults(birthdate: Option<NaiveDate>, today: NaiveDate) -> user::ActiveModel {
    let (min_age, max_age) = birthdate
        .map(|born| default_age_range(users::age_on(born, today)))
        .unwrap_or((ADULT_AGE, MAX_AGE));
    user::ActiveModel {
        discoverable: Set(true),
        discovery_min_age: Set(min_age),
        discovery_max_age: Set(max_age),
        discovery_genders: Set(GenderSet::ALL.bits()),
        discovery_max_distance_km: Set(DEFAULT_DISTANCE_KM),
        discovery_updated_at: Set(None),
        ..Default::default()
    }
}

/// A new birthdate moves the age range with it, until the user chose one.
pub async fn follow_birthdate(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    birthdate: NaiveDate,
    today: NaiveDate,
) -> AppResult<()> {
    let (min_age, max_age) = default_age_range(users::age_on(birthdate, today));
    user::Entity::update_many()
        .col_expr(user::Column::DiscoveryMinAge, Expr::value(min_age))
        .col_expr(user::Column::DiscoveryMaxAge, Expr::value(max_age))
        .filter(user::Column::Id.eq(user_id))
        .filter(user::Column::DiscoveryUpdatedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// What discovery needs of a user to recommend them or to them: an adult age,
/// a gender and a location.
#[derive(Clone, Copy, Debug)]
pub struct Profile {
    pub age: i32,
    pub gender: Gender,
    pub latitude: f64,
    pub longitude: f64,
}

impl Profile {
    pub fn of(user: &user::Model, today: NaiveDate) -> Option<Self> {
        let age = users::age_on(user.birthdate?, today);
        Some(Self {
            age,
            gender: Gender::from_stored(user.gender.as_deref()?)?,
            latitude: user.latitude?,
            longitude: user.longitude?,
        })
        .filter(|profile| profile.age >= ADULT_AGE)
    }

    /// The viewer's own profile: `FORBIDDEN`, saying what is missing, until it
    /// is complete.
    pub fn of_viewer(user: &user::Model, today: NaiveDate) -> AppResult<Self> {
        if let Some(profile) = Self::of(user, today) {
            return Ok(profile);
        }
        let mut missing = Vec::new();
        if user.birthdate.is_none() {
            missing.push("birthdate");
        }
        if user.gender.is_none() {
            missing.push("gender");
        }
        if user.latitude.is_none() || user.longitude.is_none() {
            missing.push("location");
        }
        if missing.is_empty() {
            return Err(AppError::forbidden(format!(
                "discovery is for adults ({ADULT_AGE} and over)"
            )));
        }
        Err(AppError::forbidden(format!(
            "add your {} with updateProfile to use discovery",
            missing.join(", ")
        )))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SwipeKind {
    Like,
    SuperLike,
    Pass,
}

impl SwipeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Like => "LIKE",
            Self::SuperLike => "SUPER_LIKE",
            Self::Pass => "PASS",
        }
    }

    pub fn from_stored(value: &str) -> Self {
        match value {
            "LIKE" => Self::Like,
            "SUPER_LIKE" => Self::SuperLike,
            _ => Self::Pass,
        }
    }

    pub fn likes(self) -> bool {
        self != Self::Pass
    }
}

/// A match as its users and subscribers see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Match {
    pub id: Uuid,
    pub user_low: Uuid,
    pub user_high: Uuid,
    pub created_at: DateTime<Utc>,
}

impl Match {
    /// The other user of the pair, as `viewer` sees it.
    pub fn other(&self, viewer: Uuid) -> Uuid {
        if self.user_low == viewer {
            self.user_high
        } else {
            self.user_low
        }
    }
}

impl From<user_match::Model> for Match {
    fn from(row: user_match::Model) -> Self {
        Self {
            id: row.id,
            user_low: row.user_low,
            user_high: row.user_high,
            created_at: row.created_at,
        }
    }
}

/// What a swipe came to.
pub struct SwipeOutcome {
    /// The pair's match, when there is one (new or from before).
    pub matched: Option<Match>,
    /// Super likes left in the rolling day, after a super like.
    pub super_likes_left: Option<u32>,
}

#[derive(Clone)]
pub struct Discovery {
    db: Db,
    pubsub: Events,
    chat: Chat,
    super_likes_per_day: u32,
    /// Preferences live in users' rows: changed ones are forgotten here.
    profiles: users::Profiles,
}

impl Discovery {
    pub fn new(
        db: Db,
        pubsub: Events,
        chat: Chat,
        super_likes_per_day: u32,
        profiles: users::Profiles,
    ) -> Self {
        Self {
            profiles,
            db,
            pubsub,
            chat,
            super_likes_per_day,
        }
    }

    pub async fn update_preferences(
        &self,
        viewer: Uuid,
        changes: PreferenceChanges,
    ) -> AppResult<Preferences> {
        let txn = self.db.begin().await?;
        // Two updates at once: the second reads what the first wrote.
        social::lock_user(&txn, viewer).await?;
        let current = user::Entity::find_by_id(viewer)
            .one(&txn)
            .await?
            .ok_or_else(|| AppError::not_found("account not found"))?;
        let current = Preferences::of(&current);
        let genders = match changes.genders {
            Some(genders) => GenderSet::chosen(&genders)?,
            None => current.genders,
        };
        let wanted = Preferences {
            min_age: changes.min_age.unwrap_or(current.min_age),
            max_age: changes.max_age.unwrap_or(current.max_age),
            genders,
            max_distance_km: changes.max_distance_km.unwrap_or(current.max_distance_km),
            discoverable: changes.discoverable.unwrap_or(current.discoverable),
        };
        check_age_range(wanted.min_age, wanted.max_age)?;
        check_distance(wanted.max_distance_km)?;
        user::Entity::update(user::ActiveModel {
            id: Set(viewer),
            discovery_min_age: Set(wanted.min_age),
            discovery_max_age: Set(wanted.max_age),
            discovery_genders: Set(wanted.genders.bits()),
            discovery_max_distance_km: Set(wanted.max_distance_km),
            discoverable: Set(wanted.discoverable),
            discovery_updated_at: Set(Some(Utc::now())),
            ..Default::default()
        })
        .exec(&txn)
        .await?;
        txn.commit().await?;
        self.profiles.invalidate(&[viewer]).await;
        Ok(wanted)
    }

    /// Likes, super-likes or passes `target`. A like of someone who liked the
    /// viewer makes the match (or answers the one they have).
    pub async fn swipe(
        &self,
        viewer: Uuid,
        target: Uuid,
        kind: SwipeKind,
    ) -> AppResult<SwipeOutcome> {
        if viewer == target {
            return Err(AppError::bad_input("userId", "you cannot swipe yourself"));
        }
        let now = Utc::now();
        let today = now.date_naive();
        let txn = self.db.begin().await?;
        social::lock_pair(&txn, viewer, target).await?;
        social::check_reachable(&txn, viewer, target, social::OwnBlock::Refuse).await?;
        let pair = user::Entity::find()
            .filter(user::Column::Id.is_in([viewer, target]))
            .all(&txn)
            .await?;
        let viewer_row = pair
            .iter()
            .find(|u| u.id == viewer)
            .ok_or_else(|| AppError::not_found("account not found"))?;
        let target_row = pair
            .iter()
            .find(|u| u.id == target)
            .ok_or_else(|| AppError::not_found("user not found"))?;
        Profile::of_viewer(viewer_row, today)?;

        let (low, high) = social::ordered(viewer, target);
        let earlier_match = match_of_pair(viewer, target).one(&txn).await?;
        if let Some(earlier) = earlier_match {
            // Matched (or unmatched) pairs are settled: liking again changes
            // nothing, passing is what unmatching is for.
            if kind == SwipeKind::Pass && earlier.unmatched_at.is_none() {
                return Err(AppError::conflict(
                    "userId",
                    "you matched with this user; unmatch instead",
                ));
            }
            return Ok(SwipeOutcome {
                matched: earlier.unmatched_at.is_none().then(|| Match::from(earlier)),
                super_likes_left: None,
            });
        }

        let swipes = swipe::Entity::find()
            .filter(
                Condition::any()
                    .add(
                        swipe::Column::SwiperId
                            .eq(viewer)
                            .and(swipe::Column::TargetId.eq(target)),
                    )
                    .add(
                        swipe::Column::SwiperId
                            .eq(target)
                            .and(swipe::Column::TargetId.eq(viewer)),
                    ),
            )
            .all(&txn)
            .await?;
        let mine = swipes
            .iter()
            .find(|s| s.swiper_id == viewer)
            .map(|s| SwipeKind::from_stored(&s.kind));
        let liked_viewer = swipes
            .iter()
            .any(|s| s.swiper_id == target && SwipeKind::from_stored(&s.kind).likes());
        // Someone who liked the viewer may always be liked back; anyone else
        // must be someone discovery would show.
        if kind.likes() && !liked_viewer {
            let shown = target_row.discoverable && Profile::of(target_row, today).is_some();
            if !shown {
                return Err(AppError::forbidden("this user is not open to new matches"));
            }
        }

        if mine == Some(SwipeKind::SuperLike) && kind == SwipeKind::Pass {
            return Err(AppError::conflict(
                "userId",
                "you super-liked this user; a super like cannot be taken back",
            ));
        }
        // What is stored: a super like never weakens to a plain like.
        let stored = match (mine, kind) {
            (Some(SwipeKind::SuperLike), SwipeKind::Like) => SwipeKind::SuperLike,
            (_, kind) => kind,
        };
        let mut super_likes_left = None;
        if stored == SwipeKind::SuperLike && mine != Some(SwipeKind::SuperLike) {
            super_likes_left = Some(self.spend_super_like(&txn, viewer, now).await?);
        }
        // A new kind, or a pass again (which restarts its cooldown).
        if mine != Some(stored) || stored == SwipeKind::Pass {
            swipe::Entity::insert(swipe::ActiveModel {
                swiper_id: Set(viewer),
                target_id: Set(target),
                kind: Set(stored.as_str().to_owned()),
                created_at: Set(now),
            })
            .on_conflict(
                OnConflict::columns([swipe::Column::SwiperId, swipe::Column::TargetId])
                    .update_columns([swipe::Column::Kind, swipe::Column::CreatedAt])
                    .to_owned(),
            )
            .exec_without_returning(&txn)
            .await?;
        }
        if !(stored.likes() && liked_viewer) {
            txn.commit().await?;
            return Ok(SwipeOutcome {
                matched: None,
                super_likes_left,
            });
        }

        let row = user_match::Model {
            id: Uuid::now_v7(),
            user_low: low,
            user_high: high,
            created_at: now,
            unmatched_at: None,
        };
        let inserted = user_match::Entity::insert(user_match::ActiveModel {
            id: Set(row.id),
            user_low: Set(row.user_low),
            user_high: Set(row.user_high),
            created_at: Set(row.created_at),
            unmatched_at: Set(None),
        })
        .exec_without_returning(&txn)
        .await;
        match inserted {
            Ok(_) => txn.commit().await?,
            // The pair's lock makes this unreachable; should it happen, the
            // match that won stands.
            Err(err) if is_unique_violation(&err) => {
                drop(txn);
                let found = match_of_pair(low, high)
                    .filter(user_match::Column::UnmatchedAt.is_null())
                    .one(&self.db)
                    .await?;
                return Ok(SwipeOutcome {
                    matched: found.map(Match::from),
                    super_likes_left,
                });
            }
            Err(err) => return Err(err.into()),
        }
        let matched = Match::from(row);
        // The conversation opens after commit: the chat policy reads the match.
        // Should this fail, `Match.conversation` opens it on first use.
        if let Err(err) = self.chat.direct_conversation(viewer, target).await {
            tracing::warn!(error = ?err, "opening a match's conversation");
        }
        for user in [viewer, target] {
            self.pubsub.publish(
                &user_topic(user),
                Event::MatchCreated {
                    matched: matched.clone(),
                },
            );
        }
        Ok(SwipeOutcome {
            matched: Some(matched),
            super_likes_left,
        })
    }

    /// Counts a super like against the rolling day's quota, or refuses it with
    /// `RATE_LIMITED` and when the oldest one in the window frees a slot. Runs
    /// under the swiper's row lock, so concurrent super likes count in turn.
    async fn spend_super_like(
        &self,
        db: &impl ConnectionTrait,
        viewer: Uuid,
        now: DateTime<Utc>,
    ) -> AppResult<u32> {
        let window_start = now - Duration::days(1);
        let recent: Vec<DateTime<Utc>> = swipe::Entity::find()
            .select_only()
            .column(swipe::Column::CreatedAt)
            .filter(swipe::Column::SwiperId.eq(viewer))
            .filter(swipe::Column::Kind.eq(SwipeKind::SuperLike.as_str()))
            .filter(swipe::Column::CreatedAt.gt(window_start))
            .into_tuple()
            .all(db)
            .await?;
        let used = recent.len() as u32;
        if used >= self.super_likes_per_day {
            let oldest = recent.iter().min().copied().unwrap_or(now);
            let wait = Ord::max((oldest + Duration::days(1) - now).num_seconds(), 1) as u64;
            return Err(AppError::RateLimited {
                retry_after_secs: wait,
                reason: Some(format!(
                    "you have used your {} super likes for today",
                    self.super_likes_per_day
                )),
            });
        }
        Ok(self.super_likes_per_day - used - 1)
    }

    /// The viewer's matches, newest first, after the match `before` (by id).
    pub async fn matches(
        &self,
        viewer: Uuid,
        before: Option<Uuid>,
        limit: u64,
    ) -> AppResult<Vec<Match>> {
        let mut query = current_matches_of(viewer);
        if let Some(before) = before {
            query = query.filter(user_match::Column::Id.lt(before));
        }
        Ok(query
            .order_by_desc(user_match::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(Match::from)
            .collect())
    }

    /// One of the viewer's current matches.
    pub async fn match_for(&self, viewer: Uuid, id: Uuid) -> AppResult<Option<Match>> {
        Ok(user_match::Entity::find_by_id(id)
            .filter(user_match::Column::UnmatchedAt.is_null())
            .one(&self.db)
            .await?
            .filter(|m| m.user_low == viewer || m.user_high == viewer)
            .map(Match::from))
    }

    /// Ends one of the viewer's matches for good; both users hear of it.
    pub async fn unmatch(&self, viewer: Uuid, id: Uuid) -> AppResult<Match> {
        let found = self
            .match_for(viewer, id)
            .await?
            .ok_or_else(|| AppError::not_found("match not found"))?;
        let txn = self.db.begin().await?;
        // Under the pair's lock, as a send to their conversation reads it.
        social::lock_pair(&txn, found.user_low, found.user_high).await?;
        let ended = end_matches_between(&txn, found.user_low, found.user_high).await?;
        txn.commit().await?;
        let Some(ended) = ended else {
            return Err(AppError::not_found("match not found"));
        };
        announce_match_ended(&self.pubsub, &ended);
        Ok(found)
    }
}

/// Ends the pair's match, if they have one, and returns it. Call inside the
/// transaction that changes the pair (an unmatch, a block), under its lock;
/// announce it after commit with [`announce_match_ended`].
pub async fn end_matches_between(
    db: &impl ConnectionTrait,
    a: Uuid,
    b: Uuid,
) -> AppResult<Option<Match>> {
    let Some(current) = match_of_pair(a, b)
        .filter(user_match::Column::UnmatchedAt.is_null())
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let ended = user_match::Entity::update_many()
        .col_expr(user_match::Column::UnmatchedAt, Expr::value(Utc::now()))
        .filter(user_match::Column::Id.eq(current.id))
        .filter(user_match::Column::UnmatchedAt.is_null())
        .exec(db)
        .await?;
    Ok((ended.rows_affected > 0).then(|| Match::from(current)))
}

/// Before an account is deleted (its swipes and matches go with it by
/// cascade): the matches it had, to announce as ended once that commits. Call
/// in the deleting transaction, after the user's row is locked.
pub async fn forget_user(db: &impl ConnectionTrait, user_id: Uuid) -> AppResult<Vec<Match>> {
    Ok(current_matches_of(user_id)
        .all(db)
        .await?
        .into_iter()
        .map(Match::from)
        .collect())
}

/// The pair's match row, current or ended (a pair has one at most).
fn match_of_pair(a: Uuid, b: Uuid) -> Select<user_match::Entity> {
    let (low, high) = social::ordered(a, b);
    user_match::Entity::find()
        .filter(user_match::Column::UserLow.eq(low))
        .filter(user_match::Column::UserHigh.eq(high))
}

/// A user's matches that have not ended, on either side of the pair.
fn current_matches_of(user: Uuid) -> Select<user_match::Entity> {
    user_match::Entity::find()
        .filter(
            Condition::any()
                .add(user_match::Column::UserLow.eq(user))
                .add(user_match::Column::UserHigh.eq(user)),
        )
        .filter(user_match::Column::UnmatchedAt.is_null())
}

/// Tells both users their match ended, so their apps can drop it.
pub fn announce_match_ended(pubsub: &Events, ended: &Match) {
    for user in [ended.user_low, ended.user_high] {
        pubsub.publish(
            &user_topic(user),
            Event::MatchEnded {
                match_id: ended.id,
                user_id: user,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gender_sets_round_trip() {
        let set = GenderSet::of(&[Gender::Female, Gender::Nonbinary]);
        assert_eq!(set.bits(), 5);
        assert_eq!(set.genders(), [Gender::Female, Gender::Nonbinary]);
        assert!(GenderSet::of(&[]).is_empty());
        assert_eq!(GenderSet::ALL.genders().len(), 3);
    }

    #[test]
    fn default_age_ranges_stay_adult() {
        assert_eq!(default_age_range(30), (20, 40));
        assert_eq!(default_age_range(19), (18, 29));
        assert_eq!(default_age_range(95), (85, 99));
    }

    #[test]
    fn age_ranges_are_checked() {
        assert!(check_age_range(18, 99).is_ok());
        assert!(check_age_range(17, 30).is_err());
        assert!(check_age_range(30, 25).is_err());
        assert!(check_distance(0).is_err());
        assert!(check_distance(MAX_DISTANCE_KM).is_ok());
    }
}
