//! How well a candidate suits a viewer, and what of it is shown: the parts of a
//! recommendation's `compatibility`, its score, and the rounded distance. Pure
//! functions, so the rules are tested on their own.
//!
//! Candidates are ranked on five parts, each 0–1. Four are shown, and the shown
//! `score` is made of those four alone. The fifth, affinity, only ranks: it is
//! 1 when the candidate already liked the viewer, which is never revealed as
//! such, and for everyone else a keyed chance that is also 1 about a third of
//! the time. So a liker tends to come earlier, nothing shown can be solved for
//! the like, and the order of otherwise equal candidates varies.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::auth::signing_key::derive_key;

const EARTH_RADIUS_KM: f64 = 6371.0;
/// A candidate is placed at the centre of their cell of this many degrees
/// (about a kilometre) for everything discovery measures, so moving about
/// cannot pin their exact spot down.
pub const DISTANCE_GRID_DEGREES: f64 = 0.01;
/// Recent activity halves every two days offline.
const ACTIVITY_HALF_LIFE_HOURS: f64 = 48.0;

const WEIGHT_INTERESTS: f64 = 0.30;
const WEIGHT_DISTANCE: f64 = 0.25;
const WEIGHT_ACTIVITY: f64 = 0.15;
/// Also the most mutual friends can add to a score.
pub const MUTUAL_FRIENDS_WEIGHT: f64 = 0.15;
const WEIGHT_AFFINITY: f64 = 0.15;
/// The share of non-likers whose affinity is also 1.
const AFFINITY_FULL_SHARE: f64 = 0.3;

/// The shown parts of a compatibility, each 0–1.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Parts {
    pub shared_interests: f64,
    pub distance: f64,
    pub recent_activity: f64,
    pub mutual_friends: f64,
}

/// The shown parts, weighed.
fn shown_sum(parts: &Parts) -> f64 {
    WEIGHT_INTERESTS * parts.shared_interests
        + WEIGHT_DISTANCE * parts.distance
        + WEIGHT_ACTIVITY * parts.recent_activity
        + MUTUAL_FRIENDS_WEIGHT * parts.mutual_friends
}

/// The score shown, 0–1: the shown parts alone.
pub fn score(parts: &Parts) -> f64 {
    (shown_sum(parts) / (1.0 - WEIGHT_AFFINITY)).clamp(0.0, 1.0)
}

/// What candidates are ranked by (never shown): the shown parts and affinity.
pub fn rank(parts: &Parts, affinity: f64) -> f64 {
    shown_sum(parts) + WEIGHT_AFFINITY * affinity
}

/// Great-circle distance between two (latitude, longitude) points.
pub fn haversine_km(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (lat1, lon1) = (a.0.to_radians(), a.1.to_radians());
    let (lat2, lon2) = (b.0.to_radians(), b.1.to_radians());
    let h = ((lat2 - lat1) / 2.0).sin().powi(2)
        + lat1.cos() * lat2.cos() * ((lon2 - lon1) / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * h.sqrt().min(1.0).asin()
}

/// Where discovery places a candidate: the centre of their ~1 km grid cell,
/// never their exact position.
///
/// Why a type: every geometric step of a deck (the box around the viewer, the
/// distance limit, the distance part of the score, the order) must see this
/// and nothing finer. Once one step read exact coordinates, an attacker moving
/// their own position by small steps with a 1 km limit could watch a
/// candidate enter and leave their decks and bisect the exact spot (it took
/// 222 requests). Everything inside one cell now deals the same decks.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CoarsePosition {
    latitude: f64,
    longitude: f64,
}

impl CoarsePosition {
    /// The centre of the cell holding (`latitude`, `longitude`).
    pub fn of(latitude: f64, longitude: f64) -> Self {
        let snap = |degrees: f64| (degrees / DISTANCE_GRID_DEGREES).round() * DISTANCE_GRID_DEGREES;
        Self {
            latitude: snap(latitude).clamp(-90.0, 90.0),
            longitude: snap(longitude).clamp(-180.0, 180.0),
        }
    }

    pub fn latitude(self) -> f64 {
        self.latitude
    }

    pub fn longitude(self) -> f64 {
        self.longitude
    }
}

/// The distance shown to the viewer (whose own position may be exact): to
/// the candidate's cell centre, in whole kilometres, at least 1.
pub fn shown_distance_km(viewer: (f64, f64), candidate: CoarsePosition) -> i32 {
    let cell = (candidate.latitude, candidate.longitude);
    (haversine_km(viewer, cell).round() as i32).max(1)
}

/// A user's interests, each with one bit of a 64-bit signature (by a hash
/// of the tag). Two lists can only share a tag whose bit both signatures
/// hold, so most of a deck's thousands of comparisons end without reading any
/// text.
#[derive(Clone, Debug, Default)]
pub struct Interests {
    tags: Vec<String>,
    /// Each tag's bit, in the same order.
    bits: Vec<u64>,
    signature: u64,
}

impl Interests {
    pub fn new(tags: Vec<String>) -> Self {
        let bits: Vec<u64> = tags.iter().map(|tag| bit_of(tag)).collect();
        let signature = bits.iter().fold(0, |all, bit| all | bit);
        Self {
            tags,
            bits,
            signature,
        }
    }

    /// Whether any of `tags` is here.
    pub fn any_of(&self, tags: &Interests) -> bool {
        self.signature & tags.signature != 0 && self.common_with(tags).next().is_some()
    }

    /// This list's tags that `other` holds too, in this list's order.
    fn common_with<'a>(&'a self, other: &'a Interests) -> impl Iterator<Item = &'a String> + 'a {
        self.tags
            .iter()
            .zip(&self.bits)
            .filter(move |(tag, bit)| *bit & other.signature != 0 && other.tags.contains(tag))
            .map(|(tag, _)| tag)
    }
}

/// FNV-1a, folded to one of 64 bits: stable, and enough to tell tags apart
/// in most pairs (a collision only costs a text comparison).
fn bit_of(tag: &str) -> u64 {
    let hash = tag.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    1 << (hash % 64)
}

/// How much two users' interests overlap: twice the shared count over both
/// counts (0 when either has none).
pub fn shared_part(viewer: &Interests, candidate: &Interests) -> f64 {
    let total = viewer.tags.len() + candidate.tags.len();
    if total == 0 || viewer.signature & candidate.signature == 0 {
        return 0.0;
    }
    2.0 * candidate.common_with(viewer).count() as f64 / total as f64
}

/// The interests in common, in the candidate's order.
pub fn common_interests(viewer: &Interests, candidate: &Interests) -> Vec<String> {
    candidate.common_with(viewer).cloned().collect()
}

/// Nearer is better: 1 next door, 0 at the edge of the range.
pub fn distance_part(km: i32, limit_km: i32) -> f64 {
    (1.0 - f64::from(km) / f64::from(limit_km.max(1))).clamp(0.0, 1.0)
}

/// 1 while online; halving every two days since they were last seen.
pub fn activity_part(online: bool, last_seen_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> f64 {
    if online {
        return 1.0;
    }
    match last_seen_at {
        Some(seen) => {
            let hours = (now - seen).num_seconds().max(0) as f64 / 3600.0;
            0.5f64.powf(hours / ACTIVITY_HALF_LIFE_HOURS)
        }
        None => 0.0,
    }
}

/// Each mutual friend counts, with diminishing returns: 2 make a half.
pub fn mutual_part(mutual_friends: i64) -> f64 {
    1.0 - 0.5f64.powf(mutual_friends.max(0) as f64 / 2.0)
}

/// The key that makes affinity unpredictable to clients, derived from a server
/// secret so every replica ranks alike.
#[derive(Clone)]
pub struct AffinityKey([u8; 32]);

impl AffinityKey {
    pub fn derive(secret: &[u8]) -> Self {
        Self(derive_key(secret, "kith discovery affinity"))
    }

    /// 1 when the candidate liked the viewer; otherwise a stable chance for
    /// the pair, 1 for about a third of pairs.
    pub fn affinity(&self, viewer: Uuid, candidate: Uuid, liked_viewer: bool) -> f64 {
        if liked_viewer {
            return 1.0;
        }
        let digest = Sha256::new()
            .chain_update(self.0)
            .chain_update(viewer.as_bytes())
            .chain_update(candidate.as_bytes())
            .finalize();
        let bits = u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"));
        let uniform = (bits >> 11) as f64 / (1u64 << 53) as f64;
        (uniform / (1.0 - AFFINITY_FULL_SHARE)).min(1.0)
    }
}

/// The latitude and longitude ranges that hold every point within `km` of a
/// centre; `longitude` is `None` where the box would wrap the antimeridian or
/// a pole (then the exact distance alone decides).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BoundingBox {
    pub latitude: (f64, f64),
    pub longitude: Option<(f64, f64)>,
}

impl BoundingBox {
    pub fn around(latitude: f64, longitude: f64, km: f64) -> Self {
        let degrees_latitude = km / 111.0;
        let lat_min = latitude - degrees_latitude;
        let lat_max = latitude + degrees_latitude;
        let widest = lat_min.abs().max(lat_max.abs());
        let longitude_range = if widest < 89.0 {
            let degrees_longitude = km / (111.0 * widest.to_radians().cos());
            let (lon_min, lon_max) = (longitude - degrees_longitude, longitude + degrees_longitude);
            (lon_min >= -180.0 && lon_max <= 180.0).then_some((lon_min, lon_max))
        } else {
            None
        };
        Self {
            latitude: (lat_min.max(-90.0), lat_max.min(90.0)),
            longitude: longitude_range,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BERLIN: (f64, f64) = (52.520, 13.405);
    const POTSDAM: (f64, f64) = (52.391, 13.065);

    #[test]
    fn distances_are_great_circles() {
        let km = haversine_km(BERLIN, POTSDAM);
        assert!((26.0..28.0).contains(&km), "{km}");
        assert_eq!(haversine_km(BERLIN, BERLIN), 0.0);
    }

    #[test]
    fn shown_distances_are_whole_coarse_and_at_least_one() {
        let coarse = |(lat, lon): (f64, f64)| CoarsePosition::of(lat, lon);
        assert_eq!(shown_distance_km(BERLIN, coarse(BERLIN)), 1);
        assert_eq!(shown_distance_km(BERLIN, coarse((52.5201, 13.4051))), 1);
        assert_eq!(shown_distance_km(BERLIN, coarse(POTSDAM)), 27);
        // Moving within a cell moves nothing.
        assert_eq!(
            shown_distance_km(BERLIN, coarse((52.3910, 13.0650))),
            shown_distance_km(BERLIN, coarse((52.3931, 13.0669)))
        );
    }

    #[test]
    fn positions_in_one_cell_are_one_position() {
        let a = CoarsePosition::of(52.5162, 13.4013);
        let b = CoarsePosition::of(52.5238, 13.3987);
        assert_eq!(a, b);
        assert!((a.latitude() - 52.52).abs() < 1e-9);
        assert!((a.longitude() - 13.40).abs() < 1e-9);
        // Snapping what is already snapped changes nothing, even at the edges.
        for (lat, lon) in [(89.999, 179.999), (-89.996, -179.996), (0.0, 0.0)] {
            let once = CoarsePosition::of(lat, lon);
            assert_eq!(CoarsePosition::of(once.latitude(), once.longitude()), once);
        }
    }

    #[test]
    fn every_point_within_range_is_inside_the_box() {
        for (lat, lon) in [BERLIN, (-33.9, 151.2), (69.6, 18.9)] {
            let bounds = BoundingBox::around(lat, lon, 50.0);
            for bearing in 0..36 {
                let angle = f64::from(bearing * 10).to_radians();
                // A point about 49.9 km away in this direction.
                let dlat = 49.9 / 111.2 * angle.cos();
                let dlon = 49.9 / (111.2 * (lat + dlat).to_radians().cos()) * angle.sin();
                let point = (lat + dlat, lon + dlon);
                assert!(haversine_km((lat, lon), point) < 50.5);
                assert!((bounds.latitude.0..=bounds.latitude.1).contains(&point.0));
                let (lo, hi) = bounds.longitude.unwrap();
                assert!((lo..=hi).contains(&point.1), "{point:?} outside {bounds:?}");
            }
        }
        assert_eq!(BoundingBox::around(0.0, 179.9, 50.0).longitude, None);
    }

    #[test]
    fn interests_compare_exactly_whatever_their_bits() {
        let tags = |t: &[&str]| Interests::new(t.iter().map(|s| s.to_string()).collect());
        // Sixty-five tags: at least two share a bit, and still only the
        // same tag counts as shared.
        let many: Vec<String> = (0..65).map(|i| format!("tag{i}")).collect();
        let all = Interests::new(many.clone());
        for tag in &many {
            let one = tags(&[tag]);
            assert_eq!(common_interests(&one, &all), std::slice::from_ref(tag));
            assert!(all.any_of(&one));
        }
        assert!(!all.any_of(&tags(&["none of these"])));
    }

    #[test]
    fn parts_stay_between_zero_and_one() {
        let tags = |t: &[&str]| Interests::new(t.iter().map(|s| s.to_string()).collect());
        let (viewer, candidate) = (tags(&["jazz", "chess"]), tags(&["yoga", "chess"]));
        assert_eq!(shared_part(&viewer, &candidate), 0.5);
        assert_eq!(common_interests(&viewer, &candidate), ["chess"]);
        assert_eq!(shared_part(&tags(&[]), &tags(&[])), 0.0);
        assert_eq!(shared_part(&viewer, &tags(&["yoga"])), 0.0);
        assert_eq!(distance_part(1, 50), 0.98);
        assert_eq!(distance_part(80, 50), 0.0);
        let now = Utc::now();
        assert_eq!(activity_part(true, None, now), 1.0);
        let two_days = now - chrono::Duration::hours(48);
        assert!((activity_part(false, Some(two_days), now) - 0.5).abs() < 1e-9);
        assert_eq!(mutual_part(0), 0.0);
        assert_eq!(mutual_part(2), 0.5);
        let full = Parts {
            shared_interests: 1.0,
            distance: 1.0,
            recent_activity: 1.0,
            mutual_friends: 1.0,
        };
        assert!((score(&full) - 1.0).abs() < 1e-9);
        assert_eq!(score(&Parts::default()), 0.0);
        assert!((rank(&full, 1.0) - 1.0).abs() < 1e-9);
        assert!(rank(&full, 1.0) > rank(&full, 0.5));
        assert_eq!(rank(&Parts::default(), 0.0), 0.0);
    }

    #[test]
    fn affinity_hides_likes_among_chance() {
        let key = AffinityKey::derive(b"secret");
        let viewer = Uuid::now_v7();
        assert_eq!(key.affinity(viewer, Uuid::now_v7(), true), 1.0);
        let others: Vec<f64> = (0..2000)
            .map(|_| key.affinity(viewer, Uuid::now_v7(), false))
            .collect();
        let full = others.iter().filter(|a| **a == 1.0).count();
        assert!((450..750).contains(&full), "{full} of 2000 look like likes");
        assert!(others.iter().all(|a| (0.0..=1.0).contains(a)));
        let pair = (Uuid::now_v7(), Uuid::now_v7());
        assert_eq!(
            key.affinity(pair.0, pair.1, false),
            key.affinity(pair.0, pair.1, false),
            "stable for a pair"
        );
    }
}
