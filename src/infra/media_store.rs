//! Where media bytes live: one small port, [`MediaStore`], with the local disk
//! (the default) and any S3-compatible service behind it, both through Apache
//! Arrow's `object_store`. Chosen once in `app.rs` from settings.
//!
//! Keys are built by kith, never taken from a client, and are immutable:
//! `<dir>/<name>-<hash12>.<ext>`, where `hash12` is the first 12 hex digits
//! of the SHA-256 of the bytes (see [`MediaKey::content_addressed`]). Photos
//! use `photos/<photo id>/<long side>-<hash12>.jpg`, one object per size, so
//! deleting a photo deletes its prefix `photos/<photo id>`. Because the key
//! names the content, the key's hash is the HTTP `ETag` ([`MediaKey::etag`]):
//! the same on every replica and every store, where the stores' own ETags
//! differ (an MD5 on S3, inode and mtime on disk).
//!
//! Every key and prefix is checked ([`MediaKey::parse`]): segments of ASCII
//! letters, digits, `-`, `_` and `.`, none empty or starting with a dot, so no
//! key reaches outside the store's directory or bucket (`..`, `/etc/…`).

use std::{
    fmt, io,
    ops::Range,
    path::{Path as FsPath, PathBuf},
    sync::Arc,
    time::Duration,
};

use anyhow::Context as _;
use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::{StreamExt as _, TryStreamExt as _};
use object_store::{
    Attribute, Attributes, GetOptions, GetRange, ObjectStore, ObjectStoreExt as _, PutOptions,
    PutPayload,
    aws::{AmazonS3, AmazonS3Builder},
    local::LocalFileSystem,
    path::Path as ObjectPath,
    signer::Signer as _,
};
use sha2::{Digest as _, Sha256};

use crate::config::S3Settings;

/// Longest accepted key or prefix, in bytes (S3 allows 1,024).
pub const KEY_MAX_LEN: usize = 512;
/// Hex digits of the content's SHA-256 a content-addressed key carries: 48
/// bits, for objects that already share a directory (one photo's sizes).
pub const HASH_LEN: usize = 12;

/// Stores, reads and deletes media objects by key.
#[async_trait]
pub trait MediaStore: Send + Sync + 'static {
    /// Stores `bytes` at `key` whole, replacing what was there (a key names
    /// its content, so a replace writes the same bytes again). `content_type`
    /// is kept where the store keeps it (S3); on disk it comes from the key's
    /// extension when read.
    async fn put(
        &self,
        key: &MediaKey,
        bytes: Bytes,
        content_type: &str,
    ) -> Result<(), MediaStoreError>;

    /// The object at `key` with its metadata; [`MediaStoreError::NotFound`]
    /// when there is none.
    async fn get(&self, key: &MediaKey) -> Result<StoredMedia, MediaStoreError>;

    /// What is known of the object at `key` without reading its bytes (a
    /// `stat` on disk, a `HEAD` on S3); [`MediaStoreError::NotFound`] when
    /// there is none.
    async fn head(&self, key: &MediaKey) -> Result<MediaMeta, MediaStoreError>;

    /// The bytes `range` of the object at `key`, read alone (a ranged `GET`
    /// on S3, a seek on disk). `range` must lie within the object (see
    /// [`Self::head`]): an empty one is [`MediaStoreError::BadRange`], one
    /// ending past the end is cut there, one starting past it is an error of
    /// the store's.
    async fn get_range(&self, key: &MediaKey, range: Range<u64>) -> Result<Bytes, MediaStoreError>;

    /// A URL of the store's own that lets whoever holds it `GET` the object
    /// at `key` for `expires_in`, without kith: S3's presigned URLs. `None`
    /// where the store has none (the local disk), or when signing failed
    /// (logged; the caller then hands out kith's own URL).
    async fn presigned_url(&self, key: &MediaKey, expires_in: Duration) -> Option<String>;

    /// Removes the object at `key`. A missing one is no error, so a delete
    /// may be retried.
    async fn delete(&self, key: &MediaKey) -> Result<(), MediaStoreError>;

    /// Removes every object under `prefix` (whole segments: `photos/ab`
    /// does not touch `photos/abc/…`) and says how many there were.
    async fn delete_prefix(&self, prefix: &MediaPrefix) -> Result<usize, MediaStoreError>;

    /// What and where the store is, for logs (never a credential).
    fn describe(&self) -> String;
}

/// An object read from a store.
#[derive(Clone, Debug)]
pub struct StoredMedia {
    pub bytes: Bytes,
    /// Length in bytes.
    pub size: u64,
    /// `Content-Type` as stored, or from the key's extension.
    pub content_type: Option<String>,
    /// The store's own ETag, when it gives one; for HTTP prefer
    /// [`MediaKey::etag`], which every store and replica agree on.
    pub store_etag: Option<String>,
    pub last_modified: DateTime<Utc>,
}

/// What a store knows of an object without reading it.
#[derive(Clone, Debug)]
pub struct MediaMeta {
    /// Length in bytes.
    pub size: u64,
    /// `Content-Type` as stored (S3), or from the key's extension.
    pub content_type: Option<String>,
    pub last_modified: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum MediaStoreError {
    #[error("no media object at `{0}`")]
    NotFound(String),
    #[error("bad media key `{key}`: {reason}")]
    BadKey { key: String, reason: &'static str },
    #[error("bytes {start}..{end} are not within the object at `{key}`")]
    BadRange { key: String, start: u64, end: u64 },
    #[error("media store {store}: {source}")]
    Store {
        store: String,
        #[source]
        source: object_store::Error,
    },
}

/// A checked key: where one object lives.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MediaKey(String);

/// A checked prefix: whole segments under which objects live (one photo's
/// sizes).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MediaPrefix(String);

impl MediaKey {
    pub fn parse(key: &str) -> Result<Self, MediaStoreError> {
        check(key)?;
        Ok(Self(key.to_owned()))
    }

    /// `<dir>/<name>-<hash12>.<extension>`, the hash being of `bytes`.
    pub fn content_addressed(
        dir: &MediaPrefix,
        name: &str,
        extension: &str,
        bytes: &[u8],
    ) -> Result<Self, MediaStoreError> {
        let hash = hex::encode(Sha256::digest(bytes));
        Self::parse(&format!(
            "{}/{name}-{}.{extension}",
            dir.0,
            &hash[..HASH_LEN]
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The content hash a content-addressed key ends with, to serve as a
    /// strong `ETag` (quoted by the caller); `None` for other keys.
    pub fn etag(&self) -> Option<&str> {
        let file = self.0.rsplit('/').next()?;
        let stem = file.split_once('.').map_or(file, |(stem, _)| stem);
        let (_, hash) = stem.rsplit_once('-')?;
        (hash.len() == HASH_LEN && hash.bytes().all(|b| b.is_ascii_hexdigit())).then_some(hash)
    }

    /// The type the key's extension names, for stores that keep none.
    pub fn content_type(&self) -> Option<&'static str> {
        let (_, extension) = self.0.rsplit('/').next()?.rsplit_once('.')?;
        Some(match extension.to_ascii_lowercase().as_str() {
            "jpg" | "jpeg" => "image/jpeg",
            "png" => "image/png",
            "webp" => "image/webp",
            "gif" => "image/gif",
            _ => return None,
        })
    }

    fn path(&self) -> ObjectPath {
        // Checked segments are valid object_store path parts as they are.
        ObjectPath::from_iter(self.0.split('/'))
    }
}

impl MediaPrefix {
    pub fn parse(prefix: &str) -> Result<Self, MediaStoreError> {
        check(prefix)?;
        Ok(Self(prefix.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MediaKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn check(key: &str) -> Result<(), MediaStoreError> {
    let refuse = |reason| {
        Err(MediaStoreError::BadKey {
            key: key.chars().take(80).collect(),
            reason,
        })
    };
    if key.is_empty() {
        return refuse("empty");
    }
    if key.len() > KEY_MAX_LEN {
        return refuse("too long");
    }
    for segment in key.split('/') {
        if segment.is_empty() {
            return refuse("an empty segment (a leading, doubled or trailing `/`)");
        }
        if segment.starts_with('.') {
            return refuse("a segment starting with `.` (`..` included)");
        }
        if !segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            return refuse("a character other than ASCII letters, digits, `-`, `_`, `.`, `/`");
        }
    }
    Ok(())
}

/// [`MediaStore`] over any `object_store` backend.
#[derive(Clone)]
pub struct ObjectMediaStore {
    inner: Arc<dyn ObjectStore>,
    /// Whether the backend keeps attributes (the content type): S3 does,
    /// the local file system refuses them.
    keeps_attributes: bool,
    /// The same bucket as `inner`, to presign URLs with (S3 only).
    signer: Option<Arc<AmazonS3>>,
    /// The local store's directory, where whole objects are read directly
    /// (see [`Self::read_file`]).
    root: Option<PathBuf>,
    name: String,
}

impl ObjectMediaStore {
    /// Files under `dir`, created if missing. Writes go to a temporary file
    /// renamed into place, so a reader never sees half an object; empty
    /// directories left by deletes are removed.
    pub fn local(dir: &FsPath) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the media directory {}", dir.display()))?;
        let store = LocalFileSystem::new_with_prefix(dir)
            .with_context(|| format!("opening the media directory {}", dir.display()))?
            .with_automatic_cleanup(true);
        Ok(Self {
            inner: Arc::new(store),
            keeps_attributes: false,
            signer: None,
            root: Some(dir.to_path_buf()),
            name: format!("local disk at {}", dir.display()),
        })
    }

    /// A bucket of an S3-compatible service. Connects lazily: a store that
    /// is down does not keep kith from starting.
    pub fn s3(settings: &S3Settings) -> anyhow::Result<Self> {
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&settings.bucket)
            .with_region(&settings.region)
            .with_virtual_hosted_style_request(!settings.path_style);
        if let Some(endpoint) = &settings.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"));
        }
        if let (Some(id), Some(secret)) = (&settings.access_key_id, &settings.secret_access_key) {
            builder = builder
                .with_access_key_id(id)
                .with_secret_access_key(secret);
        }
        let store = Arc::new(
            builder
                .build()
                .context("configuring the S3 media store (KITH_S3_*)")?,
        );
        Ok(Self {
            inner: store.clone(),
            keeps_attributes: true,
            signer: Some(store),
            root: None,
            name: format!(
                "S3 bucket {} at {}",
                settings.bucket,
                settings.endpoint.as_deref().unwrap_or("AWS")
            ),
        })
    }

    /// A whole object from the local disk in one blocking call (open, stat,
    /// read), where `object_store` takes two (open and stat, then read): the
    /// hand-offs to the blocking pool, not the reads, were most of what
    /// `GET /media` cost (see bench/README.md, "Media: serving stored
    /// bytes"). Writes stay `object_store`'s (a temporary file renamed into
    /// place), so a read never sees half an object.
    async fn read_file(
        &self,
        root: &FsPath,
        key: &MediaKey,
    ) -> Result<StoredMedia, MediaStoreError> {
        // A checked key is relative, of plain segments: joined, it stays
        // under `root`, at the path `object_store` writes it to.
        let path = root.join(key.as_str());
        let read = tokio::task::spawn_blocking(move || {
            use std::io::Read as _;
            let mut file = std::fs::File::open(&path)?;
            let meta = file.metadata()?;
            if !meta.is_file() {
                return Err(io::Error::from(io::ErrorKind::NotFound));
            }
            let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
            file.read_to_end(&mut bytes)?;
            Ok((bytes, meta.modified().ok()))
        })
        .await
        .map_err(io::Error::other)
        .flatten();
        match read {
            Ok((bytes, modified)) => Ok(StoredMedia {
                size: bytes.len() as u64,
                bytes: Bytes::from(bytes),
                content_type: key.content_type().map(str::to_owned),
                store_etag: None,
                last_modified: modified.map(DateTime::<Utc>::from).unwrap_or_default(),
            }),
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                Err(MediaStoreError::NotFound(key.as_str().to_owned()))
            }
            Err(err) => Err(self.broken(object_store::Error::Generic {
                store: "LocalFileSystem",
                source: Box::new(err),
            })),
        }
    }

    /// The type as stored, or from the key's extension.
    fn content_type(&self, key: &MediaKey, attributes: &Attributes) -> Option<String> {
        attributes
            .get(&Attribute::ContentType)
            .map(|value| value.to_string())
            .or_else(|| key.content_type().map(str::to_owned))
    }

    /// A read's failure: `NotFound` is the key's absence.
    fn failed(&self, key: &str, source: object_store::Error) -> MediaStoreError {
        match source {
            object_store::Error::NotFound { .. } => MediaStoreError::NotFound(key.to_owned()),
            source => self.broken(source),
        }
    }

    /// A write's failure: a "not found" there is the bucket's (or the
    /// directory's) absence, which is the store's fault, not the key's.
    fn broken(&self, source: object_store::Error) -> MediaStoreError {
        MediaStoreError::Store {
            store: self.name.clone(),
            source,
        }
    }
}

#[async_trait]
impl MediaStore for ObjectMediaStore {
    async fn put(
        &self,
        key: &MediaKey,
        bytes: Bytes,
        content_type: &str,
    ) -> Result<(), MediaStoreError> {
        let mut attributes = Attributes::new();
        if self.keeps_attributes {
            attributes.insert(Attribute::ContentType, content_type.to_owned().into());
        }
        let options = PutOptions {
            attributes,
            ..PutOptions::default()
        };
        self.inner
            .put_opts(&key.path(), PutPayload::from_bytes(bytes), options)
            .await
            .map_err(|err| self.broken(err))?;
        Ok(())
    }

    async fn get(&self, key: &MediaKey) -> Result<StoredMedia, MediaStoreError> {
        if let Some(root) = &self.root {
            return self.read_file(root, key).await;
        }
        let found = self
            .inner
            .get(&key.path())
            .await
            .map_err(|err| self.failed(key.as_str(), err))?;
        let content_type = self.content_type(key, &found.attributes);
        let meta = found.meta.clone();
        let bytes = found
            .bytes()
            .await
            .map_err(|err| self.failed(key.as_str(), err))?;
        Ok(StoredMedia {
            size: meta.size,
            bytes,
            content_type,
            store_etag: meta.e_tag,
            last_modified: meta.last_modified,
        })
    }

    async fn head(&self, key: &MediaKey) -> Result<MediaMeta, MediaStoreError> {
        // `get_opts` with `head` rather than `head`: the same one request
        // (a `stat`, an S3 `HEAD`), and it keeps the attributes.
        let found = self
            .inner
            .get_opts(&key.path(), GetOptions::new().with_head(true))
            .await
            .map_err(|err| self.failed(key.as_str(), err))?;
        Ok(MediaMeta {
            size: found.meta.size,
            content_type: self.content_type(key, &found.attributes),
            last_modified: found.meta.last_modified,
        })
    }

    async fn get_range(&self, key: &MediaKey, range: Range<u64>) -> Result<Bytes, MediaStoreError> {
        if range.is_empty() {
            return Err(MediaStoreError::BadRange {
                key: key.as_str().to_owned(),
                start: range.start,
                end: range.end,
            });
        }
        let found = self
            .inner
            .get_opts(
                &key.path(),
                GetOptions::new().with_range(Some(GetRange::Bounded(range))),
            )
            .await
            .map_err(|err| self.failed(key.as_str(), err))?;
        found
            .bytes()
            .await
            .map_err(|err| self.failed(key.as_str(), err))
    }

    async fn presigned_url(&self, key: &MediaKey, expires_in: Duration) -> Option<String> {
        let signer = self.signer.as_ref()?;
        match signer
            .signed_url(axum::http::Method::GET, &key.path(), expires_in)
            .await
        {
            Ok(url) => Some(url.into()),
            Err(err) => {
                tracing::warn!(store = %self.name, error = %err, "presigning a media URL failed");
                None
            }
        }
    }

    async fn delete(&self, key: &MediaKey) -> Result<(), MediaStoreError> {
        match self.inner.delete(&key.path()).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(err) => Err(self.failed(key.as_str(), err)),
        }
    }

    async fn delete_prefix(&self, prefix: &MediaPrefix) -> Result<usize, MediaStoreError> {
        let path = ObjectPath::from_iter(prefix.0.split('/'));
        // Listed first, so a failing list (a missing bucket) is an error
        // rather than nothing to delete; then deleted in bulk (one request
        // per 1,000 keys on S3).
        let listed: Vec<ObjectPath> = self
            .inner
            .list(Some(&path))
            .map_ok(|meta| meta.location)
            .try_collect()
            .await
            .map_err(|err| self.broken(err))?;
        let mut deletes = self
            .inner
            .delete_stream(futures_util::stream::iter(listed.into_iter().map(Ok)).boxed());
        let mut deleted = 0;
        while let Some(outcome) = deletes.next().await {
            match outcome {
                Ok(_) => deleted += 1,
                // Gone meanwhile (another replica's delete): not this
                // call's, and no failure.
                Err(object_store::Error::NotFound { .. }) => {}
                Err(err) => return Err(self.broken(err)),
            }
        }
        Ok(deleted)
    }

    fn describe(&self) -> String {
        self.name.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_that_could_leave_the_store_are_refused() {
        for key in [
            "",
            "/etc/passwd",
            "../x.jpg",
            "photos/../../x.jpg",
            "photos/./x.jpg",
            "photos//x.jpg",
            "photos/x.jpg/",
            "photos\\..\\x.jpg",
            "photos/.hidden",
            "photos/x y.jpg",
            "photos/é.jpg",
        ] {
            assert!(
                matches!(MediaKey::parse(key), Err(MediaStoreError::BadKey { .. })),
                "{key:?} is refused"
            );
        }
        assert!(MediaKey::parse(&"a".repeat(KEY_MAX_LEN + 1)).is_err());
        assert!(MediaKey::parse("photos/0190f3a2-7b1c/1280-3f2a9c1b7d4e.jpg").is_ok());
    }

    #[test]
    fn a_content_addressed_key_carries_its_hash_as_the_etag() {
        let dir = MediaPrefix::parse("photos/0190f3a2").unwrap();
        let key = MediaKey::content_addressed(&dir, "1280", "jpg", b"pixels").unwrap();
        let hash = &hex::encode(Sha256::digest(b"pixels"))[..HASH_LEN];
        assert_eq!(key.as_str(), format!("photos/0190f3a2/1280-{hash}.jpg"));
        assert_eq!(key.etag(), Some(hash));
        assert_eq!(key.content_type(), Some("image/jpeg"));
        let other = MediaKey::content_addressed(&dir, "1280", "jpg", b"other pixels").unwrap();
        assert_ne!(key, other);
        assert_eq!(MediaKey::parse("photos/x/1280.jpg").unwrap().etag(), None);
    }
}
