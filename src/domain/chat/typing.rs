//! Typing indicators: announced, never kept.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Chat, not_found, now};
use crate::{domain::events::Event, error::AppResult};

/// How long a typing indicator holds unless renewed.
pub const TYPING_TTL_SECS: i64 = 6;

impl Chat {
    /// Tells the conversation the user is typing (or stopped); nothing is kept,
    /// and clients forget it after the returned time unless renewed.
    pub async fn set_typing(
        &self,
        user: Uuid,
        conversation_id: Uuid,
        typing: bool,
    ) -> AppResult<DateTime<Utc>> {
        // Across a block, refused as a send is (`check_may_write`).
        let membership = self
            .membership(user, conversation_id)
            .await?
            .ok_or_else(not_found)?;
        self.check_may_write(user, &membership).await?;
        let expires_at = now() + chrono::Duration::seconds(TYPING_TTL_SECS);
        self.publish(
            conversation_id,
            Event::Typing {
                conversation_id,
                user_id: user,
                typing,
                expires_at,
            },
        );
        Ok(expires_at)
    }
}
