//! Users: reading users, searching them, and the rules for what a profile may
//! hold. Owns the `users` profile columns. The bottom of the domains: every
//! other names users, and users names none of them.
//!
//! Files:
//! - `profile`: the profile's fields and their rules, and updating them.
//! - `lookup`: users by id (through the cache), by username, and search.
//! - `visibility`: who may see a user's presence and their friend list (the
//!   settings are the profile's; presence and social apply them).

mod lookup;
mod profile;
mod visibility;

pub use lookup::{
    Profiles, escape_like, find, find_by_username, find_cached, find_many, find_many_cached, lock,
    search,
};
pub use profile::{
    CheckedChanges, Gender, MAX_INTERESTS, ProfileChanges, ProfileText, age_on, check_birthdate,
    check_location, interests_of, normalize_interests, update_profile,
};
pub use visibility::{FriendListVisibility, PresenceVisibility};
