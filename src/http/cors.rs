//! Which web pages may call kith from a browser.

use std::time::Duration;

use anyhow::Context as _;
use axum::http::{HeaderValue, Method, header};
use tower_http::cors::CorsLayer;

/// Which web pages may call kith from a browser (`KITH_CORS_ORIGINS`): `*`
/// for any (tokens travel in headers, not cookies, so a page can only use the
/// token its user gave it), or a comma-separated list of origins.
pub fn layer(origins: &str) -> anyhow::Result<CorsLayer> {
    if origins.trim() == "*" {
        return Ok(CorsLayer::permissive());
    }
    let origins = origins
        .split(',')
        .map(str::trim)
        .filter(|origin| !origin.is_empty())
        .map(|origin| {
            HeaderValue::from_str(origin)
                .with_context(|| format!("KITH_CORS_ORIGINS: {origin:?} is not an origin"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(CorsLayer::new()
        .allow_origin(origins)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT])
        .max_age(Duration::from_secs(3600)))
}
