//! Accounts and sessions: signing in is anyone's, but never into another's
//! account, nor with a session that ended; what a session does to sessions
//! stays within its own account.

use serde_json::json;

use super::{Caller::*, Operation, World, look};
use crate::common::PASSWORD;

pub fn operations(w: &World) -> Vec<Operation> {
    let ann = &w.ann;
    vec![
        Operation::public(
            "register",
            "anyone may create an account",
            "ann's username",
            "mutation($u: String!) { register(input: { username: $u, password: \"another password\" }) {
                accessToken } }",
            json!({ "u": ann.session.username }),
        )
        .witness(look::sessions(ann))
        .refuse_token(Anyone, None, "CONFLICT"),
        Operation::public(
            "login",
            "anyone may sign in to their account",
            "ann's account, with a wrong password",
            "mutation($u: String!) { login(input: { identifier: $u, password: \"not anns password\" }) {
                accessToken } }",
            json!({ "u": ann.session.username }),
        )
        .witness(look::sessions(ann))
        .refuse_token(Anyone, None, "UNAUTHENTICATED")
        .refuse(Stranger, &w.stranger, "UNAUTHENTICATED"),
        Operation::public(
            "refreshSession",
            "a refresh token is its own credential",
            "ann's logged-out session's refresh token",
            "mutation($t: String!) { refreshSession(input: { refreshToken: $t }) { accessToken } }",
            json!({ "t": ann.logged_out.refresh_token }),
        )
        .witness(look::sessions(ann))
        .refuse_token(Anyone, None, "UNAUTHENTICATED"),
        Operation::public(
            "refreshSession",
            "a refresh token is its own credential",
            "ann's revoked session's refresh token",
            "mutation($t: String!) { refreshSession(input: { refreshToken: $t }) { accessToken } }",
            json!({ "t": ann.revoked.refresh_token }),
        )
        .witness(look::sessions(ann))
        .refuse_token(Anyone, None, "UNAUTHENTICATED"),
        Operation::public(
            "refreshSession",
            "a refresh token is its own credential",
            "ann's access token in place of a refresh token",
            "mutation($t: String!) { refreshSession(input: { refreshToken: $t }) { accessToken } }",
            json!({ "t": ann.session.access_token }),
        )
        .witness(look::sessions(ann))
        .refuse_token(Anyone, None, "UNAUTHENTICATED"),
        Operation::public(
            "refreshSession",
            "a refresh token is its own credential",
            "a refresh token of a session ended by logoutAllSessions",
            "mutation($t: String!) { refreshSession(input: { refreshToken: $t }) { accessToken } }",
            json!({ "t": w.logged_out_everywhere.refresh_token }),
        )
        .refuse_token(Anyone, None, "UNAUTHENTICATED"),
        Operation::signed_in(
            "logout",
            "the caller's session",
            "mutation { logout }",
            json!({}),
            ann,
        )
        .witness(look::sessions(ann)),
        Operation::signed_in(
            "logoutAllSessions",
            "the caller's sessions",
            "mutation { logoutAllSessions }",
            json!({}),
            ann,
        )
        .witness(look::sessions(ann)),
        Operation::signed_in(
            "revokeSession",
            "ann's phone's session",
            "mutation($id: ID!) { revokeSession(id: $id) }",
            json!({ "id": w.anns_phone }),
            ann,
        )
        .witness(look::sessions(ann))
        .refuse(Stranger, &w.stranger, "NOT_FOUND")
        .refuse(Blocker, &w.carl, "NOT_FOUND")
        .refuse(OtherParticipant, &w.bob, "NOT_FOUND"),
        Operation::signed_in(
            "deleteAccount",
            "the caller's account",
            "mutation($p: String!) { deleteAccount(input: { password: $p }) }",
            json!({ "p": PASSWORD }),
            ann,
        )
        .witness(look::profile(ann)),
        Operation::signed_in(
            "deleteAccount",
            "the caller's account, with a wrong password",
            "mutation { deleteAccount(input: { password: \"a stolen phone does not know\" }) }",
            json!({}),
            ann,
        )
        .witness(look::profile(ann))
        .refuse(SessionThief, ann, "BAD_USER_INPUT"),
        Operation::signed_in(
            "updateProfile",
            "the caller's profile",
            "mutation { updateProfile(input: { displayName: \"taken over\", bio: \"pwned\" }) { id } }",
            json!({}),
            ann,
        )
        .witness(look::profile(ann))
        .refuse_token(
            LoggedOutEverywhere,
            w.logged_out_everywhere.token().map(str::to_owned),
            "UNAUTHENTICATED",
        ),
    ]
}
