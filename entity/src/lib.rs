//! SeaORM entities: one module per table, columns only, no logic.
//! Domain rules live in the `kith` crate's `domain/` modules.

pub mod attachment;
pub mod block;
pub mod conversation;
pub mod conversation_participant;
pub mod friend_request;
pub mod friendship;
pub mod group;
pub mod group_invitation;
pub mod group_join_request;
pub mod group_member;
pub mod identity;
pub mod message;
pub mod message_reaction;
pub mod outbox_event;
pub mod photo;
pub mod refresh_token;
pub mod server_secret;
pub mod session;
pub mod sms_code;
pub mod swipe;
pub mod user;
pub mod user_match;
pub mod webhook_delivery;
