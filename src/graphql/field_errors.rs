//! Field errors handled as the GraphQL spec says ("Handling Field Errors"): a
//! field that errors is null, with its error beside the data; a non-null one
//! makes its parent null instead, up to the nearest nullable position (a
//! nullable field or list item), or the whole `data` when there is none.
//!
//! async-graphql instead leaves a field that errored out of its parent object
//! (and answers `"data": null` when every root field did), which Apollo iOS
//! and Kotlin and Relay reject as a malformed response.
//!
//! This extension corrects it in the `resolve` hook every field and list
//! item passes through, on the concrete object, with aliases and fragments
//! already applied:
//! - A field or item that fails is answered `null` here, its error kept until
//!   the operation (or subscription event) ends, when it joins the response's
//!   errors. A failed field whose declared type (`return_type`, from the
//!   schema: `User`, `User!`, `[User!]`) is non-null, and any failed item, is
//!   also noted as bubbling.
//! - A field that finishes with a failure bubbling below it places the null
//!   by its own type: on the innermost nullable list item above the failure,
//!   else on itself when it is nullable, else it lets the failure bubble on.
//!   (Items are decided by their list's field: async-graphql gives an item's
//!   `return_type` as non-null whenever the list holds references.)
//! - One still bubbling when the operation ends reached the root: `data` is null.
//!
//! Without errors the cost is one more hop per field and item, and a relaxed
//! atomic load.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicBool, Ordering},
};

use async_graphql::{
    PathSegment, QueryPathNode, QueryPathSegment, Request, Response, ServerError, ServerResult,
    Value,
    extensions::{
        Extension, ExtensionContext, ExtensionFactory, NextExecute, NextPrepareRequest,
        NextResolve, NextSubscribe, ResolveInfo,
    },
};
use futures_util::{StreamExt, stream::BoxStream};

pub struct FieldErrors;

impl ExtensionFactory for FieldErrors {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(FieldErrorsExtension(Arc::default()))
    }
}

/// One per request (or WebSocket operation, whose events run one at a time).
struct FieldErrorsExtension(Arc<Nulled>);

/// What an operation's (or event's) field errors left to do when it ends. Also
/// in the request's data, for the socket's own execution of subscription
/// events (`delivery`), which no extension hook wraps.
#[derive(Default)]
pub struct Nulled {
    /// Errors of the fields and items answered `null` here.
    errors: Mutex<Vec<ServerError>>,
    /// Paths of the non-null fields and the items that failed, whose null
    /// has not been placed on a nullable position yet.
    bubbling: Mutex<Vec<Vec<PathSegment>>>,
    /// Whether `bubbling` may hold any: the one thing read per field.
    any_bubbling: AtomicBool,
}

impl Nulled {
    /// Puts the errors kept into `response` and, when a non-null field's
    /// failure reached the root, makes its `data` null. Leaves this empty for
    /// the next event.
    pub fn finish(&self, response: &mut Response) {
        response.errors.append(&mut lock(&self.errors));
        if self.any_bubbling.swap(false, Ordering::Relaxed) {
            let mut bubbling = lock(&self.bubbling);
            if !bubbling.is_empty() {
                bubbling.clear();
                response.data = Value::Null;
            }
        }
    }

    /// A field or item at `node` failed with `error`; it is answered null.
    fn failed(&self, node: &QueryPathNode<'_>, error: ServerError, bubbles: bool) {
        lock(&self.errors).push(error);
        if bubbles {
            let mut bubbling = lock(&self.bubbling);
            bubbling.push(path(node));
            self.any_bubbling.store(true, Ordering::Relaxed);
        }
    }

    /// The value of the field at `node`, declared `ty`, once the failures
    /// bubbling below it are placed: `null` on the innermost nullable
    /// position (an item of its list, or the field) above each. Those with
    /// none here bubble on.
    fn place(&self, node: &QueryPathNode<'_>, ty: &str, mut value: Value) -> Value {
        let here = path(node);
        let nullable = nullable_positions(ty);
        let mut field_is_null = false;
        let mut bubbling = lock(&self.bubbling);
        bubbling.retain(|failed| {
            let Some(below) = failed
                .strip_prefix(here.as_slice())
                .filter(|b| !b.is_empty())
            else {
                return true;
            };
            let indices: Vec<usize> = below
                .iter()
                .map_while(|segment| match segment {
                    PathSegment::Index(index) => Some(*index),
                    PathSegment::Field(_) => None,
                })
                .take(nullable.len() - 1)
                .collect();
            // The failure is inside (or is) the item at `indices`: the
            // positions above it here are the items at `indices[..depth]`,
            // the field itself at depth 0.
            match (0..=indices.len()).rev().find(|&depth| nullable[depth]) {
                Some(0) => field_is_null = true,
                Some(depth) => set_null(&mut value, &indices[..depth]),
                None => return true,
            }
            false
        });
        if bubbling.is_empty() {
            self.any_bubbling.store(false, Ordering::Relaxed);
        }
        if field_is_null { Value::Null } else { value }
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for FieldErrorsExtension {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        next.run(ctx, request.data(self.0.clone())).await
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let mut response = next.run(ctx, operation_name).await;
        self.0.finish(&mut response);
        response
    }

    /// Subscription events as async-graphql runs them (a socket hands them
    /// off to `delivery`, which finishes each itself).
    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        let nulled = self.0.clone();
        next.run(
            ctx,
            stream
                .map(move |mut response| {
                    nulled.finish(&mut response);
                    response
                })
                .boxed(),
        )
    }

    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        let (node, ty) = (info.path_node, info.return_type);
        let is_item = matches!(node.segment, QueryPathSegment::Index(_));
        match next.run(ctx, info).await {
            Err(error) => {
                // An item's nullability is its list's field's to judge.
                self.0.failed(node, error, is_item || ty.ends_with('!'));
                Ok(Some(Value::Null))
            }
            Ok(Some(value)) if !is_item && self.0.any_bubbling.load(Ordering::Relaxed) => {
                Ok(Some(self.0.place(node, ty, value)))
            }
            resolved => resolved,
        }
    }
}

/// Whether each position a field's type holds is nullable: the field, then
/// its list's items, outermost first (`[User!]` is `[true, false]`).
fn nullable_positions(mut ty: &str) -> Vec<bool> {
    let mut nullable = Vec::new();
    loop {
        let non_null = ty.strip_suffix('!');
        nullable.push(non_null.is_none());
        match non_null
            .unwrap_or(ty)
            .strip_prefix('[')
            .and_then(|t| t.strip_suffix(']'))
        {
            Some(items) => ty = items,
            None => return nullable,
        }
    }
}

/// Makes the item at `indices` (one per list level) of `value` null.
fn set_null(value: &mut Value, indices: &[usize]) {
    let mut at = value;
    for &index in indices {
        match at {
            Value::List(items) if index < items.len() => at = &mut items[index],
            _ => return,
        }
    }
    *at = Value::Null;
}

fn path(node: &QueryPathNode<'_>) -> Vec<PathSegment> {
    let mut path: Vec<_> = std::iter::once(node)
        .chain(node.parents())
        .map(|node| match node.segment {
            QueryPathSegment::Name(name) => PathSegment::Field(name.to_owned()),
            QueryPathSegment::Index(index) => PathSegment::Index(index),
        })
        .collect();
    path.reverse();
    path
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nullable_positions_read_the_declared_type() {
        assert_eq!(nullable_positions("User"), [true]);
        assert_eq!(nullable_positions("User!"), [false]);
        assert_eq!(nullable_positions("[User!]"), [true, false]);
        assert_eq!(nullable_positions("[Node]!"), [false, true]);
        assert_eq!(nullable_positions("[[User]!]"), [true, false, true]);
    }

    #[test]
    fn set_null_reaches_an_item_of_nested_lists() {
        let mut value = Value::List(vec![
            Value::List(vec![Value::from(1), Value::from(2)]),
            Value::from(3),
        ]);
        set_null(&mut value, &[0, 1]);
        set_null(&mut value, &[1, 0]); // not a list there: left alone
        assert_eq!(
            value,
            Value::List(vec![
                Value::List(vec![Value::from(1), Value::Null]),
                Value::from(3),
            ])
        );
    }
}
