//! Recommendations: whom discovery shows a viewer, best first, in pages that
//! never repeat or skip anyone.
//!
//! A first page builds a deck. The candidates come from the discovery index
//! (`domain::discovery_index`: the listed users of the cells around the
//! viewer), checked in Rust against the viewer's limits (genders, distance,
//! birthdates, interests) and the candidate's own (age and gender ranges).
//! One SQL statement says how the viewer stands with others: whom they swiped
//! (a pass only counts during its cooldown; a match always follows the
//! viewer's like), who is blocked either way, and who swiped on them. Rust then
//! measures distances from the viewer's exact position to each candidate's
//! coarse one (their ~1 km cell's centre: the index holds nothing finer, so
//! the box, the limit, the score and the order cannot betray where in the
//! cell they are), scores (`compatibility`) and sorts, counting
//! mutual friends (from the cached friend lists of `domain::graph`) only for
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

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use chrono::{DateTime, Months, NaiveDate, Utc};
use moka::sync::Cache;
use sea_orm::{ConnectionTrait, FromQueryResult, Value};
use uuid::Uuid;

use crate::infra::db::Db;
use crate::infra::redis::Redis;
use crate::{
    domain::{
        compatibility::{self, AffinityKey, BoundingBox, Parts},
        discovery::{self, GenderSet, Preferences, Profile, SwipeKind},
        discovery_index::{Cells, DiscoveryIndex, Listed},
        graph::Graph,
        presence::{Presence, Status},
        users::{self, Gender, Profiles},
    },
    error::{AppError, AppResult},
    infra::{
        ratelimit::{Action, RateLimiter},
        sql,
    },
};
use serde::{Deserialize, Serialize};

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

/// Narrows (or, without preferences, sets) the limits of one call.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub min_age: Option<i32>,
    pub max_age: Option<i32>,
    pub genders: Option<Vec<Gender>>,
    pub max_distance_km: Option<i32>,
    /// Only candidates sharing at least one of these.
    pub interests: Option<Vec<String>>,
}

/// The limits one deck was built with; a cursor only goes on with the same.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Limits {
    min_age: i32,
    max_age: i32,
    genders: GenderSet,
    max_distance_km: i32,
    interests: Vec<String>,
}

impl Limits {
    /// The viewer's preferences (or the widest limits), with the filter's
    /// fields in place of theirs.
    fn resolve(
        preferences: Preferences,
        use_preferences: bool,
        filter: &Filter,
    ) -> AppResult<Self> {
        let base = if use_preferences {
            preferences
        } else {
            Preferences {
                min_age: discovery::ADULT_AGE,
                max_age: discovery::MAX_AGE,
                genders: GenderSet::ALL,
                max_distance_km: discovery::MAX_DISTANCE_KM,
                discoverable: preferences.discoverable,
            }
        };
        let min_age = filter.min_age.unwrap_or(base.min_age);
        let max_age = filter.max_age.unwrap_or(base.max_age);
        discovery::check_age_range(min_age, max_age)?;
        let genders = match &filter.genders {
            Some(genders) => GenderSet::chosen(genders)?,
            None => base.genders,
        };
        let max_distance_km = filter.max_distance_km.unwrap_or(base.max_distance_km);
        discovery::check_distance(max_distance_km)?;
        let interests = filter
            .interests
            .as_deref()
            .map(users::normalize_interests)
            .transpose()?
            .unwrap_or_default();
        Ok(Self {
            min_age,
            max_age,
            genders,
            max_distance_km,
            interests,
        })
    }
}

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

/// Where a page ended: the deck, the position in it, and the card's user (to
/// find the place again when the deck is gone). Nothing in it is secret: the
/// rank a deck is ordered by stays in the deck.
struct Cursor {
    deck: Uuid,
    position: usize,
    user_id: Uuid,
}

impl Cursor {
    fn encode(&self) -> String {
        format!(
            "{}:{}:{}",
            self.deck.simple(),
            self.position,
            self.user_id.simple()
        )
    }

    fn parse(key: &str) -> AppResult<Self> {
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

    /// The viewer's deck `id`: this replica's, or the one another replica
    /// dealt (kept in Redis).
    async fn kept_deck(&self, viewer: Uuid, id: Uuid) -> Option<Arc<Deck>> {
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
    async fn keep_deck(&self, viewer: Uuid, deck: Arc<Deck>) {
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

    /// Ranks the pool in two steps, so mutual friends (the costly part) are
    /// counted only for those who could make the deck: everyone is scored
    /// without them first, and only candidates whose score plus the most mutual
    /// friends can add reaches the deck's last place are counted. The deck is
    /// then exactly the best [`DECK_SIZE`] of the pool.
    async fn build_deck(
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

    /// How the viewer stands with others, in one statement: whom discovery
    /// hides from them (swiped by them, a pass only during its cooldown; a
    /// block either way), and the swipes others made on them.
    async fn standing(&self, viewer: Uuid, now: DateTime<Utc>) -> AppResult<Standing> {
        #[derive(FromQueryResult)]
        struct Row {
            id: Uuid,
            kind: Option<String>,
            created_at: Option<DateTime<Utc>>,
            side: i32,
        }
        const BY_VIEWER: i32 = 0;
        const ON_VIEWER: i32 = 1;
        const BLOCKED: i32 = 2;
        let sql = format!(
            "SELECT target_id AS id, kind, created_at, {BY_VIEWER} AS side
               FROM swipes WHERE swiper_id = ?
             UNION ALL
             SELECT swiper_id, kind, created_at, {ON_VIEWER} FROM swipes WHERE target_id = ?
             UNION ALL
             SELECT blocked_id, NULL, NULL, {BLOCKED} FROM blocks WHERE blocker_id = ?
             UNION ALL
             SELECT blocker_id, NULL, NULL, {BLOCKED} FROM blocks WHERE blocked_id = ?"
        );
        let backend = self.db.get_database_backend();
        let rows = Row::find_by_statement(sql::statement(
            backend,
            &sql,
            vec![viewer.into(), viewer.into(), viewer.into(), viewer.into()],
        ))
        .all(&self.db)
        .await?;
        let cooled_down = self.cooled_down(now);
        let mut standing = Standing::default();
        for row in rows {
            let kind = row.kind.as_deref().map(SwipeKind::from_stored);
            match row.side {
                BY_VIEWER => {
                    let cooling = row.created_at.is_none_or(|at| at > cooled_down);
                    if kind != Some(SwipeKind::Pass) || cooling {
                        standing.hidden.insert(row.id);
                    }
                }
                ON_VIEWER => {
                    standing
                        .their_swipes
                        .extend(kind.map(|kind| (row.id, kind)));
                }
                _ => {
                    standing.hidden.insert(row.id);
                }
            }
        }
        Ok(standing)
    }

    /// Passes made before this are over.
    fn cooled_down(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        // A cooldown too long to subtract holds passes back for good.
        now.checked_sub_signed(self.pass_cooldown)
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }

    /// Which of `ids` discovery may still show the viewer.
    async fn still_open(
        &self,
        viewer: Uuid,
        ids: &[Uuid],
        now: DateTime<Utc>,
    ) -> AppResult<HashSet<Uuid>> {
        #[derive(FromQueryResult)]
        struct Open {
            id: Uuid,
        }
        if ids.is_empty() {
            return Ok(HashSet::new());
        }
        let mut values: Vec<Value> = ids.iter().map(|id| Value::from(*id)).collect();
        values.extend(self.still_open_values(viewer, now));
        let sql = format!(
            "SELECT u.id FROM users u WHERE u.id IN ({}) AND {STILL_OPEN}",
            sql::placeholders(ids.len())
        );
        let backend = self.db.get_database_backend();
        Ok(
            Open::find_by_statement(sql::statement(backend, &sql, values))
                .all(&self.db)
                .await?
                .into_iter()
                .map(|open| open.id)
                .collect(),
        )
    }

    /// The values of [`STILL_OPEN`], in order.
    fn still_open_values(&self, viewer: Uuid, now: DateTime<Utc>) -> [Value; 5] {
        [
            viewer.into(),
            viewer.into(),
            self.cooled_down(now).into(),
            viewer.into(),
            viewer.into(),
        ]
    }
}

/// The user `u` may be shown to the viewer: discoverable, not the viewer, not
/// swiped by them (a pass counts until its cooldown is over), and no block
/// either way. Values: [`Recommendations::still_open_values`].
const STILL_OPEN: &str = "u.discoverable AND u.id <> ?
    AND NOT EXISTS (SELECT 1 FROM swipes v WHERE v.swiper_id = ? AND v.target_id = u.id
                    AND (v.kind <> 'PASS' OR v.created_at > ?))
    AND NOT EXISTS (SELECT 1 FROM blocks b WHERE b.blocker_id = ? AND b.blocked_id = u.id)
    AND NOT EXISTS (SELECT 1 FROM blocks b WHERE b.blocker_id = u.id AND b.blocked_id = ?)";

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
    // Age in [min, max]: born after the day one turns max + 1, and on or
    // before the day one turns min.
    let born = (
        years_before(today, limits.max_age + 1),
        years_before(today, limits.min_age),
    );
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
                && user.birthdate > born.0
                && user.birthdate <= born.1
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

/// See [`Recommendations::standing`].
#[derive(Default)]
struct Standing {
    hidden: HashSet<Uuid>,
    their_swipes: HashMap<Uuid, SwipeKind>,
}

/// The date `years` before `day` (29 February falls back to the 28th).
fn years_before(day: NaiveDate, years: i32) -> NaiveDate {
    let months = u32::try_from(years.max(0) * 12).unwrap_or(0);
    day.checked_sub_months(Months::new(months)).unwrap_or(day)
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
        // Someone born exactly 18 years ago is 18 today, so inside [18, 30].
        let born = years_before(today, 18);
        assert_eq!(users::age_on(born, today), 18);
        assert!(born > years_before(today, 31) && born <= years_before(today, 18));
    }
}
