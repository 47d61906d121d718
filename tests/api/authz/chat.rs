//! Conversations and messages: every write of a conversation (a message, an
//! edit, a tombstone, a reaction given or taken back, typing, a read mark)
//! refused to whoever is not in it, to a pair across a block, and to a pair
//! whose match ended; and among those in it, a message is edited by its sender
//! only and deleted by its sender or the group's owner and admins.

use serde_json::{Value, json};

use super::{Caller, Caller::*, Operation, Person, World, look};

const SEND: &str = "mutation($c: ID!) { sendMessage(input: { conversationId: $c,
    body: \"let me in\", clientMessageId: \"authz\" }) { id } }";
const EDIT: &str =
    "mutation($m: ID!) { editMessage(input: { messageId: $m, body: \"rewritten\" }) { id } }";
const DELETE: &str = "mutation($m: ID!) { deleteMessage(messageId: $m) { id } }";
const REACT: &str =
    "mutation($m: ID!) { addReaction(input: { messageId: $m, emoji: \"❤️\" }) { id } }";
const UNREACT: &str =
    "mutation($m: ID!) { removeReaction(input: { messageId: $m, emoji: \"👍\" }) { id } }";
const TYPING: &str = "mutation($c: ID!) { setTyping(input: { conversationId: $c, typing: true }) }";
const READ: &str = "mutation($c: ID!) {
    markConversationRead(input: { conversationId: $c, upToSeq: 100 }) { id } }";
const DIRECT: &str = "mutation($u: ID!) { directConversation(userId: $u) { id } }";

/// A caller who may write nothing to a conversation, and what they try it on.
struct Scene<'a> {
    /// What the conversation is, for failure messages.
    conversation_is: String,
    conversation: &'a Value,
    /// A participant who may read it, and sees what a write would change.
    witness: &'a Person,
    caller: Caller,
    who: &'a Person,
    code: &'static str,
    /// A message the caller edits and deletes: their own when they have one.
    own: &'a Value,
    /// A message the caller reacts to: the caller's 👍 is on it when the
    /// caller has one there.
    theirs: &'a Value,
}

/// Every write of a conversation, on `own` (a message to edit and delete)
/// and `theirs` (one to react to, and take a 👍 back from): its name, what it
/// writes, its document and variables.
pub fn writes(
    conversation: &Value,
    own: &Value,
    theirs: &Value,
) -> [(&'static str, &'static str, &'static str, Value); 7] {
    let conversation = json!({ "c": conversation });
    [
        ("sendMessage", "a new message", SEND, conversation.clone()),
        ("editMessage", "a message", EDIT, json!({ "m": own })),
        ("deleteMessage", "a message", DELETE, json!({ "m": own })),
        ("addReaction", "a message", REACT, json!({ "m": theirs })),
        ("removeReaction", "a 👍", UNREACT, json!({ "m": theirs })),
        ("setTyping", "typing", TYPING, conversation.clone()),
        ("markConversationRead", "the read mark", READ, conversation),
    ]
}

impl Scene<'_> {
    /// Every write of the conversation, refused to the scene's caller.
    fn writes(&self) -> Vec<Operation> {
        writes(self.conversation, self.own, self.theirs)
            .into_iter()
            .map(|(name, what, document, variables)| {
                Operation::signed_in(
                    name,
                    format!("{what} in {}", self.conversation_is),
                    document,
                    variables,
                    self.who,
                )
                .witness(look::conversation(self.witness, self.conversation))
                .refuse(self.caller, self.who, self.code)
            })
            .collect()
    }
}

pub fn operations(w: &World) -> Vec<Operation> {
    let mut scenes = vec![
        Scene {
            conversation_is: "ann and bob's conversation".into(),
            conversation: &w.friends.id,
            witness: &w.bob,
            caller: Stranger,
            who: &w.stranger,
            code: "NOT_FOUND",
            own: &w.friends.first_message,
            theirs: &w.friends.second_message,
        },
        // Across a block, neither side writes; to the blocked one the
        // blocker does not exist.
        Scene {
            conversation_is: "carl and dora's conversation, carl blocked dora".into(),
            conversation: &w.blocked.id,
            witness: &w.carl,
            caller: Blocker,
            who: &w.carl,
            code: "FORBIDDEN",
            own: &w.blocked.first_message,
            theirs: &w.blocked.second_message,
        },
        Scene {
            conversation_is: "carl and dora's conversation, carl blocked dora".into(),
            conversation: &w.blocked.id,
            witness: &w.carl,
            caller: BlockedBy,
            who: &w.dora,
            code: "NOT_FOUND",
            own: &w.blocked.second_message,
            theirs: &w.blocked.first_message,
        },
        // After an unmatch the history stays, and nothing new reaches the
        // other side, either way.
        Scene {
            conversation_is: "eve and finn's conversation after their unmatch".into(),
            conversation: &w.unmatched.id,
            witness: &w.finn,
            caller: Unmatched,
            who: &w.eve,
            code: "FORBIDDEN",
            own: &w.unmatched.first_message,
            theirs: &w.unmatched.second_message,
        },
        Scene {
            conversation_is: "eve and finn's conversation after their unmatch".into(),
            conversation: &w.unmatched.id,
            witness: &w.eve,
            caller: Unmatched,
            who: &w.finn,
            code: "FORBIDDEN",
            own: &w.unmatched.second_message,
            theirs: &w.unmatched.first_message,
        },
    ];
    for group in &w.groups {
        for (caller, who) in w.group_outsiders() {
            scenes.push(Scene {
                conversation_is: format!("the conversation of {}", group.label()),
                conversation: &group.conversation,
                witness: &w.owner,
                caller,
                who,
                code: "NOT_FOUND",
                own: &group.removed_message,
                theirs: &group.member_message,
            });
        }
    }
    let mut operations: Vec<Operation> = scenes.iter().flat_map(Scene::writes).collect();

    // Among those in a conversation, another's message is not theirs to
    // change.
    let friends = look::conversation(&w.bob, &w.friends.id);
    let anns = json!({ "m": w.friends.first_message });
    operations.extend([
        Operation::signed_in("editMessage", "ann's message", EDIT, anns.clone(), &w.ann)
            .witness(friends.clone())
            .refuse(OtherParticipant, &w.bob, "FORBIDDEN"),
        Operation::signed_in("deleteMessage", "ann's message", DELETE, anns, &w.ann)
            .witness(friends)
            .refuse(OtherParticipant, &w.bob, "FORBIDDEN"),
    ]);
    for group in &w.groups {
        let seen = look::conversation(&w.owner, &group.conversation);
        operations.extend([
            Operation::signed_in(
                "editMessage",
                format!("a member's message in {}", group.label()),
                EDIT,
                json!({ "m": group.member_message }),
                &w.member,
            )
            .witness(seen.clone())
            .refuse(Admin, &w.admin, "FORBIDDEN")
            .refuse(Owner, &w.owner, "FORBIDDEN"),
            Operation::signed_in(
                "deleteMessage",
                format!("an admin's message in {}", group.label()),
                DELETE,
                json!({ "m": group.admin_message }),
                &w.owner,
            )
            .witness(seen)
            .refuse(Member, &w.member, "FORBIDDEN"),
        ]);
    }

    // A direct conversation opens between friends or matches only, never
    // across a block, and not again after an unmatch.
    operations.extend([
        Operation::signed_in(
            "directConversation",
            "with ann",
            DIRECT,
            json!({ "u": w.ann.id() }),
            &w.bob,
        )
        .witness(look::conversations(&w.ann))
        .refuse(Stranger, &w.stranger, "FORBIDDEN"),
        Operation::signed_in(
            "directConversation",
            "with carl",
            DIRECT,
            json!({ "u": w.carl.id() }),
            &w.ann,
        )
        .witness(look::conversations(&w.carl))
        .refuse(BlockedBy, &w.dora, "NOT_FOUND"),
        Operation::signed_in(
            "directConversation",
            "with dora",
            DIRECT,
            json!({ "u": w.dora.id() }),
            &w.carl,
        )
        .witness(look::conversations(&w.dora))
        .refuse(Blocker, &w.carl, "FORBIDDEN"),
        Operation::signed_in(
            "directConversation",
            "with finn",
            DIRECT,
            json!({ "u": w.finn.id() }),
            &w.eve,
        )
        .witness(look::conversations(&w.finn))
        .refuse(Unmatched, &w.eve, "FORBIDDEN"),
    ]);
    operations
}
