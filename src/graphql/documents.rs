//! Parsed operations, kept by their text.
//!
//! async-graphql parses every request's document, and its parser was about an
//! eighth of kith's CPU at 3,000 `sendMessage`s a second (perf, `chat_bench
//! --scenario send`), more than the mutation's own work. Apps send the same
//! few documents over and over, so each is parsed once and cloned after.
//! Everything else still runs per request: the depth and directive limits
//! (async-graphql applies them to a document it is given) and validation,
//! which depends on the variables.

use std::sync::Arc;

use async_graphql::{BatchRequest, Request, parser::types::ExecutableDocument};
use moka::sync::Cache;

/// What the cache may hold, weighed by the documents' text.
const CAPACITY_BYTES: u64 = 8 << 20;
/// A parsed document takes several times its text.
const PARSED_PER_TEXT_BYTE: usize = 8;

#[derive(Clone)]
pub struct Documents {
    cache: Cache<String, Arc<ExecutableDocument>>,
}

impl Default for Documents {
    fn default() -> Self {
        Self {
            cache: Cache::builder()
                .max_capacity(CAPACITY_BYTES)
                .weigher(|query: &String, _| {
                    u32::try_from(query.len().saturating_mul(PARSED_PER_TEXT_BYTE))
                        .unwrap_or(u32::MAX)
                })
                .build(),
        }
    }
}

impl Documents {
    /// `request`, carrying its parsed document when it parses. One that does
    /// not is left for async-graphql to parse and report as it always does.
    pub fn prepare(&self, mut request: Request) -> Request {
        if let Some(document) = self.parsed(&request.query) {
            request.set_parsed_query(ExecutableDocument::clone(&document));
        }
        request
    }

    /// `query` parsed, from the cache or now (and kept); `None` when it does
    /// not parse.
    pub fn parsed(&self, query: &str) -> Option<Arc<ExecutableDocument>> {
        if let Some(document) = self.cache.get(query) {
            return Some(document);
        }
        let document = Arc::new(async_graphql::parser::parse_query(query).ok()?);
        self.cache.insert(query.to_owned(), document.clone());
        Some(document)
    }

    pub fn prepare_batch(&self, batch: BatchRequest) -> BatchRequest {
        match batch {
            BatchRequest::Single(request) => BatchRequest::Single(self.prepare(request)),
            BatchRequest::Batch(requests) => BatchRequest::Batch(
                requests
                    .into_iter()
                    .map(|request| self.prepare(request))
                    .collect(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_is_parsed_once_and_a_broken_one_never_kept() {
        let documents = Documents::default();
        let mut first = documents.prepare(Request::new("{ me { id } }"));
        let mut again = documents.prepare(Request::new("{ me { id } }"));
        documents.cache.run_pending_tasks();
        assert_eq!(documents.cache.entry_count(), 1);
        assert_eq!(
            format!("{:?}", first.parsed_query().unwrap()),
            format!("{:?}", again.parsed_query().unwrap())
        );

        let mut broken = documents.prepare(Request::new("{ me { id }"));
        documents.cache.run_pending_tasks();
        assert_eq!(documents.cache.entry_count(), 1);
        assert!(broken.parsed_query().is_err(), "left to async-graphql");
    }
}
