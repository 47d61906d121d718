//! Removes what is released: photos deleted or of deleted accounts,
//! attachments of deleted messages or accounts, and attachments left unsent
//! for a day. Objects go first and the row after, so a row always names
//! whatever objects remain; a round that fails part way is simply run again.
//! Every replica sweeps: removing what is already gone is no error.

use std::time::Duration;

use chrono::Utc;
use entity::{attachment, photo};
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QuerySelect, sea_query::Expr};
use uuid::Uuid;

use super::{Media, attachments::attachment_prefix, photos::photo_prefix};
use crate::error::AppResult;

/// How long an uploaded attachment waits to be sent before it is removed.
pub const UNSENT_ATTACHMENT_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);
/// How often each replica sweeps when nothing asks it to sooner.
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// Rows handled per statement; a round goes on until none is left.
const BATCH: u64 = 100;

impl Media {
    /// Asks the sweeper for a round now (after a deletion released media).
    pub fn sweep_soon(&self) {
        self.sweep_wanted.notify_one();
    }

    /// Sweeps every [`SWEEP_EVERY`], or sooner when asked; runs until the
    /// task is aborted.
    pub async fn keep_sweeping(self) {
        loop {
            if let Err(err) = self.sweep().await {
                tracing::warn!(error = ?err, "media sweep failed; trying again later");
            }
            tokio::select! {
                () = tokio::time::sleep(SWEEP_EVERY) => {}
                () = self.sweep_wanted.notified() => {}
            }
        }
    }

    /// One round: everything released now is removed. Returns how many
    /// photos and attachments went.
    pub async fn sweep(&self) -> AppResult<usize> {
        let cutoff =
            Utc::now() - chrono::Duration::from_std(UNSENT_ATTACHMENT_LIFETIME).unwrap_or_default();
        // Claimed before removal: marking an old unsent attachment used makes
        // it unsendable, so no send can take it while its bytes go.
        attachment::Entity::update_many()
            .col_expr(attachment::Column::UsedAt, Expr::value(Utc::now()))
            .filter(attachment::Column::UsedAt.is_null())
            .filter(attachment::Column::CreatedAt.lt(cutoff))
            .exec(&self.db)
            .await?;
        let mut removed = 0;
        loop {
            let photos: Vec<Uuid> = photo::Entity::find()
                .select_only()
                .column(photo::Column::Id)
                .filter(photo::Column::UserId.is_null())
                .limit(BATCH)
                .into_tuple()
                .all(&self.db)
                .await?;
            let attachments: Vec<Uuid> = attachment::Entity::find()
                .select_only()
                .column(attachment::Column::Id)
                .filter(released_attachment())
                .limit(BATCH)
                .into_tuple()
                .all(&self.db)
                .await?;
            if photos.is_empty() && attachments.is_empty() {
                return Ok(removed);
            }
            for id in photos {
                self.store
                    .delete_prefix(&photo_prefix(id)?)
                    .await
                    .map_err(super::stored::store_error)?;
                photo::Entity::delete_many()
                    .filter(photo::Column::Id.eq(id))
                    .filter(photo::Column::UserId.is_null())
                    .exec(&self.db)
                    .await?;
                removed += 1;
            }
            for id in attachments {
                self.store
                    .delete_prefix(&attachment_prefix(id)?)
                    .await
                    .map_err(super::stored::store_error)?;
                attachment::Entity::delete_many()
                    .filter(attachment::Column::Id.eq(id))
                    .filter(released_attachment())
                    .exec(&self.db)
                    .await?;
                removed += 1;
            }
        }
    }

    /// Removes a photo just released, logging (not returning) a failure: the
    /// sweeper finds it again.
    pub(super) async fn remove_released_photo(&self, id: Uuid) {
        let removed = async {
            self.store
                .delete_prefix(&photo_prefix(id)?)
                .await
                .map_err(super::stored::store_error)?;
            photo::Entity::delete_many()
                .filter(photo::Column::Id.eq(id))
                .filter(photo::Column::UserId.is_null())
                .exec(&self.db)
                .await?;
            AppResult::Ok(())
        };
        if let Err(err) = removed.await {
            tracing::warn!(photo = %id, error = ?err, "a deleted photo's bytes are left to the sweeper");
            self.sweep_soon();
        }
    }
}

/// An attachment no one can see any more: its uploader's account is gone, or
/// it was sent (or claimed by the sweeper) and has no message.
fn released_attachment() -> Condition {
    Condition::any()
        .add(attachment::Column::UploaderId.is_null())
        .add(
            Condition::all()
                .add(attachment::Column::MessageId.is_null())
                .add(attachment::Column::UsedAt.is_not_null()),
        )
}
