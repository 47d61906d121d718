//! What each user wants recommended (their preferences, the `discovery_*`
//! columns of `users`), and what discovery needs of a user to recommend them
//! or to them (their [`Profile`]).

use chrono::{NaiveDate, Utc};
use entity::user;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, TransactionTrait,
    sea_query::Expr,
};
use uuid::Uuid;

use super::Discovery;
use crate::{
    domain::{
        social,
        users::{self, Gender},
    },
    error::{AppError, AppResult},
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

impl Discovery {
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
        check_age_range(wanted.min_age, wanted.max_age).map_err(|err| match err {
            // Crossed bounds blame maxAge; when only minAge was sent (the
            // stored maxAge being valid), minAge is the one to fix.
            AppError::BadUserInput {
                field: Some("maxAge"),
                ..
            } if changes.max_age.is_none() => {
                AppError::bad_input("minAge", "minAge must not be above maxAge")
            }
            err => err,
        })?;
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
