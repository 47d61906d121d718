//! The outside services that vouch for a person: Telegram (its WebApp's
//! signed `initData`, checked here with the bot token) and Facebook (an
//! access token, checked by asking the Graph API). Each answers who the
//! person is, in the provider's own terms; accounts decide what follows.

pub mod facebook;
pub mod telegram;

pub use facebook::{FacebookError, FacebookProfile, GraphApi};
pub use telegram::{InitDataError, TelegramLogin, TelegramUser};
