//! Discovery and presence: no swipe across a block (whoever blocked the
//! caller does not exist to them), a match is its pair's alone to end, and
//! what only its owner sets needs its owner's live session.

use serde_json::json;

use super::{Caller::*, Operation, World, look};

const SWIPES: [(&str, &str); 3] = [
    (
        "like",
        "mutation($u: ID!) { like(userId: $u) { match { id } } }",
    ),
    (
        "superLike",
        "mutation($u: ID!) { superLike(userId: $u) { match { id } } }",
    ),
    (
        "pass",
        "mutation($u: ID!) { pass(userId: $u) { match { id } } }",
    ),
];
const UNMATCH: &str = "mutation($id: ID!) { unmatch(matchId: $id) }";

pub fn operations(w: &World) -> Vec<Operation> {
    let mut operations = Vec::new();
    for (name, document) in SWIPES {
        operations.extend([
            Operation::signed_in(name, "carl", document, json!({ "u": w.carl.id() }), &w.dora)
                .witness(look::matches(&w.carl))
                .refuse(BlockedBy, &w.dora, "NOT_FOUND"),
            Operation::signed_in(name, "dora", document, json!({ "u": w.dora.id() }), &w.carl)
                .witness(look::matches(&w.dora))
                .refuse(Blocker, &w.carl, "FORBIDDEN"),
        ]);
    }
    operations.extend([
        Operation::signed_in(
            "unmatch",
            "gina and hal's match",
            UNMATCH,
            json!({ "id": w.current_match }),
            &w.gina,
        )
        .witness(look::matches(&w.gina))
        .refuse(Stranger, &w.stranger, "NOT_FOUND")
        .refuse(Unmatched, &w.eve, "NOT_FOUND"),
        Operation::signed_in(
            "unmatch",
            "eve and finn's ended match",
            UNMATCH,
            json!({ "id": w.ended_match }),
            &w.eve,
        )
        .witness(look::matches(&w.eve))
        .refuse(Unmatched, &w.eve, "NOT_FOUND")
        .refuse(Stranger, &w.stranger, "NOT_FOUND"),
        Operation::signed_in(
            "updateDiscoveryPreferences",
            "the caller's preferences",
            "mutation { updateDiscoveryPreferences(input: { minAge: 50, discoverable: false }) {
                minAge } }",
            json!({}),
            &w.gina,
        )
        .witness(look::profile(&w.gina)),
        Operation::signed_in(
            "setPresence",
            "the caller's presence",
            "mutation { setPresence(status: AWAY) }",
            json!({}),
            &w.ann,
        )
        .witness(look::profile(&w.ann)),
    ]);
    operations
}
