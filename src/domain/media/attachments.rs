//! Message attachments: uploaded first, then sent with one message by their
//! uploader, once. One that is never sent is released after a day; one
//! whose message is deleted (or whose conversation goes) is released at
//! once. The sweeper removes what is released.

use std::collections::HashMap;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use entity::attachment;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder,
};
use uuid::Uuid;

use super::{
    Media,
    stored::{StoredImage, put_all, remove_quietly},
};
use crate::{
    error::{AppError, AppResult},
    infra::media_store::MediaPrefix,
};

/// Most attachments one message carries.
pub const MAX_ATTACHMENTS_PER_MESSAGE: usize = 10;

/// An uploaded image for a message.
#[derive(Clone, Debug)]
pub struct Attachment {
    pub id: Uuid,
    pub uploader: Option<Uuid>,
    pub message_id: Option<Uuid>,
    pub image: StoredImage,
    pub created_at: DateTime<Utc>,
}

impl Attachment {
    fn from_row(row: attachment::Model) -> AppResult<Self> {
        Ok(Self {
            id: row.id,
            uploader: row.uploader_id,
            message_id: row.message_id,
            image: StoredImage::from_row(
                row.width,
                row.height,
                &row.mime_type,
                row.bytes,
                &row.placeholder,
                &row.variants,
            )?,
            created_at: row.created_at,
        })
    }
}

/// Where an attachment's sizes live: one prefix per attachment.
pub(super) fn attachment_prefix(id: Uuid) -> AppResult<MediaPrefix> {
    MediaPrefix::parse(&format!("attachments/{}", id.simple()))
        .map_err(|err| AppError::Internal(anyhow::anyhow!("an attachment's media prefix: {err}")))
}

impl Media {
    /// Stores an uploaded image for the uploader's next message.
    pub async fn upload_attachment(&self, uploader: Uuid, upload: Bytes) -> AppResult<Attachment> {
        let processed = self.processor.process(upload).await?;
        let id = Uuid::now_v7();
        let prefix = attachment_prefix(id)?;
        let image = put_all(&*self.store, &prefix, &processed).await?;
        let row = attachment::Model {
            id,
            uploader_id: Some(uploader),
            message_id: None,
            used_at: None,
            width: image.width_i32(),
            height: image.height_i32(),
            bytes: image.bytes_i64(),
            mime_type: image.mime_type.clone(),
            placeholder: image.placeholder.clone(),
            variants: image.variants_json(),
            created_at: super::stored::now(),
        };
        if let Err(err) = attachment::Entity::insert(row.clone().into_active_model())
            .exec_without_returning(&self.db)
            .await
        {
            remove_quietly(&*self.store, &prefix).await;
            // An uploader deleted meanwhile fails the foreign key.
            return Err(err.into());
        }
        Attachment::from_row(row)
    }

    /// Each message's attachments, in upload order.
    pub async fn attachments_of(
        &self,
        messages: &[Uuid],
    ) -> AppResult<HashMap<Uuid, Vec<Attachment>>> {
        let rows = attachment::Entity::find()
            .filter(attachment::Column::MessageId.is_in(messages.iter().copied()))
            .order_by_asc(attachment::Column::Id)
            .all(&self.db)
            .await?;
        let mut found: HashMap<Uuid, Vec<Attachment>> = HashMap::new();
        for row in rows {
            let attachment = Attachment::from_row(row)?;
            if let Some(message) = attachment.message_id {
                found.entry(message).or_default().push(attachment);
            }
        }
        Ok(found)
    }
}

/// Gives `ids` to the message being sent, in the send's transaction: each
/// must be the sender's and never sent before, else `BAD_USER_INPUT` (and the
/// caller rolls back).
pub async fn attach(
    db: &impl ConnectionTrait,
    sender: Uuid,
    message_id: Uuid,
    ids: &[Uuid],
    at: DateTime<Utc>,
) -> AppResult<()> {
    if ids.is_empty() {
        return Ok(());
    }
    // One statement, conditional on each row: two sends racing for one
    // attachment cannot both take it.
    let taken = attachment::Entity::update_many()
        .col_expr(attachment::Column::MessageId, message_id.into())
        .col_expr(attachment::Column::UsedAt, at.into())
        .filter(attachment::Column::Id.is_in(ids.iter().copied()))
        .filter(attachment::Column::UploaderId.eq(sender))
        .filter(attachment::Column::UsedAt.is_null())
        .exec(db)
        .await?;
    if taken.rows_affected != ids.len() as u64 {
        return Err(unusable());
    }
    Ok(())
}

/// Releases a deleted message's attachments, in its transaction.
pub async fn release_message_attachments(
    db: &impl ConnectionTrait,
    message_id: Uuid,
) -> AppResult<u64> {
    Ok(attachment::Entity::update_many()
        .col_expr(
            attachment::Column::MessageId,
            sea_orm::sea_query::Expr::value(Option::<Uuid>::None),
        )
        .filter(attachment::Column::MessageId.eq(message_id))
        .exec(db)
        .await?
        .rows_affected)
}

/// Checks the ids a send names before its transaction: at most
/// [`MAX_ATTACHMENTS_PER_MESSAGE`], none twice.
pub fn check_attachment_ids(ids: &[Uuid]) -> AppResult<()> {
    if ids.len() > MAX_ATTACHMENTS_PER_MESSAGE {
        return Err(AppError::bad_input(
            "attachmentIds",
            format!("a message carries at most {MAX_ATTACHMENTS_PER_MESSAGE} attachments"),
        ));
    }
    let mut sorted = ids.to_vec();
    sorted.sort_unstable();
    if sorted.windows(2).any(|pair| pair[0] == pair[1]) {
        return Err(AppError::bad_input(
            "attachmentIds",
            "attachmentIds names an attachment twice",
        ));
    }
    Ok(())
}

/// One answer for every attachment that cannot be sent (another's, one
/// already sent, one released or never there), so ids cannot be probed.
pub fn unusable() -> AppError {
    AppError::bad_input(
        "attachmentIds",
        "attachmentIds must be attachments you uploaded and have not sent yet",
    )
}
