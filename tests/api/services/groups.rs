//! Groups (`Groups`): what owners, admins, members and outsiders may do to
//! roles, members and ownership; invitations; join requests under each join
//! policy; the member cap; blocks; and what a group's conversation follows.

use kith::domain::groups::{
    InvitationStatus, JoinOutcome, JoinPolicy, JoinRequestStatus, Role, Visibility, role_of,
};
use uuid::Uuid;

use super::{Services, expect_code, field_of, services, services_with};

/// A public, open group with an owner, an admin and two members.
struct Crew {
    group: Uuid,
    owner: Uuid,
    admin: Uuid,
    member: Uuid,
    other_member: Uuid,
    outsider: Uuid,
}

async fn crew(s: &Services) -> Crew {
    let owner = s.user("owner").await;
    let admin = s.user("admin").await;
    let member = s.user("member").await;
    let other_member = s.user("other").await;
    let outsider = s.user("outsider").await;
    let group = s.group(owner, Visibility::Public, JoinPolicy::Open).await;
    for user in [admin, member, other_member] {
        s.join(group, user).await;
    }
    s.groups
        .set_role(owner, group, admin, Role::Admin)
        .await
        .unwrap();
    Crew {
        group,
        owner,
        admin,
        member,
        other_member,
        outsider,
    }
}

async fn role(s: &Services, group: Uuid, user: Uuid) -> Option<Role> {
    role_of(&s.db, group, user).await.unwrap()
}

async fn member_count(s: &Services, group: Uuid) -> i64 {
    s.groups
        .find_visible(None, group)
        .await
        .unwrap()
        .expect("a public group")
        .member_count
}

#[tokio::test]
async fn a_new_group_has_its_creator_as_owner_and_only_member() {
    let s = services().await;
    let owner = s.user("owner").await;
    let group = s.group(owner, Visibility::Public, JoinPolicy::Open).await;

    assert_eq!(role(&s, group, owner).await, Some(Role::Owner));
    assert_eq!(member_count(&s, group).await, 1);
    // With the group's conversation.
    assert!(
        s.chat
            .group_membership(owner, group)
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn the_owner_promotes_and_demotes() {
    let s = services().await;
    let c = crew(&s).await;

    let promoted = s
        .groups
        .set_role(c.owner, c.group, c.member, Role::Admin)
        .await
        .unwrap();
    assert_eq!(promoted.role, Role::Admin);
    let demoted = s
        .groups
        .set_role(c.owner, c.group, c.member, Role::Member)
        .await
        .unwrap();
    assert_eq!(demoted.role, Role::Member);
    assert_eq!(role(&s, c.group, c.member).await, Some(Role::Member));
}

#[tokio::test]
async fn an_admin_promotes_members_but_never_demotes_admins() {
    let s = services().await;
    let c = crew(&s).await;

    s.groups
        .set_role(c.admin, c.group, c.member, Role::Admin)
        .await
        .unwrap();
    assert_eq!(role(&s, c.group, c.member).await, Some(Role::Admin));

    // Not the admin they just made, nor themselves.
    let err = expect_code(
        s.groups
            .set_role(c.admin, c.group, c.member, Role::Member)
            .await,
        "FORBIDDEN",
    );
    assert!(format!("{err:?}").contains("only the owner may demote an admin"));
    expect_code(
        s.groups
            .set_role(c.admin, c.group, c.admin, Role::Member)
            .await,
        "FORBIDDEN",
    );
    assert_eq!(role(&s, c.group, c.member).await, Some(Role::Admin));
    assert_eq!(role(&s, c.group, c.admin).await, Some(Role::Admin));
}

#[tokio::test]
async fn the_owners_role_changes_only_by_transfer() {
    let s = services().await;
    let c = crew(&s).await;

    for actor in [c.owner, c.admin] {
        expect_code(
            s.groups
                .set_role(actor, c.group, c.owner, Role::Member)
                .await,
            "FORBIDDEN",
        );
    }
    let err = expect_code(
        s.groups
            .set_role(c.owner, c.group, c.member, Role::Owner)
            .await,
        "BAD_USER_INPUT",
    );
    assert_eq!(field_of(&err), Some("role"));
    assert_eq!(role(&s, c.group, c.owner).await, Some(Role::Owner));
    assert_eq!(role(&s, c.group, c.member).await, Some(Role::Member));
}

#[tokio::test]
async fn members_and_outsiders_change_no_roles() {
    let s = services().await;
    let c = crew(&s).await;

    for actor in [c.member, c.outsider] {
        let err = expect_code(
            s.groups
                .set_role(actor, c.group, c.other_member, Role::Admin)
                .await,
            "FORBIDDEN",
        );
        assert!(format!("{err:?}").contains("owner and admins"));
    }
    // Someone not in the group has no role to change.
    let err = expect_code(
        s.groups
            .set_role(c.owner, c.group, c.outsider, Role::Admin)
            .await,
        "NOT_FOUND",
    );
    assert!(format!("{err:?}").contains("not a member"));
    assert_eq!(role(&s, c.group, c.other_member).await, Some(Role::Member));
}

#[tokio::test]
async fn a_private_group_is_not_found_by_outsiders() {
    let s = services().await;
    let owner = s.user("owner").await;
    let member = s.user("member").await;
    let outsider = s.user("outsider").await;
    let group = s.group(owner, Visibility::Private, JoinPolicy::Open).await;
    s.befriend(owner, member).await;
    s.groups.add_member(owner, group, member).await.unwrap();

    assert!(
        s.groups
            .find_visible(Some(outsider), group)
            .await
            .unwrap()
            .is_none()
    );
    expect_code(
        s.groups
            .set_role(outsider, group, member, Role::Admin)
            .await,
        "NOT_FOUND",
    );
    expect_code(s.groups.request_to_join(outsider, group).await, "NOT_FOUND");
    expect_code(s.groups.leave(outsider, group).await, "NOT_FOUND");
    // A member sees it, though cannot manage it.
    assert!(
        s.groups
            .find_visible(Some(member), group)
            .await
            .unwrap()
            .is_some()
    );
    expect_code(
        s.groups.set_role(member, group, owner, Role::Member).await,
        "FORBIDDEN",
    );
}

#[tokio::test]
async fn who_may_remove_whom() {
    let s = services().await;
    let c = crew(&s).await;

    // An admin may not remove the owner or another admin; a member nobody.
    let second_admin = c.other_member;
    s.groups
        .set_role(c.owner, c.group, second_admin, Role::Admin)
        .await
        .unwrap();
    for (actor, target) in [
        (c.admin, c.owner),
        (c.admin, second_admin),
        (c.member, second_admin),
        (c.member, c.owner),
    ] {
        expect_code(
            s.groups.remove_member(actor, c.group, target).await,
            "FORBIDDEN",
        );
    }
    let before = s.groups.find_visible(None, c.group).await.unwrap().unwrap();
    expect_code(
        s.groups.remove_member(c.outsider, c.group, c.member).await,
        "FORBIDDEN",
    );
    // Removing yourself is leaving.
    let err = expect_code(
        s.groups.remove_member(c.admin, c.group, c.admin).await,
        "BAD_USER_INPUT",
    );
    assert_eq!(field_of(&err), Some("userId"));
    expect_code(
        s.groups.remove_member(c.owner, c.group, c.outsider).await,
        "NOT_FOUND",
    );
    assert_eq!(member_count(&s, c.group).await, before.member_count);

    // An admin removes a member; the owner removes an admin.
    let after = s
        .groups
        .remove_member(c.admin, c.group, c.member)
        .await
        .unwrap();
    assert_eq!(after.member_count, before.member_count - 1);
    assert_eq!(role(&s, c.group, c.member).await, None);
    s.groups
        .remove_member(c.owner, c.group, second_admin)
        .await
        .unwrap();
    assert_eq!(role(&s, c.group, second_admin).await, None);
    assert_eq!(member_count(&s, c.group).await, before.member_count - 2);
}

#[tokio::test]
async fn a_removed_member_leaves_the_groups_conversation() {
    let s = services().await;
    let c = crew(&s).await;
    let conversation = s
        .chat
        .group_membership(c.member, c.group)
        .await
        .unwrap()
        .expect("members take part in the group's conversation")
        .conversation
        .id;
    s.send(c.member, conversation, "hello all").await.unwrap();

    s.groups
        .remove_member(c.admin, c.group, c.member)
        .await
        .unwrap();

    assert!(
        s.chat
            .group_membership(c.member, c.group)
            .await
            .unwrap()
            .is_none()
    );
    expect_code(s.send(c.member, conversation, "wait").await, "NOT_FOUND");
    s.send(c.other_member, conversation, "bye").await.unwrap();
}

/// Deletes as `deleteMessage` does: the groups domain says who moderates.
async fn delete(
    s: &Services,
    actor: Uuid,
    message_id: Uuid,
) -> kith::error::AppResult<kith::domain::chat::Message> {
    s.chat
        .delete(actor, message_id, async |group_id| {
            s.groups.moderates(group_id, actor).await
        })
        .await
}

#[tokio::test]
async fn managers_delete_anyones_group_message_members_only_their_own() {
    let s = services().await;
    let c = crew(&s).await;
    let conversation = s
        .chat
        .group_membership(c.owner, c.group)
        .await
        .unwrap()
        .unwrap()
        .conversation
        .id;
    let by_member = s.send(c.member, conversation, "one").await.unwrap();
    let by_other = s.send(c.other_member, conversation, "two").await.unwrap();
    let by_owner = s.send(c.owner, conversation, "three").await.unwrap();

    let err = expect_code(delete(&s, c.member, by_other.id).await, "FORBIDDEN");
    assert!(format!("{err:?}").contains("only its sender"));
    expect_code(delete(&s, c.outsider, by_other.id).await, "NOT_FOUND");

    let own = delete(&s, c.member, by_member.id).await.unwrap();
    assert!(own.deleted_at.is_some());
    // Owners and admins moderate: anyone's message, the owner's included.
    let moderated = delete(&s, c.admin, by_owner.id).await.unwrap();
    assert!(moderated.deleted_at.is_some() && moderated.body.is_empty());
    delete(&s, c.owner, by_other.id).await.unwrap();
}

#[tokio::test]
async fn only_the_owner_transfers_ownership_and_only_to_a_member() {
    let s = services().await;
    let c = crew(&s).await;

    for actor in [c.admin, c.member, c.outsider] {
        let err = expect_code(
            s.groups
                .transfer_ownership(actor, c.group, c.other_member)
                .await,
            "FORBIDDEN",
        );
        assert!(format!("{err:?}").contains("only the group's owner"));
    }
    let err = expect_code(
        s.groups.transfer_ownership(c.owner, c.group, c.owner).await,
        "BAD_USER_INPUT",
    );
    assert_eq!(field_of(&err), Some("userId"));
    expect_code(
        s.groups
            .transfer_ownership(c.owner, c.group, c.outsider)
            .await,
        "NOT_FOUND",
    );
    assert_eq!(role(&s, c.group, c.owner).await, Some(Role::Owner));

    s.groups
        .transfer_ownership(c.owner, c.group, c.member)
        .await
        .unwrap();

    // One owner still: the new one; the old one stays on as an admin.
    assert_eq!(role(&s, c.group, c.member).await, Some(Role::Owner));
    assert_eq!(role(&s, c.group, c.owner).await, Some(Role::Admin));
    let owners = s
        .groups
        .members(c.group, None, Some(Role::Owner), None, 10)
        .await
        .unwrap();
    assert_eq!(owners.len(), 1);
    // And the old owner lost the owner's powers.
    expect_code(
        s.groups.transfer_ownership(c.owner, c.group, c.admin).await,
        "FORBIDDEN",
    );
    expect_code(
        s.groups
            .set_role(c.owner, c.group, c.admin, Role::Member)
            .await,
        "FORBIDDEN",
    );
    s.groups
        .set_role(c.member, c.group, c.owner, Role::Member)
        .await
        .unwrap();
}

#[tokio::test]
async fn the_owner_cannot_leave_members_can() {
    let s = services().await;
    let c = crew(&s).await;

    let err = expect_code(s.groups.leave(c.owner, c.group).await, "FORBIDDEN");
    assert!(format!("{err:?}").contains("transfer ownership first"));
    expect_code(s.groups.leave(c.outsider, c.group).await, "FORBIDDEN");

    let left = s.groups.leave(c.admin, c.group).await.unwrap();
    assert_eq!(left.member_count, 3);
    assert_eq!(role(&s, c.group, c.admin).await, None);
}

#[tokio::test]
async fn only_the_owner_deletes_the_group() {
    let s = services().await;
    let c = crew(&s).await;

    for actor in [c.admin, c.member, c.outsider] {
        expect_code(s.groups.delete(actor, c.group).await, "FORBIDDEN");
    }
    s.groups.delete(c.owner, c.group).await.unwrap();
    assert!(
        s.groups
            .find_visible(None, c.group)
            .await
            .unwrap()
            .is_none()
    );
    expect_code(
        s.groups.request_to_join(c.outsider, c.group).await,
        "NOT_FOUND",
    );
}

#[tokio::test]
async fn managers_add_their_friends_straight_in() {
    let s = services().await;
    let c = crew(&s).await;
    let friend = s.user("friend").await;
    s.befriend(c.admin, friend).await;
    s.befriend(c.member, c.outsider).await;

    // A member may not add even a friend; a manager may not add a stranger.
    expect_code(
        s.groups.add_member(c.member, c.group, c.outsider).await,
        "FORBIDDEN",
    );
    let err = expect_code(
        s.groups.add_member(c.owner, c.group, friend).await,
        "FORBIDDEN",
    );
    assert!(format!("{err:?}").contains("friends only"));
    assert_eq!(role(&s, c.group, friend).await, None);

    let group = s.groups.add_member(c.admin, c.group, friend).await.unwrap();
    assert_eq!(group.member_count, 5);
    assert_eq!(role(&s, c.group, friend).await, Some(Role::Member));
    // Adding again changes nothing.
    let again = s.groups.add_member(c.admin, c.group, friend).await.unwrap();
    assert_eq!(again.member_count, 5);
}

#[tokio::test]
async fn invitations_come_from_managers_and_are_answered_by_the_invitee() {
    let s = services().await;
    let c = crew(&s).await;
    let guest = s.user("guest").await;

    expect_code(s.groups.invite(c.member, c.group, guest).await, "FORBIDDEN");
    expect_code(
        s.groups.invite(c.outsider, c.group, guest).await,
        "FORBIDDEN",
    );
    let err = expect_code(
        s.groups.invite(c.admin, c.group, c.admin).await,
        "BAD_USER_INPUT",
    );
    assert_eq!(field_of(&err), Some("userId"));
    let err = expect_code(
        s.groups.invite(c.admin, c.group, c.member).await,
        "CONFLICT",
    );
    assert_eq!(field_of(&err), Some("userId"));

    let invitation = s.groups.invite(c.admin, c.group, guest).await.unwrap();
    assert_eq!(invitation.status, InvitationStatus::Pending);
    // Inviting again answers with the same invitation.
    let again = s.groups.invite(c.owner, c.group, guest).await.unwrap();
    assert_eq!(again.id, invitation.id);

    // Only the invitee accepts.
    for other in [c.owner, c.outsider] {
        expect_code(
            s.groups.accept_invitation(other, invitation.id).await,
            "NOT_FOUND",
        );
    }
    let accepted = s
        .groups
        .accept_invitation(guest, invitation.id)
        .await
        .unwrap();
    assert_eq!(accepted.status, InvitationStatus::Accepted);
    assert_eq!(role(&s, c.group, guest).await, Some(Role::Member));
    // Spent.
    expect_code(
        s.groups.accept_invitation(guest, invitation.id).await,
        "NOT_FOUND",
    );
}

#[tokio::test]
async fn an_invitation_is_declined_by_its_invitee_and_revoked_by_a_manager() {
    let s = services().await;
    let c = crew(&s).await;
    let (guest, other_guest) = (s.user("guest").await, s.user("guest2").await);
    let first = s.groups.invite(c.owner, c.group, guest).await.unwrap();
    let second = s
        .groups
        .invite(c.owner, c.group, other_guest)
        .await
        .unwrap();

    // The invitee declines rather than revokes; others do not see it at all.
    let err = expect_code(
        s.groups.revoke_invitation(guest, first.id).await,
        "FORBIDDEN",
    );
    assert!(format!("{err:?}").contains("decline"));
    for stranger in [c.member, c.outsider] {
        expect_code(
            s.groups.revoke_invitation(stranger, first.id).await,
            "NOT_FOUND",
        );
    }
    expect_code(
        s.groups.decline_invitation(c.owner, first.id).await,
        "NOT_FOUND",
    );

    let declined = s.groups.decline_invitation(guest, first.id).await.unwrap();
    assert_eq!(declined.status, InvitationStatus::Declined);
    let revoked = s
        .groups
        .revoke_invitation(c.admin, second.id)
        .await
        .unwrap();
    assert_eq!(revoked.status, InvitationStatus::Revoked);
    expect_code(
        s.groups.accept_invitation(other_guest, second.id).await,
        "NOT_FOUND",
    );
    assert_eq!(role(&s, c.group, guest).await, None);
    assert_eq!(role(&s, c.group, other_guest).await, None);
}

#[tokio::test]
async fn blocks_stand_between_inviter_and_invitee() {
    let s = services().await;
    let c = crew(&s).await;
    let (blocker, blocked) = (s.user("blocker").await, s.user("blocked").await);
    s.social.block(blocker, c.admin).await.unwrap();
    s.social.block(c.admin, blocked).await.unwrap();

    // Whoever blocked the inviter is nobody to them; whom they blocked, they
    // must unblock first.
    expect_code(
        s.groups.invite(c.admin, c.group, blocker).await,
        "NOT_FOUND",
    );
    expect_code(
        s.groups.invite(c.admin, c.group, blocked).await,
        "FORBIDDEN",
    );

    // A block after the invitation undoes it.
    let guest = s.user("guest").await;
    let invitation = s.groups.invite(c.admin, c.group, guest).await.unwrap();
    s.social.block(guest, c.admin).await.unwrap();
    let err = expect_code(
        s.groups.accept_invitation(guest, invitation.id).await,
        "FORBIDDEN",
    );
    assert!(format!("{err:?}").contains("blocked one another"));
    assert_eq!(role(&s, c.group, guest).await, None);
}

#[tokio::test]
async fn an_invitation_opens_a_private_invite_only_group() {
    let s = services().await;
    let owner = s.user("owner").await;
    let (guest, outsider) = (s.user("guest").await, s.user("outsider").await);
    let group = s
        .group(owner, Visibility::Private, JoinPolicy::InviteOnly)
        .await;

    expect_code(s.groups.request_to_join(outsider, group).await, "NOT_FOUND");
    s.groups.invite(owner, group, guest).await.unwrap();
    // The invitee sees the group, and asking to join lets them in.
    assert!(
        s.groups
            .find_visible(Some(guest), group)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        s.groups.request_to_join(guest, group).await.unwrap(),
        JoinOutcome::Joined
    );
    assert_eq!(role(&s, group, guest).await, Some(Role::Member));
    // Their invitation was answered by it.
    assert!(
        s.groups
            .invitations_to(guest, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn an_open_group_lets_anyone_in_at_once() {
    let s = services().await;
    let owner = s.user("owner").await;
    let joiner = s.user("joiner").await;
    let group = s.group(owner, Visibility::Public, JoinPolicy::Open).await;

    assert_eq!(
        s.groups.request_to_join(joiner, group).await.unwrap(),
        JoinOutcome::Joined
    );
    assert_eq!(role(&s, group, joiner).await, Some(Role::Member));
    assert_eq!(member_count(&s, group).await, 2);
    // Asking again: already in, nothing changes.
    assert_eq!(
        s.groups.request_to_join(joiner, group).await.unwrap(),
        JoinOutcome::Joined
    );
    assert_eq!(member_count(&s, group).await, 2);
    // And they take part in its conversation from now on.
    assert!(
        s.chat
            .group_membership(joiner, group)
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn an_invite_only_group_refuses_requests() {
    let s = services().await;
    let owner = s.user("owner").await;
    let asker = s.user("asker").await;
    let group = s
        .group(owner, Visibility::Public, JoinPolicy::InviteOnly)
        .await;

    let err = expect_code(s.groups.request_to_join(asker, group).await, "FORBIDDEN");
    assert!(format!("{err:?}").contains("invitation only"));
    assert!(
        s.groups
            .join_requests_of(group, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(role(&s, group, asker).await, None);
}

#[tokio::test]
async fn an_approval_group_queues_requests_for_its_managers() {
    let s = services().await;
    let owner = s.user("owner").await;
    let admin = s.user("admin").await;
    let member = s.user("member").await;
    let (asker, stranger) = (s.user("asker").await, s.user("stranger").await);
    let group = s
        .group(owner, Visibility::Public, JoinPolicy::Approval)
        .await;
    for user in [admin, member] {
        let invitation = s.groups.invite(owner, group, user).await.unwrap();
        s.groups
            .accept_invitation(user, invitation.id)
            .await
            .unwrap();
    }
    s.groups
        .set_role(owner, group, admin, Role::Admin)
        .await
        .unwrap();

    let JoinOutcome::Requested(request) = s.groups.request_to_join(asker, group).await.unwrap()
    else {
        panic!("an approval group records a request");
    };
    assert_eq!(request.status, JoinRequestStatus::Pending);
    assert_eq!(role(&s, group, asker).await, None);
    // Asking again answers with the same request.
    let JoinOutcome::Requested(again) = s.groups.request_to_join(asker, group).await.unwrap()
    else {
        panic!("still a request");
    };
    assert_eq!(again.id, request.id);

    // The requester may not answer it; members and strangers do not see it.
    let err = expect_code(
        s.groups.approve_join_request(asker, request.id).await,
        "FORBIDDEN",
    );
    assert!(format!("{err:?}").contains("owner and admins"));
    for other in [member, stranger] {
        expect_code(
            s.groups.approve_join_request(other, request.id).await,
            "NOT_FOUND",
        );
        expect_code(
            s.groups.reject_join_request(other, request.id).await,
            "NOT_FOUND",
        );
    }
    assert_eq!(role(&s, group, asker).await, None);

    let approved = s
        .groups
        .approve_join_request(admin, request.id)
        .await
        .unwrap();
    assert_eq!(approved.status, JoinRequestStatus::Approved);
    assert_eq!(role(&s, group, asker).await, Some(Role::Member));
    expect_code(
        s.groups.approve_join_request(owner, request.id).await,
        "NOT_FOUND",
    );
}

#[tokio::test]
async fn a_join_request_is_rejected_by_a_manager_or_cancelled_by_its_requester() {
    let s = services().await;
    let owner = s.user("owner").await;
    let (first, second) = (s.user("first").await, s.user("second").await);
    let group = s
        .group(owner, Visibility::Public, JoinPolicy::Approval)
        .await;
    let requested = |outcome| match outcome {
        JoinOutcome::Requested(request) => request,
        JoinOutcome::Joined => panic!("an approval group records a request"),
    };
    let one = requested(s.groups.request_to_join(first, group).await.unwrap());
    let two = requested(s.groups.request_to_join(second, group).await.unwrap());

    let rejected = s.groups.reject_join_request(owner, one.id).await.unwrap();
    assert_eq!(rejected.status, JoinRequestStatus::Rejected);
    // Only its requester cancels.
    expect_code(
        s.groups.cancel_join_request(first, two.id).await,
        "NOT_FOUND",
    );
    expect_code(
        s.groups.cancel_join_request(owner, two.id).await,
        "NOT_FOUND",
    );
    let cancelled = s.groups.cancel_join_request(second, two.id).await.unwrap();
    assert_eq!(cancelled.status, JoinRequestStatus::Cancelled);

    assert!(
        s.groups
            .join_requests_of(group, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(member_count(&s, group).await, 1);
}

#[tokio::test]
async fn inviting_someone_who_asked_to_join_lets_them_in() {
    let s = services().await;
    let owner = s.user("owner").await;
    let asker = s.user("asker").await;
    let group = s
        .group(owner, Visibility::Public, JoinPolicy::Approval)
        .await;
    s.groups.request_to_join(asker, group).await.unwrap();

    let invitation = s.groups.invite(owner, group, asker).await.unwrap();

    assert_eq!(invitation.status, InvitationStatus::Accepted);
    assert_eq!(role(&s, group, asker).await, Some(Role::Member));
    assert!(
        s.groups
            .join_requests_of(group, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn nobody_joins_the_group_of_an_owner_they_block_or_who_blocks_them() {
    let s = services().await;
    let owner = s.user("owner").await;
    let (blocker, blocked) = (s.user("blocker").await, s.user("blocked").await);
    let group = s.group(owner, Visibility::Public, JoinPolicy::Open).await;
    s.social.block(blocker, owner).await.unwrap();
    s.social.block(owner, blocked).await.unwrap();

    for user in [blocker, blocked] {
        let err = expect_code(s.groups.request_to_join(user, group).await, "FORBIDDEN");
        assert!(format!("{err:?}").contains("cannot join this group"));
        assert_eq!(role(&s, group, user).await, None);
    }
}

#[tokio::test]
async fn the_member_cap_holds_on_every_way_in() {
    let s = services_with(|settings| settings.group_member_cap = 3).await;
    let owner = s.user("owner").await;
    let (one, two) = (s.user("one").await, s.user("two").await);
    let (invitee, asker, friend, late) = (
        s.user("invitee").await,
        s.user("asker").await,
        s.user("friend").await,
        s.user("late").await,
    );
    let open = s.group(owner, Visibility::Public, JoinPolicy::Open).await;
    let approval = s
        .group(owner, Visibility::Public, JoinPolicy::Approval)
        .await;
    s.befriend(owner, friend).await;

    // Open: the owner and two more fill it.
    s.join(open, one).await;
    s.join(open, two).await;
    assert_eq!(member_count(&s, open).await, 3);
    let err = expect_code(s.groups.request_to_join(late, open).await, "CONFLICT");
    assert_eq!(field_of(&err), Some("groupId"));
    assert!(format!("{err:?}").contains("full (3 members)"));
    // Nor by invitation, nor added by the owner.
    let invitation = s.groups.invite(owner, open, invitee).await.unwrap();
    expect_code(
        s.groups.accept_invitation(invitee, invitation.id).await,
        "CONFLICT",
    );
    expect_code(s.groups.add_member(owner, open, friend).await, "CONFLICT");
    assert_eq!(member_count(&s, open).await, 3);

    // Approval: a request waits, and its approval is refused while full.
    for user in [one, two] {
        let invitation = s.groups.invite(owner, approval, user).await.unwrap();
        s.groups
            .accept_invitation(user, invitation.id)
            .await
            .unwrap();
    }
    let JoinOutcome::Requested(request) = s.groups.request_to_join(asker, approval).await.unwrap()
    else {
        panic!("an approval group records a request");
    };
    expect_code(
        s.groups.approve_join_request(owner, request.id).await,
        "CONFLICT",
    );
    assert_eq!(role(&s, approval, asker).await, None);
    assert_eq!(member_count(&s, approval).await, 3);

    // A place freed is a place taken.
    s.groups.leave(two, open).await.unwrap();
    s.join(open, late).await;
    assert_eq!(member_count(&s, open).await, 3);
    expect_code(s.groups.request_to_join(two, open).await, "CONFLICT");
}

#[tokio::test]
async fn an_owners_deleted_account_hands_the_group_to_its_longest_standing_admin() {
    let s = services().await;
    let owner = s.user("owner").await;
    let (member, first_admin, second_admin) = (
        s.user("member").await,
        s.user("admin1").await,
        s.user("admin2").await,
    );
    let group = s.group(owner, Visibility::Public, JoinPolicy::Open).await;
    let alone = s.group(owner, Visibility::Public, JoinPolicy::Open).await;
    for user in [member, first_admin, second_admin] {
        s.join(group, user).await;
    }
    // Promoted in the other order: standing is when they joined.
    for admin in [second_admin, first_admin] {
        s.groups
            .set_role(owner, group, admin, Role::Admin)
            .await
            .unwrap();
    }

    s.accounts
        .delete_account(
            owner,
            Uuid::nil(),
            Some(super::PASSWORD),
            &Default::default(),
        )
        .await
        .unwrap();

    assert_eq!(role(&s, group, first_admin).await, Some(Role::Owner));
    assert_eq!(role(&s, group, second_admin).await, Some(Role::Admin));
    assert_eq!(role(&s, group, member).await, Some(Role::Member));
    assert_eq!(member_count(&s, group).await, 3);
    // A group with nobody left goes with its owner.
    assert!(s.groups.find_visible(None, alone).await.unwrap().is_none());
}
