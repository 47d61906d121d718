//! The GraphiQL playground at `/graphiql`, served entirely from the binary.
//!
//! GraphiQL, React and the graphql-ws client are vendored in `vendor/graphiql`
//! (pinned releases with their licences; `update.sh` there refreshes them) and
//! embedded here, so the page asks nothing of the internet: a developer on a
//! train, or a locked-down network, gets a working playground. Each asset's URL
//! carries a hash of its bytes, so browsers may keep it for a year, and a new
//! release (a new hash) is fetched at once; the page itself is never cached.

use std::sync::LazyLock;

use axum::{
    extract::Path,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use sha2::{Digest, Sha256};

/// A file the page loads, under the name the page template uses for it.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

macro_rules! vendored {
    ($name:literal, $content_type:expr) => {
        Asset {
            name: $name,
            content_type: $content_type,
            bytes: include_bytes!(concat!("../../../vendor/graphiql/", $name)),
        }
    };
}

macro_rules! own {
    ($name:literal, $content_type:expr) => {
        Asset {
            name: $name,
            content_type: $content_type,
            bytes: include_bytes!($name),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

static ASSETS: [Asset; 7] = [
    vendored!("react.production.min.js", JS),
    vendored!("react-dom.production.min.js", JS),
    vendored!("graphiql.min.js", JS),
    vendored!("graphiql.min.css", CSS),
    vendored!("graphql-ws.min.js", JS),
    own!("kith-graphiql.js", JS),
    own!("kith-graphiql.css", CSS),
];

const PAGE_TEMPLATE: &str = include_str!("page.html");

/// Where the assets are served: `/graphiql/assets/{file}`.
const ASSET_PREFIX: &str = "/graphiql/assets/";

/// Each asset's file name with its content hash (`graphiql.min.3f2a9c0d1b4e.js`).
static HASHED_NAMES: LazyLock<Vec<String>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|asset| {
            let digest = hex::encode(Sha256::digest(asset.bytes));
            let (stem, extension) = asset
                .name
                .rsplit_once('.')
                .expect("asset names have an extension");
            format!("{stem}.{}.{extension}", &digest[..12])
        })
        .collect()
});

/// The page, with every `{{name}}` in the template replaced by that asset's URL.
static PAGE: LazyLock<String> = LazyLock::new(|| {
    ASSETS.iter().zip(HASHED_NAMES.iter()).fold(
        PAGE_TEMPLATE.to_owned(),
        |page, (asset, hashed)| {
            page.replace(
                &format!("{{{{{}}}}}", asset.name),
                &format!("{ASSET_PREFIX}{hashed}"),
            )
        },
    )
});

/// The page may load scripts, styles and fonts from this server only, and
/// talk only to it (`connect-src 'self'` covers its WebSocket too); GraphiQL's
/// editors set inline styles and its fonts are data URLs.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self' 'unsafe-inline'; font-src 'self' data:; img-src 'self' data:; \
    connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// `GET /graphiql` (and `GET /graphql` from a browser).
pub async fn page() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CONTENT_SECURITY_POLICY),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
        ],
        PAGE.as_str(),
    )
        .into_response()
}

/// `GET /graphiql/assets/{file}`: only the current hashed names exist, so a
/// response may be cached for good.
pub async fn asset(Path(file): Path<String>) -> Response {
    let Some(index) = HASHED_NAMES.iter().position(|name| *name == file) else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let asset = &ASSETS[index];
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        asset.bytes,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_names_every_asset_by_its_hash_and_nothing_else() {
        for hashed in HASHED_NAMES.iter() {
            assert!(
                PAGE.contains(&format!("{ASSET_PREFIX}{hashed}")),
                "{hashed} is not on the page"
            );
        }
        assert!(
            !PAGE.contains("{{"),
            "a placeholder without an asset: {}",
            *PAGE
        );
        assert!(
            !PAGE.contains("http"),
            "the page points off the host: {}",
            *PAGE
        );
    }
}
