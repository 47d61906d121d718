//! Profile photos: uploaded into a place in the owner's order, reordered,
//! deleted; at most `KITH_PHOTOS_PER_USER` each.
//!
//! An upload is processed and its sizes stored before its row is written,
//! and the write undoes the store when it fails, so no row ever names missing
//! objects. A delete releases the row (no owner) in its transaction and then
//! removes the objects and the row; what it could not remove, the sweeper
//! does (see `sweeper`).

use std::collections::HashMap;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use entity::photo;
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait as _},
};
use uuid::Uuid;

use super::{
    Media,
    stored::{StoredImage, put_all, remove_quietly},
};
use crate::{
    domain::users,
    error::{AppError, AppResult},
    infra::media_store::MediaPrefix,
};

/// A profile photo.
#[derive(Clone, Debug)]
pub struct Photo {
    pub id: Uuid,
    pub owner: Uuid,
    /// 0, 1, 2… in the owner's order.
    pub position: i32,
    pub image: StoredImage,
    /// Flagged by the moderation classifier: shown to the owner only.
    pub flagged: bool,
    pub created_at: DateTime<Utc>,
}

impl Photo {
    fn from_row(row: photo::Model) -> AppResult<Option<Self>> {
        let Some(owner) = row.user_id else {
            return Ok(None);
        };
        Ok(Some(Self {
            id: row.id,
            owner,
            position: row.position,
            image: StoredImage::from_row(
                row.width,
                row.height,
                &row.mime_type,
                row.bytes,
                &row.placeholder,
                &row.variants,
            )?,
            flagged: row.flagged,
            created_at: row.created_at,
        }))
    }
}

/// Where a photo's sizes live: one prefix per photo.
pub(super) fn photo_prefix(id: Uuid) -> AppResult<MediaPrefix> {
    MediaPrefix::parse(&format!("photos/{}", id.simple()))
        .map_err(|err| AppError::Internal(anyhow::anyhow!("a photo's media prefix: {err}")))
}

impl Media {
    /// Stores an uploaded photo at `position` of the owner's photos (the end
    /// when `None` or past it).
    pub async fn upload_photo(
        &self,
        owner: Uuid,
        upload: Bytes,
        position: Option<i32>,
    ) -> AppResult<Photo> {
        if position.is_some_and(|position| position < 0) {
            return Err(AppError::bad_input(
                "position",
                "position must be 0 or more",
            ));
        }
        // Refused before the work of processing; checked again when written.
        self.check_room_for_photo(&self.db, owner).await?;
        let processed = self.processor.process(upload).await?;
        let flagged = self.moderate(&processed).await;
        let id = Uuid::now_v7();
        let prefix = photo_prefix(id)?;
        let image = put_all(&*self.store, &prefix, &processed).await?;
        match self
            .insert_photo(owner, id, position, &image, flagged)
            .await
        {
            Ok(photo) => Ok(photo),
            Err(err) => {
                remove_quietly(&*self.store, &prefix).await;
                Err(err)
            }
        }
    }

    async fn insert_photo(
        &self,
        owner: Uuid,
        id: Uuid,
        position: Option<i32>,
        image: &StoredImage,
        flagged: bool,
    ) -> AppResult<Photo> {
        let txn = self.db.begin_writing().await?;
        // Two uploads of one user count and place their photos in turn.
        users::lock(&txn, owner).await?;
        let count = self.check_room_for_photo(&txn, owner).await?;
        let position = position.map_or(count, |wanted| std::cmp::min(wanted, count));
        photo::Entity::update_many()
            .col_expr(
                photo::Column::Position,
                Expr::col(photo::Column::Position).add(Expr::val(1)),
            )
            .filter(photo::Column::UserId.eq(owner))
            .filter(photo::Column::Position.gte(position))
            .exec(&txn)
            .await?;
        let row = photo::Model {
            id,
            user_id: Some(owner),
            position,
            width: image.width_i32(),
            height: image.height_i32(),
            bytes: image.bytes_i64(),
            mime_type: image.mime_type.clone(),
            placeholder: image.placeholder.clone(),
            variants: image.variants_json(),
            flagged,
            created_at: super::stored::now(),
        };
        photo::Entity::insert(row.clone().into_active_model())
            .exec_without_returning(&txn)
            .await?;
        txn.commit().await?;
        Photo::from_row(row)?.ok_or_else(|| AppError::Internal(anyhow::anyhow!("an unowned photo")))
    }

    /// How many photos the owner has, or `CONFLICT` when there is no room
    /// for another.
    async fn check_room_for_photo(&self, db: &impl ConnectionTrait, owner: Uuid) -> AppResult<i32> {
        let count = photo::Entity::find()
            .filter(photo::Column::UserId.eq(owner))
            .count(db)
            .await?;
        if count >= u64::from(self.photos_per_user) {
            return Err(AppError::conflict(
                "file",
                format!("you have {count} photos, the most there may be: delete one first"),
            ));
        }
        Ok(i32::try_from(count).unwrap_or(i32::MAX))
    }

    /// Deletes one of the owner's photos: the others close up behind it.
    pub async fn delete_photo(&self, owner: Uuid, id: Uuid) -> AppResult<()> {
        let txn = self.db.begin_writing().await?;
        users::lock(&txn, owner).await?;
        let found = photo::Entity::find_by_id(id)
            .filter(photo::Column::UserId.eq(owner))
            .one(&txn)
            .await?
            .ok_or_else(|| AppError::not_found("no such photo of yours"))?;
        photo::Entity::update(photo::ActiveModel {
            id: Set(id),
            user_id: Set(None),
            ..Default::default()
        })
        .exec(&txn)
        .await?;
        photo::Entity::update_many()
            .col_expr(
                photo::Column::Position,
                Expr::col(photo::Column::Position).sub(Expr::val(1)),
            )
            .filter(photo::Column::UserId.eq(owner))
            .filter(photo::Column::Position.gt(found.position))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        // Released: gone for everyone now. Its bytes go next, or with the
        // sweeper's next round should the store not answer.
        self.remove_released_photo(id).await;
        Ok(())
    }

    /// Puts the owner's photos in the order of `ids`, which must name each of
    /// them exactly once.
    pub async fn reorder_photos(&self, owner: Uuid, ids: &[Uuid]) -> AppResult<Vec<Photo>> {
        let txn = self.db.begin_writing().await?;
        users::lock(&txn, owner).await?;
        let current: Vec<Uuid> = photo::Entity::find()
            .select_only()
            .column(photo::Column::Id)
            .filter(photo::Column::UserId.eq(owner))
            .into_tuple()
            .all(&txn)
            .await?;
        let mut given = ids.to_vec();
        given.sort_unstable();
        let mut held = current.clone();
        held.sort_unstable();
        if given != held {
            return Err(AppError::bad_input(
                "photoIds",
                format!(
                    "photoIds must list each of your {} photos exactly once, in the new order",
                    current.len()
                ),
            ));
        }
        for (position, id) in ids.iter().enumerate() {
            photo::Entity::update(photo::ActiveModel {
                id: Set(*id),
                position: Set(i32::try_from(position).unwrap_or(i32::MAX)),
                ..Default::default()
            })
            .exec(&txn)
            .await?;
        }
        txn.commit().await?;
        Ok(self
            .photos_of(&[owner])
            .await?
            .remove(&owner)
            .unwrap_or_default())
    }

    /// Each user's photos in their order, flagged ones included (what a
    /// viewer may see of them is the caller's to decide).
    pub async fn photos_of(&self, owners: &[Uuid]) -> AppResult<HashMap<Uuid, Vec<Photo>>> {
        let rows = photo::Entity::find()
            .filter(photo::Column::UserId.is_in(owners.iter().copied()))
            .order_by_asc(photo::Column::UserId)
            .order_by_asc(photo::Column::Position)
            .all(&self.db)
            .await?;
        let mut photos: HashMap<Uuid, Vec<Photo>> = HashMap::new();
        for row in rows {
            if let Some(photo) = Photo::from_row(row)? {
                photos.entry(photo.owner).or_default().push(photo);
            }
        }
        Ok(photos)
    }
}

/// What a viewer is shown of `owner`'s photos: all of them to the owner;
/// none to a signed-out reader, nor across a block either way; to everyone
/// else, those moderation did not flag.
pub fn shown_to(
    photos: Vec<Photo>,
    owner: Uuid,
    viewer: Option<Uuid>,
    blocked: bool,
) -> Vec<Photo> {
    match viewer {
        Some(viewer) if viewer == owner => photos,
        Some(_) if !blocked => photos.into_iter().filter(|photo| !photo.flagged).collect(),
        _ => Vec::new(),
    }
}
