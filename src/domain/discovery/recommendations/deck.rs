//! Dealing a deck: the candidates from the discovery index, inside both sides'
//! limits, weighed, and the best of them ranked with their mutual friends.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use chrono::{DateTime, Months, NaiveDate, Utc};
use uuid::Uuid;

use super::{Card, DECK_SIZE, Deck, Limits, Recommendations, Seeker, standing::Standing};
use crate::{
    domain::{
        discovery::{
            GenderSet, SwipeKind,
            compatibility::{self, BoundingBox, Parts},
            index::{Cells, Listed},
        },
        presence::Status,
    },
    error::AppResult,
};

impl Recommendations {
    /// Ranks the pool in two steps, so mutual friends (the costly part) are
    /// counted only for those who could make the deck: everyone is scored
    /// without them first, and only candidates whose score plus the most mutual
    /// friends can add reaches the deck's last place are counted. The deck is
    /// then exactly the best [`DECK_SIZE`] of the pool.
    pub(super) async fn build_deck(
        &self,
        seeker: &Seeker,
        limits: Limits,
        now: DateTime<Utc>,
    ) -> AppResult<Arc<Deck>> {
        let (viewer, profile) = (seeker.id, &seeker.profile);
        // Half a kilometre more: the limit applies to the shown (rounded)
        // distance, so a cell centre 1.4 km away is within 1 km.
        let bounds = BoundingBox::around(
            profile.latitude,
            profile.longitude,
            f64::from(limits.max_distance_km) + 0.5,
        );
        let (cells, standing) = tokio::try_join!(
            self.index.around(&bounds, limits.genders),
            self.standing(viewer, now)
        )?;
        let pool = usize::try_from(self.pool).unwrap_or(usize::MAX);
        let found = candidates(&cells, &standing, seeker, &limits, &bounds, now, pool);
        let here = (profile.latitude, profile.longitude);
        let ids: Vec<Uuid> = found.iter().map(|(user, _)| user.id).collect();
        let online = self.online_among(&ids).await;
        let mut weighed: Vec<Weighed> = found
            .into_iter()
            .filter_map(|(user, their_swipe)| {
                let distance_km = compatibility::shown_distance_km(here, user.position);
                if distance_km > limits.max_distance_km {
                    return None;
                }
                let online = online.contains(&user.id);
                let parts = Parts {
                    shared_interests: compatibility::shared_part(
                        &seeker.interests,
                        &user.interests,
                    ),
                    distance: compatibility::distance_part(distance_km, limits.max_distance_km),
                    recent_activity: compatibility::activity_part(online, user.last_seen_at, now),
                    mutual_friends: 0.0,
                };
                let liked_viewer = their_swipe.is_some_and(SwipeKind::likes);
                let affinity = self.affinity.affinity(viewer, user.id, liked_viewer);
                Some(Weighed {
                    user,
                    distance_km,
                    rank: compatibility::rank(&parts, affinity),
                    parts,
                    affinity,
                    mutual_friends: 0,
                    super_liked_viewer: their_swipe == Some(SwipeKind::SuperLike),
                })
            })
            .collect();
        // The deck's last place without mutual friends: only the order up to
        // it matters, not the whole order.
        let last_place = if weighed.len() >= DECK_SIZE {
            weighed
                .select_nth_unstable_by(DECK_SIZE - 1, Weighed::deck_order)
                .1
                .rank
        } else {
            f64::NEG_INFINITY
        };
        weighed.retain(|one| one.rank + compatibility::MUTUAL_FRIENDS_WEIGHT >= last_place);
        let ids: Vec<Uuid> = weighed.iter().map(|one| one.user.id).collect();
        let mutual = self.mutual_friends(seeker, &ids).await?;
        for one in &mut weighed {
            one.mutual_friends = mutual.get(&one.user.id).copied().unwrap_or(0);
            one.parts.mutual_friends = compatibility::mutual_part(one.mutual_friends);
            one.rank = compatibility::rank(&one.parts, one.affinity);
        }
        weighed.sort_unstable_by(Weighed::deck_order);
        weighed.truncate(DECK_SIZE);
        Ok(Arc::new(Deck {
            id: Uuid::now_v7(),
            limits,
            cards: weighed
                .into_iter()
                .map(|one| Card {
                    user_id: one.user.id,
                    distance_km: one.distance_km,
                    parts: one.parts,
                    score: compatibility::score(&one.parts),
                    rank: one.rank,
                    common_interests: compatibility::common_interests(
                        &seeker.interests,
                        &one.user.interests,
                    ),
                    mutual_friends: one.mutual_friends,
                    super_liked_viewer: one.super_liked_viewer,
                })
                .collect(),
        }))
    }

    /// Who of `candidates` is online or away. With shared presence, by
    /// statuses up to [`ONLINE_STALE`] old; the store is asked about the rest.
    async fn online_among(&self, candidates: &[Uuid]) -> HashSet<Uuid> {
        // Only shared statuses are kept: this replica's own sockets are
        // fresh, and cheaper to read than the cache.
        let cached = self.presence.is_shared();
        let mut online = HashSet::new();
        let mut unknown = Vec::new();
        for &id in candidates {
            match cached.then(|| self.online.get(&id)).flatten() {
                Some(true) => {
                    online.insert(id);
                }
                Some(false) => {}
                None => unknown.push(id),
            }
        }
        if unknown.is_empty() {
            return online;
        }
        // Asked as nobody in particular: the viewer is never a candidate, so
        // an INVISIBLE candidate reads as offline, as the viewer would see them.
        let statuses = self.presence.statuses(&unknown, None).await;
        for id in unknown {
            let is_online = matches!(statuses.get(&id), Some(Status::Online | Status::Away));
            if cached {
                self.online.insert(id, is_online);
            }
            if is_online {
                online.insert(id);
            }
        }
        online
    }

    /// How many friends each of `candidates` shares with the viewer, from the
    /// cached friend lists of whichever side has fewer to read: the
    /// candidates' own (each intersected with the viewer's), or the viewer's
    /// friends' (friends of friends, kept when they are candidates). A friend
    /// list of a typical user's friend is about three times as long as a
    /// candidate's (the well connected have more friends to be friends with),
    /// so the viewer's side wins while they have under a third as many friends
    /// as there are candidates: a hub's thousands never are read that way.
    async fn mutual_friends(
        &self,
        seeker: &Seeker,
        candidates: &[Uuid],
    ) -> AppResult<HashMap<Uuid, i64>> {
        if candidates.is_empty() || seeker.friend_count == 0 {
            return Ok(HashMap::new());
        }
        if seeker.friend_count.saturating_mul(3) < candidates.len() as i64 {
            let wanted: HashSet<Uuid> = candidates.iter().copied().collect();
            self.graph
                .friends_of_friends(seeker.id, |id| wanted.contains(&id))
                .await
                .map(|counted| counted.into_iter().collect())
        } else {
            self.graph.mutual_counts(seeker.id, candidates).await
        }
    }
}

/// Who may make the deck (see the module docs), from the listed users of
/// `cells`: those inside both sides' limits, less whom the viewer swiped or is
/// blocked with either way; the most recently active first when there are
/// more than `pool`. Each comes with their swipe on the viewer.
fn candidates<'a>(
    cells: &'a Cells,
    standing: &Standing,
    seeker: &Seeker,
    limits: &Limits,
    bounds: &BoundingBox,
    now: DateTime<Utc>,
    pool: usize,
) -> Vec<(&'a Listed, Option<SwipeKind>)> {
    let (viewer, profile) = (seeker.id, &seeker.profile);
    let today = now.date_naive();
    let born = BornBetween::ages(today, limits.min_age, limits.max_age);
    let (south, north) = bounds.latitude;
    let viewer_bit = GenderSet::bit(profile.gender);
    let wanted = compatibility::Interests::new(limits.interests.clone());
    let mut found: Vec<(&Listed, Option<SwipeKind>)> = cells
        .iter()
        .flat_map(|cell| cell.iter())
        .filter(|user| {
            // The index hands out only cells of the genders asked for.
            debug_assert!(limits.genders.bits() & user.gender != 0);
            (south..=north).contains(&user.position.latitude())
                && bounds
                    .longitude
                    .is_none_or(|(west, east)| (west..=east).contains(&user.position.longitude()))
                && born.contains(user.birthdate)
                && (user.min_age..=user.max_age).contains(&profile.age)
                && user.genders.bits() & viewer_bit != 0
                && user.id != viewer
                && !standing.hidden.contains(&user.id)
                && (limits.interests.is_empty() || user.interests.any_of(&wanted))
        })
        .map(|user| (user, standing.their_swipes.get(&user.id).copied()))
        .collect();
    if found.len() > pool {
        // Never seen last; then by id, so the pool is the same each time.
        found.sort_unstable_by(|(a, _), (b, _)| {
            (b.last_seen_at.is_some(), b.last_seen_at)
                .cmp(&(a.last_seen_at.is_some(), a.last_seen_at))
                .then_with(|| a.id.cmp(&b.id))
        });
        found.truncate(pool);
    }
    found
}

/// A candidate as the deck ranks them, before they become a card.
struct Weighed<'a> {
    user: &'a Listed,
    distance_km: i32,
    parts: Parts,
    affinity: f64,
    rank: f64,
    mutual_friends: i64,
    super_liked_viewer: bool,
}

impl Weighed<'_> {
    /// Deck order: best rank first, then by user id.
    fn deck_order(a: &Self, b: &Self) -> std::cmp::Ordering {
        b.rank
            .total_cmp(&a.rank)
            .then_with(|| a.user.id.cmp(&b.user.id))
    }
}

/// The birthdates of those whose age on a day is within a range: compared
/// as dates, so no card's age is computed while a deck is dealt.
struct BornBetween {
    /// The day one turns `max + 1`: born on it or before is too old.
    too_old: NaiveDate,
    /// The day one turns `min`: born after it is too young.
    youngest: NaiveDate,
}

impl BornBetween {
    /// Ages in `[min, max]` on `today`.
    fn ages(today: NaiveDate, min: i32, max: i32) -> Self {
        Self {
            too_old: years_before(today, max + 1),
            youngest: years_before(today, min),
        }
    }

    fn contains(&self, birthdate: NaiveDate) -> bool {
        birthdate > self.too_old && birthdate <= self.youngest
    }
}

/// The date `years` before `day` (29 February falls back to the 28th).
fn years_before(day: NaiveDate, years: i32) -> NaiveDate {
    let months = u32::try_from(years.max(0) * 12).unwrap_or(0);
    day.checked_sub_months(Months::new(months)).unwrap_or(day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::users;

    #[test]
    fn ages_map_to_birthdate_bounds() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 21).unwrap();
        assert_eq!(
            years_before(today, 18),
            NaiveDate::from_ymd_opt(2008, 11, 21).unwrap()
        );
        let leap = NaiveDate::from_ymd_opt(2028, 2, 29).unwrap();
        assert_eq!(
            years_before(leap, 1),
            NaiveDate::from_ymd_opt(2027, 2, 28).unwrap()
        );
    }

    /// The dates agree with the ages they stand for, day by day, at both
    /// ends of the range and around 29 February.
    #[test]
    fn birthdate_bounds_hold_exactly_the_ages_asked_for() {
        for today in [(2026, 11, 21), (2028, 2, 29), (2028, 3, 1), (2027, 2, 28)] {
            let today = NaiveDate::from_ymd_opt(today.0, today.1, today.2).unwrap();
            let born = BornBetween::ages(today, 18, 30);
            let mut birthdate = years_before(today, 40);
            while birthdate <= years_before(today, 10) {
                let age = users::age_on(birthdate, today);
                assert_eq!(
                    born.contains(birthdate),
                    (18..=30).contains(&age),
                    "born {birthdate}, {age} on {today}"
                );
                birthdate = birthdate.succ_opt().unwrap();
            }
        }
    }
}
