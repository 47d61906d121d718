//! How a subscription's events reach a WebSocket once it is set up.
//!
//! async-graphql serves each subscription as one stream that lives as long as
//! the subscription: the request's setup generator (kept at its largest
//! state), the extensions' wrapper, the field stream with its per-event
//! execution future inline, and the parsed request. Idle, that was most of a
//! subscribed socket's memory (bench/README, "Subscriptions handed off").
//!
//! So sockets run operations through [`SocketExecutor`]. async-graphql still
//! parses, validates, applies the limits and runs the resolver's setup, with
//! its errors exactly as before. The resolver then hands its live stream to
//! the executor ([`deliver`]) instead of returning it; async-graphql's stream
//! ends and is freed, and the socket keeps the resolver's stream and the
//! little it takes to execute each event's selection, the way async-graphql's
//! generated code does (through the same `#[doc(hidden)]` context API, pinned
//! exactly in Cargo.toml for that reason). Over HTTP, or wherever no executor
//! waits for a hand-off, [`deliver`] returns the stream as it is.
//!
//! The executor also admits only so many setups at once: a burst of
//! subscriptions (every client resubscribing after a deploy) then queues as
//! small requests rather than as thousands of half-run setups waiting on the
//! database pool, whose memory would stay fragmented after the burst.

use std::{
    pin::Pin,
    sync::{Arc, Mutex, Weak},
    task::{Context as TaskContext, Poll},
};

use async_graphql::{
    Context, Data, Executor, Name, OutputType, Positioned, QueryEnv, QueryEnvInner, QueryPathNode,
    QueryPathSegment, Request, Response, SchemaEnv, Value, Variables,
    indexmap::IndexMap,
    parser::types::{
        Directive, Field, FragmentDefinition, OperationDefinition, Selection, SelectionSet,
    },
};
use futures_util::{
    FutureExt, Stream, StreamExt,
    future::BoxFuture,
    stream::{self, BoxStream},
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{KithSchema, documents::Documents, field_errors::Nulled};

type Responses = BoxStream<'static, Response>;

/// Where a resolver leaves its live stream for the socket, already turned into
/// responses. The executor holds it; the request's data holds only a `Weak`, so
/// the delivery (which keeps the request's data) never keeps itself alive.
type Slot = Arc<Mutex<Option<Responses>>>;

/// Put in a socket's requests: the way to the executor's slot.
struct HandOff(Weak<Mutex<Option<Responses>>>);

/// The executor a WebSocket runs operations with: the schema, with each
/// subscription's live phase handed off after setup.
#[derive(Clone)]
pub struct SocketExecutor {
    schema: KithSchema,
    documents: Documents,
    /// Operations being set up (or, for queries and mutations, run) at once,
    /// across all sockets.
    setups: Arc<Semaphore>,
}

impl SocketExecutor {
    pub fn new(schema: KithSchema, documents: Documents, setups_at_once: usize) -> Self {
        Self {
            schema,
            documents,
            setups: Arc::new(Semaphore::new(setups_at_once.max(1))),
        }
    }
}

impl Executor for SocketExecutor {
    async fn execute(&self, request: Request) -> Response {
        match self.documents.prepare(request) {
            Ok(request) => self.schema.execute(request).await,
            Err(refusal) => Response::from_errors(vec![refusal]),
        }
    }

    fn execute_stream(
        &self,
        request: Request,
        session_data: Option<Arc<Data>>,
    ) -> BoxStream<'static, Response> {
        // Measured, but not handed the cached document: a subscription is
        // parsed once for its life, and the cached document's clone, freed
        // after setup, left about 1 KiB more per idle subscribed socket
        // (10,000 sockets) than async-graphql's own parse.
        if let Err(refusal) = self.documents.check(&request.query) {
            return stream::once(std::future::ready(Response::from_errors(vec![refusal]))).boxed();
        }
        let slot = Slot::default();
        let request = request.data(HandOff(Arc::downgrade(&slot)));
        let (schema, setups) = (self.schema.clone(), self.setups.clone());
        let admitted = async move {
            // Closed only if the semaphore is, which it never is.
            let permit = setups.acquire_owned().await.ok();
            let setup =
                schema.execute_stream_with_session_data(request, session_data.unwrap_or_default());
            (permit, setup)
        };
        Switch {
            phase: Phase::Waiting(admitted.boxed()),
            slot,
        }
        .boxed()
    }
}

/// An operation on a socket: admitted, set up by async-graphql (whose stream
/// also carries any error, and a query's or mutation's one response), then
/// what the resolver handed off, if anything.
struct Switch {
    phase: Phase,
    slot: Slot,
}

enum Phase {
    Waiting(BoxFuture<'static, (Option<OwnedSemaphorePermit>, Responses)>),
    /// The permit goes with the first response or the end of setup, so an
    /// operation that streams the ordinary way does not keep it.
    SettingUp(Responses, Option<OwnedSemaphorePermit>),
    Live(Responses),
    Ended,
}

impl Stream for Switch {
    type Item = Response;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Response>> {
        loop {
            match &mut self.phase {
                Phase::Waiting(admitted) => {
                    let (permit, setup) = std::task::ready!(admitted.poll_unpin(cx));
                    self.phase = Phase::SettingUp(setup, permit);
                }
                Phase::SettingUp(setup, permit) => {
                    match std::task::ready!(setup.poll_next_unpin(cx)) {
                        Some(response) => {
                            permit.take();
                            return Poll::Ready(Some(response));
                        }
                        None => {
                            let handed_off =
                                self.slot.lock().unwrap_or_else(|p| p.into_inner()).take();
                            self.phase = handed_off.map_or(Phase::Ended, Phase::Live);
                        }
                    }
                }
                Phase::Live(live) => return live.poll_next_unpin(cx),
                Phase::Ended => return Poll::Ready(None),
            }
        }
    }
}

/// What a subscription resolver returns: `items`, or, on a socket, nothing,
/// with `items` handed to the socket to be delivered from there.
pub fn deliver<T>(
    ctx: &Context<'_>,
    items: BoxStream<'static, async_graphql::Result<T>>,
) -> BoxStream<'static, async_graphql::Result<T>>
where
    T: OutputType + Send + Sync + 'static,
{
    let Some(slot) = ctx.data_opt::<HandOff>().and_then(|h| h.0.upgrade()) else {
        return items;
    };
    let mut slot = slot.lock().unwrap_or_else(|p| p.into_inner());
    if slot.is_some() {
        // A second root field: validation allows none, but if one came, it
        // streams the ordinary way.
        return items;
    }
    let plan = Arc::new(EventPlan::of(ctx));
    // Each event's execution is boxed, so between events the subscription
    // keeps only the pointer.
    *slot = Some(
        items
            .then(move |item| Box::pin(plan.clone().execute(item)))
            .boxed(),
    );
    stream::empty().boxed()
}

/// What an event is executed with: the subscription's root field, and a
/// request environment trimmed to what executing its selection reads.
struct EventPlan {
    query_env: QueryEnv,
    schema_env: SchemaEnv,
    field: Positioned<Field>,
}

impl EventPlan {
    /// From the resolver's context. The parsed request async-graphql kept is
    /// let go: it holds the whole operation, the root field's arguments and
    /// the variables (a `BTreeMap` node of about 1 KiB even for one), in
    /// vectors the parser over-allocated. This keeps a tight copy of the root
    /// field's selection, the fragments, and the variables only when the
    /// selection reads one.
    fn of(ctx: &Context<'_>) -> Self {
        let env = ctx.query_env;
        let field = Positioned::new(
            Field {
                alias: ctx.item.node.alias.clone(),
                name: ctx.item.node.name.clone(),
                // Read once, by the resolver's setup.
                arguments: Vec::new(),
                directives: Vec::new(),
                selection_set: ctx.item.node.selection_set.clone(),
            },
            ctx.item.pos,
        );
        let reads_variables = mentions_variable(&field.node.selection_set, &env.fragments);
        let query_env = QueryEnv::new(QueryEnvInner {
            extensions: env.extensions.clone(),
            variables: if reads_variables {
                env.variables.clone()
            } else {
                Variables::default()
            },
            // Names the operation for extensions' `execute`, which events skip.
            operation_name: None,
            operation: Positioned::new(
                OperationDefinition {
                    ty: env.operation.node.ty,
                    // Where a variable's default value is looked up.
                    variable_definitions: if reads_variables {
                        env.operation.node.variable_definitions.clone()
                    } else {
                        Vec::new()
                    },
                    directives: Vec::new(),
                    selection_set: Positioned::new(SelectionSet::default(), env.operation.pos),
                },
                env.operation.pos,
            ),
            fragments: env.fragments.clone(),
            uploads: Vec::new(),
            session_data: env.session_data.clone(),
            query_data: env.query_data.clone(),
            http_headers: Default::default(),
            introspection_mode: env.introspection_mode,
            errors: Default::default(),
        });
        Self {
            query_env,
            schema_env: ctx.schema_env.clone(),
            field,
        }
    }

    /// The response for one event, shaped as async-graphql's generated
    /// subscription code shapes it: `{ <response key>: <value> }`, with the
    /// errors of nullable fields beside it. Events of one subscription run
    /// one after another, so the errors collected are this event's.
    async fn execute<T: OutputType>(self: Arc<Self>, item: async_graphql::Result<T>) -> Response {
        let key: &Name = &self.field.node.response_key().node;
        let ctx = self.query_env.create_context(
            &self.schema_env,
            Some(QueryPathNode {
                parent: None,
                segment: QueryPathSegment::Name(key),
            }),
            &self.field.node.selection_set,
            None,
        );
        let mut response = match OutputType::resolve(&item, &ctx, &self.field).await {
            Ok(value) => Response::new(Value::Object(IndexMap::from([(key.clone(), value)]))),
            Err(err) => Response::from_errors(vec![err]),
        };
        let mut errors = self
            .query_env
            .errors
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        response.errors.append(&mut errors);
        // And those of the fields `field_errors` answered null; `data` null
        // if a non-null field's failure reached the root field (non-null in
        // every subscription kith has).
        if let Some(nulled) = ctx.data_opt::<Arc<Nulled>>() {
            nulled.finish(&mut response);
        }
        response
    }
}

/// Whether a selection, or any fragment it could spread, reads a variable.
fn mentions_variable(
    selection_set: &Positioned<SelectionSet>,
    fragments: &std::collections::HashMap<Name, Positioned<FragmentDefinition>>,
) -> bool {
    // A value reads a variable when it cannot be made constant without one.
    // (The AST's values are async-graphql-value's `Value`, which async-graphql
    // does not re-export, hence the closures rather than a named helper.)
    fn in_directives(directives: &[Positioned<Directive>]) -> bool {
        directives.iter().any(|d| {
            (d.node.arguments.iter())
                .any(|(_, v)| v.node.clone().into_const_with(|_| Err(())).is_err())
        })
    }
    fn in_selection_set(set: &SelectionSet) -> bool {
        set.items.iter().any(|item| match &item.node {
            Selection::Field(field) => {
                (field.node.arguments.iter())
                    .any(|(_, v)| v.node.clone().into_const_with(|_| Err(())).is_err())
                    || in_directives(&field.node.directives)
                    || in_selection_set(&field.node.selection_set.node)
            }
            Selection::FragmentSpread(spread) => in_directives(&spread.node.directives),
            Selection::InlineFragment(inline) => {
                in_directives(&inline.node.directives)
                    || in_selection_set(&inline.node.selection_set.node)
            }
        })
    }
    in_selection_set(&selection_set.node)
        || fragments.values().any(|fragment| {
            in_directives(&fragment.node.directives)
                || in_selection_set(&fragment.node.selection_set.node)
        })
}
