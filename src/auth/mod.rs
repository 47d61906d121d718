//! Who is asking: passwords, access and refresh tokens, and the key that signs
//! them. The viewer of a request, which needs accounts, is `graphql::viewer`.

pub mod password;
pub mod signing_key;
pub mod tokens;

pub use password::PasswordHasher;
pub use tokens::{AccessClaims, TokenIssuer};
