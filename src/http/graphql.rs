//! GraphQL over HTTP, per the GraphQL-over-HTTP spec: `POST` with JSON (or a
//! multipart upload) and `GET` with query parameters for queries only. Responses
//! use `application/graphql-response+json` when the client accepts it, with 4xx for
//! requests that never reached execution; plain `application/json` answers 200.

use std::{sync::Arc, time::Duration};

use async_graphql::{
    BatchRequest, BatchResponse, Request as GqlRequest, Response as GqlResponse, ServerError,
    parser::types::OperationType,
};
use axum::{
    body::Bytes,
    extract::{ConnectInfo, FromRequestParts, Query, Request, State, ws::WebSocketUpgrade},
    http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::Value;
use std::net::SocketAddr;

use crate::{
    error::AppError,
    graphql::{documents::Documents, viewer::RequestAuth},
    http,
    http::HttpState,
    infra::db::Db,
};

const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";
const JSON: &str = "application/json";

/// The media type the client asked for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    GraphqlResponseJson,
    Json,
}

impl Format {
    /// The supported media type the client weights highest, or `None` when it
    /// accepts neither. Per RFC 9110 the most specific range naming a type sets its
    /// weight and `q=0` refuses it; on a tie `application/graphql-response+json`
    /// wins, as its status codes tell the client more. Wildcards stand only for
    /// `application/json`: a client that never named the newer type may not know
    /// what its 4xx answers mean. No `Accept` at all means `application/json`,
    /// which is what clients from before the spec expect.
    fn negotiate(headers: &HeaderMap) -> Option<Self> {
        let accept: Vec<&str> = headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        if accept.is_empty() {
            return Some(Self::Json);
        }
        let ranges: Vec<(&str, u16)> = accept
            .iter()
            .flat_map(|value| value.split(','))
            .filter_map(media_range)
            .collect();
        let graphql = weight(&ranges, &[GRAPHQL_RESPONSE_JSON]);
        let json = weight(&ranges, &[JSON, "application/*", "*/*"]);
        match (graphql, json) {
            (0, 0) => None,
            (graphql, json) if graphql >= json => Some(Self::GraphqlResponseJson),
            _ => Some(Self::Json),
        }
    }

    fn content_type(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Self::GraphqlResponseJson => "application/graphql-response+json; charset=utf-8",
            Self::Json => "application/json; charset=utf-8",
        })
    }
}

/// One media range of an `Accept` header: its type and its weight in
/// thousandths. A weight that does not parse counts as the default 1: the client
/// did list the type.
fn media_range(range: &str) -> Option<(&str, u16)> {
    let mut parts = range.split(';');
    let media_type = parts.next()?.trim();
    if media_type.is_empty() {
        return None;
    }
    let q = parts
        .filter_map(|param| param.split_once('='))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("q"))
        .and_then(|(_, value)| value.trim().parse::<f32>().ok())
        .map_or(1000, |q| (q.clamp(0.0, 1.0) * 1000.0).round() as u16);
    Some((media_type, q))
}

/// The weight the client gives a type, from the first of `names` (most specific
/// first) that it lists; 0 when it lists none of them.
fn weight(ranges: &[(&str, u16)], names: &[&str]) -> u16 {
    names
        .iter()
        .find_map(|name| {
            ranges
                .iter()
                .find(|(media_type, _)| media_type.eq_ignore_ascii_case(name))
        })
        .map_or(0, |&(_, q)| q)
}

/// `POST /graphql`.
pub async fn post(
    State(state): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let headers = parts.headers;
    // An upload may be as large as an image is allowed to be, on top of
    // what a request may be; everything else keeps the plain limit.
    let settings = state.settings();
    let is_multipart = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/")
        });
    let limit = if is_multipart {
        settings
            .body_limit_bytes
            .saturating_add(settings.media_max_bytes)
    } else {
        settings.body_limit_bytes
    };
    let body = match read_body(&state, body, limit).await {
        Ok(body) => body,
        Err(refusal) => return refusal,
    };
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
    if names_other_charset(content_type) {
        return request_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format,
            "only utf-8 is accepted",
        );
    }
    if body.is_empty() {
        return request_error(StatusCode::BAD_REQUEST, format, "the request body is empty");
    }
    let batch = if media_type == JSON {
        json_batch(&body).map_err(|message| (StatusCode::BAD_REQUEST, message))
    } else {
        let limits = http::multipart::Limits {
            max_files: state.settings().multipart_max_files,
            max_file_size: state.settings().media_max_bytes,
        };
        http::multipart::receive(
            content_type,
            &body,
            &state.documents,
            &state.input_types,
            limits,
        )
        .await
    };
    let mut batch = match batch {
        Ok(batch) => batch,
        Err((status, message)) => return request_error(status, format, &message),
    };
    batch.iter_mut().for_each(omit_empty_operation_name);
    execute(&state, batch, &headers, peer, format).await
}

/// The whole body, within the size limit (`413` beyond) and within the time
/// limit for all of it (`408` after): a client trickling its body a byte at a
/// time would otherwise hold its connection for as long as it liked.
async fn read_body(
    state: &HttpState,
    body: axum::body::Body,
    limit: usize,
) -> Result<Bytes, Response> {
    let patience = Duration::from_millis(state.settings().body_read_timeout_millis);
    match tokio::time::timeout(patience, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(body)) => Ok(body),
        Ok(Err(err)) => {
            let too_large = std::error::Error::source(&err)
                .is_some_and(|source| source.is::<http_body_util::LengthLimitError>());
            Err(if too_large {
                (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "the request body is too large",
                )
                    .into_response()
            } else {
                (
                    StatusCode::BAD_REQUEST,
                    "the request body could not be read",
                )
                    .into_response()
            })
        }
        Err(_) => Err((
            StatusCode::REQUEST_TIMEOUT,
            "the request body did not arrive in time",
        )
            .into_response()),
    }
}

/// Whether a `Content-Type` names a charset other than UTF-8 (naming none means
/// UTF-8). The value may be quoted and is case-insensitive (RFC 9110).
fn names_other_charset(content_type: &str) -> bool {
    content_type
        .split(';')
        .skip(1)
        .filter_map(|param| param.split_once('='))
        .any(|(name, value)| {
            name.trim().eq_ignore_ascii_case("charset")
                && !value.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
        })
}

/// A JSON body: one request object or a non-empty array of them. Parsed here
/// rather than by async-graphql, which fills in a missing `query` with "" (and
/// takes an array for the fields of one request), so a malformed request would
/// come back as a 200 with a syntax error instead of the spec's 400.
fn json_batch(body: &[u8]) -> Result<BatchRequest, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|err| format!("the body is not valid JSON: {err}"))?;
    match value {
        Value::Array(items) if items.is_empty() => Err("an empty batch has nothing to run".into()),
        Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(index, item)| {
                json_request(item).map_err(|err| format!("request {index} of the batch: {err}"))
            })
            .collect::<Result<_, _>>()
            .map(BatchRequest::Batch),
        single => json_request(single).map(BatchRequest::Single),
    }
}

/// One request of a JSON body; the spec requires an object with a `query`.
fn json_request(value: Value) -> Result<GqlRequest, String> {
    let has_query = value
        .as_object()
        .and_then(|object| object.get("query"))
        .is_some_and(|query| !query.is_null());
    if !has_query {
        return Err("a request must be a JSON object with a `query`".into());
    }
    serde_json::from_value(value).map_err(|err| format!("invalid request: {err}"))
}

/// An empty `operationName` means none (the spec says so for GET, and no
/// operation can have an empty name, so it could never select one anyway).
fn omit_empty_operation_name(request: &mut GqlRequest) {
    if request.operation_name.as_deref() == Some("") {
        request.operation_name = None;
    }
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
        return http::graphiql::page().await;
    }
    let Some(format) = Format::negotiate(&parts.headers) else {
        return not_acceptable();
    };
    let request = match get_request(&parts.uri) {
        Ok(request) => request,
        Err(message) => return request_error(StatusCode::BAD_REQUEST, format, &message),
    };
    if selects_mutation(&state.documents, &request) {
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

/// The GET parameters async-graphql's query-string parser gets wrong: it reads
/// the operation name from `operation_name`, not the spec's `operationName`,
/// and it fills in a missing `query` with "".
#[derive(Deserialize)]
struct GetParams {
    query: Option<String>,
    #[serde(rename = "operationName")]
    operation_name: Option<String>,
}

/// The request a GET's URL carries; async-graphql decodes `variables` and
/// `extensions`, `GetParams` supplies what it misreads.
fn get_request(uri: &Uri) -> Result<GqlRequest, String> {
    let Query(params) = Query::<GetParams>::try_from_uri(uri).map_err(|err| err.body_text())?;
    if params.query.is_none() {
        return Err("a GET request needs a `query` parameter".into());
    }
    let mut request = async_graphql::http::parse_query_string(uri.query().unwrap_or(""))
        .map_err(|err| err.to_string())?;
    request.operation_name = params.operation_name;
    omit_empty_operation_name(&mut request);
    Ok(request)
}

/// Whether the operation a request would run is a mutation (which GET must
/// not run, and whose viewer reads from the primary for a while after).
pub(crate) fn selects_mutation(documents: &Documents, request: &async_graphql::Request) -> bool {
    let Some(document) = documents.parsed(&request.query) else {
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
    if let BatchRequest::Batch(requests) = &batch
        && requests.len() > limit
    {
        return request_error(
            StatusCode::BAD_REQUEST,
            format,
            &format!("at most {limit} operations in one batch"),
        );
    }
    let credentials = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let auth = Arc::new(RequestAuth::from_credentials(credentials));
    let client = http::client_info(headers, peer, state.settings().trust_forwarded_for);
    let is_batch = matches!(batch, BatchRequest::Batch(_));
    let requests: Vec<_> = match batch {
        BatchRequest::Single(request) => vec![request],
        BatchRequest::Batch(requests) => requests,
    };
    let requests: Vec<_> = requests
        .into_iter()
        .map(|request| {
            let request = state.documents.prepare(request)?;
            Ok(request.data(auth.clone()).data(client.clone()))
        })
        .collect();
    let responses = match &state.recent_writers {
        None => run(state, requests).await,
        Some(writers) => {
            let tokens = state.app.accounts.tokens();
            let token = auth.token();
            if requests
                .iter()
                .flatten()
                .any(|request| selects_mutation(&state.documents, request))
            {
                let responses = run(state, requests).await;
                writers.wrote(tokens, token).await;
                responses
            } else if writers.may_read_replica(tokens, token).await {
                Db::reading_from_replica(run(state, requests)).await
            } else {
                run(state, requests).await
            }
        }
    };
    let response = match (is_batch, responses) {
        (false, mut single) if single.len() == 1 => BatchResponse::Single(single.remove(0)),
        (_, all) => BatchResponse::Batch(all),
    };
    let status = match &response {
        BatchResponse::Single(single)
            if format == Format::GraphqlResponseJson && is_request_error(single) =>
        {
            StatusCode::BAD_REQUEST
        }
        _ => StatusCode::OK,
    };
    let body = match &response {
        BatchResponse::Single(single) => render(single),
        BatchResponse::Batch(all) => serde_json::Value::Array(all.iter().map(render).collect()),
    };
    let body = body.to_string();
    let limit = state.settings().response_limit_bytes;
    if body.len() > limit {
        // Built already, but never sent: the limit bounds what one client
        // makes the server write, and tells an app its query asks too much.
        return request_error(
            StatusCode::OK,
            format,
            &format!("the response would be over {limit} bytes: ask for fewer items"),
        );
    }
    let mut http_response = (status, body).into_response();
    http_response
        .headers_mut()
        .insert(header::CONTENT_TYPE, format.content_type());
    http_response
}

/// Runs each request whose document was accepted, each within the
/// execution time limit; a refused one is answered with its refusal.
async fn run(
    state: &HttpState,
    requests: Vec<Result<GqlRequest, ServerError>>,
) -> Vec<GqlResponse> {
    let limit = Duration::from_millis(state.settings().execution_timeout_millis);
    let one = |request: Result<GqlRequest, ServerError>| async move {
        let request = match request {
            Ok(request) => request,
            Err(refusal) => return GqlResponse::from_errors(vec![refusal]),
        };
        match tokio::time::timeout(limit, state.schema.execute(request)).await {
            Ok(response) => response,
            Err(_) => GqlResponse::from_errors(vec![timed_out(limit)]),
        }
    };
    if requests.len() == 1 {
        let request = requests.into_iter().next().expect("one request");
        return vec![one(request).await];
    }
    futures_util::future::join_all(requests.into_iter().map(one)).await
}

/// An operation that ran out of time. Cancelled where it stood: a
/// transaction it had open rolls back; one that committed stays committed,
/// which a retry with the same `clientMessageId` (or any idempotent mutation)
/// finds.
fn timed_out(limit: Duration) -> ServerError {
    AppError::Unavailable {
        retry_after_secs: 1,
        message: format!(
            "the operation did not finish within {} ms",
            limit.as_millis()
        ),
    }
    .into_request_error()
}

/// A response that never reached execution: the document did not parse or
/// validate, so there is no data, only errors without a path. (An operation
/// that ran out of time has none either, but the request was fine.)
fn is_request_error(response: &GqlResponse) -> bool {
    response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response
            .errors
            .iter()
            .all(|e| e.path.is_empty() && !is_unavailable(e))
}

fn is_unavailable(error: &ServerError) -> bool {
    error
        .extensions
        .as_ref()
        .and_then(|extensions| extensions.get("code"))
        .is_some_and(|code| *code == async_graphql::Value::from("UNAVAILABLE"))
}

/// The response as JSON; a request error carries no `data` entry at all.
fn render(response: &GqlResponse) -> serde_json::Value {
    let mut json = serde_json::to_value(response).unwrap_or_else(|_| serde_json::json!({}));
    if is_request_error(response)
        && let Some(object) = json.as_object_mut()
    {
        object.remove("data");
    }
    json
}

fn request_error(status: StatusCode, format: Format, message: &str) -> Response {
    let error = crate::graphql::error_codes::coded_error(message, "BAD_USER_INPUT");
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
