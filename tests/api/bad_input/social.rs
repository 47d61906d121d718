//! Friends and blocks.

use serde_json::json;

use super::{Bad::*, Call, Table, World, bad, chars, not_found};

#[rustfmt::skip]
pub fn table(world: &World) -> Table {
    let mut table = Table::default();
    let ann = Some(&world.ann);
    let cat = json!(world.cat.user_id);
    // `dan` blocked `ann`: to her he is nobody.
    let blocker = json!(world.dan.user_id);
    let herself = json!(world.ann.user_id);

    table.add(
        Call::new(
            "sendFriendRequest(input: SendFriendRequestInput!) { id }",
            ann,
            json!({ "input": { "userId": cat } }),
        )
        .ids("input.userId", &cat, not_found())
        .row("input.userId", ForeignId, blocker.clone(), not_found())
        .row("input.userId", Oneself, herself.clone(), bad("userId"))
        .row("input.message", TooLong, chars(501), bad("message"))
        .row("input.message", WrongFormat, json!("hi\u{0}"), bad("message")),
    );

    // `eve` asked `ann`, who answers; `ann` asked `cat`, and may cancel.
    // `eve` asked `cat`: neither end is `ann`. Answering looks among the
    // requests sent to the caller, cancelling among hers: the other end's
    // request is not found there.
    for (answer, request, the_other_end) in [
        ("acceptFriendRequest(id: ID!) { id }", &world.request_to_ann, &world.request_from_ann),
        ("declineFriendRequest(id: ID!) { id }", &world.request_to_ann, &world.request_from_ann),
        ("cancelFriendRequest(id: ID!) { id }", &world.request_from_ann, &world.request_to_ann),
    ] {
        table.add(
            Call::new(answer, ann, json!({}))
                .ids("id", request, not_found())
                .row("id", ForeignId, world.foreign_friend_request.clone(), not_found())
                .row("id", ForeignId, the_other_end.clone(), not_found()),
        );
    }

    table.add(
        Call::new("removeFriend(userId: ID!) { id }", ann, json!({}))
            .ids("userId", &json!(world.bob.user_id), not_found())
            .row("userId", ForeignId, blocker.clone(), not_found())
            .row("userId", Oneself, herself.clone(), bad("userId")),
    );
    table.add(
        Call::new("blockUser(userId: ID!) { id }", ann, json!({}))
            .ids("userId", &cat, not_found())
            .row("userId", Oneself, herself.clone(), bad("userId")),
    );
    table.add(
        Call::new("unblockUser(userId: ID!) { id }", ann, json!({}))
            .ids("userId", &cat, not_found())
            .row("userId", Oneself, herself, bad("userId")),
    );
    table
}

#[tokio::test]
async fn friends_and_blocks_refuse_bad_input_and_write_nothing() {
    super::run_table(table).await;
}
