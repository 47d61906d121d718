//! A profile's fields, the rules for what each may hold, and updating them.

use chrono::{Datelike, NaiveDate, Utc};
use entity::user;
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ConnectionTrait, EntityTrait,
};
use uuid::Uuid;

use super::{FriendListVisibility, PresenceVisibility};
use crate::error::{AppError, AppResult};

pub const MAX_INTERESTS: usize = 20;
const MAX_INTEREST_CHARS: usize = 32;
const MIN_AGE: i32 = 13;
const MAX_AGE: i32 = 120;

/// Free-text profile fields and their limits.
#[derive(Clone, Copy)]
pub enum ProfileText {
    DisplayName,
    Bio,
}

impl ProfileText {
    fn field(self) -> &'static str {
        match self {
            Self::DisplayName => "displayName",
            Self::Bio => "bio",
        }
    }

    fn max_chars(self) -> usize {
        match self {
            Self::DisplayName => 64,
            Self::Bio => 500,
        }
    }

    /// Trims the text; empty means "none". Too long, or holding control
    /// characters other than a bio's line breaks, is `BAD_USER_INPUT`.
    pub fn parse(self, raw: &str) -> AppResult<Option<String>> {
        let text = raw.trim();
        if text.chars().count() > self.max_chars() {
            return Err(AppError::bad_input(
                self.field(),
                format!(
                    "{} must be at most {} characters",
                    self.field(),
                    self.max_chars()
                ),
            ));
        }
        let allowed_control = |c: char| matches!(self, Self::Bio) && c == '\n';
        if text.chars().any(|c| c.is_control() && !allowed_control(c)) {
            return Err(AppError::bad_input(
                self.field(),
                format!("{} contains control characters", self.field()),
            ));
        }
        Ok((!text.is_empty()).then(|| text.to_owned()))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gender {
    Female,
    Male,
    Nonbinary,
}

impl Gender {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Female => "FEMALE",
            Self::Male => "MALE",
            Self::Nonbinary => "NONBINARY",
        }
    }

    pub fn from_stored(value: &str) -> Option<Self> {
        match value {
            "FEMALE" => Some(Self::Female),
            "MALE" => Some(Self::Male),
            "NONBINARY" => Some(Self::Nonbinary),
            _ => None,
        }
    }
}

/// A user's interests as stored (a JSON array of tags); none if unreadable.
pub fn interests_of(stored: &serde_json::Value) -> Vec<String> {
    serde_json::from_value(stored.clone()).unwrap_or_default()
}

/// Age in whole years on `today`.
pub fn age_on(birthdate: NaiveDate, today: NaiveDate) -> i32 {
    let mut age = today.year() - birthdate.year();
    if (today.month(), today.day()) < (birthdate.month(), birthdate.day()) {
        age -= 1;
    }
    age
}

pub fn check_birthdate(birthdate: NaiveDate) -> AppResult<()> {
    let age = age_on(birthdate, Utc::now().date_naive());
    if !(MIN_AGE..=MAX_AGE).contains(&age) {
        return Err(AppError::bad_input(
            "birthdate",
            format!("birthdate must make the user {MIN_AGE} to {MAX_AGE} years old"),
        ));
    }
    Ok(())
}

/// Trims, lower-cases and de-duplicates tags, keeping their order.
pub fn normalize_interests(raw: &[String]) -> AppResult<Vec<String>> {
    let too_many =
        || AppError::bad_input("interests", format!("at most {MAX_INTERESTS} interests"));
    // Bounded before the de-duplication below, which is quadratic.
    if raw.len() > 4 * MAX_INTERESTS {
        return Err(too_many());
    }
    let mut tags: Vec<String> = Vec::with_capacity(raw.len());
    for tag in raw {
        let tag = tag.trim().to_lowercase();
        if tag.is_empty()
            || tag.chars().count() > MAX_INTEREST_CHARS
            || tag.chars().any(char::is_control)
        {
            return Err(AppError::bad_input(
                "interests",
                format!("each interest must be 1 to {MAX_INTEREST_CHARS} characters"),
            ));
        }
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    if tags.len() > MAX_INTERESTS {
        return Err(too_many());
    }
    Ok(tags)
}

pub fn check_location(latitude: f64, longitude: f64) -> AppResult<()> {
    if !(-90.0..=90.0).contains(&latitude) {
        return Err(AppError::bad_input(
            "latitude",
            "latitude must be within -90 and 90",
        ));
    }
    if !(-180.0..=180.0).contains(&longitude) {
        return Err(AppError::bad_input(
            "longitude",
            "longitude must be within -180 and 180",
        ));
    }
    Ok(())
}

/// A profile update: `None` leaves a field as it is, `Some(None)` clears it.
#[derive(Default)]
pub struct ProfileChanges {
    pub display_name: Option<Option<String>>,
    pub bio: Option<Option<String>>,
    pub birthdate: Option<Option<NaiveDate>>,
    pub gender: Option<Option<Gender>>,
    pub interests: Option<Vec<String>>,
    pub location: Option<Option<(f64, f64)>>,
    pub friend_list_visibility: Option<FriendListVisibility>,
    pub presence_visibility: Option<PresenceVisibility>,
}

/// A profile update whose fields were checked against their rules (and the
/// interests normalised): what [`update_profile`] writes.
pub struct CheckedChanges {
    changes: ProfileChanges,
    interests: Option<Vec<String>>,
}

impl ProfileChanges {
    /// Checks the fields the update sets: the first that breaks its rule is
    /// `BAD_USER_INPUT`.
    pub fn check(self) -> AppResult<CheckedChanges> {
        if let Some(Some(birthdate)) = self.birthdate {
            check_birthdate(birthdate)?;
        }
        if let Some(Some((latitude, longitude))) = self.location {
            check_location(latitude, longitude)?;
        }
        let interests = self
            .interests
            .as_deref()
            .map(normalize_interests)
            .transpose()?;
        Ok(CheckedChanges {
            changes: self,
            interests,
        })
    }
}

impl CheckedChanges {
    /// The birthdate the update sets, if it sets one: discovery's age range
    /// follows it (see `discovery::follow_birthdate`).
    pub fn new_birthdate(&self) -> Option<NaiveDate> {
        self.changes.birthdate.flatten()
    }

    /// The fields the update sets, as the API names them.
    pub fn fields(&self) -> Vec<&'static str> {
        let c = &self.changes;
        [
            ("displayName", c.display_name.is_some()),
            ("bio", c.bio.is_some()),
            ("birthdate", c.birthdate.is_some()),
            ("gender", c.gender.is_some()),
            ("interests", c.interests.is_some()),
            ("location", c.location.is_some()),
            ("friendListVisibility", c.friend_list_visibility.is_some()),
            ("presenceVisibility", c.presence_visibility.is_some()),
        ]
        .into_iter()
        .filter_map(|(field, set)| set.then_some(field))
        .collect()
    }
}

/// `Set` when the update names the field, `NotSet` when it leaves it alone.
fn set_if<T: Into<sea_orm::Value>>(change: Option<T>) -> sea_orm::ActiveValue<T> {
    change.map_or(NotSet, Set)
}

/// Changes the user's profile through `db` (the change's transaction); the
/// caller forgets their cached row once it commits.
pub async fn update_profile(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    checked: CheckedChanges,
) -> AppResult<user::Model> {
    let CheckedChanges { changes, interests } = checked;
    let update = user::ActiveModel {
        id: Set(user_id),
        display_name: set_if(changes.display_name),
        bio: set_if(changes.bio),
        birthdate: set_if(changes.birthdate),
        gender: set_if(changes.gender.map(|g| g.map(|g| g.as_str().to_owned()))),
        interests: set_if(interests.map(|tags| serde_json::json!(tags))),
        latitude: set_if(changes.location.map(|l| l.map(|(lat, _)| lat))),
        longitude: set_if(changes.location.map(|l| l.map(|(_, lon)| lon))),
        friend_list_visibility: set_if(
            changes
                .friend_list_visibility
                .map(|v| v.as_str().to_owned()),
        ),
        presence_visibility: set_if(changes.presence_visibility.map(|v| v.as_str().to_owned())),
        updated_at: Set(Utc::now()),
        ..Default::default()
    };
    let updated = user::Entity::update(update)
        .exec(db)
        .await
        .map_err(|err| match err {
            sea_orm::DbErr::RecordNotUpdated => AppError::not_found("account not found"),
            other => AppError::from(other),
        })?;
    Ok(updated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn age_counts_whole_years() {
        let birth = NaiveDate::from_ymd_opt(2000, 6, 15).unwrap();
        assert_eq!(
            age_on(birth, NaiveDate::from_ymd_opt(2026, 6, 14).unwrap()),
            25
        );
        assert_eq!(
            age_on(birth, NaiveDate::from_ymd_opt(2026, 6, 15).unwrap()),
            26
        );
    }

    #[test]
    fn interests_are_normalised_and_bounded() {
        let tags =
            normalize_interests(&[" Hiking ".into(), "hiking".into(), "Jazz".into()]).unwrap();
        assert_eq!(tags, ["hiking", "jazz"]);
        let many: Vec<String> = (0..21).map(|i| format!("tag{i}")).collect();
        assert!(normalize_interests(&many).is_err());
        assert!(normalize_interests(&["  ".into()]).is_err());
    }
}
