//! Who may see what of a user: their presence and their friend list. Each is
//! a profile setting, stored in the user's row and changed by `updateProfile`;
//! presence and social decide what it shows to whom.

/// Who may see a user's presence and `lastSeenAt`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PresenceVisibility {
    /// Every signed-in user (never a signed-out reader).
    Everyone,
    /// Their friends: the default.
    #[default]
    Friends,
    OnlyMe,
}

impl PresenceVisibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Everyone => "EVERYONE",
            Self::Friends => "FRIENDS",
            Self::OnlyMe => "ONLY_ME",
        }
    }

    pub fn from_stored(value: &str) -> Self {
        match value {
            "EVERYONE" => Self::Everyone,
            "ONLY_ME" => Self::OnlyMe,
            _ => Self::Friends,
        }
    }
}

/// Who may see a user's friend list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FriendListVisibility {
    Everyone,
    /// Their friends (and they themselves): the default.
    #[default]
    Friends,
    OnlyMe,
}

impl FriendListVisibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Everyone => "EVERYONE",
            Self::Friends => "FRIENDS",
            Self::OnlyMe => "ONLY_ME",
        }
    }

    pub fn from_stored(value: &str) -> Self {
        match value {
            "EVERYONE" => Self::Everyone,
            "ONLY_ME" => Self::OnlyMe,
            _ => Self::Friends,
        }
    }
}
