//! Swipes and matches (`Discovery`): likes, passes, super likes and their
//! daily quota, the one match two likes make and the conversation it opens,
//! and how an unmatch or a block ends it for good.

use kith::{
    config::DirectPolicy,
    domain::{
        discovery::{PreferenceChanges, SwipeKind},
        users::ProfileChanges,
    },
    error::AppError,
};

use super::{expect_code, field_of, services, services_with};

#[tokio::test]
async fn a_like_alone_makes_no_match() {
    let s = services().await;
    let (ann, bob) = (s.dater("ann").await, s.dater("bob").await);

    let outcome = s.discovery.swipe(ann, bob, SwipeKind::Like).await.unwrap();

    assert!(outcome.matched.is_none());
    assert_eq!(outcome.super_likes_left, None);
    assert!(s.discovery.matches(ann, None, 10).await.unwrap().is_empty());
    assert!(
        s.chat
            .existing_direct_conversation(ann, bob)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn two_likes_make_exactly_one_match_and_open_a_conversation() {
    let s = services().await;
    let (ann, bob) = (s.dater("ann").await, s.dater("bob").await);
    s.discovery.swipe(ann, bob, SwipeKind::Like).await.unwrap();

    let matched = s
        .discovery
        .swipe(bob, ann, SwipeKind::Like)
        .await
        .unwrap()
        .matched
        .expect("the second like makes the match");
    assert_eq!(matched.other(bob), ann);
    assert_eq!(matched.other(ann), bob);

    // Liking again, from either side, answers with the same match.
    for (viewer, target) in [(ann, bob), (bob, ann)] {
        let again = s
            .discovery
            .swipe(viewer, target, SwipeKind::Like)
            .await
            .unwrap();
        assert_eq!(again.matched.as_ref().map(|m| m.id), Some(matched.id));
        let listed = s.discovery.matches(viewer, None, 10).await.unwrap();
        assert_eq!(listed, std::slice::from_ref(&matched));
    }
    // And one conversation, which both take part in.
    let conversation = s
        .chat
        .existing_direct_conversation(ann, bob)
        .await
        .unwrap()
        .expect("the match opened a conversation");
    let from_bob = s
        .chat
        .existing_direct_conversation(bob, ann)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(conversation.conversation.id, from_bob.conversation.id);
}

#[tokio::test]
async fn a_super_like_answered_by_a_like_is_a_match() {
    let s = services().await;
    let (ann, bob) = (s.dater("ann").await, s.dater("bob").await);

    let first = s
        .discovery
        .swipe(ann, bob, SwipeKind::SuperLike)
        .await
        .unwrap();
    assert!(first.matched.is_none());
    let second = s.discovery.swipe(bob, ann, SwipeKind::Like).await.unwrap();
    assert!(second.matched.is_some());
}

#[tokio::test]
async fn a_pass_makes_no_match_whatever_follows() {
    let s = services().await;
    let (ann, bob) = (s.dater("ann").await, s.dater("bob").await);

    s.discovery.swipe(bob, ann, SwipeKind::Pass).await.unwrap();
    let like = s.discovery.swipe(ann, bob, SwipeKind::Like).await.unwrap();
    assert!(like.matched.is_none());
    // A like may still turn into a pass, and a pass into a like.
    s.discovery.swipe(ann, bob, SwipeKind::Pass).await.unwrap();
    let matched = s.discovery.swipe(bob, ann, SwipeKind::Like).await.unwrap();
    assert!(matched.matched.is_none(), "ann passed last");
    let matched = s.discovery.swipe(ann, bob, SwipeKind::Like).await.unwrap();
    assert!(matched.matched.is_some());
}

#[tokio::test]
async fn super_likes_run_out_for_the_day() {
    let s = services_with(|settings| settings.super_likes_per_day = 2).await;
    let ann = s.dater("ann").await;
    let (bob, cat, dan) = (
        s.dater("bob").await,
        s.dater("cat").await,
        s.dater("dan").await,
    );

    let first = s
        .discovery
        .swipe(ann, bob, SwipeKind::SuperLike)
        .await
        .unwrap();
    assert_eq!(first.super_likes_left, Some(1));
    // Super liking the same user again spends nothing.
    let again = s
        .discovery
        .swipe(ann, bob, SwipeKind::SuperLike)
        .await
        .unwrap();
    assert_eq!(again.super_likes_left, None);
    let second = s
        .discovery
        .swipe(ann, cat, SwipeKind::SuperLike)
        .await
        .unwrap();
    assert_eq!(second.super_likes_left, Some(0));

    let err = expect_code(
        s.discovery.swipe(ann, dan, SwipeKind::SuperLike).await,
        "RATE_LIMITED",
    );
    let AppError::RateLimited {
        retry_after_secs,
        reason,
    } = err
    else {
        unreachable!()
    };
    assert!(retry_after_secs > 0 && retry_after_secs <= 24 * 3600);
    assert!(reason.unwrap().contains("your 2 super likes"));
    // Plain likes are not counted, and someone else's quota is their own.
    s.discovery.swipe(ann, dan, SwipeKind::Like).await.unwrap();
    let others = s
        .discovery
        .swipe(bob, dan, SwipeKind::SuperLike)
        .await
        .unwrap();
    assert_eq!(others.super_likes_left, Some(1));
}

#[tokio::test]
async fn a_super_like_cannot_be_taken_back() {
    let s = services().await;
    let (ann, bob) = (s.dater("ann").await, s.dater("bob").await);
    s.discovery
        .swipe(ann, bob, SwipeKind::SuperLike)
        .await
        .unwrap();

    let err = expect_code(
        s.discovery.swipe(ann, bob, SwipeKind::Pass).await,
        "CONFLICT",
    );
    assert_eq!(field_of(&err), Some("userId"));
    // A plain like keeps it super (and spends nothing).
    let like = s.discovery.swipe(ann, bob, SwipeKind::Like).await.unwrap();
    assert_eq!(like.super_likes_left, None);
    expect_code(
        s.discovery.swipe(ann, bob, SwipeKind::Pass).await,
        "CONFLICT",
    );
}

#[tokio::test]
async fn a_match_is_ended_by_unmatching_not_by_passing() {
    let s = services().await;
    let (ann, bob) = (s.dater("ann").await, s.dater("bob").await);
    let matched = s.match_pair(ann, bob).await;

    let err = expect_code(
        s.discovery.swipe(bob, ann, SwipeKind::Pass).await,
        "CONFLICT",
    );
    assert!(format!("{err:?}").contains("unmatch instead"));
    assert_eq!(s.discovery.matches(bob, None, 10).await.unwrap(), [matched]);
}

#[tokio::test]
async fn nobody_swipes_themselves() {
    let s = services().await;
    let ann = s.dater("ann").await;

    let err = expect_code(
        s.discovery.swipe(ann, ann, SwipeKind::Like).await,
        "BAD_USER_INPUT",
    );
    assert_eq!(field_of(&err), Some("userId"));
}

#[tokio::test]
async fn an_incomplete_profile_may_not_swipe_nor_be_liked() {
    let s = services().await;
    let ann = s.dater("ann").await;
    let plain = s.user("plain").await;

    let err = expect_code(
        s.discovery.swipe(plain, ann, SwipeKind::Like).await,
        "FORBIDDEN",
    );
    assert!(format!("{err:?}").contains("birthdate, gender, location"));
    let err = expect_code(
        s.discovery.swipe(ann, plain, SwipeKind::Like).await,
        "FORBIDDEN",
    );
    assert!(format!("{err:?}").contains("not open to new matches"));
    // Passing on them is fine.
    s.discovery
        .swipe(ann, plain, SwipeKind::Pass)
        .await
        .unwrap();
    // Nor may an unknown user be swiped.
    expect_code(
        s.discovery
            .swipe(ann, uuid::Uuid::now_v7(), SwipeKind::Like)
            .await,
        "NOT_FOUND",
    );
}

#[tokio::test]
async fn a_hidden_user_may_be_liked_back_only() {
    let s = services().await;
    let (ann, bob, cat) = (
        s.dater("ann").await,
        s.dater("bob").await,
        s.dater("cat").await,
    );
    s.discovery.swipe(ann, bob, SwipeKind::Like).await.unwrap();
    s.discovery
        .update_preferences(
            ann,
            PreferenceChanges {
                discoverable: Some(false),
                ..PreferenceChanges::default()
            },
        )
        .await
        .unwrap();

    // Someone she did not like cannot like her now...
    expect_code(
        s.discovery.swipe(cat, ann, SwipeKind::Like).await,
        "FORBIDDEN",
    );
    expect_code(
        s.discovery.swipe(cat, ann, SwipeKind::SuperLike).await,
        "FORBIDDEN",
    );
    // ...but whom she liked may like her back.
    let outcome = s.discovery.swipe(bob, ann, SwipeKind::Like).await.unwrap();
    assert!(outcome.matched.is_some());
}

#[tokio::test]
async fn a_minor_cannot_swipe() {
    let s = services().await;
    let ann = s.dater("ann").await;
    let teen = s.dater("teen").await;
    let sixteen = chrono::Utc::now().date_naive() - chrono::Duration::days(16 * 366);
    s.accounts
        .update_profile(
            teen,
            ProfileChanges {
                birthdate: Some(Some(sixteen)),
                ..ProfileChanges::default()
            },
        )
        .await
        .unwrap();

    let err = expect_code(
        s.discovery.swipe(teen, ann, SwipeKind::Like).await,
        "FORBIDDEN",
    );
    assert!(format!("{err:?}").contains("for adults"));
    expect_code(
        s.discovery.swipe(ann, teen, SwipeKind::Like).await,
        "FORBIDDEN",
    );
}

#[tokio::test]
async fn unmatching_ends_the_match_for_good_and_refuses_writes() {
    let s = services().await;
    let (ann, bob, eve) = (
        s.dater("ann").await,
        s.dater("bob").await,
        s.dater("eve").await,
    );
    let matched = s.match_pair(ann, bob).await;
    let conversation = s.direct(ann, bob).await;
    let hello = s.send(bob, conversation, "hello").await.unwrap();

    // Only one of the pair may end it.
    expect_code(s.discovery.unmatch(eve, matched.id).await, "NOT_FOUND");
    let ended = s.discovery.unmatch(ann, matched.id).await.unwrap();
    assert_eq!(ended.id, matched.id);

    assert!(s.discovery.matches(ann, None, 10).await.unwrap().is_empty());
    assert!(s.discovery.matches(bob, None, 10).await.unwrap().is_empty());
    assert!(
        s.discovery
            .match_for(bob, matched.id)
            .await
            .unwrap()
            .is_none()
    );
    expect_code(s.discovery.unmatch(bob, matched.id).await, "NOT_FOUND");

    // Nothing new reaches the other side...
    expect_code(s.send(ann, conversation, "wait").await, "FORBIDDEN");
    expect_code(s.chat.mark_read(ann, conversation, 1).await, "FORBIDDEN");
    expect_code(s.chat.react(ann, hello.id, "👍").await, "FORBIDDEN");
    expect_code(s.chat.edit(bob, hello.id, "hello?").await, "FORBIDDEN");
    expect_code(
        s.chat.set_typing(ann, conversation, true).await,
        "FORBIDDEN",
    );
    // ...while the history stays readable.
    assert!(s.chat.readable(ann, conversation).await.unwrap().is_some());
    let history = s
        .chat
        .messages(
            conversation,
            kith::domain::chat::Window::After { seq: 0, limit: 10 },
        )
        .await
        .unwrap();
    assert_eq!(history, [hello]);

    // Liking again never matches the pair again.
    for (viewer, target) in [(ann, bob), (bob, ann)] {
        let again = s
            .discovery
            .swipe(viewer, target, SwipeKind::Like)
            .await
            .unwrap();
        assert!(again.matched.is_none());
    }
    assert!(s.discovery.matches(ann, None, 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_block_ends_a_match_for_good() {
    // Everyone may message here: only the ended match stands in the way
    // once the block is lifted.
    let s = services_with(|settings| settings.direct_messages = DirectPolicy::Everyone).await;
    let (ann, bob) = (s.dater("ann").await, s.dater("bob").await);
    let matched = s.match_pair(ann, bob).await;
    let conversation = s.direct(ann, bob).await;

    s.social.block(bob, ann).await.unwrap();

    assert!(s.discovery.matches(ann, None, 10).await.unwrap().is_empty());
    assert!(
        s.discovery
            .match_for(ann, matched.id)
            .await
            .unwrap()
            .is_none()
    );
    expect_code(s.discovery.unmatch(ann, matched.id).await, "NOT_FOUND");
    // While it holds the blocked side finds nobody, the blocker their block.
    expect_code(
        s.discovery.swipe(ann, bob, SwipeKind::Like).await,
        "NOT_FOUND",
    );
    expect_code(
        s.discovery.swipe(bob, ann, SwipeKind::Like).await,
        "FORBIDDEN",
    );
    expect_code(s.send(ann, conversation, "hi").await, "NOT_FOUND");

    s.social.unblock(bob, ann).await.unwrap();

    // Lifted, the match stays ended: no rematch, no messages.
    for (viewer, target) in [(ann, bob), (bob, ann)] {
        let again = s
            .discovery
            .swipe(viewer, target, SwipeKind::Like)
            .await
            .unwrap();
        assert!(again.matched.is_none());
    }
    let err = expect_code(s.send(ann, conversation, "hi").await, "FORBIDDEN");
    assert!(format!("{err:?}").contains("match with this user has ended"));
}

#[tokio::test]
async fn a_deleted_account_ends_its_matches() {
    let s = services().await;
    let (ann, bob) = (s.dater("ann").await, s.dater("bob").await);
    s.match_pair(ann, bob).await;

    s.accounts
        .delete_account(
            bob,
            uuid::Uuid::nil(),
            Some(super::PASSWORD),
            &Default::default(),
        )
        .await
        .unwrap();

    assert!(s.discovery.matches(ann, None, 10).await.unwrap().is_empty());
    expect_code(
        s.discovery.swipe(ann, bob, SwipeKind::Like).await,
        "NOT_FOUND",
    );
}
