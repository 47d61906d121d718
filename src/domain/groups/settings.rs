//! What a group is set to: its name, description, visibility and join policy,
//! as stored and as parsed from a client's input.

use crate::error::{AppError, AppResult};

const MAX_NAME_CHARS: usize = 64;

const MAX_DESCRIPTION_CHARS: usize = 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Visibility {
    Public,
    /// Seen and found by its members and invitees only.
    Private,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "PUBLIC",
            Self::Private => "PRIVATE",
        }
    }

    pub fn from_stored(value: &str) -> Self {
        match value {
            "PUBLIC" => Self::Public,
            _ => Self::Private,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JoinPolicy {
    /// Anyone who can see the group joins at once.
    Open,
    /// Joining is a request an owner or admin approves.
    Approval,
    /// Only by invitation.
    InviteOnly,
}

impl JoinPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "OPEN",
            Self::Approval => "APPROVAL",
            Self::InviteOnly => "INVITE_ONLY",
        }
    }

    pub fn from_stored(value: &str) -> Self {
        match value {
            "OPEN" => Self::Open,
            "APPROVAL" => Self::Approval,
            _ => Self::InviteOnly,
        }
    }
}

/// A new group's settings, already parsed.
pub struct NewGroup {
    pub name: String,
    pub description: Option<String>,
    pub visibility: Visibility,
    pub join_policy: JoinPolicy,
}

/// A change to a group's settings: `None` leaves a field as it is.
#[derive(Default)]
pub struct GroupChanges {
    pub name: Option<String>,
    /// `Some(None)` clears the description.
    pub description: Option<Option<String>>,
    pub visibility: Option<Visibility>,
    pub join_policy: Option<JoinPolicy>,
}

/// A group's name: trimmed, 1 to 64 characters, no control characters.
pub fn parse_name(raw: &str) -> AppResult<String> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(AppError::bad_input(
            "name",
            format!("name must be 1 to {MAX_NAME_CHARS} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(AppError::bad_input(
            "name",
            "name contains control characters",
        ));
    }
    Ok(name.to_owned())
}

/// A description: trimmed, at most 1000 characters; empty means none.
pub fn parse_description(raw: &str) -> AppResult<Option<String>> {
    let text = raw.trim();
    if text.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(AppError::bad_input(
            "description",
            format!("description must be at most {MAX_DESCRIPTION_CHARS} characters"),
        ));
    }
    if text.chars().any(|c| c.is_control() && c != '\n') {
        return Err(AppError::bad_input(
            "description",
            "description contains control characters",
        ));
    }
    Ok((!text.is_empty()).then(|| text.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(parse_name("  Hikers  ").unwrap(), "Hikers");
        assert!(parse_name("   ").is_err());
        assert!(parse_name(&"x".repeat(65)).is_err());
        assert!(parse_name("a\u{7}b").is_err());
        assert_eq!(parse_description("  ").unwrap(), None);
        assert!(parse_description(&"x".repeat(1001)).is_err());
    }
}
