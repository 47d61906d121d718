//! Conversations: a pair's DIRECT one, opened between users who may message;
//! finding them, their participants and latest messages; and a group's
//! conversation, whose participants follow the group's members.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::{conversation, conversation_participant as participant, message};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, TransactionTrait, sea_query::ExprTrait,
};
use uuid::Uuid;

use super::{Chat, Kind, Membership, Message, counterpart, not_found, now};
use crate::{
    domain::{
        events::{Event, user_topic},
        social,
    },
    error::{AppError, AppResult, is_unique_violation},
};

impl Chat {
    /// The direct conversation between the viewer and `other`, opened if it is
    /// not yet: `FORBIDDEN` when the policy does not let them message.
    pub async fn direct_conversation(&self, viewer: Uuid, other: Uuid) -> AppResult<Membership> {
        if viewer == other {
            return Err(AppError::bad_input("userId", "you cannot message yourself"));
        }
        self.check_may_message(&self.db, viewer, other).await?;
        let (low, high) = social::ordered(viewer, other);
        if let Some(found) = self.find_direct(low, high).await? {
            return self
                .membership(viewer, found.id)
                .await?
                .ok_or_else(not_found);
        }
        let now = now();
        let txn = self.db.begin().await?;
        let id = Uuid::now_v7();
        let inserted = conversation::Entity::insert(conversation::ActiveModel {
            id: Set(id),
            kind: Set(Kind::Direct.as_str().to_owned()),
            group_id: Set(None),
            direct_low: Set(Some(low)),
            direct_high: Set(Some(high)),
            last_seq: Set(0),
            last_activity_at: Set(now),
            created_at: Set(now),
        })
        .exec_without_returning(&txn)
        .await;
        match inserted {
            Ok(_) => {
                for user in [low, high] {
                    add_participant(&txn, id, user, 0, now).await?;
                }
                txn.commit().await?;
                for user in [low, high] {
                    let joined = Joined {
                        conversation_id: id,
                        from_seq: 0,
                    };
                    self.pubsub.publish(&user_topic(user), joined.event(user));
                }
            }
            // Both opened it at once: the other one stands.
            Err(err) if is_unique_violation(&err) => drop(txn),
            Err(err) => return Err(err.into()),
        }
        let found = self.find_direct(low, high).await?.ok_or_else(not_found)?;
        self.membership(viewer, found.id)
            .await?
            .ok_or_else(not_found)
    }

    /// The direct conversation between the viewer and `other`, if it was opened;
    /// never opens one.
    pub async fn existing_direct_conversation(
        &self,
        viewer: Uuid,
        other: Uuid,
    ) -> AppResult<Option<Membership>> {
        let (low, high) = social::ordered(viewer, other);
        match self.find_direct(low, high).await? {
            Some(found) => self.membership(viewer, found.id).await,
            None => Ok(None),
        }
    }

    /// The conversation, if the viewer takes part in it.
    pub async fn membership(
        &self,
        viewer: Uuid,
        conversation_id: Uuid,
    ) -> AppResult<Option<Membership>> {
        let found = participant::Entity::find_by_id((conversation_id, viewer))
            .find_also_related(conversation::Entity)
            .one(&self.db)
            .await?;
        Ok(found.and_then(|(participant, conversation)| {
            conversation.map(|conversation| Membership {
                conversation,
                participant,
            })
        }))
    }

    /// The conversation, if the viewer may receive its messages now: a
    /// participant, and for a direct one, no block between the two.
    pub async fn readable(
        &self,
        viewer: Uuid,
        conversation_id: Uuid,
    ) -> AppResult<Option<Membership>> {
        let Some(membership) = self.membership(viewer, conversation_id).await? else {
            return Ok(None);
        };
        if let Some(other) = counterpart(&membership.conversation, viewer)
            && social::any_block_between(&self.db, viewer, other).await?
        {
            return Ok(None);
        }
        Ok(Some(membership))
    }

    /// A conversation by id, whoever asks: for subscriptions, which listen
    /// before they check the viewer may read it.
    pub async fn find(&self, conversation_id: Uuid) -> AppResult<Option<conversation::Model>> {
        Ok(conversation::Entity::find_by_id(conversation_id)
            .one(&self.db)
            .await?)
    }

    /// The group's conversation, if the viewer takes part in it.
    pub async fn group_membership(
        &self,
        viewer: Uuid,
        group_id: Uuid,
    ) -> AppResult<Option<Membership>> {
        let Some(conversation) = conversation::Entity::find()
            .filter(conversation::Column::GroupId.eq(group_id))
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        self.membership(viewer, conversation.id).await
    }

    /// The viewer's conversations, most recent activity first. `after` is the
    /// last (activity, id) seen.
    pub async fn conversations(
        &self,
        viewer: Uuid,
        after: Option<(DateTime<Utc>, Uuid)>,
        limit: u64,
    ) -> AppResult<Vec<Membership>> {
        let mut select = participant::Entity::find()
            .filter(participant::Column::UserId.eq(viewer))
            .find_also_related(conversation::Entity);
        if let Some((at, id)) = after {
            select = select.filter(
                Condition::any()
                    .add(conversation::Column::LastActivityAt.lt(at))
                    .add(
                        conversation::Column::LastActivityAt
                            .eq(at)
                            .and(conversation::Column::Id.lt(id)),
                    ),
            );
        }
        // Sorted per request over the viewer's conversations: keeping a sorted
        // copy per participant would cost a group of 10,000 that many row
        // updates on every message.
        Ok(select
            .order_by_desc(conversation::Column::LastActivityAt)
            .order_by_desc(conversation::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .filter_map(|(participant, conversation)| {
                conversation.map(|conversation| Membership {
                    conversation,
                    participant,
                })
            })
            .collect())
    }

    /// Where each conversation stands (its last seq), by id: one query.
    pub async fn last_seqs(&self, ids: &[Uuid]) -> AppResult<HashMap<Uuid, i64>> {
        Ok(conversation::Entity::find()
            .select_only()
            .column(conversation::Column::Id)
            .column(conversation::Column::LastSeq)
            .filter(conversation::Column::Id.is_in(ids.iter().copied()))
            .into_tuple::<(Uuid, i64)>()
            .all(&self.db)
            .await?
            .into_iter()
            .collect())
    }

    /// The other participants' ids, for each conversation: one query.
    pub async fn participants(
        &self,
        conversations: &[Uuid],
        limit_each: usize,
    ) -> Result<HashMap<Uuid, Vec<Uuid>>, sea_orm::DbErr> {
        let rows = participant::Entity::find()
            .filter(participant::Column::ConversationId.is_in(conversations.iter().copied()))
            .order_by_asc(participant::Column::JoinedAt)
            .all(&self.db)
            .await?;
        let mut found: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
        for row in rows {
            let list = found.entry(row.conversation_id).or_default();
            if list.len() < limit_each {
                list.push(row.user_id);
            }
        }
        Ok(found)
    }

    /// The latest message of each conversation that has one: one query.
    pub async fn last_messages(
        &self,
        conversations: &[(Uuid, i64)],
    ) -> Result<HashMap<Uuid, Message>, sea_orm::DbErr> {
        // Keyed by conversation: a seq asked for twice (it moved on meanwhile)
        // answers with the one found.
        let mut condition = Condition::any();
        let mut any = false;
        for &(id, seq) in conversations {
            if seq > 0 {
                any = true;
                condition = condition.add(
                    message::Column::ConversationId
                        .eq(id)
                        .and(message::Column::Seq.eq(seq)),
                );
            }
        }
        if !any {
            return Ok(HashMap::new());
        }
        Ok(message::Entity::find()
            .filter(condition)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|m| (m.conversation_id, Message::from(m)))
            .collect())
    }

    async fn find_direct(&self, low: Uuid, high: Uuid) -> AppResult<Option<conversation::Model>> {
        Ok(conversation::Entity::find()
            .filter(conversation::Column::DirectLow.eq(low))
            .filter(conversation::Column::DirectHigh.eq(high))
            .one(&self.db)
            .await?)
    }

    /// Who may message whom ([`social::may_message`]), under this service's
    /// policy, read now, for opening a conversation.
    async fn check_may_message(
        &self,
        db: &impl ConnectionTrait,
        viewer: Uuid,
        other: Uuid,
    ) -> AppResult<()> {
        social::check_reachable(db, viewer, other, social::OwnBlock::Refuse).await?;
        social::may_message(self.policy, social::read_standing(db, viewer, other).await?)
    }
}

async fn add_participant(
    db: &impl ConnectionTrait,
    conversation_id: Uuid,
    user_id: Uuid,
    last_read_seq: i64,
    now: DateTime<Utc>,
) -> AppResult<()> {
    participant::Entity::insert(participant::ActiveModel {
        conversation_id: Set(conversation_id),
        user_id: Set(user_id),
        last_read_seq: Set(last_read_seq),
        joined_at: Set(now),
    })
    .on_conflict_do_nothing()
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// A user's arrival in a conversation: announced after commit, so their
/// feeds of all their conversations start following it from `from_seq`.
#[derive(Clone, Copy, Debug)]
pub struct Joined {
    pub conversation_id: Uuid,
    pub from_seq: i64,
}

impl Joined {
    pub fn event(self, user_id: Uuid) -> Event {
        Event::ConversationJoined {
            conversation_id: self.conversation_id,
            user_id,
            from_seq: self.from_seq,
        }
    }
}

/// Opens a new group's conversation with its owner in it; in the group's
/// creating transaction.
pub async fn open_group_conversation(
    db: &impl ConnectionTrait,
    group_id: Uuid,
    owner: Uuid,
) -> AppResult<Joined> {
    let now = now();
    let id = Uuid::now_v7();
    conversation::Entity::insert(conversation::ActiveModel {
        id: Set(id),
        kind: Set(Kind::Group.as_str().to_owned()),
        group_id: Set(Some(group_id)),
        direct_low: Set(None),
        direct_high: Set(None),
        last_seq: Set(0),
        last_activity_at: Set(now),
        created_at: Set(now),
    })
    .exec_without_returning(db)
    .await?;
    add_participant(db, id, owner, 0, now).await?;
    Ok(Joined {
        conversation_id: id,
        from_seq: 0,
    })
}

/// A new member joins the group's conversation, with everything before their
/// arrival counted as read; in the membership transaction.
pub async fn join_group_conversation(
    db: &impl ConnectionTrait,
    group_id: Uuid,
    user_id: Uuid,
) -> AppResult<Option<Joined>> {
    let Some(conversation) = conversation::Entity::find()
        .filter(conversation::Column::GroupId.eq(group_id))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    add_participant(db, conversation.id, user_id, conversation.last_seq, now()).await?;
    Ok(Some(Joined {
        conversation_id: conversation.id,
        from_seq: conversation.last_seq,
    }))
}

/// A member leaves the group's conversation; in the membership transaction.
/// Returns the conversation, whose subscribers the caller tells after commit.
pub async fn leave_group_conversation(
    db: &impl ConnectionTrait,
    group_id: Uuid,
    user_id: Uuid,
) -> AppResult<Option<Uuid>> {
    let Some(conversation) = conversation::Entity::find()
        .filter(conversation::Column::GroupId.eq(group_id))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    // Deleting the row waits for a send that holds it (see `is_participant`),
    // so a removal and a send are ordered.
    participant::Entity::delete_by_id((conversation.id, user_id))
        .exec(db)
        .await?;
    Ok(Some(conversation.id))
}
