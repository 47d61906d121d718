//! Who sees a user's presence: their `presenceVisibility` (a profile setting)
//! against how the reader stands to them.

use crate::domain::users::PresenceVisibility;

/// How a reader stands to the user whose presence they read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reader {
    SignedOut,
    Myself,
    Friend,
    /// Signed in, and not a friend.
    Other,
}

/// The setting is the profile's (`users`); what it shows to whom is
/// presence's.
impl PresenceVisibility {
    /// Whether `reader` sees the real presence and `lastSeenAt`. Signed-out
    /// readers never do: anyone can sign out, a user who was blocked too.
    pub fn shows_to(self, reader: Reader) -> bool {
        match (self, reader) {
            (_, Reader::Myself) => true,
            (_, Reader::SignedOut) | (Self::OnlyMe, _) => false,
            (Self::Everyone, _) => true,
            (Self::Friends, reader) => reader == Reader::Friend,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presence_goes_only_to_whom_the_user_allows() {
        use PresenceVisibility::*;
        use Reader::*;
        let sees = |visibility: PresenceVisibility| {
            [SignedOut, Myself, Friend, Other].map(|reader| visibility.shows_to(reader))
        };
        assert_eq!(sees(Everyone), [false, true, true, true]);
        assert_eq!(sees(Friends), [false, true, true, false]);
        assert_eq!(sees(OnlyMe), [false, true, false, false]);
        assert_eq!(PresenceVisibility::default(), Friends);
        for visibility in [Everyone, Friends, OnlyMe] {
            assert_eq!(
                PresenceVisibility::from_stored(visibility.as_str()),
                visibility
            );
        }
    }
}
