//! Profile photos: upload, order, delete, the per-user cap, what others see,
//! moderation, and that every stored byte goes with its photo or account.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use serde_json::{Value, json};

use super::{PHOTO_FIELDS, images, jpeg, key_of, stored_files, upload_photo};
use crate::common::{self, Session, TestApp, error_code, error_field, spawn_app, spawn_app_with};

async fn my_photos(app: &TestApp, user: &Session) -> Vec<Value> {
    let data = app
        .data(
            &format!("{{ me {{ photos {{ {PHOTO_FIELDS} }} }} }}"),
            json!({}),
            user.token(),
        )
        .await;
    data["me"]["photos"].as_array().unwrap().clone()
}

fn ids(photos: &[Value]) -> Vec<&str> {
    photos.iter().map(|p| p["id"].as_str().unwrap()).collect()
}

/// `user`'s photos as `viewer` (signed out when `None`) is shown them.
async fn photos_seen_by(app: &TestApp, user: &Session, viewer: Option<&Session>) -> Value {
    let data = app
        .graphql(
            "query($id: ID!) { user(id: $id) { photos { id } } }",
            json!({ "id": user.user_id }),
            viewer.and_then(Session::token),
        )
        .await;
    data["data"]["user"]["photos"].clone()
}

#[tokio::test]
async fn a_photo_is_stored_upright_in_sizes_without_its_metadata_and_listed_in_order() {
    let app = spawn_app().await;
    let ann = app.register("ann_photos").await;
    // 2000 × 1000 as stored, EXIF orientation 6 (turn 90°) and a GPS position.
    let upload = images::with_app1(
        &jpeg(2000, 1000),
        &images::exif_with_orientation_6_and_gps(),
    );
    let answer = upload_photo(&app, ann.token(), &upload, None).await;
    let photo = &answer["data"]["uploadPhoto"];
    assert!(answer["errors"].is_null(), "{answer}");
    assert_eq!(photo["position"], 0);
    // Upright: the long side is now the height.
    assert_eq!(
        (photo["width"].as_i64(), photo["height"].as_i64()),
        (Some(640), Some(1280))
    );
    assert_eq!(photo["mimeType"], "image/jpeg");
    assert!(!photo["hidden"].as_bool().unwrap());
    assert!(photo["placeholder"].as_str().unwrap().len() >= 20);
    let sizes: Vec<(i64, i64)> = photo["sizes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["width"].as_i64().unwrap(), s["height"].as_i64().unwrap()))
        .collect();
    assert_eq!(sizes, [(640, 1280), (320, 640), (80, 160)]);
    // Every size is on disk, named by its URL's key, as a JPEG with no Exif
    // block and no trace of the GPS latitude.
    let files = stored_files(app.media_dir());
    assert_eq!(files.len(), 3, "{files:?}");
    for size in photo["sizes"].as_array().unwrap() {
        let url = size["url"].as_str().unwrap();
        assert!(url.contains("expires=") && url.contains("sig="), "{url}");
        let path = app.media_dir().join(key_of(url));
        let bytes = std::fs::read(&path).unwrap_or_else(|_| panic!("{path:?} is stored"));
        assert_eq!(bytes.len() as i64, size["bytes"].as_i64().unwrap());
        assert_eq!(&bytes[..3], b"\xFF\xD8\xFF");
        assert!(
            !bytes.windows(4).any(|w| w == b"Exif"),
            "an Exif block survived"
        );
    }
    // `url` without a size is the largest; with one, the smallest at least that long.
    assert_eq!(photo["url"], photo["sizes"][0]["url"]);
    let data = app
        .data(
            "{ me { photos { small: url(size: 100) mid: url(size: 641) } } }",
            json!({}),
            ann.token(),
        )
        .await;
    assert_eq!(data["me"]["photos"][0]["small"], photo["sizes"][2]["url"]);
    assert_eq!(data["me"]["photos"][0]["mid"], photo["sizes"][0]["url"]);

    // A second at the end, a third in front: the order the owner chose.
    let second = upload_photo(&app, ann.token(), &jpeg(300, 200), None).await;
    let third_answer = upload_photo(&app, ann.token(), &jpeg(200, 300), Some(0)).await;
    let (first, second, third) = (
        photo["id"].as_str().unwrap(),
        second["data"]["uploadPhoto"]["id"].as_str().unwrap(),
        third_answer["data"]["uploadPhoto"]["id"].as_str().unwrap(),
    );
    let listed = my_photos(&app, &ann).await;
    assert_eq!(ids(&listed), [third, first, second]);
    let positions: Vec<i64> = listed
        .iter()
        .map(|p| p["position"].as_i64().unwrap())
        .collect();
    assert_eq!(positions, [0, 1, 2]);

    // Reordered, then one deleted: the others close up, its files go.
    let data = app
        .data(
            "mutation($input: ReorderPhotosInput!) { reorderPhotos(input: $input) { id position } }",
            json!({ "input": { "photoIds": [second, third, first] } }),
            ann.token(),
        )
        .await;
    assert_eq!(
        ids(data["reorderPhotos"].as_array().unwrap()),
        [second, third, first]
    );
    let data = app
        .data(
            "mutation($id: ID!) { deletePhoto(id: $id) }",
            json!({ "id": third }),
            ann.token(),
        )
        .await;
    assert_eq!(data["deletePhoto"], third);
    let third_url = third_answer["data"]["uploadPhoto"]["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let gone = app.client.get(app.url(&third_url)).send().await.unwrap();
    assert_eq!(gone.status(), 404, "a deleted photo's URL serves nothing");
    let listed = my_photos(&app, &ann).await;
    assert_eq!(ids(&listed), [second, first]);
    assert_eq!(listed[1]["position"], 1);
    let stored = stored_files(app.media_dir()).len();
    // 3 sizes of the first, 2 of the 300 × 200 one (300 and 160).
    assert_eq!(stored, 5);
}

#[tokio::test]
async fn a_reorder_that_is_not_a_permutation_of_the_viewers_photos_changes_nothing() {
    let app = spawn_app().await;
    let ann = app.register("ann_reorder").await;
    let bob = app.register("bob_reorder").await;
    let mut own = Vec::new();
    for _ in 0..3 {
        let answer = upload_photo(&app, ann.token(), &jpeg(64, 48), None).await;
        own.push(
            answer["data"]["uploadPhoto"]["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let bobs = upload_photo(&app, bob.token(), &jpeg(64, 48), None).await;
    let bobs = bobs["data"]["uploadPhoto"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let attempts = [
        json!([own[0], own[1]]),                 // one left out
        json!([own[0], own[1], own[2], own[2]]), // one twice
        json!([own[0], own[0], own[1]]),         // a repeat in place of one
        json!([own[0], own[1], bobs]),           // another's photo
        json!([own[0], own[1], ann.user_id]),    // not a photo's id at all
        json!([own[0], own[1], "garbage"]),
        json!([]),
    ];
    for photo_ids in attempts {
        let answer = app
            .graphql(
                "mutation($input: ReorderPhotosInput!) { reorderPhotos(input: $input) { id } }",
                json!({ "input": { "photoIds": photo_ids } }),
                ann.token(),
            )
            .await;
        assert_eq!(
            error_code(&answer),
            "BAD_USER_INPUT",
            "{photo_ids}: {answer}"
        );
        assert_eq!(error_field(&answer), Some("photoIds"));
    }
    assert_eq!(ids(&my_photos(&app, &ann).await), own);
    // Another's photo cannot be deleted either: as if it did not exist.
    let answer = app
        .graphql(
            "mutation($id: ID!) { deletePhoto(id: $id) }",
            json!({ "id": bobs }),
            ann.token(),
        )
        .await;
    assert_eq!(error_code(&answer), "NOT_FOUND");
    assert_eq!(my_photos(&app, &bob).await.len(), 1);
}

#[tokio::test]
async fn uploads_beyond_the_photo_cap_are_refused_and_leave_nothing_stored() {
    let app = spawn_app_with(|s| s.photos_per_user = 2).await;
    let ann = app.register("ann_cap").await;
    for _ in 0..2 {
        let answer = upload_photo(&app, ann.token(), &jpeg(64, 48), None).await;
        assert!(answer["errors"].is_null(), "{answer}");
    }
    let stored = stored_files(app.media_dir());
    // Refused one after another, and all at once.
    let answer = upload_photo(&app, ann.token(), &jpeg(64, 48), None).await;
    assert_eq!(error_code(&answer), "CONFLICT", "{answer}");
    let bytes = jpeg(64, 48);
    let racing: Vec<_> = (0..4)
        .map(|_| upload_photo(&app, ann.token(), &bytes, None))
        .collect();
    for answer in futures_util::future::join_all(racing).await {
        assert_eq!(error_code(&answer), "CONFLICT", "{answer}");
    }
    assert_eq!(my_photos(&app, &ann).await.len(), 2);
    assert_eq!(
        stored_files(app.media_dir()),
        stored,
        "no object without a row"
    );
}

#[tokio::test]
async fn concurrent_uploads_fill_the_cap_exactly_and_positions_stay_distinct() {
    let app = spawn_app_with(|s| s.photos_per_user = 3).await;
    let ann = app.register("ann_race").await;
    let bytes = jpeg(64, 48);
    let racing: Vec<_> = (0..6)
        .map(|_| upload_photo(&app, ann.token(), &bytes, Some(0)))
        .collect();
    let answers = futures_util::future::join_all(racing).await;
    let stored = answers.iter().filter(|a| a["errors"].is_null()).count();
    assert_eq!(stored, 3, "{answers:#?}");
    for refused in answers.iter().filter(|a| !a["errors"].is_null()) {
        assert_eq!(error_code(refused), "CONFLICT");
    }
    let listed = my_photos(&app, &ann).await;
    let positions: Vec<i64> = listed
        .iter()
        .map(|p| p["position"].as_i64().unwrap())
        .collect();
    assert_eq!(positions, [0, 1, 2]);
    // Two sizes each (64 and 64 capped from 640/160: 64 and 64 → one, plus 160 → 64)
    // whatever they are: exactly the rows' keys are on disk.
    let mut keys: Vec<String> = Vec::new();
    for photo in &listed {
        for size in photo["sizes"].as_array().unwrap() {
            keys.push(key_of(size["url"].as_str().unwrap()).to_owned());
        }
    }
    let on_disk: Vec<String> = stored_files(app.media_dir())
        .iter()
        .map(|p| {
            p.strip_prefix(app.media_dir())
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    keys.sort();
    assert_eq!(
        on_disk, keys,
        "exactly the listed photos' objects are stored"
    );
}

#[tokio::test]
async fn photos_are_shown_to_signed_in_users_but_never_across_a_block_or_to_the_signed_out() {
    let app = spawn_app().await;
    let ann = app.register("ann_seen").await;
    let bob = app.register("bob_seen").await;
    let cat = app.register("cat_seen").await;
    let answer = upload_photo(&app, ann.token(), &jpeg(64, 48), None).await;
    let photo = answer["data"]["uploadPhoto"]["id"].clone();
    assert_eq!(
        photos_seen_by(&app, &ann, Some(&bob)).await,
        json!([{ "id": photo }])
    );
    assert_eq!(photos_seen_by(&app, &ann, None).await, json!([]));
    let block = "mutation($id: ID!) { blockUser(userId: $id) { id } }";
    // Ann blocks bob: bob sees no photo (nor the profile).
    app.data(block, json!({ "id": bob.user_id }), ann.token())
        .await;
    let seen = photos_seen_by(&app, &ann, Some(&bob)).await;
    assert!(seen.is_null() || seen == json!([]), "{seen}");
    // Cat blocks ann: cat no longer gets ann's photo URLs.
    app.data(block, json!({ "id": ann.user_id }), cat.token())
        .await;
    assert_eq!(photos_seen_by(&app, &ann, Some(&cat)).await, json!([]));
    // Nor through a list that shows ann: her message in a group chat, say.
    assert_eq!(
        photos_seen_by(&app, &ann, Some(&ann)).await,
        json!([{ "id": photo }])
    );
}

/// A classifier on loopback, as `KITH_MEDIA_MODERATION_URL` names one: flags
/// every image after the first `pass_first`, or answers 500.
async fn classifier(pass_first: usize, fail: bool) -> (String, Arc<AtomicUsize>) {
    use axum::{Router, body::Bytes, http::StatusCode, routing::post};
    let seen = Arc::new(AtomicUsize::new(0));
    let counted = seen.clone();
    let router = Router::new().route(
        "/classify",
        post(move |headers: axum::http::HeaderMap, body: Bytes| {
            let counted = counted.clone();
            async move {
                let judged = counted.fetch_add(1, Ordering::SeqCst);
                assert_eq!(headers["content-type"], "image/jpeg");
                assert_eq!(&body[..3], b"\xFF\xD8\xFF", "a JPEG is classified");
                if fail {
                    return Err(StatusCode::INTERNAL_SERVER_ERROR);
                }
                Ok(axum::Json(json!({ "flagged": judged >= pass_first })))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (format!("http://{addr}/classify"), seen)
}

#[tokio::test]
async fn a_photo_the_classifier_flags_or_cannot_judge_is_shown_to_its_owner_only() {
    // Passes the first photo, flags the second.
    let (url, seen) = classifier(1, false).await;
    let app = spawn_app_with(|s| s.media_moderation_url = Some(url)).await;
    let ann = app.register("ann_moderated").await;
    let bob = app.register("bob_moderated").await;
    let clean = upload_photo(&app, ann.token(), &jpeg(64, 48), None).await;
    let flagged = upload_photo(&app, ann.token(), &jpeg(400, 300), None).await;
    assert_eq!(seen.load(Ordering::SeqCst), 2);
    assert_eq!(clean["data"]["uploadPhoto"]["hidden"], false);
    assert_eq!(flagged["data"]["uploadPhoto"]["hidden"], true);
    assert_eq!(my_photos(&app, &ann).await.len(), 2);
    assert_eq!(
        photos_seen_by(&app, &ann, Some(&bob)).await,
        json!([{ "id": clean["data"]["uploadPhoto"]["id"] }])
    );

    // A classifier that fails: the photo is kept, hidden, and the upload succeeds.
    let (url, _) = classifier(0, true).await;
    let app = spawn_app_with(|s| s.media_moderation_url = Some(url)).await;
    let ann = app.register("ann_unjudged").await;
    let bob = app.register("bob_unjudged").await;
    let answer = upload_photo(&app, ann.token(), &jpeg(64, 48), None).await;
    assert_eq!(answer["data"]["uploadPhoto"]["hidden"], true, "{answer}");
    assert_eq!(photos_seen_by(&app, &ann, Some(&bob)).await, json!([]));
}

#[tokio::test]
async fn deleting_an_account_removes_every_stored_object_of_its_photos() {
    let app = spawn_app().await;
    let ann = app.register("ann_leaving").await;
    let bob = app.register("bob_staying").await;
    for _ in 0..2 {
        upload_photo(&app, ann.token(), &jpeg(400, 300), None).await;
    }
    upload_photo(&app, bob.token(), &jpeg(400, 300), None).await;
    // Two sizes each (400 and 160).
    assert_eq!(stored_files(app.media_dir()).len(), 6);
    app.data(
        "mutation($input: DeleteAccountInput!) { deleteAccount(input: $input) }",
        json!({ "input": { "password": common::PASSWORD } }),
        ann.token(),
    )
    .await;
    let dir = app.media_dir().to_owned();
    common::eventually("ann's photos' objects removed", || {
        let dir = dir.clone();
        async move { (stored_files(&dir).len() == 2).then_some(()) }
    })
    .await;
    assert_eq!(my_photos(&app, &bob).await.len(), 1);
}

#[tokio::test]
async fn with_presigned_urls_on_s3_the_api_hands_out_the_buckets_own_urls() {
    let Some(s3) = super::store::s3_bucket().await else {
        return;
    };
    let app = spawn_app_with(|settings| {
        settings.media_store = kith::config::MediaStoreKind::S3;
        settings.s3_endpoint = s3.endpoint.clone();
        settings.s3_bucket = Some(s3.bucket.clone());
        settings.s3_access_key_id = Some("testing".into());
        settings.s3_secret_access_key = Some("testing".into());
        settings.s3_presigned_urls = true;
    })
    .await;
    let ann = app.register("ann_presigned").await;
    let answer = upload_photo(&app, ann.token(), &jpeg(300, 200), None).await;
    let photo = &answer["data"]["uploadPhoto"];
    let endpoint = s3.endpoint.unwrap();
    for size in photo["sizes"].as_array().unwrap() {
        let url = size["url"].as_str().unwrap();
        assert!(url.starts_with(&endpoint), "{url} is the bucket's");
        assert!(url.contains("X-Amz-Signature="), "{url} is presigned");
        let response = app.client.get(url).send().await.unwrap();
        assert_eq!(response.status(), 200, "{url}");
        let bytes = response.bytes().await.unwrap();
        assert_eq!(bytes.len() as i64, size["bytes"].as_i64().unwrap());
    }
}
