//! Read pointers: how far each participant has read, moved forward by read
//! marks and by their own sends (see `send`).

use std::collections::HashMap;

use entity::conversation_participant as participant;
use sea_orm::{
    ColumnTrait, EntityTrait, QueryFilter, QueryOrder, TransactionTrait, sea_query::Expr,
};
use uuid::Uuid;

use super::{Chat, Membership, not_found, outbox_events};
use crate::{
    domain::events::{Event, conversation_topic},
    error::{AppError, AppResult},
};

impl Chat {
    /// Moves the viewer's read pointer forward to `up_to_seq` (never back, never
    /// past the last message).
    pub async fn mark_read(
        &self,
        viewer: Uuid,
        conversation_id: Uuid,
        up_to_seq: i64,
    ) -> AppResult<Membership> {
        if up_to_seq < 0 {
            return Err(AppError::bad_input(
                "upToSeq",
                "upToSeq must not be negative",
            ));
        }
        let membership = self
            .membership(viewer, conversation_id)
            .await?
            .ok_or_else(not_found)?;
        // A read receipt reaches the other side like any write: after an
        // unmatch or a block the pointer stays where it was.
        self.check_may_write(viewer, &membership).await?;
        let target = Ord::min(up_to_seq, membership.conversation.last_seq);
        let txn = self.db.begin().await?;
        let moved = participant::Entity::update_many()
            .col_expr(participant::Column::LastReadSeq, Expr::value(target))
            .filter(participant::Column::ConversationId.eq(conversation_id))
            .filter(participant::Column::UserId.eq(viewer))
            .filter(participant::Column::LastReadSeq.lt(target))
            .exec(&txn)
            .await?;
        if moved.rows_affected > 0 {
            self.outbox
                .append(
                    &txn,
                    outbox_events::conversation_read(viewer, conversation_id, target),
                )
                .await?;
        }
        txn.commit().await?;
        if moved.rows_affected > 0 {
            self.pubsub.publish(
                &conversation_topic(conversation_id),
                Event::ReadReceipt {
                    conversation_id,
                    user_id: viewer,
                    up_to_seq: target,
                },
            );
        }
        self.membership(viewer, conversation_id)
            .await?
            .ok_or_else(not_found)
    }

    /// Who has read up to each (conversation, seq), oldest participants first:
    /// one query for all of them.
    pub async fn readers(
        &self,
        keys: &[(Uuid, i64)],
    ) -> Result<HashMap<(Uuid, i64), Vec<Uuid>>, sea_orm::DbErr> {
        let conversations: Vec<Uuid> = keys.iter().map(|(c, _)| *c).collect();
        let rows = participant::Entity::find()
            .filter(participant::Column::ConversationId.is_in(conversations))
            .order_by_asc(participant::Column::JoinedAt)
            .all(&self.db)
            .await?;
        Ok(keys
            .iter()
            .map(|&(conversation, seq)| {
                let readers = rows
                    .iter()
                    .filter(|p| p.conversation_id == conversation && p.last_read_seq >= seq)
                    .map(|p| p.user_id)
                    .collect();
                ((conversation, seq), readers)
            })
            .collect())
    }
}
