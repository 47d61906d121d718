//! Opaque global IDs: URL-safe base64 of `Kind:uuid`, so any ID names its type and
//! `node(id:)` can resolve it. Clients must not parse them.

use async_graphql::ID;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use uuid::Uuid;

use crate::error::{AppError, AppResult};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeKind {
    User,
    Session,
    FriendRequest,
    Group,
    GroupInvitation,
    GroupJoinRequest,
    Conversation,
    Message,
    Match,
    Photo,
    Attachment,
}

impl NodeKind {
    fn prefix(self) -> &'static str {
        match self {
            Self::User => "User",
            Self::Session => "Session",
            Self::FriendRequest => "FriendRequest",
            Self::Group => "Group",
            Self::GroupInvitation => "GroupInvitation",
            Self::GroupJoinRequest => "GroupJoinRequest",
            Self::Conversation => "Conversation",
            Self::Message => "Message",
            Self::Match => "Match",
            Self::Photo => "Photo",
            Self::Attachment => "Attachment",
        }
    }

    fn from_prefix(prefix: &str) -> Option<Self> {
        match prefix {
            "User" => Some(Self::User),
            "Session" => Some(Self::Session),
            "FriendRequest" => Some(Self::FriendRequest),
            "Group" => Some(Self::Group),
            "GroupInvitation" => Some(Self::GroupInvitation),
            "GroupJoinRequest" => Some(Self::GroupJoinRequest),
            "Conversation" => Some(Self::Conversation),
            "Message" => Some(Self::Message),
            "Match" => Some(Self::Match),
            "Photo" => Some(Self::Photo),
            "Attachment" => Some(Self::Attachment),
            _ => None,
        }
    }
}

pub fn encode(kind: NodeKind, id: Uuid) -> ID {
    ID(URL_SAFE_NO_PAD.encode(format!("{}:{}", kind.prefix(), id.simple())))
}

/// The kind and key an ID names, or `None` when it is not one of ours.
pub fn decode(id: &str) -> Option<(NodeKind, Uuid)> {
    let raw = URL_SAFE_NO_PAD.decode(id).ok()?;
    let text = std::str::from_utf8(&raw).ok()?;
    let (prefix, key) = text.split_once(':')?;
    Some((NodeKind::from_prefix(prefix)?, Uuid::try_parse(key).ok()?))
}

/// The key of an ID that must name a `kind`; for lookups that answer null.
pub fn decode_as(id: &str, kind: NodeKind) -> Option<Uuid> {
    decode(id).and_then(|(k, key)| (k == kind).then_some(key))
}

/// The key of an ID a mutation acts on: any other ID is `NOT_FOUND`.
pub fn expect(id: &str, kind: NodeKind) -> AppResult<Uuid> {
    decode_as(id, kind)
        .ok_or_else(|| AppError::not_found(format!("no {} with this id", kind.prefix())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_keep_their_kind() {
        let key = Uuid::now_v7();
        let id = encode(NodeKind::User, key);
        assert_eq!(decode(&id), Some((NodeKind::User, key)));
        assert_eq!(decode_as(&id, NodeKind::Session), None);
        assert_eq!(decode("garbage!"), None);
        assert_eq!(decode(&URL_SAFE_NO_PAD.encode("Nope:1")), None);
    }
}
