//! A presence status, and what everyone else sees of it.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    Online,
    Away,
    /// Online, but shown as OFFLINE to everyone else.
    Invisible,
    Offline,
}

impl Status {
    /// As stored in the shared store (and named in the schema).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Online => "ONLINE",
            Self::Away => "AWAY",
            Self::Invisible => "INVISIBLE",
            Self::Offline => "OFFLINE",
        }
    }

    pub fn parse(text: &str) -> anyhow::Result<Self> {
        Ok(match text {
            "ONLINE" => Self::Online,
            "AWAY" => Self::Away,
            "INVISIBLE" => Self::Invisible,
            "OFFLINE" => Self::Offline,
            other => anyhow::bail!("no presence status {other:?}"),
        })
    }
}

/// What everyone else sees.
pub(super) fn public(status: Status) -> Status {
    if status == Status::Invisible {
        Status::Offline
    } else {
        status
    }
}
