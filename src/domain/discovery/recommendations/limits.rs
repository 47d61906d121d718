//! The limits a deck is dealt with: the viewer's preferences (or the widest),
//! narrowed by the call's filter.

use serde::{Deserialize, Serialize};

use crate::{
    domain::{
        discovery::{self, GenderSet, Preferences},
        users::{self, Gender},
    },
    error::AppResult,
};

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
pub(super) struct Limits {
    pub(super) min_age: i32,
    pub(super) max_age: i32,
    pub(super) genders: GenderSet,
    pub(super) max_distance_km: i32,
    pub(super) interests: Vec<String>,
}

impl Limits {
    /// The viewer's preferences (or the widest limits), with the filter's
    /// fields in place of theirs.
    pub(super) fn resolve(
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
