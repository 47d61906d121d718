//! Every error a client sees has an `extensions.code`. Resolvers set theirs through
//! `AppError`; errors async-graphql raises itself (syntax, validation, variable
//! coercion, depth and complexity limits) are about the request's shape, so they
//! are `BAD_USER_INPUT`.

use std::sync::Arc;

use async_graphql::{
    ErrorExtensionValues, Response, ServerError,
    extensions::{Extension, ExtensionContext, ExtensionFactory, NextRequest},
};

pub struct ErrorCodes;

impl ExtensionFactory for ErrorCodes {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ErrorCodesExtension)
    }
}

struct ErrorCodesExtension;

#[async_graphql::async_trait::async_trait]
impl Extension for ErrorCodesExtension {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let mut response = next.run(ctx).await;
        response.errors.iter_mut().for_each(ensure_code);
        response
    }
}

/// An error of a whole request (no path, no location) with `extensions.code`:
/// what the guard, the HTTP layer and the WebSocket protocols answer before
/// anything runs.
pub fn coded_error(message: impl Into<String>, code: &str) -> ServerError {
    let mut error = ServerError::new(message, None);
    error
        .extensions
        .get_or_insert_with(ErrorExtensionValues::default)
        .set("code", code);
    error
}

pub fn ensure_code(error: &mut ServerError) {
    let extensions = error
        .extensions
        .get_or_insert_with(ErrorExtensionValues::default);
    if extensions.get("code").is_none() {
        extensions.set("code", "BAD_USER_INPUT");
    }
}
