//! The dispatcher: posts each event owed to a webhook URL until the
//! receiver answers 2xx, retrying with exponential backoff and full jitter,
//! and gives up after the last try (a dead letter, logged). Each URL has a
//! lane of its own that posts one event at a time, oldest first: a healthy
//! receiver gets events in the order they were relayed, and one that hangs
//! slows only its own lane. Every replica runs one; a lane leases the rows
//! it posts, so replicas share a URL's backlog and a replica that dies
//! mid-way leaves its rows to the others once the lease ends.

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use rand::Rng;
use tokio::{sync::Notify, task::JoinHandle};

use super::{
    Envelope,
    deliveries::{self, Claimed, WebhookBacklog},
};
use crate::infra::{db::Db, webhook::WebhookPoster};

/// Deliveries a lane leases at once.
const BATCH: u64 = 16;
/// Beyond the posts' own timeouts, how long a lease lasts.
const LEASE_MARGIN: Duration = Duration::from_secs(30);
/// How often an idle lane looks for due rows (the local relay wakes it
/// sooner when it hands events on).
const POLL: Duration = Duration::from_millis(500);
/// How long a lane waits after the database failed.
const BACKOFF_ON_ERROR: Duration = Duration::from_secs(1);
/// The longest wait between two tries of one delivery.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// How often the delivery gauges are brought up to date.
const REPORT_EVERY: Duration = Duration::from_secs(1);

pub struct Dispatcher {
    db: Db,
    poster: WebhookPoster,
    urls: Vec<String>,
    max_attempts: u32,
    backoff: Duration,
    lease: Duration,
    /// Rung by the relay when it has handed events on.
    handed_on: Arc<Notify>,
}

impl Dispatcher {
    pub fn new(
        db: Db,
        poster: WebhookPoster,
        urls: Vec<String>,
        timeout: Duration,
        max_attempts: u32,
        backoff: Duration,
        handed_on: Arc<Notify>,
    ) -> Self {
        Self {
            db,
            poster,
            urls,
            max_attempts,
            backoff,
            // Long enough for a whole leased batch of posts that time out.
            lease: timeout.saturating_mul(BATCH as u32) + LEASE_MARGIN,
            handed_on,
        }
    }

    /// Starts a lane per URL and the gauges' reporter; they run until
    /// aborted.
    pub fn start(self) -> Vec<JoinHandle<()>> {
        let this = Arc::new(self);
        let mut tasks: Vec<JoinHandle<()>> = this
            .urls
            .iter()
            .map(|url| tokio::spawn(this.clone().lane(url.clone())))
            .collect();
        tasks.push(tokio::spawn(this.report()));
        tasks
    }

    async fn lane(self: Arc<Self>, url: String) {
        loop {
            // Registered before looking, so a hand-on while this lane
            // looks is not missed.
            let handed_on = self.handed_on.notified();
            tokio::pin!(handed_on);
            handed_on.as_mut().enable();
            match self.deliver_due(&url).await {
                Ok(posted) if posted as u64 == BATCH => continue,
                Ok(_) => {
                    tokio::select! {
                        () = handed_on => {}
                        () = tokio::time::sleep(POLL) => {}
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, "webhook dispatcher: retrying");
                    tokio::time::sleep(BACKOFF_ON_ERROR).await;
                }
            }
        }
    }

    /// Posts `url`'s due deliveries, oldest first; returns how many it
    /// leased.
    pub async fn deliver_due(&self, url: &str) -> anyhow::Result<usize> {
        let db = self.db.primary();
        let lease_until = Utc::now() + self.lease;
        let claimed = deliveries::claim(db, url, BATCH, lease_until).await?;
        if claimed.is_empty() {
            return Ok(0);
        }
        let events = deliveries::events(
            db,
            claimed.iter().map(|delivery| delivery.event_id).collect(),
        )
        .await?;
        for delivery in &claimed {
            let outcome = match events.get(&delivery.event_id) {
                Some(row) => match Envelope::payload(row) {
                    Ok(body) => {
                        self.poster
                            .post(url, &delivery.event_id.to_string(), body)
                            .await
                    }
                    Err(err) => Err(format!("the event could not be encoded: {err}")),
                },
                None => Err("the event is no longer in the outbox".to_owned()),
            };
            match outcome {
                Ok(()) => {
                    metrics::counter!("kith_webhook_deliveries_total", "outcome" => "delivered")
                        .increment(1);
                    deliveries::delivered(db, delivery.id).await?;
                }
                Err(reason) => self.failed(url, delivery, &reason).await?,
            }
        }
        Ok(claimed.len())
    }

    async fn failed(&self, url: &str, delivery: &Claimed, reason: &str) -> anyhow::Result<()> {
        let tries = u32::try_from(delivery.attempts.saturating_add(1)).unwrap_or(u32::MAX);
        if tries >= self.max_attempts {
            metrics::counter!("kith_webhook_deliveries_total", "outcome" => "dead").increment(1);
            tracing::warn!(
                event_id = %delivery.event_id,
                url,
                attempts = tries,
                reason,
                "webhook delivery dead: list with `kith events failed`, retry with `kith events replay`"
            );
            return deliveries::failed(self.db.primary(), delivery, reason, None).await;
        }
        metrics::counter!("kith_webhook_deliveries_total", "outcome" => "failed").increment(1);
        let retry_at = Utc::now() + backoff(self.backoff, tries);
        deliveries::failed(self.db.primary(), delivery, reason, Some(retry_at)).await
    }

    async fn report(self: Arc<Self>) {
        loop {
            if let Ok(backlog) = WebhookBacklog::read(self.db.primary()).await {
                metrics::gauge!("kith_webhook_pending").set(backlog.pending as f64);
                metrics::gauge!("kith_webhook_dead").set(backlog.dead as f64);
            }
            tokio::time::sleep(REPORT_EVERY).await;
        }
    }
}

/// The wait after the `failures`-th failed try: anything up to `base`
/// doubled for each failure after the first, at most [`MAX_BACKOFF`] ("full
/// jitter": receivers coming back are not met by every retry at once).
fn backoff(base: Duration, failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(32);
    let ceiling = base
        .saturating_mul(2u32.saturating_pow(doublings))
        .min(MAX_BACKOFF);
    let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(rand::rng().random_range(0..=millis))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_up_to_an_hour_with_full_jitter() {
        let base = Duration::from_secs(1);
        for _ in 0..200 {
            assert!(backoff(base, 1) <= base);
            assert!(backoff(base, 4) <= Duration::from_secs(8));
            assert!(backoff(base, 40) <= MAX_BACKOFF);
        }
        let waits: Vec<_> = (0..200).map(|_| backoff(base, 20)).collect();
        assert!(
            waits.iter().any(|wait| *wait > Duration::from_secs(1800)),
            "the ceiling reaches the cap"
        );
        assert!(
            waits.iter().any(|wait| *wait < Duration::from_secs(1800)),
            "jittered below it"
        );
        assert_eq!(backoff(Duration::ZERO, 3), Duration::ZERO);
    }
}
