//! Friends and blocks: a request is answered by its recipient and withdrawn
//! by its sender only; whoever blocked the caller does not exist to them.

use serde_json::json;

use super::{Caller::*, Operation, World, look};

const ASK: &str = "mutation($u: ID!) { sendFriendRequest(input: { userId: $u }) { id } }";

pub fn operations(w: &World) -> Vec<Operation> {
    let request = json!({ "id": w.friend_request });
    vec![
        Operation::signed_in(
            "sendFriendRequest",
            "carl",
            ASK,
            json!({ "u": w.carl.id() }),
            &w.stranger,
        )
        .witness(look::social(&w.carl))
        .refuse(BlockedBy, &w.dora, "NOT_FOUND"),
        Operation::signed_in(
            "sendFriendRequest",
            "dora",
            ASK,
            json!({ "u": w.dora.id() }),
            &w.stranger,
        )
        .witness(look::social(&w.dora))
        .refuse(Blocker, &w.carl, "FORBIDDEN"),
        Operation::signed_in(
            "acceptFriendRequest",
            "asker's request to asked",
            "mutation($id: ID!) { acceptFriendRequest(id: $id) { status } }",
            request.clone(),
            &w.asked,
        )
        .witness(look::social(&w.asked))
        .refuse(Sender, &w.asker, "NOT_FOUND")
        .refuse(Stranger, &w.stranger, "NOT_FOUND"),
        Operation::signed_in(
            "declineFriendRequest",
            "asker's request to asked",
            "mutation($id: ID!) { declineFriendRequest(id: $id) { status } }",
            request.clone(),
            &w.asked,
        )
        .witness(look::social(&w.asked))
        .refuse(Sender, &w.asker, "NOT_FOUND")
        .refuse(Stranger, &w.stranger, "NOT_FOUND"),
        Operation::signed_in(
            "cancelFriendRequest",
            "asker's request to asked",
            "mutation($id: ID!) { cancelFriendRequest(id: $id) { status } }",
            request,
            &w.asker,
        )
        .witness(look::social(&w.asker))
        .refuse(Recipient, &w.asked, "NOT_FOUND")
        .refuse(Stranger, &w.stranger, "NOT_FOUND"),
        Operation::signed_in(
            "removeFriend",
            "ann, bob's friend",
            "mutation($u: ID!) { removeFriend(userId: $u) { id } }",
            json!({ "u": w.ann.id() }),
            &w.bob,
        )
        // Removing whom one is not friends with changes nothing and
        // succeeds, as removing twice does: no refusal to list.
        .witness(look::social(&w.ann)),
        Operation::signed_in(
            "removeFriend",
            "carl, who blocked the caller",
            "mutation($u: ID!) { removeFriend(userId: $u) { id } }",
            json!({ "u": w.carl.id() }),
            &w.ann,
        )
        .witness(look::social(&w.carl))
        .refuse(BlockedBy, &w.dora, "NOT_FOUND"),
        Operation::signed_in(
            "blockUser",
            "ann",
            "mutation($u: ID!) { blockUser(userId: $u) { id } }",
            json!({ "u": w.ann.id() }),
            &w.bob,
        )
        .witness(look::social(&w.bob)),
        Operation::signed_in(
            "unblockUser",
            "dora, whom carl blocked",
            "mutation($u: ID!) { unblockUser(userId: $u) { id } }",
            json!({ "u": w.dora.id() }),
            &w.carl,
        )
        .witness(look::social(&w.carl)),
        // Unblocking oneself from one's blocker: the block is not theirs.
        Operation::signed_in(
            "unblockUser",
            "carl, who blocked the caller",
            "mutation($u: ID!) { unblockUser(userId: $u) { id } }",
            json!({ "u": w.carl.id() }),
            &w.stranger,
        )
        .witness(look::social(&w.carl))
        .refuse(BlockedBy, &w.dora, "NOT_FOUND"),
    ]
}
