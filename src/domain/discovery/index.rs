//! Whom discovery may show, by map cell, held in this process: a deck's
//! candidates are read from here instead of from SQL.
//!
//! Why: a deck used to be one statement that read the 2,000–3,500 rows of the
//! viewer's city, with three anti-join probes each. On PostgreSQL that
//! statement was the limit (1.4 of 2 cores at 115 decks a second).
//!
//! - A user is listed while they are discoverable and have a location, a
//!   birthdate and a gender: everything else discovery needs of a candidate.
//!   Their location is held only as [`CoarsePosition`] (their ~1 km cell's
//!   centre), and they are filed by it: nothing a deck does can depend on
//!   where exactly in that cell they are.
//! - The map is cut into cells of [`CELL_DEGREES`], one list per gender in
//!   each, so a deck reads only the genders it asks for. A cell is loaded the
//!   first time a deck needs it (one statement for the rectangle of the cells
//!   missing), from the primary, and kept.
//! - Kept current by the user cache's invalidations: every write to a user
//!   row forgets it in that cache, on every replica, through the `cache` topic.
//!   Their ids are read again from the primary, and each user is moved,
//!   changed or dropped.
//! - One task owns the cells, and serves reads in turn with the
//!   invalidations. A read first takes in every invalidation announced before
//!   it, so a replica's own writes show in its very next deck; another
//!   replica's once the announcement arrives (milliseconds).
//! - A gap in the announcements (a lagging subscription, a lost Redis
//!   connection) drops every cell: each loads afresh when next needed.
//! - Memory: about 150 bytes per listed user near anyone who asked (15 MB for
//!   100,000). Cells are not evicted.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use chrono::{DateTime, NaiveDate, Utc};
use futures_util::{FutureExt, StreamExt};
use sea_orm::{ColumnTrait, EntityTrait, FromQueryResult, QueryFilter, QuerySelect};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use entity::user;

use crate::{
    domain::{
        discovery::{
            GenderSet,
            compatibility::{BoundingBox, CoarsePosition, DISTANCE_GRID_DEGREES, Interests},
        },
        users::{self, Gender},
    },
    error::{AppError, AppResult},
    infra::{
        cache::{CACHE_TOPIC, Invalidation, Invalidations},
        db::Db,
        pubsub::Topic,
    },
};

/// A cell's side, in degrees: about 28 km north to south. A deck within 50 km
/// reads some 30 cells; a user's write copies one cell (when a deck holds it).
const CELL_DEGREES: f64 = 0.25;
/// The user cache, whose invalidations say which rows changed.
const USER_CACHE: &str = "user";
/// Reads waiting for the task.
const QUEUE: usize = 1_024;
/// Ids read again per statement.
const REREAD_CHUNK: usize = 1_000;

/// One listed user: what the candidate rules and the score read.
#[derive(Clone, Debug)]
pub struct Listed {
    pub id: Uuid,
    /// Never the exact position (see the module docs).
    pub position: CoarsePosition,
    pub birthdate: NaiveDate,
    /// Their gender, as a [`GenderSet`] bit.
    pub gender: i32,
    /// Whom they want: their own limits, which the viewer must meet.
    pub min_age: i32,
    pub max_age: i32,
    pub genders: GenderSet,
    pub interests: Arc<Interests>,
    pub last_seen_at: Option<DateTime<Utc>>,
}

/// The cells a deck reads, as `Arc`s: the task copies a cell it changes while
/// a deck still reads it.
pub type Cells = Vec<Arc<Vec<Listed>>>;

#[derive(Clone)]
pub struct DiscoveryIndex {
    reads: mpsc::Sender<Read>,
}

struct Read {
    area: Area,
    genders: GenderSet,
    reply: oneshot::Sender<AppResult<Cells>>,
}

impl DiscoveryIndex {
    /// Starts the task that owns the cells; it runs while a handle is left.
    pub fn spawn(db: Db, pubsub: Invalidations) -> (Self, tokio::task::JoinHandle<()>) {
        let (reads, queue) = mpsc::channel(QUEUE);
        let task = Keeper {
            db,
            pubsub,
            cells: HashMap::new(),
            home: HashMap::new(),
        };
        (Self { reads }, tokio::spawn(task.run(queue)))
    }

    /// Everyone of `genders` listed in the cells that cover `bounds` (and
    /// some around it: the caller checks the exact limits).
    pub async fn around(&self, bounds: &BoundingBox, genders: GenderSet) -> AppResult<Cells> {
        let (reply, answer) = oneshot::channel();
        let gone = || AppError::Internal(anyhow::anyhow!("the discovery index stopped"));
        self.reads
            .send(Read {
                area: Area::covering(bounds),
                genders,
                reply,
            })
            .await
            .map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

/// A square of the map: its row and column, counted in [`CELL_DEGREES`]
/// from 0°, 0°.
type Square = (i32, i32);

/// A square's users of one gender (its [`GenderSet`] bit).
type Cell = (Square, i32);

fn square_of(latitude: f64, longitude: f64) -> Square {
    (
        (latitude / CELL_DEGREES).floor() as i32,
        (longitude / CELL_DEGREES).floor() as i32,
    )
}

fn cell_of(listed: &Listed) -> Cell {
    let position = listed.position;
    (
        square_of(position.latitude(), position.longitude()),
        listed.gender,
    )
}

/// A rectangle of cells, both ends included.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Area {
    rows: (i32, i32),
    columns: (i32, i32),
}

impl Area {
    fn covering(bounds: &BoundingBox) -> Self {
        let (west, east) = bounds.longitude.unwrap_or((-180.0, 180.0));
        let (south, north) = bounds.latitude;
        let (low, high) = (square_of(south, west), square_of(north, east));
        Self {
            rows: (low.0, high.0),
            columns: (low.1, high.1),
        }
    }

    fn squares(self) -> impl Iterator<Item = Square> {
        (self.rows.0..=self.rows.1)
            .flat_map(move |row| (self.columns.0..=self.columns.1).map(move |col| (row, col)))
    }

    fn cells(self, genders: GenderSet) -> impl Iterator<Item = Cell> {
        self.squares()
            .flat_map(move |square| genders.each_bit().map(move |bit| (square, bit)))
    }

    /// The smallest area holding all of `cells`.
    fn around(cells: &[Cell]) -> Option<Self> {
        let first = cells.first()?.0;
        Some(cells.iter().fold(
            Self {
                rows: (first.0, first.0),
                columns: (first.1, first.1),
            },
            |area, &((row, col), _)| Self {
                rows: (area.rows.0.min(row), area.rows.1.max(row)),
                columns: (area.columns.0.min(col), area.columns.1.max(col)),
            },
        ))
    }

    /// Its edges in degrees: south, north, west, east (north and east
    /// excluded, as [`square_of`] rounds down).
    fn degrees(self) -> (f64, f64, f64, f64) {
        let edge = |cell: i32| f64::from(cell) * CELL_DEGREES;
        (
            edge(self.rows.0),
            edge(self.rows.1 + 1),
            edge(self.columns.0),
            edge(self.columns.1 + 1),
        )
    }
}

/// The task's own state: nothing else touches it.
struct Keeper {
    db: Db,
    pubsub: Invalidations,
    /// Loaded cells, the empty ones too (so they are not loaded again).
    cells: HashMap<Cell, Arc<Vec<Listed>>>,
    /// The cell each listed user of a loaded cell is in.
    home: HashMap<Uuid, Cell>,
}

/// Some invalidations may have been missed.
struct Gap;

impl Keeper {
    async fn run(mut self, mut queue: mpsc::Receiver<Read>) {
        let mut events = self.pubsub.subscribe(CACHE_TOPIC).await;
        loop {
            tokio::select! {
                biased;
                event = events.next() => {
                    let Some(event) = event else { return };
                    let changed = match event {
                        Ok(event) => match changed_users(&event) {
                            Some(ids) => Ok(ids.to_vec()),
                            None => continue,
                        },
                        Err(_) => Err(Gap),
                    };
                    self.take_in(changed, &mut events).await;
                }
                read = queue.recv() => {
                    let Some(read) = read else { return };
                    // Everything announced before the read, first: the
                    // replica's own writes are already in the channel.
                    self.take_in(Ok(Vec::new()), &mut events).await;
                    let _ = read.reply.send(self.read(read.area, read.genders).await);
                }
            }
        }
    }

    /// Applies `first` and every further invalidation already waiting.
    async fn take_in(&mut self, first: Result<Vec<Uuid>, Gap>, events: &mut Topic<Invalidation>) {
        let mut gap = first.is_err();
        let mut changed: HashSet<Uuid> = first.unwrap_or_default().into_iter().collect();
        // `unconstrained`: the channel must not answer "not yet" because
        // this task used up its cooperative budget while items are waiting.
        while let Some(next) = tokio::task::unconstrained(events.next()).now_or_never() {
            match next {
                Some(Ok(event)) => changed.extend(changed_users(&event).unwrap_or_default()),
                Some(Err(_)) => gap = true,
                None => break,
            }
        }
        if gap {
            // Listening again before forgetting, so nothing announced in
            // between is missed.
            *events = self.pubsub.subscribe(CACHE_TOPIC).await;
            self.forget_all();
            return;
        }
        if changed.is_empty() || self.cells.is_empty() {
            return;
        }
        let changed: Vec<Uuid> = changed.into_iter().collect();
        if let Err(err) = self.reread(&changed).await {
            tracing::warn!(error = ?err, "re-reading changed users; the discovery index starts afresh");
            self.forget_all();
        }
    }

    fn forget_all(&mut self) {
        self.cells.clear();
        self.home.clear();
    }

    /// Moves, changes or drops each of `ids` as their rows now say.
    async fn reread(&mut self, ids: &[Uuid]) -> AppResult<()> {
        let mut fresh = Vec::new();
        for chunk in ids.chunks(REREAD_CHUNK) {
            fresh.extend(
                listed_users(GenderSet::ALL)
                    .filter(user::Column::Id.is_in(chunk.iter().copied()))
                    .into_model::<ListedRow>()
                    .all(self.db.primary())
                    .await?,
            );
        }
        let mut leaving: HashMap<Cell, HashSet<Uuid>> = HashMap::new();
        for id in ids {
            if let Some(cell) = self.home.remove(id) {
                leaving.entry(cell).or_default().insert(*id);
            }
        }
        for (cell, gone) in leaving {
            if let Some(listed) = self.cells.get_mut(&cell) {
                Arc::make_mut(listed).retain(|user| !gone.contains(&user.id));
            }
        }
        for listed in fresh.into_iter().filter_map(ListedRow::listed) {
            let cell = cell_of(&listed);
            if let Some(users) = self.cells.get_mut(&cell) {
                self.home.insert(listed.id, cell);
                Arc::make_mut(users).push(listed);
            }
        }
        Ok(())
    }

    /// The cells of `area` and `genders`, loading those not held yet.
    async fn read(&mut self, area: Area, genders: GenderSet) -> AppResult<Cells> {
        let missing: Vec<Cell> = area
            .cells(genders)
            .filter(|cell| !self.cells.contains_key(cell))
            .collect();
        if let Some(load) = Area::around(&missing) {
            self.load(load, &missing).await?;
        }
        Ok(area
            .cells(genders)
            .filter_map(|cell| self.cells.get(&cell))
            .filter(|listed| !listed.is_empty())
            .cloned()
            .collect())
    }

    /// Loads the cells `missing` (inside `area`); rows of cells already held
    /// are skipped, as those cells are kept current.
    async fn load(&mut self, area: Area, missing: &[Cell]) -> AppResult<()> {
        // Users are filed by their cell's centre, up to half a cell from
        // where they are: read a cell's width around, so whoever is filed
        // in the area is read; those filed outside it are left out below.
        let (south, north, west, east) = area.degrees();
        let (south, north) = (south - DISTANCE_GRID_DEGREES, north + DISTANCE_GRID_DEGREES);
        let (west, east) = (west - DISTANCE_GRID_DEGREES, east + DISTANCE_GRID_DEGREES);
        let genders: HashSet<i32> = missing.iter().map(|(_, gender)| *gender).collect();
        let rows = listed_users(GenderSet::from_stored(genders.into_iter().sum()))
            .filter(user::Column::Latitude.gte(south))
            .filter(user::Column::Latitude.lt(north))
            .filter(user::Column::Longitude.gte(west))
            .filter(user::Column::Longitude.lt(east))
            .into_model::<ListedRow>()
            .all(self.db.primary())
            .await?;
        let missing: HashSet<Cell> = missing.iter().copied().collect();
        let mut loaded: HashMap<Cell, Vec<Listed>> =
            missing.iter().map(|cell| (*cell, Vec::new())).collect();
        for listed in rows.into_iter().filter_map(ListedRow::listed) {
            let cell = cell_of(&listed);
            if let Some(users) = loaded.get_mut(&cell) {
                self.home.insert(listed.id, cell);
                users.push(listed);
            }
        }
        self.cells.extend(
            loaded
                .into_iter()
                .map(|(cell, users)| (cell, Arc::new(users))),
        );
        Ok(())
    }
}

/// The users whose rows an event says changed.
fn changed_users(event: &Invalidation) -> Option<&[Uuid]> {
    (event.cache == USER_CACHE).then_some(&event.keys[..])
}

/// Discoverable users of `genders` (naming each gender lets PostgreSQL use
/// the discovery index, which leads with it), with the columns listed.
fn listed_users(genders: GenderSet) -> sea_orm::Select<user::Entity> {
    let genders: Vec<&str> = genders.genders().into_iter().map(Gender::as_str).collect();
    user::Entity::find()
        .select_only()
        .columns([
            user::Column::Id,
            user::Column::Latitude,
            user::Column::Longitude,
            user::Column::Birthdate,
            user::Column::Gender,
            user::Column::DiscoveryMinAge,
            user::Column::DiscoveryMaxAge,
            user::Column::DiscoveryGenders,
            user::Column::Interests,
            user::Column::LastSeenAt,
        ])
        .filter(user::Column::Discoverable.eq(true))
        .filter(user::Column::Gender.is_in(genders))
}

#[derive(FromQueryResult)]
struct ListedRow {
    id: Uuid,
    latitude: Option<f64>,
    longitude: Option<f64>,
    birthdate: Option<NaiveDate>,
    gender: Option<String>,
    discovery_min_age: i32,
    discovery_max_age: i32,
    discovery_genders: i32,
    interests: serde_json::Value,
    last_seen_at: Option<DateTime<Utc>>,
}

impl ListedRow {
    /// The user as listed, if they have all discovery needs.
    fn listed(self) -> Option<Listed> {
        Some(Listed {
            id: self.id,
            position: CoarsePosition::of(self.latitude?, self.longitude?),
            birthdate: self.birthdate?,
            gender: GenderSet::bit(Gender::from_stored(self.gender.as_deref()?)?),
            min_age: self.discovery_min_age,
            max_age: self.discovery_max_age,
            genders: GenderSet::from_stored(self.discovery_genders),
            interests: Arc::new(Interests::new(users::interests_of(&self.interests))),
            last_seen_at: self.last_seen_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_round_down_and_areas_cover_the_box() {
        assert_eq!(square_of(52.52, 13.405), (210, 53));
        assert_eq!(square_of(-0.1, -0.1), (-1, -1));
        let bounds = BoundingBox::around(52.52, 13.405, 50.0);
        let area = Area::covering(&bounds);
        let (south, north, west, east) = area.degrees();
        let (west_edge, east_edge) = bounds.longitude.unwrap();
        assert!(south <= bounds.latitude.0 && north > bounds.latitude.1);
        assert!(west <= west_edge && east > east_edge);
        // 52.07°–52.97° north, 12.66°–14.15° east.
        assert_eq!(area.squares().count(), 4 * 7);
        let two = GenderSet::of(&[Gender::Female, Gender::Nonbinary]);
        assert_eq!(area.cells(two).count(), 4 * 7 * 2);
    }

    #[test]
    fn the_area_around_cells_is_their_smallest_rectangle() {
        assert_eq!(Area::around(&[]), None);
        assert_eq!(
            Area::around(&[((3, -2), 1), ((1, 4), 2), ((2, 0), 1)]),
            Some(Area {
                rows: (1, 3),
                columns: (-2, 4)
            })
        );
    }
}
