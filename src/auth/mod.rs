//! Who is asking: passwords, access and refresh tokens, and the viewer of a request.

pub mod password;
pub mod signing_key;
pub mod tokens;
pub mod viewer;

pub use password::PasswordHasher;
pub use tokens::{AccessClaims, TokenIssuer};
pub use viewer::{RequestAuth, Viewer};
