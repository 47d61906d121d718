//! GraphQL multipart requests (the graphql-multipart-request-spec:
//! `operations`, `map`, then the files). async-graphql writes every file part
//! to a temporary file, however many there are, and its errors carry OS text;
//! so the body (already in memory, within the body limit) is first read here
//! without writing anything: its parts, files and `map` paths counted, and
//! every file checked to go to a variable declared as an `Upload`. Only then
//! does async-graphql read it, and whatever fails is answered in words of our
//! own.

use std::{collections::HashMap, convert::Infallible};

use async_graphql::{
    BatchRequest, ParseRequestError,
    http::MultipartOptions,
    parser::types::{BaseType, Type, TypeKind, TypeSystemDefinition},
};
use axum::{body::Bytes, http::StatusCode};
use serde_json::Value;

use crate::graphql::documents::Documents;

/// What a multipart request may hold.
#[derive(Clone, Copy)]
pub struct Limits {
    /// Files, `map` entries, and paths in the `map` (each path opens the
    /// file once more).
    pub max_files: usize,
    pub max_file_size: usize,
}

/// The batch a multipart body carries, or why it is refused: the status
/// (`413` for a file over the limit, else `400`) and a message fit for the
/// client.
pub async fn receive(
    content_type: &str,
    body: &Bytes,
    documents: &Documents,
    inputs: &InputTypes,
    limits: Limits,
) -> Result<BatchRequest, (StatusCode, String)> {
    let bad = |message| (StatusCode::BAD_REQUEST, message);
    let map = count_parts(content_type, body, limits).await.map_err(bad)?;
    if let Some((map, operations)) = map {
        check_targets(&map, &operations, documents, inputs).map_err(bad)?;
    }
    let options = MultipartOptions::default()
        .max_file_size(limits.max_file_size)
        .max_num_files(limits.max_files);
    async_graphql::http::receive_batch_body(Some(content_type), body.as_ref(), options)
        .await
        .map_err(|err| refusal(err, limits))
}

/// The `map` and the `operations` (as JSON), when both are there and parse
/// (async-graphql reports them missing or malformed), once the counts are
/// known to be within the limits.
async fn count_parts(
    content_type: &str,
    body: &Bytes,
    limits: Limits,
) -> Result<Option<(HashMap<String, Vec<String>>, Value)>, String> {
    let boundary = multer::parse_boundary(content_type)
        .map_err(|_| "a multipart/form-data body needs a boundary".to_owned())?;
    let body = body.clone();
    let stream = futures_util::stream::once(async move { Ok::<_, Infallible>(body) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    let too_many = || {
        format!(
            "at most {} files in one multipart request (and as many entries in its map)",
            limits.max_files
        )
    };
    // `operations`, `map`, and the files.
    let most_parts = limits.max_files.saturating_add(2);
    let (mut parts, mut files) = (0usize, 0usize);
    let (mut operations, mut map) = (None, None);
    // Every part after `operations` and `map` is a file the map must name.
    let mut others: Vec<String> = Vec::new();
    while let Some(field) = multipart.next_field().await.map_err(invalid_multipart)? {
        parts += 1;
        if parts > most_parts {
            return Err(too_many());
        }
        match field.name() {
            Some("operations") => {
                operations = Some(field.bytes().await.map_err(invalid_multipart)?)
            }
            Some("map") => map = Some(field.bytes().await.map_err(invalid_multipart)?),
            name => {
                if field.file_name().is_some() {
                    files += 1;
                    if files > limits.max_files {
                        return Err(too_many());
                    }
                }
                others.push(name.unwrap_or_default().to_owned());
            }
        }
    }
    let map = map.and_then(|map| serde_json::from_slice::<HashMap<String, Vec<String>>>(&map).ok());
    let operations = operations.and_then(|ops| serde_json::from_slice::<Value>(&ops).ok());
    let (Some(map), Some(operations)) = (map, operations) else {
        return Ok(None);
    };
    let paths = map
        .values()
        .map(Vec::len)
        .fold(0usize, usize::saturating_add);
    if map.len() > limits.max_files || paths > limits.max_files {
        return Err(too_many());
    }
    if let Some(stray) = others.iter().find(|name| !map.contains_key(name.as_str())) {
        return Err(format!(
            "the part `{stray}` is not named in the `map`: the operation takes no such file"
        ));
    }
    Ok(Some((map, operations)))
}

fn invalid_multipart(err: multer::Error) -> String {
    tracing::debug!(error = %err, "unreadable multipart body");
    "the body is not valid multipart/form-data".to_owned()
}

/// The schema's input objects and their fields' types, for following a
/// `map` path into an input (`variables.input.file`). Built once, from the
/// schema's own SDL.
#[derive(Default)]
pub struct InputTypes(HashMap<String, HashMap<String, Type>>);

impl InputTypes {
    pub fn from_sdl(sdl: &str) -> Self {
        let Ok(document) = async_graphql::parser::parse_schema(sdl) else {
            return Self::default();
        };
        let mut types = HashMap::new();
        for definition in document.definitions {
            let TypeSystemDefinition::Type(definition) = definition else {
                continue;
            };
            let definition = definition.node;
            if let TypeKind::InputObject(input) = definition.kind {
                let fields = input
                    .fields
                    .into_iter()
                    .map(|field| (field.node.name.node.to_string(), field.node.ty.node))
                    .collect();
                types.insert(definition.name.node.to_string(), fields);
            }
        }
        Self(types)
    }

    /// The type at `path` (segments after the variable's name) inside a
    /// value of type `ty`: list items by index, input fields by name.
    fn at<'a>(&self, ty: &Type, mut path: impl Iterator<Item = &'a str>) -> Option<Type> {
        let Some(segment) = path.next() else {
            return Some(ty.clone());
        };
        match &ty.base {
            BaseType::List(inner) => {
                segment.parse::<usize>().ok()?;
                self.at(inner, path)
            }
            BaseType::Named(name) => {
                let field = self.0.get(name.as_str())?.get(segment)?;
                self.at(field, path)
            }
        }
    }
}

/// Every path in the `map` must lead to an `Upload` (or a list of them)
/// through a variable its operation declares, and its input objects' fields:
/// anywhere else the file would be handed to the operation as a string, or
/// to nothing at all.
fn check_targets(
    map: &HashMap<String, Vec<String>>,
    operations: &Value,
    documents: &Documents,
    inputs: &InputTypes,
) -> Result<(), String> {
    let mut taken = std::collections::HashSet::new();
    for (file, paths) in map {
        for path in paths {
            // One file per place: a second would silently replace the first.
            if !taken.insert(path.as_str()) {
                return Err(format!("two files are mapped to `{path}`"));
            }
            let mut segments = path.split('.');
            let request = match operations {
                Value::Array(batch) => segments
                    .next()
                    .and_then(|index| index.parse::<usize>().ok())
                    .and_then(|index| batch.get(index)),
                single => Some(single),
            };
            let query = request
                .and_then(|request| request.get("query"))
                .and_then(Value::as_str);
            let variable = match (segments.next(), segments.next()) {
                (Some("variables"), Some(name)) => Some(name),
                _ => None,
            };
            let declared = query
                .zip(variable)
                .and_then(|(query, name)| declared_type(documents, query, name));
            let Some(declared) = declared else {
                return Err(format!(
                    "file `{file}` is mapped to `{path}`, which is not a variable \
                     the operation declares"
                ));
            };
            match inputs.at(&declared, segments) {
                Some(ty) if is_upload(&ty) => {}
                Some(ty) => {
                    return Err(format!(
                        "file `{file}` is mapped to `{path}`, of type {ty}: \
                         only an Upload takes a file"
                    ));
                }
                None => {
                    return Err(format!(
                        "file `{file}` is mapped to `{path}`, which is not a field of \
                         the variable's type"
                    ));
                }
            }
        }
    }
    Ok(())
}

/// The type `query` declares for `$name` in any of its operations.
fn declared_type(documents: &Documents, query: &str, name: &str) -> Option<Type> {
    let document = documents.parsed(query)?;
    document.operations.iter().find_map(|(_, operation)| {
        operation
            .node
            .variable_definitions
            .iter()
            .find(|definition| definition.node.name.node.as_str() == name)
            .map(|definition| definition.node.var_type.node.clone())
    })
}

fn is_upload(ty: &Type) -> bool {
    match &ty.base {
        BaseType::Named(name) => name.as_str() == "Upload",
        BaseType::List(inner) => is_upload(inner),
    }
}

/// What the client is told; the detail, which may be an OS error, is logged.
fn refusal(err: ParseRequestError, limits: Limits) -> (StatusCode, String) {
    if matches!(err, ParseRequestError::PayloadTooLarge) {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("a file is over {} bytes", limits.max_file_size),
        );
    }
    let message = match err {
        ParseRequestError::Io(err) => {
            tracing::warn!(error = %err, "could not store an uploaded file");
            "the upload could not be received".to_owned()
        }
        ParseRequestError::MissingOperatorsPart => {
            "a multipart request needs an `operations` part".to_owned()
        }
        ParseRequestError::MissingMapPart => "a multipart request needs a `map` part".to_owned(),
        ParseRequestError::MissingFiles => "the `map` names a file the request lacks".to_owned(),
        ParseRequestError::InvalidFilesMap(err) => {
            tracing::debug!(error = %err, "invalid multipart map");
            "the `map` must be a JSON object of arrays of paths".to_owned()
        }
        ParseRequestError::InvalidRequest(err) => {
            tracing::debug!(error = %err, "invalid multipart operations");
            "the `operations` part is not a valid GraphQL request".to_owned()
        }
        other => {
            tracing::debug!(error = %other, "unreadable multipart request");
            "the body is not valid multipart/form-data".to_owned()
        }
    };
    (StatusCode::BAD_REQUEST, message)
}
