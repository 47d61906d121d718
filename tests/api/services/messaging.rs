//! Who may message whom (`Chat`, with `chat::judge` and the block rule of
//! `social`): friends, matches, ended matches, blocks either way, the
//! `DirectPolicy`, and what a send may refer to.

use kith::config::DirectPolicy;

use super::{expect_code, field_of, services, services_with};

#[tokio::test]
async fn friends_open_a_conversation_and_both_send() {
    let s = services().await;
    let (ann, bob) = (s.user("ann").await, s.user("bob").await);
    s.befriend(ann, bob).await;

    let opened = s.chat.direct_conversation(ann, bob).await.unwrap();
    // Either side finds the same one: a pair has one direct conversation.
    let found = s.chat.direct_conversation(bob, ann).await.unwrap();
    assert_eq!(opened.conversation.id, found.conversation.id);

    let first = s.send(ann, opened.conversation.id, "hi").await.unwrap();
    let second = s.send(bob, opened.conversation.id, "hello").await.unwrap();
    assert_eq!((first.seq, second.seq), (1, 2));
    assert_eq!(second.sender_id, Some(bob));
}

#[tokio::test]
async fn strangers_may_not_message_under_the_friends_policy() {
    let s = services().await;
    let (ann, bob) = (s.user("ann").await, s.user("bob").await);

    let err = expect_code(s.chat.direct_conversation(ann, bob).await, "FORBIDDEN");
    assert!(format!("{err:?}").contains("friends and matches only"));
    // Nothing was opened on the way.
    assert!(
        s.chat
            .existing_direct_conversation(ann, bob)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn strangers_may_message_under_the_everyone_policy() {
    let s = services_with(|settings| settings.direct_messages = DirectPolicy::Everyone).await;
    let (ann, bob) = (s.user("ann").await, s.user("bob").await);

    let conversation = s.direct(ann, bob).await;
    s.send(ann, conversation, "hi").await.unwrap();
    s.send(bob, conversation, "hi back").await.unwrap();
}

#[tokio::test]
async fn a_pending_friend_request_is_not_a_friendship() {
    let s = services().await;
    let (ann, bob) = (s.user("ann").await, s.user("bob").await);
    s.social.send_request(ann, bob, None).await.unwrap();

    expect_code(s.chat.direct_conversation(ann, bob).await, "FORBIDDEN");
    expect_code(s.chat.direct_conversation(bob, ann).await, "FORBIDDEN");
}

#[tokio::test]
async fn ending_a_friendship_stops_messages_under_the_friends_policy() {
    let s = services().await;
    let (ann, bob) = (s.user("ann").await, s.user("bob").await);
    s.befriend(ann, bob).await;
    let conversation = s.direct(ann, bob).await;
    s.send(ann, conversation, "hi").await.unwrap();

    s.social.remove_friend(bob, ann).await.unwrap();

    // Checked again on every send, not only when the conversation opened.
    expect_code(s.send(ann, conversation, "still there?").await, "FORBIDDEN");
    expect_code(s.send(bob, conversation, "no").await, "FORBIDDEN");
    // The history stays readable.
    assert!(s.chat.readable(ann, conversation).await.unwrap().is_some());
}

#[tokio::test]
async fn matched_users_message_without_being_friends() {
    let s = services().await;
    let (ann, bob) = (s.dater("ann").await, s.dater("bob").await);
    s.match_pair(ann, bob).await;

    // The match opened the conversation.
    let conversation = s
        .chat
        .existing_direct_conversation(bob, ann)
        .await
        .unwrap()
        .expect("a match opens the pair's conversation")
        .conversation
        .id;
    assert!(!s.social.are_friends(ann, bob).await.unwrap());
    s.send(ann, conversation, "hi").await.unwrap();
    s.send(bob, conversation, "hey").await.unwrap();
}

#[tokio::test]
async fn an_ended_match_refuses_messages_even_under_the_everyone_policy() {
    let s = services_with(|settings| settings.direct_messages = DirectPolicy::Everyone).await;
    let (ann, bob) = (s.dater("ann").await, s.dater("bob").await);
    let matched = s.match_pair(ann, bob).await;
    let conversation = s.direct(ann, bob).await;
    s.send(ann, conversation, "hi").await.unwrap();

    s.discovery.unmatch(bob, matched.id).await.unwrap();

    for (sender, body) in [(ann, "hello?"), (bob, "bye")] {
        let err = expect_code(s.send(sender, conversation, body).await, "FORBIDDEN");
        assert!(format!("{err:?}").contains("match with this user has ended"));
    }
    expect_code(s.chat.direct_conversation(ann, bob).await, "FORBIDDEN");
}

#[tokio::test]
async fn friends_whose_match_ended_still_message() {
    let s = services().await;
    let (ann, bob) = (s.dater("ann").await, s.dater("bob").await);
    let matched = s.match_pair(ann, bob).await;
    let conversation = s.direct(ann, bob).await;
    s.discovery.unmatch(ann, matched.id).await.unwrap();
    expect_code(s.send(ann, conversation, "hi").await, "FORBIDDEN");

    s.befriend(bob, ann).await;

    s.send(ann, conversation, "friends now").await.unwrap();
    s.send(bob, conversation, "indeed").await.unwrap();
}

#[tokio::test]
async fn a_block_stops_messages_both_ways() {
    // Everyone may message everyone here, so only the block stands in the way.
    let s = services_with(|settings| settings.direct_messages = DirectPolicy::Everyone).await;
    let (ann, bob) = (s.user("ann").await, s.user("bob").await);
    let conversation = s.direct(ann, bob).await;
    s.send(bob, conversation, "hi").await.unwrap();

    s.social.block(ann, bob).await.unwrap();

    // The blocker is told their own block stands in the way...
    let err = expect_code(s.send(ann, conversation, "hi").await, "FORBIDDEN");
    assert!(format!("{err:?}").contains("you blocked this user"));
    expect_code(s.chat.direct_conversation(ann, bob).await, "FORBIDDEN");
    // ...the blocked user finds nobody there.
    expect_code(s.send(bob, conversation, "hello?").await, "NOT_FOUND");
    expect_code(s.chat.direct_conversation(bob, ann).await, "NOT_FOUND");
    // Neither reads the conversation while the block holds.
    assert!(s.chat.readable(ann, conversation).await.unwrap().is_none());
    assert!(s.chat.readable(bob, conversation).await.unwrap().is_none());

    s.social.unblock(ann, bob).await.unwrap();

    s.send(ann, conversation, "sorry").await.unwrap();
    s.send(bob, conversation, "ok").await.unwrap();
}

#[tokio::test]
async fn a_block_by_the_recipient_stops_a_friend_too() {
    let s = services().await;
    let (ann, bob) = (s.user("ann").await, s.user("bob").await);
    s.befriend(ann, bob).await;
    let conversation = s.direct(ann, bob).await;

    s.social.block(bob, ann).await.unwrap();

    // A block ends the friendship as well.
    assert!(!s.social.are_friends(ann, bob).await.unwrap());
    expect_code(s.send(ann, conversation, "hi").await, "NOT_FOUND");
    expect_code(s.send(bob, conversation, "hi").await, "FORBIDDEN");
}

#[tokio::test]
async fn nobody_messages_themselves() {
    let s = services_with(|settings| settings.direct_messages = DirectPolicy::Everyone).await;
    let ann = s.user("ann").await;

    let err = expect_code(s.chat.direct_conversation(ann, ann).await, "BAD_USER_INPUT");
    assert_eq!(field_of(&err), Some("userId"));
}

#[tokio::test]
async fn an_outsider_cannot_send_into_a_pairs_conversation() {
    let s = services_with(|settings| settings.direct_messages = DirectPolicy::Everyone).await;
    let (ann, bob, eve) = (
        s.user("ann").await,
        s.user("bob").await,
        s.user("eve").await,
    );
    let conversation = s.direct(ann, bob).await;
    s.send(ann, conversation, "one").await.unwrap();

    expect_code(s.send(eve, conversation, "let me in").await, "NOT_FOUND");
    assert!(
        s.chat
            .membership(eve, conversation)
            .await
            .unwrap()
            .is_none()
    );

    // The refused send left no trace: numbering goes on where it was.
    let next = s.send(bob, conversation, "two").await.unwrap();
    assert_eq!(next.seq, 2);
}

#[tokio::test]
async fn a_reply_must_be_to_a_message_of_the_same_conversation() {
    let s = services_with(|settings| settings.direct_messages = DirectPolicy::Everyone).await;
    let (ann, bob, cat) = (
        s.user("ann").await,
        s.user("bob").await,
        s.user("cat").await,
    );
    let with_bob = s.direct(ann, bob).await;
    let with_cat = s.direct(ann, cat).await;
    let to_bob = s.send(ann, with_bob, "for bob").await.unwrap();
    let to_cat = s.send(ann, with_cat, "for cat").await.unwrap();

    let reply = s
        .send_reply(bob, with_bob, "got it", Some(to_bob.id))
        .await
        .unwrap();
    assert_eq!(reply.reply_to_id, Some(to_bob.id));

    // A message of another conversation, even one the sender is in.
    let err = expect_code(
        s.send_reply(ann, with_bob, "see this", Some(to_cat.id))
            .await,
        "BAD_USER_INPUT",
    );
    assert_eq!(field_of(&err), Some("replyToId"));
    // A message that does not exist.
    let err = expect_code(
        s.send_reply(ann, with_bob, "?", Some(uuid::Uuid::now_v7()))
            .await,
        "BAD_USER_INPUT",
    );
    assert_eq!(field_of(&err), Some("replyToId"));
}

#[tokio::test]
async fn a_retried_send_answers_with_the_first_message() {
    let s = services_with(|settings| settings.direct_messages = DirectPolicy::Everyone).await;
    let (ann, bob, cat) = (
        s.user("ann").await,
        s.user("bob").await,
        s.user("cat").await,
    );
    let with_bob = s.direct(ann, bob).await;
    let with_cat = s.direct(ann, cat).await;
    let outgoing = |conversation_id, body: &str| kith::domain::chat::Outgoing {
        conversation_id,
        body: body.into(),
        client_message_id: "retry-1".into(),
        reply_to_id: None,
        attachment_ids: Vec::new(),
    };

    let first = s.chat.send(ann, outgoing(with_bob, "hi")).await.unwrap();
    let again = s.chat.send(ann, outgoing(with_bob, "hi!!")).await.unwrap();
    assert_eq!(again, first);

    let err = expect_code(s.chat.send(ann, outgoing(with_cat, "hi")).await, "CONFLICT");
    assert_eq!(field_of(&err), Some("clientMessageId"));
}

#[tokio::test]
async fn an_empty_or_unknown_send_is_refused() {
    let s = services().await;
    let (ann, bob) = (s.user("ann").await, s.user("bob").await);
    s.befriend(ann, bob).await;
    let conversation = s.direct(ann, bob).await;

    let err = expect_code(s.send(ann, conversation, "   ").await, "BAD_USER_INPUT");
    assert_eq!(field_of(&err), Some("body"));
    expect_code(s.send(ann, uuid::Uuid::now_v7(), "hi").await, "NOT_FOUND");
}

#[tokio::test]
async fn a_deleted_account_leaves_a_conversation_nobody_can_send_to() {
    let s = services().await;
    let (ann, bob) = (s.user("ann").await, s.user("bob").await);
    s.befriend(ann, bob).await;
    let conversation = s.direct(ann, bob).await;
    s.send(bob, conversation, "bye").await.unwrap();

    s.accounts
        .delete_account(
            bob,
            uuid::Uuid::nil(),
            Some(super::PASSWORD),
            &Default::default(),
        )
        .await
        .unwrap();

    expect_code(s.send(ann, conversation, "hello?").await, "NOT_FOUND");
    expect_code(s.chat.direct_conversation(ann, bob).await, "NOT_FOUND");
}
