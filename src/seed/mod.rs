//! `kith seed`: realistic demo data, fast. Users with names, interests, birthdates,
//! locations around a few cities and discovery preferences, and a power-law friend graph grown by
//! preferential attachment (each newcomer befriends existing users with a chance
//! proportional to how many friends they have: a few hubs, a long tail).
//!
//! A bulk loader: it writes the `users` and `friendships` tables directly, in large
//! multi-row inserts inside one transaction, rather than through the domain
//! services one row at a time. It writes only what those services would: every
//! friendship as both of its rows. Every seeded user's password is
//! [`DEMO_PASSWORD`], hashed once.

pub mod demo;

use std::{collections::HashSet, time::Instant};

use chrono::{Duration, Utc};
use entity::{friendship, user};
use rand::{Rng, SeedableRng, rngs::StdRng, seq::IndexedRandom};
use sea_orm::{
    ActiveValue::Set, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, PaginatorTrait,
    TransactionTrait,
};
use uuid::Uuid;

use crate::{
    auth::PasswordHasher,
    domain::{
        discovery::{self, GenderSet},
        presence::PresenceVisibility,
        social::FriendListVisibility,
        users::Gender,
    },
};

pub const DEMO_PASSWORD: &str = "kith-demo-password";

/// Rows per INSERT: under SQLite's and PostgreSQL's bound-parameter limits.
const USER_ROWS_PER_INSERT: usize = 1_000;
const FRIENDSHIP_ROWS_PER_INSERT: usize = 10_000;

const FIRST_NAMES: &[&str] = &[
    "ada", "alan", "amara", "ana", "ben", "chen", "chloe", "dara", "david", "elena", "emma",
    "fatima", "felix", "grace", "hana", "hugo", "ines", "ivan", "jamal", "jin", "julia", "kai",
    "kofi", "lara", "leo", "lina", "lucas", "maya", "mei", "mila", "noah", "nora", "omar", "priya",
    "rafael", "rosa", "sami", "sara", "sofia", "tariq", "theo", "uma", "victor", "wen", "yara",
    "yusuf", "zara", "zoe",
];
const LAST_NAMES: &[&str] = &[
    "adeyemi",
    "becker",
    "costa",
    "dubois",
    "evans",
    "fischer",
    "garcia",
    "haddad",
    "ito",
    "jensen",
    "kim",
    "lopez",
    "muller",
    "nakamura",
    "novak",
    "okafor",
    "park",
    "quinn",
    "rossi",
    "silva",
    "smith",
    "tanaka",
    "umar",
    "varga",
    "wang",
    "weber",
    "xu",
    "yilmaz",
    "zhang",
    "zielinski",
];
const INTERESTS: &[&str] = &[
    "hiking",
    "jazz",
    "cooking",
    "photography",
    "running",
    "yoga",
    "chess",
    "climbing",
    "cinema",
    "travel",
    "reading",
    "gaming",
    "cycling",
    "painting",
    "techno",
    "coffee",
    "surfing",
    "tennis",
    "dancing",
    "poetry",
    "gardening",
    "football",
    "basketball",
    "swimming",
    "baking",
    "anime",
    "podcasts",
    "theatre",
    "wine",
    "skiing",
    "design",
    "startups",
    "volunteering",
    "dogs",
    "cats",
    "board games",
    "karaoke",
    "meditation",
    "history",
    "astronomy",
];
/// (latitude, longitude) of the cities seeded users live around.
const CITIES: &[(f64, f64)] = &[
    (52.520, 13.405),   // Berlin
    (51.507, -0.128),   // London
    (40.713, -74.006),  // New York
    (-23.551, -46.633), // São Paulo
    (35.676, 139.650),  // Tokyo
    (6.524, 3.379),     // Lagos
];

#[derive(Clone, Copy, Debug)]
pub struct SeedOptions {
    pub users: usize,
    /// Average friends per user.
    pub friends: usize,
    /// The random seed: the same options give the same graph shape.
    pub seed: u64,
}

#[derive(Debug)]
pub struct SeedReport {
    pub users: usize,
    pub friendships: usize,
    pub seconds: f64,
}

pub async fn run(
    db: &DatabaseConnection,
    hasher: &PasswordHasher,
    options: SeedOptions,
) -> anyhow::Result<SeedReport> {
    let started = Instant::now();
    let mut rng = StdRng::seed_from_u64(options.seed);
    // Numbering continues after the users already there, so seeding twice adds.
    let offset = user::Entity::find().count(db).await? as usize;
    let password_hash = hasher.hash(DEMO_PASSWORD).await?;
    let ids: Vec<Uuid> = (0..options.users).map(|_| Uuid::now_v7()).collect();
    let edges = friend_graph(options.users, options.friends, &mut rng);
    let mut degrees = vec![0i64; options.users];
    for &(a, b) in &edges {
        degrees[a] += 1;
        degrees[b] += 1;
    }

    let txn = db.begin().await?;
    for (chunk_index, chunk) in ids.chunks(USER_ROWS_PER_INSERT).enumerate() {
        let rows: Vec<user::ActiveModel> = chunk
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let index = chunk_index * USER_ROWS_PER_INSERT + i;
                let user = demo_user(*id, offset + index, &password_hash, &mut rng);
                user::ActiveModel {
                    friend_count: Set(degrees[index]),
                    ..user
                }
            })
            .collect();
        user::Entity::insert_many(rows)
            .exec_without_returning(&txn)
            .await?;
    }
    let now = Utc::now();
    let rows = edges.iter().flat_map(|&(a, b)| {
        [(ids[a], ids[b]), (ids[b], ids[a])].map(|(user_id, friend_id)| friendship::ActiveModel {
            user_id: Set(user_id),
            friend_id: Set(friend_id),
            created_at: Set(now),
        })
    });
    let mut batch = Vec::with_capacity(FRIENDSHIP_ROWS_PER_INSERT);
    for row in rows {
        batch.push(row);
        if batch.len() == FRIENDSHIP_ROWS_PER_INSERT {
            friendship::Entity::insert_many(std::mem::take(&mut batch))
                .exec_without_returning(&txn)
                .await?;
        }
    }
    if !batch.is_empty() {
        friendship::Entity::insert_many(batch)
            .exec_without_returning(&txn)
            .await?;
    }
    txn.commit().await?;
    // Fresh statistics, so the planner knows the tables just grew by millions;
    // on PostgreSQL also the visibility map, so index-only scans stay index-only.
    let analyze = match db.get_database_backend() {
        DbBackend::Postgres => "VACUUM ANALYZE users, friendships",
        _ => "ANALYZE",
    };
    db.execute_unprepared(analyze).await?;
    Ok(SeedReport {
        users: options.users,
        friendships: edges.len(),
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn demo_user(id: Uuid, number: usize, password_hash: &str, rng: &mut StdRng) -> user::ActiveModel {
    let first = *FIRST_NAMES.choose(rng).expect("names");
    let last = *LAST_NAMES.choose(rng).expect("names");
    let today = Utc::now().date_naive();
    let age_days = rng.random_range(18 * 365..60 * 365);
    let birthdate = today - Duration::days(age_days);
    let interest_count = rng.random_range(3..=8);
    let interests: Vec<&str> = INTERESTS
        .choose_multiple(rng, interest_count)
        .copied()
        .collect();
    let (city_lat, city_lon) = *CITIES.choose(rng).expect("cities");
    // About 15 km of spread around the city centre.
    let (north, east) = gaussian_pair(rng);
    let latitude = city_lat + north * 0.135;
    let longitude = city_lon + east * 0.135 / city_lat.to_radians().cos().max(0.2);
    let gender = match rng.random_range(0..100) {
        0..48 => "FEMALE",
        48..96 => "MALE",
        _ => "NONBINARY",
    };
    let created_at = Utc::now() - Duration::minutes(rng.random_range(0..60 * 24 * 365));
    let last_seen_at = Utc::now() - Duration::minutes(rng.random_range(0..60 * 24 * 30));
    user::ActiveModel {
        id: Set(id),
        username: Set(format!("{first}.{last}.{number}")),
        email: Set(None),
        phone: Set(None),
        password_hash: Set(Some(password_hash.to_owned())),
        display_name: Set(Some(format!("{} {}", capitalise(first), capitalise(last)))),
        bio: Set(None),
        birthdate: Set(Some(birthdate)),
        gender: Set(Some(gender.to_owned())),
        interests: Set(serde_json::json!(interests)),
        latitude: Set(Some(latitude)),
        longitude: Set(Some(longitude)),
        last_seen_at: Set(Some(last_seen_at)),
        friend_list_visibility: Set(FriendListVisibility::default().as_str().to_owned()),
        presence_visibility: Set(PresenceVisibility::default().as_str().to_owned()),
        friend_count: Set(0),
        created_at: Set(created_at),
        updated_at: Set(created_at),
        ..discovery_preferences(gender, age_days / 365, rng)
    }
}

/// What a seeded user wants: mostly one gender (the other binary one, now and
/// then anyone), an age range around their own, 20 to 100 km; nearly all
/// discoverable.
fn discovery_preferences(gender: &str, age: i64, rng: &mut StdRng) -> user::ActiveModel {
    let genders = match (gender, rng.random_range(0..100)) {
        (_, 0..10) => GenderSet::ALL,
        ("FEMALE", 10..20) => GenderSet::of(&[Gender::Female]),
        ("FEMALE", _) => GenderSet::of(&[Gender::Male]),
        ("MALE", 10..20) => GenderSet::of(&[Gender::Male]),
        ("MALE", _) => GenderSet::of(&[Gender::Female]),
        _ => GenderSet::of(&[Gender::Female, Gender::Nonbinary]),
    };
    let age = age as i32;
    let (min_age, max_age) = discovery::default_age_range(age);
    user::ActiveModel {
        discoverable: Set(rng.random_bool(0.95)),
        discovery_min_age: Set((min_age + rng.random_range(0..=4)).min(age)),
        discovery_max_age: Set((max_age - rng.random_range(0..=4)).max(age)),
        discovery_genders: Set(genders.bits()),
        discovery_max_distance_km: Set(*[20, 30, 50, 50, 80, 100].choose(rng).expect("distances")),
        discovery_updated_at: Set(Some(Utc::now())),
        ..Default::default()
    }
}

/// Preferential attachment: every newcomer links to `average / 2` distinct earlier
/// users, each picked with probability proportional to its degree so far, which
/// makes the average degree `average` and the degree distribution a power law.
pub fn friend_graph(users: usize, average: usize, rng: &mut impl Rng) -> Vec<(usize, usize)> {
    let per_newcomer = (average / 2).max(1);
    let mut edges = Vec::with_capacity(users * per_newcomer);
    // Each user appears once per friendship end: a uniform pick from this list
    // is a degree-proportional pick of a user.
    let mut ends: Vec<usize> = Vec::with_capacity(2 * users * per_newcomer);
    let mut chosen = HashSet::with_capacity(per_newcomer);
    for newcomer in 0..users {
        chosen.clear();
        let wanted = per_newcomer.min(newcomer);
        while chosen.len() < wanted {
            // Mostly by degree; now and then anyone, so early users are not the
            // only hubs and nobody is unreachable.
            let other = if ends.is_empty() || rng.random_bool(0.1) {
                rng.random_range(0..newcomer)
            } else {
                ends[rng.random_range(0..ends.len())]
            };
            chosen.insert(other);
        }
        for &other in &chosen {
            edges.push((newcomer, other));
            ends.push(newcomer);
            ends.push(other);
        }
    }
    edges
}

/// Two independent standard normal numbers (Box–Muller).
fn gaussian_pair(rng: &mut impl Rng) -> (f64, f64) {
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random();
    let radius = (-2.0 * u1.ln()).sqrt();
    let angle = std::f64::consts::TAU * u2;
    (radius * angle.cos(), radius * angle.sin())
}

fn capitalise(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_friend_graph_has_the_asked_average_and_a_heavy_tail() {
        let mut rng = StdRng::seed_from_u64(7);
        let users = 5_000;
        let edges = friend_graph(users, 20, &mut rng);
        let mut degree = vec![0usize; users];
        let mut pairs = HashSet::new();
        for &(a, b) in &edges {
            assert_ne!(a, b, "nobody befriends themselves");
            assert!(pairs.insert((a.min(b), a.max(b))), "no friendship twice");
            degree[a] += 1;
            degree[b] += 1;
        }
        let average = 2.0 * edges.len() as f64 / users as f64;
        assert!((19.0..=20.0).contains(&average), "average degree {average}");
        let max = *degree.iter().max().unwrap();
        assert!(max > 10 * 20, "hubs exist: the best connected has {max}");
    }
}
