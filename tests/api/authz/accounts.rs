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
        Operation::public(
            "requestSmsCode",
            "anyone may ask for a code to any number: it tells nothing and signs no one in",
            "a number not in E.164",
            "mutation { requestSmsCode(input: { phone: \"4155550123\" }) { expiresAt } }",
            json!({}),
        )
        .refuse_token(Anyone, None, "BAD_USER_INPUT"),
        Operation::public(
            "loginWithSms",
            "a code sent to the number is its own credential",
            "a number with a code never sent",
            "mutation { loginWithSms(input: { phone: \"+14155550999\", code: \"123456\" }) { accessToken } }",
            json!({}),
        )
        .witness(look::sessions(ann))
        .refuse_token(Anyone, None, "UNAUTHENTICATED")
        .refuse(Stranger, &w.stranger, "UNAUTHENTICATED"),
        Operation::public(
            "loginWithTelegram",
            "Telegram's signature is its own credential",
            "initData signed for another bot",
            "mutation($d: String!) { loginWithTelegram(input: { initData: $d }) { accessToken } }",
            json!({ "d": crate::sign_in::init_data("1:another bot", 42, "someone", 5) }),
        )
        .refuse_token(Anyone, None, "UNAUTHENTICATED")
        .refuse(Stranger, &w.stranger, "UNAUTHENTICATED"),
        Operation::public(
            "loginWithFacebook",
            "a token the Graph API vouches for is its own credential",
            "a token the Graph API does not know",
            "mutation { loginWithFacebook(input: { accessToken: \"EAAGnobodys\" }) { accessToken } }",
            json!({}),
        )
        .refuse_token(Anyone, None, "UNAUTHENTICATED")
        .refuse(Stranger, &w.stranger, "UNAUTHENTICATED"),
        Operation::signed_in(
            "linkPhone",
            "a number, with a code never sent",
            "mutation { linkPhone(input: { phone: \"+14155550998\", code: \"123456\" }) { method } }",
            json!({}),
            ann,
        )
        .witness(look::sessions(ann))
        .refuse(Stranger, &w.stranger, "BAD_USER_INPUT"),
        Operation::signed_in(
            "linkTelegram",
            "initData signed for another bot",
            "mutation($d: String!) { linkTelegram(input: { initData: $d }) { method } }",
            json!({ "d": crate::sign_in::init_data("1:another bot", 43, "someone", 5) }),
            ann,
        )
        .refuse(Stranger, &w.stranger, "BAD_USER_INPUT"),
        Operation::signed_in(
            "linkFacebook",
            "a token the Graph API does not know",
            "mutation { linkFacebook(input: { accessToken: \"EAAGnobodys\" }) { method } }",
            json!({}),
            ann,
        )
        .refuse(Stranger, &w.stranger, "BAD_USER_INPUT"),
        Operation::signed_in(
            "unlinkIdentity",
            "the caller's password, their last way in",
            "mutation { unlinkIdentity(method: PASSWORD) { method } }",
            json!({}),
            ann,
        )
        .witness(look::sessions(ann))
        .refuse(Stranger, &w.stranger, "CONFLICT")
        .refuse(Blocker, &w.carl, "CONFLICT"),
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
