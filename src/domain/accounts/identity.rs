//! Validated account identifiers and secrets. Each newtype's `parse` is the only way
//! to build one, so a `Username` in hand is a valid, normalised username.

use crate::error::{AppError, AppResult};

/// 3 to 32 of `a-z 0-9 _ .`, stored lower-case: `Alice` and `alice` are one name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> AppResult<Self> {
        let name = raw.trim().to_ascii_lowercase();
        if !(3..=32).contains(&name.len()) {
            return Err(AppError::bad_input(
                "username",
                "username must be 3 to 32 characters",
            ));
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.')
        {
            return Err(AppError::bad_input(
                "username",
                "username may contain only letters a-z, digits, '_' and '.'",
            ));
        }
        Ok(Self(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A syntactically valid address, stored lower-case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> AppResult<Self> {
        let email = raw.trim().to_lowercase();
        // Addresses without a dot in the domain are valid by RFC 5322 but never
        // reachable for an app's users; asking for one catches typos like `a@gmail`.
        let has_dotted_domain = email
            .rsplit_once('@')
            .is_some_and(|(_, domain)| domain.contains('.'));
        if email.len() > 254 || !has_dotted_domain || !email_address::EmailAddress::is_valid(&email)
        {
            return Err(AppError::bad_input("email", "email is not a valid address"));
        }
        Ok(Self(email))
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// An E.164 number: `+`, a country code not starting with 0, at most 15 digits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Phone(String);

impl Phone {
    pub fn parse(raw: &str) -> AppResult<Self> {
        let phone: String = raw
            .trim()
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '(' | ')'))
            .collect();
        let digits = phone.strip_prefix('+').unwrap_or("");
        let valid = (2..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0');
        if !valid {
            return Err(AppError::bad_input(
                "phone",
                "phone must be in E.164 form, like +14155550123",
            ));
        }
        Ok(Self(phone))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// 8 to 128 characters (counted as characters, not bytes).
pub struct Password(String);

impl Password {
    pub fn parse(raw: &str) -> AppResult<Self> {
        let chars = raw.chars().count();
        if !(8..=128).contains(&chars) {
            return Err(AppError::bad_input(
                "password",
                "password must be 8 to 128 characters",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How a login names its account: by username, email or phone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Identifier {
    Username(String),
    Email(String),
    Phone(String),
}

impl Identifier {
    /// Reads the identifier by its shape; one that cannot name any account is
    /// kept as a username that will not be found, so it fails like any other.
    pub fn parse(raw: &str) -> Self {
        let raw = raw.trim();
        if raw.contains('@') {
            Self::Email(raw.to_lowercase())
        } else if raw.starts_with('+') {
            Phone::parse(raw).map_or_else(|_| Self::Phone(raw.to_owned()), |p| Self::Phone(p.0))
        } else {
            Self::Username(raw.to_lowercase())
        }
    }

    /// The key its rate limit counts under.
    pub fn key(&self) -> &str {
        match self {
            Self::Username(s) | Self::Email(s) | Self::Phone(s) => s,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(err: AppError) -> Option<&'static str> {
        match err {
            AppError::BadUserInput { field, .. } => field,
            _ => None,
        }
    }

    #[test]
    fn usernames_are_normalised_and_checked() {
        assert_eq!(
            Username::parse(" Alice.B_2 ").unwrap().as_str(),
            "alice.b_2"
        );
        for bad in [
            "ab",
            "a b c",
            "émile",
            "x".repeat(33).as_str(),
            "semi;colon",
        ] {
            assert_eq!(
                field_of(Username::parse(bad).unwrap_err()),
                Some("username")
            );
        }
    }

    #[test]
    fn emails_and_phones_are_checked() {
        assert_eq!(Email::parse("A@Example.COM").unwrap().0, "a@example.com");
        for bad in ["nope", "a@b", "@example.com", "a@@example.com"] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Phone::parse("+1 415-555-0123").unwrap().0, "+14155550123");
        for bad in ["14155550123", "+0123", "+1", "+1234567890123456", "+12a4"] {
            assert!(Phone::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_count_characters() {
        assert!(Password::parse("short").is_err());
        assert!(Password::parse("ünïcödé!").is_ok());
        assert!(Password::parse(&"x".repeat(129)).is_err());
    }

    #[test]
    fn identifiers_are_read_by_shape() {
        assert_eq!(Identifier::parse("Bob"), Identifier::Username("bob".into()));
        assert_eq!(
            Identifier::parse("B@x.io"),
            Identifier::Email("b@x.io".into())
        );
        assert_eq!(
            Identifier::parse("+1 415 555 0123"),
            Identifier::Phone("+14155550123".into())
        );
    }
}
