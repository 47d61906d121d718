//! `GET /media/{key}` through the real server: signed, expiring URLs, the
//! caching and safety headers, conditional and ranged requests; on the local
//! disk always and on S3 (moto) when `KITH_TEST_S3_ENDPOINT` names one. And
//! the presigned URLs the API hands out instead with
//! `KITH_S3_PRESIGNED_URLS`.
//!
//! The objects are put through the app's own store (`AppState.media`), so
//! these tests start the app themselves, to keep its state: `common`'s
//! `spawn_app` hands out only its address.

use std::{net::SocketAddr, path::PathBuf};

use bytes::Bytes;
use kith::{
    app::Application,
    config::{MediaStoreKind, Settings},
    infra::media_store::{MediaKey, MediaPrefix},
    state::AppState,
};
use reqwest::{StatusCode, header};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    sync::oneshot,
};

use crate::common;

/// A running app with its state and its own temporary directory (the
/// SQLite file, and the local store's directory under `media/`).
struct MediaApp {
    addr: SocketAddr,
    state: AppState,
    client: reqwest::Client,
    dir: tempfile::TempDir,
    _stop: oneshot::Sender<()>,
}

impl MediaApp {
    async fn start(configure: impl FnOnce(&mut Settings, &std::path::Path)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = Settings {
            database_url: format!("sqlite://{}?mode=rwc", dir.path().join("kith.db").display()),
            listen: "127.0.0.1:0".parse().unwrap(),
            jwt_secret: Some(common::JWT_SECRET.into()),
            rate_limits: kith::config::Switch::Off,
            db_max_connections: 5,
            shutdown_drain_millis: 0,
            media_dir: Some(dir.path().join("media")),
            ..Settings::default()
        };
        configure(&mut settings, dir.path());
        let app = Application::build(settings).await.expect("app builds");
        let addr = app.local_addr().unwrap();
        let state = app.state().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(app.run_until_stopped(async {
            let _ = stopped.await;
        }));
        Self {
            addr,
            state,
            client: reqwest::Client::new(),
            dir,
            _stop: stop,
        }
    }

    async fn local() -> Self {
        Self::start(|_, _| {}).await
    }

    /// On a fresh bucket of the test S3 service; `None` (skipped) without.
    async fn s3(presigned: bool) -> Option<Self> {
        let s3 = super::store::s3_bucket().await?;
        Some(
            Self::start(|settings, _| {
                settings.media_store = MediaStoreKind::S3;
                settings.media_dir = None;
                settings.s3_endpoint = s3.endpoint;
                settings.s3_bucket = Some(s3.bucket);
                settings.s3_region = Some("us-east-1".into());
                settings.s3_access_key_id = Some("testing".into());
                settings.s3_secret_access_key = Some("testing".into());
                settings.s3_path_style = true;
                settings.s3_presigned_urls = presigned;
            })
            .await,
        )
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Stores `bytes` under a content-addressed key in `dir`.
    async fn put(&self, dir: &str, name: &str, ext: &str, bytes: &[u8], mime: &str) -> MediaKey {
        let dir = MediaPrefix::parse(dir).unwrap();
        let key = MediaKey::content_addressed(&dir, name, ext, bytes).unwrap();
        self.state
            .media
            .store()
            .put(&key, Bytes::copy_from_slice(bytes), mime)
            .await
            .expect("put");
        key
    }

    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut request = self.client.get(self.url(path));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.expect("the server answers")
    }

    /// A request as written, path untouched: reqwest (like browsers)
    /// resolves `..` and `%2e%2e` before sending, which an attacker's
    /// client need not. Returns the status and the body.
    async fn raw_get(&self, path_and_query: &str) -> (u16, String) {
        let mut stream = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        stream
            .write_all(
                format!("GET {path_and_query} HTTP/1.1\r\nHost: kith\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            )
            .await
            .unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.unwrap();
        let answer = String::from_utf8_lossy(&answer).into_owned();
        let status = answer
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("a status line: {answer:?}"));
        (status, answer)
    }
}

/// About 5 KB that stand for a thumbnail (the server never decodes them).
fn thumbnail() -> Vec<u8> {
    let mut seed: u32 = 0x2545_F491;
    let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xE0];
    bytes.extend((0..5_000).map(|_| {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed as u8
    }));
    bytes
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("a {name} header"))
        .to_str()
        .unwrap()
}

/// The seconds of `max-age` in a `Cache-Control`.
fn max_age(cache_control: &str) -> i64 {
    cache_control
        .split(',')
        .find_map(|part| part.trim().strip_prefix("max-age="))
        .expect("a max-age")
        .parse()
        .unwrap()
}

/// Everything `/media` must do, on any store.
async fn serves_what_it_signed(app: &MediaApp) {
    let bytes = thumbnail();
    let len = bytes.len();
    let id = uuid::Uuid::new_v4().simple().to_string();
    let key = app
        .put(&format!("photos/{id}"), "160", "jpg", &bytes, "image/jpeg")
        .await;
    let urls = app.state.media.urls();
    let url = urls.url(&key);
    let etag = format!("\"{}\"", key.etag().unwrap());
    let ttl = urls.lifetime().as_secs() as i64;

    // The whole object, with every header.
    let response = app.get(&url, &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "content-type"), "image/jpeg");
    assert_eq!(header(&response, "content-length"), len.to_string());
    assert_eq!(header(&response, "etag"), etag);
    let cache_control = header(&response, "cache-control").to_owned();
    assert!(
        cache_control.starts_with("private, max-age=") && cache_control.ends_with(", immutable"),
        "{cache_control}"
    );
    let age = max_age(&cache_control);
    assert!(
        age >= ttl - 5 && age <= ttl + ttl / 4 + 1,
        "{age} is about the lifetime {ttl}"
    );
    assert_eq!(header(&response, "x-content-type-options"), "nosniff");
    assert_eq!(
        header(&response, "content-security-policy"),
        "default-src 'none'; sandbox"
    );
    assert_eq!(header(&response, "content-disposition"), "inline");
    assert_eq!(header(&response, "accept-ranges"), "bytes");
    assert_eq!(response.bytes().await.unwrap(), bytes);

    // HEAD: the same headers, no body.
    let response = app.client.head(app.url(&url)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "content-length"), len.to_string());
    assert_eq!(header(&response, "etag"), etag);
    assert_eq!(header(&response, "content-type"), "image/jpeg");
    assert!(response.bytes().await.unwrap().is_empty());

    // Revalidation: 304 for the same tag (weak or strong, in a list).
    for tag in [
        etag.clone(),
        format!("W/{etag}"),
        format!("\"other\", {etag}"),
        "*".into(),
    ] {
        let response = app.get(&url, &[("if-none-match", &tag)]).await;
        assert_eq!(response.status(), StatusCode::NOT_MODIFIED, "{tag}");
        assert_eq!(header(&response, "etag"), etag);
        assert!(response.bytes().await.unwrap().is_empty());
    }
    let response = app.get(&url, &[("if-none-match", "\"other\"")]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.bytes().await.unwrap(), bytes);

    // Ranges: the three forms, then one past the end, then several.
    for (range, from, to) in [
        ("bytes=0-99", 0, 99),
        ("bytes=100-", 100, len - 1),
        ("bytes=-50", len - 50, len - 1),
        ("bytes=4000-999999", 4000, len - 1),
    ] {
        let response = app.get(&url, &[("range", range)]).await;
        assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(
            header(&response, "content-range"),
            format!("bytes {from}-{to}/{len}"),
            "{range}"
        );
        assert_eq!(
            header(&response, "content-length"),
            (to - from + 1).to_string()
        );
        assert_eq!(header(&response, "etag"), etag);
        assert_eq!(header(&response, "content-type"), "image/jpeg");
        assert_eq!(response.bytes().await.unwrap(), bytes[from..=to], "{range}");
    }
    for unsatisfiable in [format!("bytes={len}-"), "bytes=-0".into()] {
        let response = app.get(&url, &[("range", &unsatisfiable)]).await;
        assert_eq!(
            response.status(),
            StatusCode::RANGE_NOT_SATISFIABLE,
            "{unsatisfiable}"
        );
        assert_eq!(header(&response, "content-range"), format!("bytes */{len}"));
    }
    for whole in ["bytes=0-1,5-9", "bytes=9-1", "lines=1-2"] {
        let response = app.get(&url, &[("range", whole)]).await;
        assert_eq!(response.status(), StatusCode::OK, "{whole}");
        assert_eq!(response.bytes().await.unwrap(), bytes, "{whole}");
    }
    // If-Range naming another version: the whole object.
    let response = app
        .get(&url, &[("range", "bytes=0-9"), ("if-range", "\"other\"")])
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = app
        .get(&url, &[("range", "bytes=0-9"), ("if-range", &etag)])
        .await;
    assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT);

    // Refusals: expired, tampered, unsigned. Never the key in the body.
    let now = chrono::Utc::now().timestamp();
    let expired = urls.url_at(&key, now - 2 * ttl);
    let (path, query) = url.split_once('?').unwrap();
    let sig_at = url.find("sig=").unwrap() + 4;
    let mut tampered = url.clone().into_bytes();
    tampered[sig_at] = if tampered[sig_at] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let other_key = MediaKey::parse(&format!("photos/{id}/640-0123456789ab.jpg")).unwrap();
    let moved_sig = format!(
        "/media/{other_key}?{}",
        urls.url(&key).split_once('?').unwrap().1
    );
    let expires_only = format!("{path}?{}", query.split('&').next().unwrap());
    for (what, refused) in [
        ("expired", expired.as_str()),
        ("tampered", tampered.as_str()),
        ("unsigned", path),
        ("no signature", expires_only.as_str()),
        ("another key's signature", moved_sig.as_str()),
    ] {
        let response = app.get(refused, &[]).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{what}");
        assert!(
            header(&response, "content-type").starts_with("text/plain"),
            "{what}"
        );
        let body = response.text().await.unwrap();
        assert!(!body.contains(&id), "{what}: the body names no key: {body}");
    }

    // A signed URL for what is not stored.
    let response = app.get(&urls.url(&other_key), &[]).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    // Paths that would climb out: refused, as written and percent-encoded.
    let signature = query;
    for climbing in [
        format!("/media/photos/{id}/../../../outside.jpg?{signature}"),
        format!("/media/photos/{id}/%2e%2e/%2e%2e/%2e%2e/outside.jpg?{signature}"),
        format!("/media/%2e%2e/outside.jpg?{signature}"),
        format!("/media/..%2foutside.jpg?{signature}"),
        format!("/media/%2Fetc%2Fpasswd?{signature}"),
        format!("/media//etc/passwd?{signature}"),
    ] {
        let (status, answer) = app.raw_get(&climbing).await;
        assert!(
            status == 403 || status == 404,
            "{climbing}: {status} {answer}"
        );
        assert!(!answer.contains("outside the store"), "{climbing}");
        assert!(!answer.contains("root:"), "{climbing}");
    }

    // Deleted: gone for URLs still valid.
    app.state.media.store().delete(&key).await.unwrap();
    let response = app.get(&url, &[]).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = app.get(&url, &[("if-none-match", &etag)]).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    // Never a page: a key ending `.html`, stored as `text/html`.
    let page = b"<html><script>alert(1)</script></html>";
    let html = app
        .put(&format!("files/{id}"), "page", "html", page, "text/html")
        .await;
    for response in [
        app.get(&urls.url(&html), &[]).await,
        app.client
            .head(app.url(&urls.url(&html)))
            .send()
            .await
            .unwrap(),
    ] {
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            header(&response, "content-type"),
            "application/octet-stream"
        );
        assert_eq!(header(&response, "content-disposition"), "attachment");
        assert_eq!(header(&response, "x-content-type-options"), "nosniff");
    }
    // A stored type other than the four images is not passed on.
    let svg = app
        .put(&format!("files/{id}"), "logo", "jpg", page, "image/svg+xml")
        .await;
    let response = app.get(&urls.url(&svg), &[]).await;
    assert_eq!(header(&response, "content-type"), "image/jpeg");
}

#[tokio::test]
async fn the_local_store_serves_what_it_signed_and_nothing_else() {
    let app = MediaApp::local().await;
    // A file beside the store's directory, which no URL may reach.
    let outside: PathBuf = app.dir.path().join("outside.jpg");
    std::fs::write(&outside, "outside the store").unwrap();
    serves_what_it_signed(&app).await;
    assert!(outside.exists());
}

#[tokio::test]
async fn the_s3_store_serves_what_it_signed_and_nothing_else() {
    let Some(app) = MediaApp::s3(false).await else {
        return;
    };
    serves_what_it_signed(&app).await;
}

#[tokio::test]
async fn without_presigning_the_api_hands_out_kiths_own_urls() {
    let app = MediaApp::local().await;
    let key = app
        .put("photos/p", "160", "jpg", &thumbnail(), "image/jpeg")
        .await;
    let url = app.state.media.url_for(&key).await;
    assert!(url.starts_with(&format!("/media/{key}?expires=")), "{url}");
    assert_eq!(app.get(&url, &[]).await.status(), StatusCode::OK);
    let Some(app) = MediaApp::s3(false).await else {
        return;
    };
    let key = app
        .put("photos/p", "160", "jpg", &thumbnail(), "image/jpeg")
        .await;
    let url = app.state.media.url_for(&key).await;
    assert!(url.starts_with("/media/"), "{url}");
}

#[tokio::test]
async fn a_presigned_url_fetches_the_object_from_the_bucket_itself() {
    let Some(app) = MediaApp::s3(true).await else {
        return;
    };
    let bytes = thumbnail();
    let key = app
        .put("photos/presigned", "160", "jpg", &bytes, "image/jpeg")
        .await;
    let url = app.state.media.url_for(&key).await;
    let endpoint = std::env::var("KITH_TEST_S3_ENDPOINT").unwrap();
    assert!(url.starts_with(endpoint.trim_end_matches('/')), "{url}");
    assert!(url.contains("X-Amz-Signature="), "{url}");
    assert!(
        url.contains(&format!(
            "X-Amz-Expires={}",
            app.state.media.urls().lifetime().as_secs()
        )),
        "{url}"
    );
    let response = reqwest::get(&url).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE].to_str().unwrap(),
        "image/jpeg"
    );
    assert_eq!(response.bytes().await.unwrap(), bytes);
    // kith's own URL keeps working beside it.
    let own = app.state.media.urls().url(&key);
    assert_eq!(app.get(&own, &[]).await.status(), StatusCode::OK);
}
