//! A user changing their own profile, and what follows from it in the domains
//! above the profile: discovery's age range and presence's feeds.

use chrono::Utc;
use entity::user;
use sea_orm::TransactionTrait;
use serde_json::json;
use uuid::Uuid;

use super::Accounts;
use crate::{
    domain::{
        discovery,
        events::{Event, presence_topic},
        outbox::DomainEvent,
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
        let fields = changes.fields();
        let txn = self.db.begin().await?;
        if let Some(birthdate) = changes.new_birthdate() {
            discovery::follow_birthdate(&txn, user_id, birthdate, Utc::now().date_naive()).await?;
        }
        let updated = users::update_profile(&txn, user_id, changes).await?;
        // An update that names no field changes nothing others need hear of.
        if !fields.is_empty() {
            self.outbox
                .append(&txn, profile_updated(&updated, &fields))
                .await?;
        }
        txn.commit().await?;
        self.profiles.invalidate(&[user_id]).await;
        if visibility_changed {
            self.pubsub.publish(
                &presence_topic(user_id),
                Event::PresenceVisibilityChanged { user_id },
            );
        }
        Ok(updated)
    }
}

/// `user.profile_updated`: which fields changed, with the new values of
/// those a profile page shows anyway. A birthdate and a location are only
/// named: where someone is, or their exact birthday, leaves kith nowhere.
fn profile_updated(user: &user::Model, fields: &[&str]) -> DomainEvent {
    let mut data = json!({ "userId": user.id, "changed": fields });
    for &field in fields {
        let value = match field {
            "displayName" => json!(user.display_name),
            "bio" => json!(user.bio),
            "gender" => json!(user.gender),
            "interests" => user.interests.clone(),
            "friendListVisibility" => json!(user.friend_list_visibility),
            "presenceVisibility" => json!(user.presence_visibility),
            _ => continue,
        };
        data[field] = value;
    }
    DomainEvent::new("user.profile_updated", Some(user.id), data)
}
