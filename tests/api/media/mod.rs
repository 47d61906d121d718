//! Media through the real server: uploads by the GraphQL multipart request
//! spec, what is stored (on disk, or in the S3-compatible service), who sees
//! the URLs, and every upload an attacker would try.

mod attachments;
mod bad_uploads;
mod photos;
mod replicas;
mod serving;
mod store;

#[path = "../../fixtures/images.rs"]
pub mod images;

use std::path::{Path, PathBuf};

use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};

use crate::common::TestApp;

pub const PHOTO_FIELDS: &str = "id position width height mimeType bytes placeholder url \
    sizes { width height bytes url } hidden";

pub const UPLOAD_PHOTO: &str = "mutation($input: UploadPhotoInput!) {
    uploadPhoto(input: $input) { id position width height mimeType bytes placeholder url
        sizes { width height bytes url } hidden } }";

pub const UPLOAD_ATTACHMENT: &str = "mutation($file: Upload!) {
    uploadAttachment(file: $file) { id width height mimeType bytes placeholder url
        sizes { width height bytes url } } }";

/// A multipart body per the GraphQL multipart request spec: `operations`,
/// `map`, then each file under its name.
pub fn multipart(operations: &Value, map: &Value, files: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "kith-media-boundary-7d1c";
    let mut body = Vec::new();
    for (name, value) in [("operations", operations), ("map", map)] {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    for (name, bytes) in files {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; \
                 filename=\"upload.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Posts a multipart request; the status and the JSON answer (`Null` when
/// the answer is not JSON).
pub async fn post_multipart(
    app: &TestApp,
    token: Option<&str>,
    operations: Value,
    map: Value,
    files: &[(&str, &[u8])],
) -> (u16, Value) {
    let (content_type, body) = multipart(&operations, &map, files);
    let mut request = app
        .client
        .post(app.url("/graphql"))
        .header(CONTENT_TYPE, content_type)
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("the upload is answered");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// `uploadPhoto` with `bytes` at `position`: the whole answer.
pub async fn upload_photo(
    app: &TestApp,
    token: Option<&str>,
    bytes: &[u8],
    position: Option<i32>,
) -> Value {
    let (status, body) = post_multipart(
        app,
        token,
        json!({ "query": UPLOAD_PHOTO, "variables": { "input": { "file": null, "position": position } } }),
        json!({ "0": ["variables.input.file"] }),
        &[("0", bytes)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// `uploadAttachment` with `bytes`: the whole answer.
pub async fn upload_attachment(app: &TestApp, token: Option<&str>, bytes: &[u8]) -> Value {
    let (status, body) = post_multipart(
        app,
        token,
        json!({ "query": UPLOAD_ATTACHMENT, "variables": { "file": null } }),
        json!({ "0": ["variables.file"] }),
        &[("0", bytes)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// A photo-like JPEG of `width` × `height`.
pub fn jpeg(width: u32, height: u32) -> Vec<u8> {
    images::jpeg(&images::photo(width, height))
}

/// Every file in the local media store, by path.
pub fn stored_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The store key a URL the API handed out names (`/media/<key>?…`).
pub fn key_of(url: &str) -> &str {
    url.strip_prefix("/media/")
        .and_then(|rest| rest.split('?').next())
        .unwrap_or_else(|| panic!("not a media URL: {url}"))
}
