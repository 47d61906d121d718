//! An account: identity, credentials and profile.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Lower-case, unique; `a-z 0-9 _ .`, 3 to 32 characters.
    #[sea_orm(unique)]
    pub username: String,
    /// Lower-case, unique when present.
    #[sea_orm(unique)]
    pub email: Option<String>,
    /// E.164, unique when present.
    #[sea_orm(unique)]
    pub phone: Option<String>,
    /// Argon2id PHC string; absent for accounts created by SMS or a login provider.
    pub password_hash: Option<String>,
    pub display_name: Option<String>,
    pub bio: Option<String>,
    pub birthdate: Option<Date>,
    /// `FEMALE`, `MALE` or `NONBINARY`.
    pub gender: Option<String>,
    /// A JSON array of lower-case tags.
    pub interests: Json,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub last_seen_at: Option<DateTimeUtc>,
    /// Who may see the friend list: `EVERYONE`, `FRIENDS` or `ONLY_ME`.
    pub friend_list_visibility: String,
    /// Who may see presence and `lastSeenAt`: `EVERYONE`, `FRIENDS` or
    /// `ONLY_ME`. Defaulted when absent, so rows cached before the column
    /// existed still read.
    #[serde(default = "friends_only")]
    pub presence_visibility: String,
    /// How many friends; kept with the `friendships` rows in one transaction.
    pub friend_count: i64,
    /// Shown in others' recommendations.
    pub discoverable: bool,
    /// The ages, genders (a bit set: FEMALE 1, MALE 2, NONBINARY 4) and
    /// distance the user wants recommended, and accepts recommending them to.
    pub discovery_min_age: i32,
    pub discovery_max_age: i32,
    pub discovery_genders: i32,
    pub discovery_max_distance_km: i32,
    /// Null until the user set their preferences themselves.
    pub discovery_updated_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::session::Entity")]
    Session,
}

impl Related<super::session::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Session.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}

fn friends_only() -> String {
    "FRIENDS".to_owned()
}
