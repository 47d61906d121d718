//! The stream behind `messageAdded`: one conversation's messages, or all of the
//! viewer's, in seq order per conversation, with no gap and no duplicate.
//!
//! How it stays whole:
//! - It listens before it reads: it subscribes to a conversation's topic, then
//!   reads where the conversation stands, so nothing sent in between is missed.
//! - Publishes of concurrent senders can overtake each other (seq 6 announced
//!   before seq 5). A live message ahead of the next expected one fetches the
//!   ones in between from the database, where they already are (a send commits
//!   before it announces, and seq 6 could not be numbered before 5 committed).
//! - Catching up (`sinceSeq`, a conversation joined meanwhile) reads stored
//!   messages page by page before going live.
//! - A subscriber that falls behind its live channel listens afresh, checks its
//!   access again and catches up from the database (one conversation), or is
//!   told and ended (all conversations, where re-reading everything is not worth
//!   it: the client resubscribes and refetches).

use std::collections::{HashMap, VecDeque};

use entity::conversation;
use futures_util::{StreamExt, stream::SelectAll};
use uuid::Uuid;

use crate::{
    domain::{
        chat::{Chat, Kind, Message, Window},
        events::{Event, Events, Lagged, Topic, conversation_topic, group_topic, user_topic},
    },
    error::{AppError, AppResult},
};

/// How many stored messages one catch-up read fetches.
const CATCH_UP_PAGE: u64 = 100;
/// The most conversations one all-conversations feed follows (most recent first).
pub const MAX_FOLLOWED: u64 = 1000;

/// Why a feed ended before its subscriber did.
#[derive(Debug)]
pub enum FeedError {
    /// It missed events it does not recover from (an all-conversations feed
    /// that fell behind): the client subscribes again and refetches.
    Lagged(Lagged),
    Failed(AppError),
}

impl From<AppError> for FeedError {
    fn from(err: AppError) -> Self {
        Self::Failed(err)
    }
}

/// The topics a conversation's subscriber listens on, as one stream: the
/// conversation's own, the viewer's (blocks, removals, joins) and, for a
/// group's, the group's (its deletion).
pub async fn listen(
    pubsub: &Events,
    conversation: Uuid,
    viewer: Uuid,
    group: Option<Uuid>,
) -> Topic {
    futures_util::stream::select_all(listen_each(pubsub, conversation, viewer, group).await).boxed()
}

/// The same topics apart, for a [`Feed`], which selects over its own: one
/// `SelectAll` inside another would be one more layer to poll per delivery.
pub async fn listen_each(
    pubsub: &Events,
    conversation: Uuid,
    viewer: Uuid,
    group: Option<Uuid>,
) -> Vec<Topic> {
    let mut topics = vec![conversation_topic(conversation), user_topic(viewer)];
    topics.extend(group.map(group_topic));
    pubsub.subscribe_all(topics).await
}

/// Whether `event` ends `viewer`'s access to `conversation`.
pub fn ends_access(event: &Event, conversation: &conversation::Model, viewer: Uuid) -> bool {
    match event {
        Event::GroupMembershipEnded { group_id, user_id } => {
            Some(*group_id) == conversation.group_id && *user_id == viewer
        }
        Event::GroupDeleted { group_id } => Some(*group_id) == conversation.group_id,
        Event::Blocked { blocker, blocked } => {
            let pair = [conversation.direct_low, conversation.direct_high];
            Kind::of(conversation) == Kind::Direct
                && pair.contains(&Some(*blocker))
                && pair.contains(&Some(*blocked))
        }
        _ => false,
    }
}

/// One followed conversation and the seq of the last message handed out.
struct Track {
    conversation: conversation::Model,
    last: i64,
}

pub struct Feed {
    chat: Chat,
    pubsub: Events,
    viewer: Uuid,
    /// Following every conversation of the viewer, joining new ones as they come.
    everything: bool,
    /// Boxed: a map allocates at least four slots, and a one-conversation
    /// feed, the common kind, fills one.
    tracks: HashMap<Uuid, Box<Track>>,
    /// Conversations to read from the database before going live.
    catch_up: VecDeque<Uuid>,
    live: SelectAll<Topic>,
    queue: VecDeque<Message>,
    ended: bool,
}

impl Feed {
    /// One conversation, already listened to (`live`, from [`listen_each`]) and
    /// checked readable: live messages after `last`, and first the stored ones
    /// after it when `catch_up`.
    pub fn one(
        chat: Chat,
        pubsub: Events,
        viewer: Uuid,
        conversation: conversation::Model,
        live: Vec<Topic>,
        last: i64,
        catch_up: bool,
    ) -> Self {
        let id = conversation.id;
        let mut feed = Self::empty(chat, pubsub, viewer, false);
        feed.live.extend(live);
        feed.tracks
            .insert(id, Box::new(Track { conversation, last }));
        if catch_up {
            feed.catch_up.push_back(id);
        }
        feed
    }

    /// Every conversation of the viewer (the most recent [`MAX_FOLLOWED`]), and
    /// each one they join while it runs.
    pub async fn everything(chat: Chat, pubsub: Events, viewer: Uuid) -> AppResult<Self> {
        let mut feed = Self::empty(chat.clone(), pubsub.clone(), viewer, true);
        // Joins announced from now on reach the feed.
        feed.live.push(pubsub.subscribe(&user_topic(viewer)).await);
        let memberships = chat.conversations(viewer, None, MAX_FOLLOWED).await?;
        let topics = memberships
            .iter()
            .map(|membership| conversation_topic(membership.conversation.id))
            .collect();
        feed.live.extend(pubsub.subscribe_all(topics).await);
        // Read where each stands only now that its topic is heard.
        let ids: Vec<Uuid> = memberships.iter().map(|m| m.conversation.id).collect();
        let last_seqs = chat.last_seqs(&ids).await?;
        for membership in memberships {
            let id = membership.conversation.id;
            if let Some(&last) = last_seqs.get(&id) {
                feed.tracks.insert(
                    id,
                    Box::new(Track {
                        conversation: membership.conversation,
                        last,
                    }),
                );
            }
        }
        Ok(feed)
    }

    fn empty(chat: Chat, pubsub: Events, viewer: Uuid, everything: bool) -> Self {
        Self {
            chat,
            pubsub,
            viewer,
            everything,
            tracks: HashMap::new(),
            catch_up: VecDeque::new(),
            live: SelectAll::new(),
            queue: VecDeque::new(),
            ended: false,
        }
    }

    /// The next message, for `futures_util::stream::unfold`, which keeps this
    /// future inline while the subscriber idles: everything that reads the
    /// database is boxed, so the idle state stays a few hundred bytes instead
    /// of the tens of KiB a database call's future takes (measured per socket
    /// with `examples/chat_bench --scenario sockets`).
    pub async fn next(mut self) -> Option<(Result<Message, FeedError>, Self)> {
        loop {
            if let Some(message) = self.queue.pop_front() {
                return Some((Ok(message), self));
            }
            if self.ended {
                return None;
            }
            if let Some(&id) = self.catch_up.front() {
                match Box::pin(self.fetch_after(id, CATCH_UP_PAGE)).await {
                    Ok(0) => {
                        self.catch_up.pop_front();
                    }
                    Ok(_) => {}
                    Err(err) => return self.fail(err.into()),
                }
                continue;
            }
            match self.live.next().await {
                None => return None,
                Some(Err(lagged)) => {
                    if let Err(err) = Box::pin(self.recover(lagged)).await {
                        return self.fail(err);
                    }
                }
                Some(Ok(event)) => {
                    if let Err(err) = Box::pin(self.on_event(&event)).await {
                        return self.fail(err.into());
                    }
                }
            }
        }
    }

    async fn on_event(&mut self, event: &Event) -> AppResult<()> {
        if let Event::ConversationJoined {
            conversation_id,
            user_id,
            from_seq,
        } = event
        {
            if self.everything && *user_id == self.viewer {
                self.follow(*conversation_id, *from_seq).await?;
            }
            return Ok(());
        }
        let ended: Vec<Uuid> = self
            .tracks
            .values()
            .filter(|t| ends_access(event, &t.conversation, self.viewer))
            .map(|t| t.conversation.id)
            .collect();
        if !ended.is_empty() {
            for id in ended {
                self.tracks.remove(&id);
            }
            // One conversation's feed ends with its access.
            self.ended = !self.everything;
            return Ok(());
        }
        let Event::MessageAdded { message } = event else {
            return Ok(());
        };
        let Some(track) = self.tracks.get(&message.conversation_id) else {
            return Ok(());
        };
        let last = track.last;
        if message.seq <= last {
            return Ok(());
        }
        if message.seq > last + 1 {
            let missing = (message.seq - last - 1) as u64;
            self.fetch_after(message.conversation_id, missing).await?;
        }
        let track = self
            .tracks
            .get_mut(&message.conversation_id)
            .expect("tracked above");
        if message.seq == track.last + 1 {
            track.last = message.seq;
            self.queue.push_back(message.clone());
        } else if message.seq > track.last {
            // The database did not (yet) show what came between: read on from
            // there rather than skip.
            self.catch_up.push_back(message.conversation_id);
        }
        Ok(())
    }

    /// Starts following a conversation the viewer joined, from `from_seq`.
    async fn follow(&mut self, id: Uuid, from_seq: i64) -> AppResult<()> {
        if self.tracks.contains_key(&id) {
            return Ok(());
        }
        // Listen, then catch up from where they joined.
        self.live
            .push(self.pubsub.subscribe(&conversation_topic(id)).await);
        let Some(membership) = self.chat.readable(self.viewer, id).await? else {
            return Ok(());
        };
        self.tracks.insert(
            id,
            Box::new(Track {
                conversation: membership.conversation,
                last: from_seq,
            }),
        );
        self.catch_up.push_back(id);
        Ok(())
    }

    /// After falling behind, or a gap in the events.
    async fn recover(&mut self, lagged: Lagged) -> Result<(), FeedError> {
        if self.everything {
            return Err(FeedError::Lagged(lagged));
        }
        let Some(track) = self.tracks.values().next() else {
            self.ended = true;
            return Ok(());
        };
        let conversation = track.conversation.clone();
        // Maybe past the end of its access: listen afresh, check access again,
        // then catch up from the database.
        self.live = SelectAll::new();
        self.live.extend(
            listen_each(
                &self.pubsub,
                conversation.id,
                self.viewer,
                conversation.group_id,
            )
            .await,
        );
        match self.chat.readable(self.viewer, conversation.id).await? {
            Some(_) => self.catch_up.push_back(conversation.id),
            None => self.ended = true,
        }
        Ok(())
    }

    /// Queues up to `limit` stored messages of `id` after its last; how many.
    async fn fetch_after(&mut self, id: Uuid, limit: u64) -> AppResult<usize> {
        let Some(track) = self.tracks.get_mut(&id) else {
            return Ok(0);
        };
        let page = self
            .chat
            .messages(
                id,
                Window::After {
                    seq: track.last,
                    limit,
                },
            )
            .await?;
        if let Some(last) = page.last() {
            track.last = last.seq;
        }
        let count = page.len();
        self.queue.extend(page);
        Ok(count)
    }

    fn fail(mut self, err: FeedError) -> Option<(Result<Message, FeedError>, Self)> {
        self.ended = true;
        Some((Err(err), self))
    }
}
