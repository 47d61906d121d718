//! A user changing their own profile, and what follows from it in the domains
//! above the profile: discovery's age range and presence's feeds.

use chrono::Utc;
use entity::user;
use uuid::Uuid;

use super::Accounts;
use crate::{
    domain::{
        discovery,
        events::{Event, presence_topic},
        users::{self, ProfileChanges},
    },
    error::AppResult,
};

impl Accounts {
    /// Checks the changes by the profile's rules (the first broken one is the
    /// answer, and nothing is written), then writes them. A new birthdate
    /// moves the discovery age range with it, until the user chose one:
    /// written before the profile, whose write then forgets the cached row
    /// with both changes in it. A changed presence visibility is announced,
    /// so friends' feeds show what they may see now.
    pub async fn update_profile(
        &self,
        user_id: Uuid,
        changes: ProfileChanges,
    ) -> AppResult<user::Model> {
        let visibility_changed = changes.presence_visibility.is_some();
        let changes = changes.check()?;
        if let Some(birthdate) = changes.new_birthdate() {
            discovery::follow_birthdate(&self.db, user_id, birthdate, Utc::now().date_naive())
                .await?;
        }
        let updated = users::update_profile(&self.db, &self.profiles, user_id, changes).await?;
        if visibility_changed {
            self.pubsub.publish(
                &presence_topic(user_id),
                Event::PresenceVisibilityChanged { user_id },
            );
        }
        Ok(updated)
    }
}
