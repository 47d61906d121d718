//! Which webhook URLs an event is owed to: every configured URL, for the
//! types `KITH_WEBHOOK_EVENTS` lets through. The relay hands each event it
//! has handled on here, in the transaction that marks it published.

use chrono::Utc;
use entity::{outbox_event, webhook_delivery};
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait};

/// Rows inserted per statement: below SQLite's and PostgreSQL's limits on
/// bound values (7 columns each).
const INSERT_CHUNK: usize = 1_000;

#[derive(Clone, Debug)]
pub struct WebhookTargets {
    urls: Vec<String>,
    /// Exact types, and families as their prefix with the dot
    /// (`message.`); empty lets every type through.
    types: Vec<String>,
}

impl WebhookTargets {
    /// `types`: `user.registered`, `message.*` or `*`; none means every type.
    pub fn new(urls: Vec<String>, types: &[String]) -> Self {
        let types = if types.iter().any(|t| t == "*") {
            Vec::new()
        } else {
            types
                .iter()
                .map(|t| t.strip_suffix('*').unwrap_or(t).to_owned())
                .collect()
        };
        Self { urls, types }
    }

    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    /// Whether webhooks carry events of `kind`.
    pub fn carries(&self, kind: &str) -> bool {
        self.types.is_empty()
            || self.types.iter().any(|t| {
                if t.ends_with('.') {
                    kind.starts_with(t.as_str())
                } else {
                    kind == t
                }
            })
    }

    /// Owes each of `rows` the webhooks carry to every URL, due now. A row
    /// handed on before (a relay that failed after it) is not owed twice.
    pub(super) async fn hand_on(
        &self,
        db: &impl ConnectionTrait,
        rows: &[outbox_event::Model],
    ) -> anyhow::Result<()> {
        let now = Utc::now();
        let owed: Vec<_> = rows
            .iter()
            .filter(|row| self.carries(&row.event_type))
            .flat_map(|row| {
                self.urls
                    .iter()
                    .map(move |url| webhook_delivery::ActiveModel {
                        event_id: Set(row.id),
                        url: Set(url.clone()),
                        attempts: Set(0),
                        next_attempt_at: Set(now),
                        last_error: Set(None),
                        dead_at: Set(None),
                        created_at: Set(now),
                        ..Default::default()
                    })
            })
            .collect();
        for chunk in owed.chunks(INSERT_CHUNK) {
            webhook_delivery::Entity::insert_many(chunk.to_vec())
                .on_conflict_do_nothing_on([
                    webhook_delivery::Column::EventId,
                    webhook_delivery::Column::Url,
                ])
                .exec_without_returning(db)
                .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets(types: &[&str]) -> WebhookTargets {
        let types: Vec<String> = types.iter().map(|t| (*t).to_owned()).collect();
        WebhookTargets::new(vec!["https://hooks.example.com".into()], &types)
    }

    #[test]
    fn types_are_matched_exactly_or_by_family() {
        let all = targets(&[]);
        assert!(all.carries("user.registered") && all.carries("message.sent"));
        assert!(targets(&["*"]).carries("session.started"));
        let some = targets(&["user.registered", "message.*"]);
        assert!(some.carries("user.registered"));
        assert!(!some.carries("user.deleted"));
        assert!(some.carries("message.sent"));
        assert!(some.carries("message.reaction.added"));
        assert!(!some.carries("messages.sent"), "a family is a whole word");
        assert!(!some.carries("session.started"));
    }
}
