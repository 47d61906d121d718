//! Photos and attachments in the schema: the `Photo` and `Attachment` types,
//! the upload mutations (GraphQL multipart requests, `Upload` scalar), and
//! the loaders behind `User.photos` and `Message.attachments`.

use std::{collections::HashMap, io::Read as _, sync::Arc};

use async_graphql::{
    Context, ID, InputObject, Object, SimpleObject, Upload,
    dataloader::{DataLoader, Loader},
};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{
    domain::{
        media::{self, Media, StoredImage, StoredSize},
        social::Social,
    },
    error::{AppError, AppResult},
    graphql::{
        ContextExt,
        ids::{self, NodeKind},
    },
    infra::ratelimit::Action,
};

/// What a user's photo list counts for in a query's complexity: the
/// default cap on photos (`KITH_PHOTOS_PER_USER`).
pub const PHOTOS_COST: usize = 9;

/// A photo on a profile.
pub struct Photo(pub media::Photo);

/// An image sent with a message.
pub struct Attachment(pub media::Attachment);

/// One stored size of an image.
#[derive(SimpleObject)]
pub struct ImageSize {
    /// In pixels, upright.
    pub width: i32,
    /// In pixels, upright.
    pub height: i32,
    /// Bytes of this size's file.
    pub bytes: i32,
    /// Where to fetch it: a signed URL that expires (an hour by default),
    /// a path on this server unless the server hands out its store's URLs.
    /// Ask the API again for a fresh one; within a few minutes it is the same
    /// URL, so HTTP caches keep working.
    pub url: String,
}

async fn size_of(media: &Media, size: &StoredSize) -> AppResult<ImageSize> {
    Ok(ImageSize {
        width: clamp(u64::from(size.width)),
        height: clamp(u64::from(size.height)),
        bytes: clamp(size.bytes),
        url: media.url_for(&size.media_key()?).await,
    })
}

fn clamp(value: u64) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

/// The fields `Photo` and `Attachment` share, from their image.
struct Image<'a>(&'a StoredImage);

impl Image<'_> {
    async fn url(&self, ctx: &Context<'_>, size: Option<i32>) -> AppResult<String> {
        let wanted = size.map_or(u32::MAX, |size| u32::try_from(size).unwrap_or(0));
        let chosen = if size.is_none() {
            &self.0.sizes[0]
        } else {
            self.0.size_for(wanted)
        };
        Ok(ctx.state().media.urls().url(&chosen.media_key()?))
    }

    async fn sizes(&self, ctx: &Context<'_>) -> AppResult<Vec<ImageSize>> {
        let media = &ctx.state().media;
        let mut sizes = Vec::with_capacity(self.0.sizes.len());
        for size in &self.0.sizes {
            sizes.push(size_of(media, size).await?);
        }
        Ok(sizes)
    }
}

/// A profile photo: its largest stored size's dimensions, a placeholder to
/// paint at once, and signed URLs per size. Others see a user's photos when
/// signed in and not blocked either way; a photo the moderation classifier
/// flagged only its owner sees.
#[Object]
impl Photo {
    /// The photo's global ID (for `deletePhoto` and `reorderPhotos`).
    async fn id(&self) -> ID {
        ids::encode(NodeKind::Photo, self.0.id)
    }

    /// Its place among the owner's photos: 0 is the first (the profile picture).
    async fn position(&self) -> i32 {
        self.0.position
    }

    /// Of the largest stored size, in pixels, upright.
    async fn width(&self) -> i32 {
        clamp(u64::from(self.0.image.width))
    }

    /// Of the largest stored size, in pixels, upright.
    async fn height(&self) -> i32 {
        clamp(u64::from(self.0.image.height))
    }

    /// The stored files' type: `image/jpeg` (every upload is re-encoded, so
    /// nothing of the original file, its metadata included, is kept).
    async fn mime_type(&self) -> &str {
        &self.0.image.mime_type
    }

    /// Bytes of the largest stored size.
    async fn bytes(&self) -> i32 {
        clamp(self.0.image.bytes)
    }

    /// A ThumbHash of the image (base64): decode it to paint a blurred
    /// preview before the image arrives.
    async fn placeholder(&self) -> &str {
        &self.0.image.placeholder
    }

    /// A signed URL of the smallest stored size at least `size` pixels on
    /// its long side (the largest when none is); without `size`, the largest.
    async fn url(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The long side wanted, in pixels.")] size: Option<i32>,
    ) -> async_graphql::Result<String> {
        Ok(Image(&self.0.image).url(ctx, size).await?)
    }

    /// Every stored size, largest first, each with its signed URL.
    async fn sizes(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ImageSize>> {
        Ok(Image(&self.0.image).sizes(ctx).await?)
    }

    /// True when the moderation classifier hid the photo from everyone but
    /// you (only you see such a photo, so only you see true).
    async fn hidden(&self) -> bool {
        self.0.flagged
    }

    /// When it was uploaded.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// An image sent with a message, seen by the conversation's participants.
#[Object]
impl Attachment {
    /// The attachment's global ID (for `sendMessage`'s `attachmentIds`).
    async fn id(&self) -> ID {
        ids::encode(NodeKind::Attachment, self.0.id)
    }

    /// Of the largest stored size, in pixels, upright.
    async fn width(&self) -> i32 {
        clamp(u64::from(self.0.image.width))
    }

    /// Of the largest stored size, in pixels, upright.
    async fn height(&self) -> i32 {
        clamp(u64::from(self.0.image.height))
    }

    /// The stored files' type: `image/jpeg` (every upload is re-encoded).
    async fn mime_type(&self) -> &str {
        &self.0.image.mime_type
    }

    /// Bytes of the largest stored size.
    async fn bytes(&self) -> i32 {
        clamp(self.0.image.bytes)
    }

    /// A ThumbHash of the image (base64), to paint before it arrives.
    async fn placeholder(&self) -> &str {
        &self.0.image.placeholder
    }

    /// A signed URL of the smallest stored size at least `size` pixels on
    /// its long side (the largest when none is); without `size`, the largest.
    async fn url(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The long side wanted, in pixels.")] size: Option<i32>,
    ) -> async_graphql::Result<String> {
        Ok(Image(&self.0.image).url(ctx, size).await?)
    }

    /// Every stored size, largest first, each with its signed URL.
    async fn sizes(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ImageSize>> {
        Ok(Image(&self.0.image).sizes(ctx).await?)
    }

    /// When it was uploaded.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// A photo to add to your profile.
#[derive(InputObject)]
pub struct UploadPhotoInput {
    /// The image (JPEG, PNG, WebP or GIF, judged by its bytes; at most
    /// `KITH_MEDIA_MAX_BYTES`, 10 MiB, and `KITH_MEDIA_MAX_PIXELS`, 40 MP).
    /// Anything else is `BAD_USER_INPUT` on `file`.
    pub file: Upload,
    /// Where among your photos it goes (0 is first); the end when omitted or
    /// past it. Negative is `BAD_USER_INPUT`.
    pub position: Option<i32>,
}

/// A new order for your photos.
#[derive(InputObject)]
pub struct ReorderPhotosInput {
    /// Every one of your `Photo.id`s exactly once, in the order wanted;
    /// anything else is `BAD_USER_INPUT`.
    pub photo_ids: Vec<ID>,
}

#[derive(Default)]
pub struct MediaMutation;

#[Object]
impl MediaMutation {
    /// Adds a photo to your profile (multipart request, `file` an `Upload`).
    /// It is re-encoded upright in several sizes, its metadata (GPS
    /// included) dropped. At most `KITH_PHOTOS_PER_USER` (9) photos
    /// (`CONFLICT` beyond); uploads are rate limited per user
    /// (`RATE_LIMITED`).
    async fn upload_photo(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The image and where it goes.")] input: UploadPhotoInput,
    ) -> async_graphql::Result<Photo> {
        let viewer = ctx.require_viewer().await?;
        let state = ctx.state();
        state
            .limiter
            .check(Action::UploadPerUser, &viewer.user_id.to_string())
            .await?;
        let bytes = read_upload(ctx, input.file, state.settings.media_max_bytes).await?;
        let photo = state
            .media
            .upload_photo(viewer.user_id, bytes, input.position)
            .await?;
        Ok(Photo(photo))
    }

    /// Deletes one of your photos (and its stored files); the others close
    /// up. Another's photo, or one that is gone, is `NOT_FOUND`. Returns the
    /// id.
    async fn delete_photo(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The `Photo.id` to delete.")] id: ID,
    ) -> async_graphql::Result<ID> {
        let viewer = ctx.require_viewer().await?;
        let key = ids::decode_as(&id, NodeKind::Photo)
            .ok_or_else(|| AppError::not_found("no such photo of yours"))?;
        ctx.state().media.delete_photo(viewer.user_id, key).await?;
        Ok(id)
    }

    /// Puts your photos in a new order; returns them in it.
    async fn reorder_photos(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Your photos' ids in the new order.")] input: ReorderPhotosInput,
    ) -> async_graphql::Result<Vec<Photo>> {
        let viewer = ctx.require_viewer().await?;
        let keys = input
            .photo_ids
            .iter()
            .map(|id| {
                ids::decode_as(id, NodeKind::Photo).ok_or_else(|| {
                    AppError::bad_input("photoIds", "photoIds holds an id that is not a photo")
                })
            })
            .collect::<AppResult<Vec<Uuid>>>()?;
        let photos = ctx
            .state()
            .media
            .reorder_photos(viewer.user_id, &keys)
            .await?;
        Ok(photos.into_iter().map(Photo).collect())
    }

    /// Uploads an image to send: pass its id in `sendMessage`'s
    /// `attachmentIds`. Only you can send it, once; one not sent within a day
    /// is removed. Checked and rate limited as `uploadPhoto`.
    async fn upload_attachment(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The image (JPEG, PNG, WebP or GIF, judged by its bytes).")] file: Upload,
    ) -> async_graphql::Result<Attachment> {
        let viewer = ctx.require_viewer().await?;
        let state = ctx.state();
        state
            .limiter
            .check(Action::UploadPerUser, &viewer.user_id.to_string())
            .await?;
        let bytes = read_upload(ctx, file, state.settings.media_max_bytes).await?;
        Ok(Attachment(
            state.media.upload_attachment(viewer.user_id, bytes).await?,
        ))
    }
}

/// An upload's bytes, read off the runtime (async-graphql keeps each file
/// in a temporary file), refused before reading when over `max_bytes`.
async fn read_upload(ctx: &Context<'_>, upload: Upload, max_bytes: usize) -> AppResult<Bytes> {
    let value = upload
        .value(ctx)
        .map_err(|_| AppError::bad_input("file", "file must be a file of this request"))?;
    let size = value.size().unwrap_or(0);
    if size > max_bytes as u64 {
        return Err(AppError::bad_input(
            "file",
            format!("file too large: {size} bytes, the most accepted is {max_bytes} bytes"),
        ));
    }
    tokio::task::spawn_blocking(move || {
        let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        value
            .into_read()
            .take(max_bytes as u64 + 1)
            .read_to_end(&mut bytes)
            .map(|_| Bytes::from(bytes))
    })
    .await
    .map_err(|err| AppError::Internal(anyhow::anyhow!("reading an upload: {err}")))?
    .map_err(|err| AppError::Internal(anyhow::Error::new(err).context("reading an upload")))
}

/// A user's photos as a viewer is shown them, keyed `(viewer, owner)`; the
/// nil viewer is a signed-out reader.
pub struct PhotosLoader {
    media: Media,
    social: Social,
}

impl PhotosLoader {
    pub fn new(media: Media, social: Social) -> Self {
        Self { media, social }
    }
}

impl Loader<(Uuid, Uuid)> for PhotosLoader {
    type Value = Vec<media::Photo>;
    type Error = Arc<AppError>;

    async fn load(
        &self,
        keys: &[(Uuid, Uuid)],
    ) -> Result<HashMap<(Uuid, Uuid), Vec<media::Photo>>, Self::Error> {
        let mut owners: Vec<Uuid> = keys.iter().map(|&(_, owner)| owner).collect();
        owners.sort_unstable();
        owners.dedup();
        let photos = self.media.photos_of(&owners).await.map_err(Arc::new)?;
        let mut shown = HashMap::with_capacity(keys.len());
        for (viewer, owners) in super::loaders::by_viewer(keys) {
            let signed_in = (!viewer.is_nil()).then_some(viewer);
            let blocked = match signed_in {
                Some(viewer) => self
                    .social
                    .blocks_among(viewer, &owners)
                    .await
                    .map_err(Arc::new)?,
                None => Default::default(),
            };
            for owner in owners {
                let of_owner = photos.get(&owner).cloned().unwrap_or_default();
                shown.insert(
                    (viewer, owner),
                    media::shown_to(of_owner, owner, signed_in, blocked.contains(&owner)),
                );
            }
        }
        Ok(shown)
    }
}

/// Messages' attachments, keyed by message (its readers are its
/// conversation's participants, checked where the message was loaded).
pub struct AttachmentsLoader {
    media: Media,
}

impl AttachmentsLoader {
    pub fn new(media: Media) -> Self {
        Self { media }
    }
}

impl Loader<Uuid> for AttachmentsLoader {
    type Value = Vec<media::Attachment>;
    type Error = Arc<AppError>;

    async fn load(
        &self,
        keys: &[Uuid],
    ) -> Result<HashMap<Uuid, Vec<media::Attachment>>, Self::Error> {
        self.media.attachments_of(keys).await.map_err(Arc::new)
    }
}

/// `User.photos`: what `viewer` (`None` when signed out) is shown of
/// `owner`'s photos.
pub async fn photos_of(
    ctx: &Context<'_>,
    owner: Uuid,
    viewer: Option<Uuid>,
) -> AppResult<Vec<Photo>> {
    let loader = ctx.data_unchecked::<DataLoader<PhotosLoader>>();
    let found = loader
        .load_one((viewer.unwrap_or_default(), owner))
        .await
        .map_err(|err| loaded(&err))?;
    Ok(found.unwrap_or_default().into_iter().map(Photo).collect())
}

/// `Message.attachments`.
pub async fn attachments_of(ctx: &Context<'_>, message: Uuid) -> AppResult<Vec<Attachment>> {
    let loader = ctx.data_unchecked::<DataLoader<AttachmentsLoader>>();
    let found = loader.load_one(message).await.map_err(|err| loaded(&err))?;
    Ok(found
        .unwrap_or_default()
        .into_iter()
        .map(Attachment)
        .collect())
}

/// A loader's shared error as the request's own: an outage stays one.
fn loaded(err: &AppError) -> AppError {
    AppError::from_shared(err, "loading media")
}

/// `sendMessage`'s `attachmentIds`, decoded: an id that is not an
/// attachment's is as unusable as another's.
pub fn attachment_keys(ids: Option<&[ID]>) -> AppResult<Vec<Uuid>> {
    ids.unwrap_or_default()
        .iter()
        .map(|id| ids::decode_as(id, NodeKind::Attachment).ok_or_else(media::unusable))
        .collect()
}
