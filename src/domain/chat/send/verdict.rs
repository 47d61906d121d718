//! What becomes of a written message, whichever wrote it (a send alone or a
//! batch): judged before its transaction commits, announced after.

use super::write::Written;
use crate::{
    config::DirectPolicy,
    domain::{
        chat::{Message, not_found},
        events::{Event, Events, conversation_topic},
        social,
    },
    error::AppResult,
};

/// Whether a written message may stand: its sender still takes part (no
/// participant row means a removal committed first), and for a direct
/// message, the pair may message ([`social::may_message`], on the standing
/// the write read under the send's locks).
pub(super) fn judge(policy: DirectPolicy, written: &Written) -> AppResult<()> {
    if !written.participating {
        return Err(not_found());
    }
    match written.standing {
        Some(standing) => social::may_message(policy, standing),
        None => Ok(()),
    }
}

/// Tells a conversation's subscribers of a message just committed.
pub(super) fn announce(pubsub: &Events, message: &Message) {
    pubsub.publish(
        &conversation_topic(message.conversation_id),
        Event::MessageAdded {
            message: message.clone(),
        },
    );
}
