//! The media store's adapters against real stores: the local disk always, an
//! S3-compatible service (moto's server, which `.ci/run` starts) when
//! `KITH_TEST_S3_ENDPOINT` names one. Each S3 test creates a bucket of its own.

use std::{path::Path, sync::Arc};

use bytes::Bytes;
use kith::{
    config::S3Settings,
    infra::media_store::{MediaKey, MediaPrefix, MediaStore, MediaStoreError, ObjectMediaStore},
};

use crate::common;

fn local(dir: &Path) -> Arc<dyn MediaStore> {
    Arc::new(ObjectMediaStore::local(dir).expect("the local store opens"))
}

/// A fresh bucket on the test S3 service, and its settings; `None` (the test
/// recorded as skipped) when there is no service.
pub(super) async fn s3_bucket() -> Option<S3Settings> {
    let Ok(endpoint) = std::env::var("KITH_TEST_S3_ENDPOINT") else {
        common::skipped("no KITH_TEST_S3_ENDPOINT");
        return None;
    };
    let endpoint = endpoint.trim_end_matches('/').to_owned();
    let bucket = format!("kith-test-{}", uuid::Uuid::new_v4().simple());
    // moto creates buckets from an unsigned request; object_store has no
    // call for it.
    let created = reqwest::Client::new()
        .put(format!("{endpoint}/{bucket}"))
        .send()
        .await
        .expect("the S3 service answers");
    assert!(
        created.status().is_success(),
        "creating bucket {bucket}: {}",
        created.status()
    );
    Some(S3Settings {
        endpoint: Some(endpoint),
        bucket,
        region: "us-east-1".into(),
        access_key_id: Some("testing".into()),
        secret_access_key: Some("testing".into()),
        path_style: true,
    })
}

fn s3(settings: &S3Settings) -> Arc<dyn MediaStore> {
    Arc::new(ObjectMediaStore::s3(settings).expect("the S3 store is configured"))
}

fn photo_dir(id: &str) -> MediaPrefix {
    MediaPrefix::parse(&format!("photos/{id}")).expect("a valid prefix")
}

/// Every size of one photo, as the upload will store them.
fn photo_sizes(dir: &MediaPrefix) -> Vec<(MediaKey, Bytes)> {
    [1280, 640, 160]
        .into_iter()
        .map(|size| {
            let bytes = Bytes::from(format!("jpeg bytes at {size} px").repeat(size / 16));
            let key = MediaKey::content_addressed(dir, &size.to_string(), "jpg", &bytes)
                .expect("a valid key");
            (key, bytes)
        })
        .collect()
}

/// What every store must do, run against each.
async fn round_trip(store: &dyn MediaStore) {
    let dir = photo_dir(&uuid::Uuid::new_v4().to_string());
    let sizes = photo_sizes(&dir);
    for (key, bytes) in &sizes {
        store
            .put(key, bytes.clone(), "image/jpeg")
            .await
            .expect("put");
    }
    for (key, bytes) in &sizes {
        let stored = store.get(key).await.expect("get");
        assert_eq!(stored.bytes, *bytes);
        assert_eq!(stored.size, bytes.len() as u64);
        assert_eq!(stored.content_type.as_deref(), Some("image/jpeg"));
        assert!(key.etag().is_some(), "{key} carries its content hash");
    }

    // Putting the same content again (a retried upload) changes nothing.
    let (first, first_bytes) = &sizes[0];
    store
        .put(first, first_bytes.clone(), "image/jpeg")
        .await
        .expect("put again");
    assert_eq!(store.get(first).await.expect("get").bytes, *first_bytes);

    // Another photo whose id starts like this one's is not under its prefix.
    let neighbour = MediaPrefix::parse(&format!("{}0", dir.as_str())).unwrap();
    let (neighbour_key, neighbour_bytes) = photo_sizes(&neighbour).remove(0);
    store
        .put(&neighbour_key, neighbour_bytes.clone(), "image/jpeg")
        .await
        .expect("put the neighbour");

    // One size alone, then all that remain.
    store.delete(&sizes[2].0).await.expect("delete one size");
    assert!(matches!(
        store.get(&sizes[2].0).await,
        Err(MediaStoreError::NotFound(_))
    ));
    store
        .delete(&sizes[2].0)
        .await
        .expect("deleting what is gone is no error");
    assert_eq!(
        store.delete_prefix(&dir).await.expect("delete the photo"),
        2
    );
    for (key, _) in &sizes {
        let missing = store.get(key).await;
        assert!(
            matches!(&missing, Err(MediaStoreError::NotFound(k)) if k == key.as_str()),
            "{key} is gone: {missing:?}"
        );
    }
    assert_eq!(store.delete_prefix(&dir).await.expect("again"), 0);
    assert_eq!(
        store
            .get(&neighbour_key)
            .await
            .expect("the neighbour")
            .bytes,
        neighbour_bytes
    );
    store.delete_prefix(&neighbour).await.expect("cleanup");
}

#[tokio::test]
async fn the_local_store_keeps_gets_and_deletes_every_size_of_a_photo() {
    let dir = tempfile::tempdir().unwrap();
    let media = dir.path().join("media");
    let store = local(&media);
    round_trip(&*store).await;
    // Deleting a photo leaves no empty directory behind.
    let photos = media.join("photos");
    assert!(
        !photos.exists() || std::fs::read_dir(&photos).unwrap().next().is_none(),
        "no directory is left under {}",
        photos.display()
    );
}

#[tokio::test]
async fn a_missing_key_is_not_found_on_the_local_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = local(dir.path());
    let key = MediaKey::parse("photos/nobody/1280-000000000000.jpg").unwrap();
    let missing = store.get(&key).await;
    assert!(
        matches!(&missing, Err(MediaStoreError::NotFound(k)) if k == key.as_str()),
        "{missing:?}"
    );
    assert_eq!(
        store
            .delete_prefix(&MediaPrefix::parse("photos/nobody").unwrap())
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn no_key_reaches_outside_the_local_store() {
    let dir = tempfile::tempdir().unwrap();
    let media = dir.path().join("media");
    let _store = local(&media);
    let outside = dir.path().join("outside.jpg");
    for key in [
        "../outside.jpg",
        "photos/../../outside.jpg",
        outside.to_str().unwrap(),
        "/tmp/outside.jpg",
        "photos/..",
        "photos\\..\\..\\outside.jpg",
    ] {
        assert!(
            matches!(MediaKey::parse(key), Err(MediaStoreError::BadKey { .. })),
            "{key:?} is refused"
        );
        assert!(MediaPrefix::parse(key).is_err(), "{key:?} is refused");
    }
    assert!(
        MediaPrefix::parse("").is_err(),
        "no prefix deletes the store"
    );
    assert!(!outside.exists());
}

#[tokio::test]
async fn the_s3_store_keeps_gets_and_deletes_every_size_of_a_photo() {
    let Some(bucket) = s3_bucket().await else {
        return;
    };
    let store = s3(&bucket);
    round_trip(&*store).await;
    let key = MediaKey::parse("photos/nobody/1280-000000000000.jpg").unwrap();
    assert!(matches!(
        store.get(&key).await,
        Err(MediaStoreError::NotFound(_))
    ));
}

#[tokio::test]
async fn two_replicas_on_one_bucket_see_each_others_media() {
    let Some(bucket) = s3_bucket().await else {
        return;
    };
    let (one, other) = (s3(&bucket), s3(&bucket));
    let dir = photo_dir(&uuid::Uuid::new_v4().to_string());
    let sizes = photo_sizes(&dir);
    for (key, bytes) in &sizes {
        one.put(key, bytes.clone(), "image/jpeg").await.unwrap();
    }
    for (key, bytes) in &sizes {
        let stored = other.get(key).await.expect("the other replica reads it");
        assert_eq!(stored.bytes, *bytes);
        assert_eq!(stored.content_type.as_deref(), Some("image/jpeg"));
        assert!(stored.store_etag.is_some(), "S3 gives an ETag");
    }
    assert_eq!(other.delete_prefix(&dir).await.unwrap(), sizes.len());
    for (key, _) in &sizes {
        assert!(matches!(
            one.get(key).await,
            Err(MediaStoreError::NotFound(_))
        ));
    }
}

#[tokio::test]
async fn a_bucket_that_does_not_exist_is_an_error_not_a_panic() {
    let Some(mut bucket) = s3_bucket().await else {
        return;
    };
    bucket.bucket.push_str("-absent");
    let store = s3(&bucket);
    let key = MediaKey::parse("photos/x/1280-000000000000.jpg").unwrap();
    let put = store
        .put(&key, Bytes::from_static(b"x"), "image/jpeg")
        .await;
    assert!(matches!(put, Err(MediaStoreError::Store { .. })), "{put:?}");
}
