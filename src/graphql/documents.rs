//! The one way a document reaches the parser: checked against the limits on
//! its shape (`guard`), parsed, and kept by its text.
//!
//! Every path that runs an operation (HTTP, and a socket's queries, mutations
//! and subscriptions) asks here first, so nothing reaches async-graphql's
//! parser, or its validation, before the guard has measured it.
//!
//! async-graphql parses every request's document, and its parser was about an
//! eighth of kith's CPU at 3,000 `sendMessage`s a second (perf, `chat_bench
//! --scenario send`), more than the mutation's own work. Apps send the same
//! few documents over and over, so each is parsed and measured once, and its
//! verdict kept: the parsed document, cloned for each request, or why it was
//! refused. Validation still runs per request, as it depends on the variables.

use std::sync::Arc;

use async_graphql::{Request, ServerError, parser::types::ExecutableDocument};
use moka::sync::Cache;

use super::guard::{self, Limits};

/// What the cache may hold, weighed by the documents' text.
const CAPACITY_BYTES: u64 = 8 << 20;
/// A parsed document takes several times its text.
const PARSED_PER_TEXT_BYTE: usize = 8;

/// What became of a document that parsed.
#[derive(Clone)]
enum Verdict {
    Accepted(Arc<ExecutableDocument>),
    Refused(ServerError),
}

#[derive(Clone)]
pub struct Documents {
    cache: Cache<String, Verdict>,
    limits: Limits,
}

impl Documents {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            cache: Cache::builder()
                .max_capacity(CAPACITY_BYTES)
                .weigher(|query: &String, _| {
                    u32::try_from(query.len().saturating_mul(PARSED_PER_TEXT_BYTE))
                        .unwrap_or(u32::MAX)
                })
                .build(),
        }
    }

    /// `request`, carrying its parsed document; or why its document is
    /// refused. One that does not parse is left for async-graphql to parse
    /// and report as it always does (its nesting, checked first, is safe).
    pub fn prepare(&self, mut request: Request) -> Result<Request, ServerError> {
        if let Some(document) = self.accepted(&request.query)? {
            request.set_parsed_query(ExecutableDocument::clone(&document));
        }
        Ok(request)
    }

    /// Refuses `query` as [`prepare`](Self::prepare) would, without keeping
    /// the parsed document in the request: for subscriptions, which live long
    /// and parse their own (a clone kept for life costs memory per socket).
    pub fn check(&self, query: &str) -> Result<(), ServerError> {
        self.accepted(query).map(|_| ())
    }

    /// `query` parsed, when it parses and is within the limits.
    pub fn parsed(&self, query: &str) -> Option<Arc<ExecutableDocument>> {
        self.accepted(query).ok().flatten()
    }

    /// The verdict on `query`, from the cache or now (and kept): the document,
    /// `None` when it does not parse, or the refusal.
    fn accepted(&self, query: &str) -> Result<Option<Arc<ExecutableDocument>>, ServerError> {
        let verdict = match self.cache.get(query) {
            Some(verdict) => verdict,
            None => {
                guard::check_nesting(query, self.limits.nesting)?;
                let Ok(document) = async_graphql::parser::parse_query(query) else {
                    return Ok(None);
                };
                let verdict = match guard::check_shape(&document, self.limits) {
                    Ok(()) => Verdict::Accepted(Arc::new(document)),
                    Err(refusal) => Verdict::Refused(refusal),
                };
                self.cache.insert(query.to_owned(), verdict.clone());
                verdict
            }
        };
        match verdict {
            Verdict::Accepted(document) => Ok(Some(document)),
            Verdict::Refused(refusal) => Err(refusal),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        nesting: 64,
        depth: 12,
        fields: 2_000,
        directives: 50,
    };

    #[test]
    fn a_document_is_parsed_once_and_a_broken_one_never_kept() {
        let documents = Documents::new(LIMITS);
        let mut first = documents.prepare(Request::new("{ me { id } }")).unwrap();
        assert!(first.parsed_query().is_ok(), "the request carries it");
        // The same allocation each time: the text was parsed once. (Equal
        // contents alone would not say so: a second parse gives those too.)
        let kept = documents.parsed("{ me { id } }").unwrap();
        assert!(Arc::ptr_eq(
            &kept,
            &documents.parsed("{ me { id } }").unwrap()
        ));
        documents.cache.run_pending_tasks();
        assert_eq!(documents.cache.entry_count(), 1);

        let mut broken = documents.prepare(Request::new("{ me { id }")).unwrap();
        documents.cache.run_pending_tasks();
        assert_eq!(documents.cache.entry_count(), 1);
        assert!(broken.parsed_query().is_err(), "left to async-graphql");
    }

    #[test]
    fn a_refused_document_is_refused_on_every_door_and_remembered() {
        let documents = Documents::new(LIMITS);
        let deep = format!("{{ a(x: {}1{}) }}", "[".repeat(65), "]".repeat(65));
        assert!(documents.prepare(Request::new(deep.clone())).is_err());
        assert!(documents.check(&deep).is_err());
        assert!(
            documents.parsed(&deep).is_none(),
            "never given to the parser"
        );

        let wide: String = (0..2_001).map(|i| format!("a{i}: __typename ")).collect();
        let wide = format!("{{ {wide} }}");
        assert!(documents.check(&wide).is_err());
        documents.cache.run_pending_tasks();
        assert_eq!(documents.cache.entry_count(), 1, "the refusal is kept");
        assert!(documents.prepare(Request::new(wide)).is_err());
    }
}
