//! `GET /media/{key}` (and `HEAD`): the bytes of a stored photo or
//! attachment, for whoever holds a URL the API handed out
//! (`/media/<key>?expires=…&sig=…`, see `domain::media::MediaUrls`).
//!
//! In order, so that nothing is learnt without a valid URL:
//! 1. the signature and expiry (`403`, whatever the key; a bad key cannot
//!    carry a valid signature, kith signs checked keys only);
//! 2. the key (`404` if it is not one kith could have made);
//! 3. the store (`404` when the object is gone, `503` when the store fails).
//!
//! The key is taken from the path as it came, never percent-decoded: kith's
//! keys hold nothing that needs encoding, so `%2e%2e` stays `%2e%2e`, fails
//! the signature, and would fail the key's check after it.
//!
//! Responses are for `<img>` and downloads only: the type is one of the four
//! image types kith stores or `application/octet-stream` (never what a
//! store says beyond those, so never `text/html`), with `nosniff` and a
//! sandboxing CSP in case a browser opens one as a page.

use std::ops::Range;

use axum::{
    body::Body,
    extract::{Request, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    response::{IntoResponse, Response},
};
use bytes::Bytes;

use crate::{
    domain::media::UrlRefusal,
    http::HttpState,
    infra::media_store::{MediaKey, MediaStoreError},
};

/// The path the route is mounted at, before the key.
const PREFIX: &str = "/media/";
/// Seconds a client waits before trying again after the store failed.
const RETRY_AFTER_SECS: &str = "5";
const CSP: HeaderValue = HeaderValue::from_static("default-src 'none'; sandbox");
const NOSNIFF: HeaderValue = HeaderValue::from_static("nosniff");
const BYTES: HeaderValue = HeaderValue::from_static("bytes");
const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");

/// `GET` and `HEAD /media/{*key}?expires=…&sig=…`.
pub async fn serve(State(state): State<HttpState>, request: Request) -> Response {
    // Borrowed from the request: the `Method`, `Uri` and `HeaderMap`
    // extractors would each clone theirs.
    let (method, uri, headers) = (request.method(), request.uri(), request.headers());
    let raw_key = uri.path().strip_prefix(PREFIX).unwrap_or_default();
    let Some((expires, signature)) = uri.query().and_then(signed_query) else {
        return refused(StatusCode::FORBIDDEN, "this media URL is not signed\n");
    };
    let now = chrono::Utc::now().timestamp();
    match state
        .app
        .media
        .urls()
        .check(raw_key, expires, signature, now)
    {
        Ok(()) => {}
        Err(UrlRefusal::Expired) => {
            return refused(StatusCode::FORBIDDEN, "this media URL has expired\n");
        }
        Err(UrlRefusal::BadSignature) => {
            return refused(StatusCode::FORBIDDEN, "this media URL is not valid\n");
        }
    }
    let Ok(key) = MediaKey::parse(raw_key) else {
        return refused(StatusCode::NOT_FOUND, "no such media\n");
    };
    match respond(&state, method, headers, &key, expires - now).await {
        Ok(response) => response,
        Err(MediaStoreError::NotFound(_) | MediaStoreError::BadKey { .. }) => {
            refused(StatusCode::NOT_FOUND, "no such media\n")
        }
        Err(err) => {
            tracing::error!(key = %key, error = %err, "serving media failed");
            let mut response = refused(
                StatusCode::SERVICE_UNAVAILABLE,
                "the media store is unavailable, try again shortly\n",
            );
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(RETRY_AFTER_SECS),
            );
            response
        }
    }
}

/// The answer for a URL that passed its checks.
async fn respond(
    state: &HttpState,
    method: &Method,
    request: &HeaderMap,
    key: &MediaKey,
    seconds_left: i64,
) -> Result<Response, MediaStoreError> {
    let store = state.app.media.store();
    let etag = key
        .etag()
        .and_then(|hash| HeaderValue::try_from(format!("\"{hash}\"")).ok());
    // `private`: the URL is a capability handed to one viewer. `public`
    // would let a CDN or proxy in front of kith keep and serve the bytes,
    // which is what they are for, but a shared cache keyed on the path
    // alone (a common "ignore the query string" setting) would then hand a
    // photo to anyone who names its key, signature or not, and would keep
    // serving a photo its owner deleted or blocked a viewer from to others
    // holding the URL. Deployments that want a CDN turn on presigned URLs
    // (`KITH_S3_PRESIGNED_URLS`) or put the CDN's own signed URLs in front.
    // `immutable`: a key names its content, so the bytes never change
    // while the URL lives; `max-age` ends with the URL.
    let cache_control = HeaderValue::try_from(format!(
        "private, max-age={}, immutable",
        seconds_left.max(0)
    ))
    .expect("digits and ASCII are a valid header value");

    let conditional = request.contains_key(header::IF_NONE_MATCH);
    let range = if *method == Method::GET {
        requested_range(request, etag.as_ref())
    } else {
        None
    };
    if *method == Method::HEAD || conditional || range.is_some() {
        // Known without reading the bytes: whether the object is there (a
        // deleted photo is 404 even to a client holding a copy) and its size.
        let meta = store.head(key).await?;
        if conditional && none_match(request, etag.as_ref()) {
            let mut response = StatusCode::NOT_MODIFIED.into_response();
            let headers = response.headers_mut();
            if let Some(etag) = etag {
                headers.insert(header::ETAG, etag);
            }
            headers.insert(header::CACHE_CONTROL, cache_control);
            return Ok(response);
        }
        let content_type = meta.content_type.as_deref();
        match range.map(|spec| spec.within(meta.size)) {
            None => {
                let mut response = ok(content_type, key, etag, cache_control, meta.size);
                if *method == Method::GET {
                    // Asked conditionally and changed: the bytes after all.
                    let stored = store.get(key).await?;
                    *response.body_mut() = Body::from(stored.bytes);
                }
                Ok(response)
            }
            Some(Some(within)) => {
                let bytes = store.get_range(key, within.clone()).await?;
                Ok(partial(
                    content_type,
                    key,
                    etag,
                    cache_control,
                    &within,
                    meta.size,
                    bytes,
                ))
            }
            Some(None) => {
                let mut response = refused(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    "the range is not within the object\n",
                );
                let headers = response.headers_mut();
                headers.insert(
                    header::CONTENT_RANGE,
                    HeaderValue::try_from(format!("bytes */{}", meta.size))
                        .expect("digits are a valid header value"),
                );
                headers.insert(header::ACCEPT_RANGES, BYTES);
                Ok(response)
            }
        }
    } else {
        // The common case, one read: the whole object and its metadata.
        let stored = store.get(key).await?;
        let mut response = ok(
            stored.content_type.as_deref(),
            key,
            etag,
            cache_control,
            stored.bytes.len() as u64,
        );
        *response.body_mut() = Body::from(stored.bytes);
        Ok(response)
    }
}

/// `200` with every header and no body yet (a `HEAD`'s whole answer).
fn ok(
    stored_type: Option<&str>,
    key: &MediaKey,
    etag: Option<HeaderValue>,
    cache_control: HeaderValue,
    length: u64,
) -> Response {
    let mut response = Response::new(Body::empty());
    content_headers(
        response.headers_mut(),
        stored_type,
        key,
        etag,
        cache_control,
    );
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    response
}

/// `206` with the bytes of `within`.
fn partial(
    stored_type: Option<&str>,
    key: &MediaKey,
    etag: Option<HeaderValue>,
    cache_control: HeaderValue,
    within: &Range<u64>,
    size: u64,
    bytes: Bytes,
) -> Response {
    let length = bytes.len() as u64;
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = StatusCode::PARTIAL_CONTENT;
    let headers = response.headers_mut();
    content_headers(headers, stored_type, key, etag, cache_control);
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    headers.insert(
        header::CONTENT_RANGE,
        HeaderValue::try_from(format!(
            "bytes {}-{}/{size}",
            within.start,
            within.start + length.max(1) - 1
        ))
        .expect("digits are a valid header value"),
    );
    response
}

fn content_headers(
    headers: &mut HeaderMap,
    stored_type: Option<&str>,
    key: &MediaKey,
    etag: Option<HeaderValue>,
    cache_control: HeaderValue,
) {
    let (content_type, disposition) = match served_type(stored_type, key) {
        Some(image) => (image, "inline"),
        None => ("application/octet-stream", "attachment"),
    };
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static(disposition),
    );
    if let Some(etag) = etag {
        headers.insert(header::ETAG, etag);
    }
    headers.insert(header::CACHE_CONTROL, cache_control);
    headers.insert(header::ACCEPT_RANGES, BYTES);
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, NOSNIFF);
    headers.insert(header::CONTENT_SECURITY_POLICY, CSP);
}

/// The image type to serve, from the four kith stores: the stored type when
/// it is one of them, else the key's extension's. `None` otherwise (served
/// as `application/octet-stream`): whatever a store was told, kith never
/// serves a type a browser would run (`text/html`, `image/svg+xml`).
fn served_type(stored: Option<&str>, key: &MediaKey) -> Option<&'static str> {
    const IMAGES: [&str; 4] = ["image/jpeg", "image/png", "image/webp", "image/gif"];
    stored
        .and_then(|stored| {
            let essence = stored.split(';').next().unwrap_or_default().trim();
            IMAGES
                .into_iter()
                .find(|image| image.eq_ignore_ascii_case(essence))
        })
        .or_else(|| key.content_type())
}

/// A `403`, `404`, `416` or `503`: short plain text, never the key (nor
/// anything else from the request), and kept by no cache.
fn refused(status: StatusCode, message: &'static str) -> Response {
    let mut response = (status, message).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, NO_STORE);
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, NOSNIFF);
    response
}

/// `expires` and `sig` from the query; `None` when either is missing or
/// `expires` is no number. The first of each counts.
fn signed_query(query: &str) -> Option<(i64, &str)> {
    let mut expires = None;
    let mut signature = None;
    for pair in query.split('&') {
        if let Some(value) = pair.strip_prefix("expires=") {
            expires = expires.or(Some(value));
        } else if let Some(value) = pair.strip_prefix("sig=") {
            signature = signature.or(Some(value));
        }
    }
    Some((expires?.parse().ok()?, signature?))
}

/// Whether `If-None-Match` names the object (or is `*`): weak comparison,
/// as RFC 9110 has for this header.
fn none_match(request: &HeaderMap, etag: Option<&HeaderValue>) -> bool {
    let ours = etag.map(HeaderValue::as_bytes);
    request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .any(|tag| {
            tag == "*"
                || ours.is_some_and(|ours| tag.strip_prefix("W/").unwrap_or(tag).as_bytes() == ours)
        })
}

/// One range of bytes asked for, before the object's size is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RangeSpec {
    /// `bytes=a-b`, both included.
    FromTo(u64, u64),
    /// `bytes=a-`.
    From(u64),
    /// `bytes=-n`: the last `n` bytes.
    Last(u64),
}

impl RangeSpec {
    /// The bytes this asks for in an object of `size` bytes; `None` when
    /// there are none (a `416`).
    fn within(self, size: u64) -> Option<Range<u64>> {
        match self {
            Self::FromTo(start, _) | Self::From(start) if start >= size => None,
            Self::FromTo(start, last) => Some(start..last.saturating_add(1).min(size)),
            Self::From(start) => Some(start..size),
            Self::Last(0) => None,
            Self::Last(_) if size == 0 => None,
            Self::Last(count) => Some(size.saturating_sub(count)..size),
        }
    }
}

/// The single range a `GET` asks for, if it is to be honoured: `None` for
/// no `Range`, one kith does not read (a bad one, another unit), several
/// ranges (the whole object answers those, as RFC 9110 allows), or an
/// `If-Range` that does not name the object as it is.
fn requested_range(request: &HeaderMap, etag: Option<&HeaderValue>) -> Option<RangeSpec> {
    let value = request.get(header::RANGE)?.to_str().ok()?;
    if let Some(if_range) = request.get(header::IF_RANGE) {
        // A strong comparison; a date cannot match, kith sends none.
        if Some(if_range) != etag {
            return None;
        }
    }
    parse_range(value)
}

fn parse_range(value: &str) -> Option<RangeSpec> {
    let (unit, spec) = value.split_once('=')?;
    if !unit.trim().eq_ignore_ascii_case("bytes") || spec.contains(',') {
        return None;
    }
    let (first, last) = spec.trim().split_once('-')?;
    let number = |digits: &str| -> Option<u64> {
        (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
            .then(|| digits.parse().ok())
            .flatten()
    };
    match (first.is_empty(), last.is_empty()) {
        (true, false) => Some(RangeSpec::Last(number(last)?)),
        (false, true) => Some(RangeSpec::From(number(first)?)),
        (false, false) => {
            let (start, end) = (number(first)?, number(last)?);
            (start <= end).then_some(RangeSpec::FromTo(start, end))
        }
        (true, true) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_read_as_rfc_9110_has_them() {
        assert_eq!(parse_range("bytes=0-99"), Some(RangeSpec::FromTo(0, 99)));
        assert_eq!(parse_range("bytes=100-"), Some(RangeSpec::From(100)));
        assert_eq!(parse_range("bytes=-5"), Some(RangeSpec::Last(5)));
        assert_eq!(parse_range("Bytes= 7-7"), Some(RangeSpec::FromTo(7, 7)));
        for ignored in [
            "bytes=0-1,4-5",
            "bytes=5-1",
            "bytes=-",
            "bytes=a-b",
            "bytes=+1-2",
            "items=0-1",
            "bytes 0-1",
            "bytes=99999999999999999999999-",
        ] {
            assert_eq!(parse_range(ignored), None, "{ignored}");
        }
    }

    #[test]
    fn a_range_is_cut_to_the_object_or_refused() {
        assert_eq!(RangeSpec::FromTo(0, 9).within(100), Some(0..10));
        assert_eq!(RangeSpec::FromTo(90, 200).within(100), Some(90..100));
        assert_eq!(RangeSpec::FromTo(100, 200).within(100), None);
        assert_eq!(RangeSpec::From(99).within(100), Some(99..100));
        assert_eq!(RangeSpec::From(100).within(100), None);
        assert_eq!(RangeSpec::Last(10).within(100), Some(90..100));
        assert_eq!(RangeSpec::Last(1000).within(100), Some(0..100));
        assert_eq!(RangeSpec::Last(0).within(100), None);
        assert_eq!(RangeSpec::Last(1).within(0), None);
        assert_eq!(RangeSpec::FromTo(0, u64::MAX).within(5), Some(0..5));
    }

    #[test]
    fn the_query_needs_both_parts() {
        assert_eq!(signed_query("expires=12&sig=abc"), Some((12, "abc")));
        assert_eq!(
            signed_query("sig=abc&expires=12&expires=99"),
            Some((12, "abc"))
        );
        assert_eq!(signed_query("expires=12"), None);
        assert_eq!(signed_query("sig=abc"), None);
        assert_eq!(signed_query("expires=soon&sig=abc"), None);
    }

    #[test]
    fn only_the_four_image_types_are_served_as_such() {
        let jpg = MediaKey::parse("photos/a/1-0123456789ab.jpg").unwrap();
        let html = MediaKey::parse("files/a/page.html").unwrap();
        assert_eq!(served_type(Some("image/png"), &jpg), Some("image/png"));
        assert_eq!(served_type(Some("text/html"), &jpg), Some("image/jpeg"));
        assert_eq!(served_type(Some("text/html"), &html), None);
        assert_eq!(served_type(Some("image/svg+xml"), &html), None);
        assert_eq!(served_type(None, &html), None);
        assert_eq!(
            served_type(Some("IMAGE/WEBP; q=1"), &html),
            Some("image/webp")
        );
    }
}
