//! GraphQL over HTTP, per the GraphQL-over-HTTP spec: `POST` with JSON (or a
//! multipart upload) and `GET` with query parameters for queries only. Responses
//! use `application/graphql-response+json` when the client accepts it, with 4xx for
//! requests that never reached execution; plain `application/json` answers 200.

use std::sync::Arc;

use async_graphql::{
    BatchRequest, BatchResponse, Response as GqlResponse, ServerError,
    http::MultipartOptions,
    parser::{parse_query, types::OperationType},
};
use axum::{
    body::Bytes,
    extract::{ConnectInfo, FromRequestParts, Request, State, ws::WebSocketUpgrade},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    response::{IntoResponse, Response},
};
use std::net::SocketAddr;

use crate::{app::HttpState, auth::RequestAuth, http};

const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";
const JSON: &str = "application/json";

/// The media type the client asked for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    GraphqlResponseJson,
    Json,
}

impl Format {
    fn negotiate(headers: &HeaderMap) -> Option<Self> {
        let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
            return Some(Self::Json);
        };
        let types: Vec<&str> = accept
            .split(',')
            .map(|part| part.split(';').next().unwrap_or("").trim())
            .collect();
        if types
            .iter()
            .any(|t| t.eq_ignore_ascii_case(GRAPHQL_RESPONSE_JSON))
        {
            Some(Self::GraphqlResponseJson)
        } else if types
            .iter()
            .any(|t| t.eq_ignore_ascii_case(JSON) || *t == "*/*" || *t == "application/*")
        {
            Some(Self::Json)
        } else {
            None
        }
    }

    fn content_type(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Self::GraphqlResponseJson => "application/graphql-response+json; charset=utf-8",
            Self::Json => "application/json; charset=utf-8",
        })
    }
}

/// `POST /graphql`.
pub async fn post(
    State(state): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(format) = Format::negotiate(&headers) else {
        return not_acceptable();
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media_type = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if media_type != JSON && media_type != "multipart/form-data" {
        return request_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format,
            "POST bodies must be application/json (or multipart/form-data for uploads)",
        );
    }
    if content_type
        .to_ascii_lowercase()
        .split(';')
        .skip(1)
        .any(|param| param.trim().starts_with("charset=") && !param.trim().ends_with("utf-8"))
    {
        return request_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format,
            "only utf-8 is accepted",
        );
    }
    if body.is_empty() {
        return request_error(StatusCode::BAD_REQUEST, format, "the request body is empty");
    }
    let options = MultipartOptions::default().max_file_size(state.settings().body_limit_bytes);
    let batch =
        match async_graphql::http::receive_batch_body(Some(content_type), body.as_ref(), options)
            .await
        {
            Ok(batch) => batch,
            Err(err) => return request_error(StatusCode::BAD_REQUEST, format, &err.to_string()),
        };
    execute(&state, batch, &headers, peer, format).await
}

/// `GET /graphql`: a WebSocket upgrade, a query in the URL, or GraphiQL for browsers.
pub async fn get(
    State(state): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let (mut parts, _) = request.into_parts();
    if parts.headers.contains_key(header::UPGRADE) {
        return match WebSocketUpgrade::from_request_parts(&mut parts, &state).await {
            Ok(upgrade) => http::websocket::upgrade(state, upgrade, &parts, peer).await,
            Err(rejection) => rejection.into_response(),
        };
    }
    let query_string = parts.uri.query().unwrap_or("");
    let has_query = !query_string.is_empty();
    let wants_html = parts
        .headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    if !has_query && wants_html {
        return http::graphiql::page().await.into_response();
    }
    let Some(format) = Format::negotiate(&parts.headers) else {
        return not_acceptable();
    };
    let request = match async_graphql::http::parse_query_string(query_string) {
        Ok(request) => request,
        Err(err) => return request_error(StatusCode::BAD_REQUEST, format, &err.to_string()),
    };
    if selects_mutation(&request) {
        let mut response = request_error(
            StatusCode::METHOD_NOT_ALLOWED,
            format,
            "mutations must be sent with POST",
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    execute(
        &state,
        BatchRequest::Single(request),
        &parts.headers,
        peer,
        format,
    )
    .await
}

/// Whether the operation a GET would run is a mutation (which GET must not run).
fn selects_mutation(request: &async_graphql::Request) -> bool {
    let Ok(document) = parse_query(&request.query) else {
        return false; // execution reports the syntax error
    };
    let operation = match &request.operation_name {
        Some(name) => document
            .operations
            .iter()
            .find(|(n, _)| n.is_some_and(|n| n.as_str() == name)),
        None => document.operations.iter().next(),
    };
    operation.is_some_and(|(_, op)| op.node.ty == OperationType::Mutation)
}

async fn execute(
    state: &HttpState,
    batch: BatchRequest,
    headers: &HeaderMap,
    peer: SocketAddr,
    format: Format,
) -> Response {
    let limit = state.settings().batch_limit;
    if let BatchRequest::Batch(requests) = &batch {
        if requests.len() > limit {
            return request_error(
                StatusCode::BAD_REQUEST,
                format,
                &format!("at most {limit} operations in one batch"),
            );
        }
    }
    let credentials = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let batch = batch
        .data(Arc::new(RequestAuth::from_credentials(credentials)))
        .data(http::client_info(
            headers,
            peer,
            state.settings().trust_forwarded_for,
        ));
    let is_batch = matches!(batch, BatchRequest::Batch(_));
    let response = state.schema.execute_batch(batch).await;
    let status = match &response {
        BatchResponse::Single(single)
            if !is_batch && format == Format::GraphqlResponseJson && is_request_error(single) =>
        {
            StatusCode::BAD_REQUEST
        }
        _ => StatusCode::OK,
    };
    let body = match &response {
        BatchResponse::Single(single) => render(single),
        BatchResponse::Batch(all) => serde_json::Value::Array(all.iter().map(render).collect()),
    };
    let mut http_response = (status, body.to_string()).into_response();
    http_response
        .headers_mut()
        .insert(header::CONTENT_TYPE, format.content_type());
    http_response
}

/// A response that never reached execution: the document did not parse or
/// validate, so there is no data, only errors without a path.
fn is_request_error(response: &GqlResponse) -> bool {
    response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty())
}

/// The response as JSON; a request error carries no `data` entry at all.
fn render(response: &GqlResponse) -> serde_json::Value {
    let mut json = serde_json::to_value(response).unwrap_or_else(|_| serde_json::json!({}));
    if is_request_error(response) {
        if let Some(object) = json.as_object_mut() {
            object.remove("data");
        }
    }
    json
}

fn request_error(status: StatusCode, format: Format, message: &str) -> Response {
    let mut error = ServerError::new(message, None);
    let mut extensions = async_graphql::ErrorExtensionValues::default();
    extensions.set("code", "BAD_USER_INPUT");
    error.extensions = Some(extensions);
    let body = serde_json::json!({ "errors": [error] });
    let mut response = (status, body.to_string()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, format.content_type());
    response
}

fn not_acceptable() -> Response {
    (
        StatusCode::NOT_ACCEPTABLE,
        "accept application/graphql-response+json or application/json",
    )
        .into_response()
}

/// Anything else on `/graphql`.
pub async fn method_not_allowed(method: Method) -> Response {
    let mut response = (
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{method} is not supported on /graphql; use GET or POST"),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
    response
}
