//! What an attacker uploads: files in disguise, broken and empty ones, a
//! decompression bomb, bodies over the limits, more files than the operation
//! takes, no token, and too many uploads. Each gets a clear answer at once,
//! and nothing is stored.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{
    UPLOAD_ATTACHMENT, UPLOAD_PHOTO, images, jpeg, post_multipart, stored_files, upload_attachment,
    upload_photo,
};
use crate::common::{error_code, error_field, spawn_app, spawn_app_with};

fn refused_file(answer: &Value) -> String {
    assert_eq!(error_code(answer), "BAD_USER_INPUT", "{answer}");
    assert_eq!(error_field(answer), Some("file"), "{answer}");
    assert!(answer["data"].is_null() || answer["data"]["uploadPhoto"].is_null());
    answer["errors"][0]["message"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn files_that_are_not_whole_images_of_the_four_formats_are_refused_by_their_bytes() {
    let app = spawn_app().await;
    let ann = app.register("ann_bad_files").await;
    let whole = jpeg(300, 200);
    let cases: [(&str, Vec<u8>, &str); 5] = [
        (
            "HTML named .jpg",
            b"<!DOCTYPE html><html><script>alert(document.cookie)</script></html>".to_vec(),
            "unsupported file type",
        ),
        (
            "a script",
            b"#!/bin/sh\nrm -rf /\n".to_vec(),
            "unsupported file type",
        ),
        ("a zero-byte file", Vec::new(), "empty"),
        (
            "a truncated JPEG",
            whole[..whole.len() / 2].to_vec(),
            "damaged",
        ),
        (
            "a JPEG header on HTML",
            [&whole[..20], b"<html><script>x</script>".as_slice()].concat(),
            "damaged",
        ),
    ];
    for (what, bytes, said) in cases {
        let message = refused_file(&upload_photo(&app, ann.token(), &bytes, None).await);
        assert!(message.contains(said), "{what}: {message}");
        let message = refused_file(&upload_attachment(&app, ann.token(), &bytes).await);
        assert!(message.contains(said), "{what} as an attachment: {message}");
    }
    assert_eq!(
        stored_files(app.media_dir()),
        Vec::<std::path::PathBuf>::new()
    );
}

#[tokio::test]
async fn a_decompression_bomb_is_refused_from_its_header_at_once() {
    let app = spawn_app().await;
    let ann = app.register("ann_bomb").await;
    // 30,000 × 30,000 declared in a file of a few dozen bytes.
    let bomb = images::png_declaring(30_000, 30_000);
    assert!(bomb.len() < 100);
    let started = Instant::now();
    let message = refused_file(&upload_photo(&app, ann.token(), &bomb, None).await);
    assert!(message.contains("too many pixels"), "{message}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(stored_files(app.media_dir()).is_empty());
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn an_upload_over_the_byte_limit_is_413_or_bad_input_and_never_stored() {
    let app = spawn_app_with(|s| s.media_max_bytes = 60_000).await;
    let ann = app.register("ann_big").await;
    let big = jpeg(1200, 900);
    assert!(big.len() > 60_000, "{}", big.len());
    // Over the file limit, within the body limit: 413 from the multipart reader.
    let (status, body) = post_multipart(
        &app,
        ann.token(),
        json!({ "query": UPLOAD_PHOTO, "variables": { "input": { "file": null } } }),
        json!({ "0": ["variables.input.file"] }),
        &[("0", &big)],
    )
    .await;
    assert_eq!(status, 413, "{body}");
    // Over the whole body limit (the upload limit plus the request limit).
    let huge = vec![0xFF; 60_000 + 2 * 1024 * 1024 + 1];
    let (status, _) = post_multipart(
        &app,
        ann.token(),
        json!({ "query": UPLOAD_PHOTO, "variables": { "input": { "file": null } } }),
        json!({ "0": ["variables.input.file"] }),
        &[("0", &huge)],
    )
    .await;
    assert_eq!(status, 413);
    // A JSON body keeps its own, smaller limit.
    let response = app
        .client
        .post(app.url("/graphql"))
        .header("content-type", "application/json")
        .body(vec![b' '; 2 * 1024 * 1024 + 1])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    assert!(stored_files(app.media_dir()).is_empty());
    // Just within the limit is taken.
    let fits = jpeg(300, 200);
    let answer = upload_photo(&app, ann.token(), &fits, None).await;
    assert!(answer["errors"].is_null(), "{answer}");
}

#[tokio::test]
async fn more_files_than_the_operation_takes_are_refused_before_anything_runs() {
    let app = spawn_app().await;
    let ann = app.register("ann_files").await;
    let picture = jpeg(64, 48);
    let attempts = [
        // A second file aimed at a variable that is not an Upload.
        (
            json!({ "query": UPLOAD_ATTACHMENT, "variables": { "file": null } }),
            json!({ "0": ["variables.file"], "1": ["variables.other"] }),
            vec![("0", picture.as_slice()), ("1", picture.as_slice())],
        ),
        // Two files for the one Upload.
        (
            json!({ "query": UPLOAD_ATTACHMENT, "variables": { "file": null } }),
            json!({ "0": ["variables.file"], "1": ["variables.file"] }),
            vec![("0", picture.as_slice()), ("1", picture.as_slice())],
        ),
        // A file the map does not name.
        (
            json!({ "query": UPLOAD_ATTACHMENT, "variables": { "file": null } }),
            json!({ "0": ["variables.file"] }),
            vec![("0", picture.as_slice()), ("stray", picture.as_slice())],
        ),
    ];
    for (operations, map, files) in attempts {
        let (status, body) =
            post_multipart(&app, ann.token(), operations, map.clone(), &files).await;
        assert_eq!(status, 400, "{map}: {body}");
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{map}: {body}");
    }
    assert!(stored_files(app.media_dir()).is_empty());
}

#[tokio::test]
async fn an_upload_without_a_valid_token_is_unauthenticated_and_stores_nothing() {
    let app = spawn_app().await;
    for token in [None, Some("not-a-token")] {
        let answer = upload_photo(&app, token, &jpeg(64, 48), None).await;
        assert_eq!(error_code(&answer), "UNAUTHENTICATED", "{answer}");
        let answer = upload_attachment(&app, token, &jpeg(64, 48)).await;
        assert_eq!(error_code(&answer), "UNAUTHENTICATED", "{answer}");
    }
    assert!(stored_files(app.media_dir()).is_empty());
}

#[tokio::test]
async fn uploads_are_rate_limited_per_user_across_photos_and_attachments() {
    let app = spawn_app_with(|s| {
        s.rate_limits = kith::config::Switch::On;
        s.rate_uploads_per_user = kith::config::Rate::per_hour(3);
    })
    .await;
    let ann = app.register("ann_limited").await;
    let bob = app.register("bob_limited").await;
    let picture = jpeg(64, 48);
    for _ in 0..2 {
        assert!(upload_photo(&app, ann.token(), &picture, None).await["errors"].is_null());
    }
    assert!(upload_attachment(&app, ann.token(), &picture).await["errors"].is_null());
    let answer = upload_attachment(&app, ann.token(), &picture).await;
    assert_eq!(error_code(&answer), "RATE_LIMITED", "{answer}");
    let answer = upload_photo(&app, ann.token(), &picture, None).await;
    assert_eq!(error_code(&answer), "RATE_LIMITED", "{answer}");
    // Bob has his own allowance.
    assert!(upload_photo(&app, bob.token(), &picture, None).await["errors"].is_null());
}
