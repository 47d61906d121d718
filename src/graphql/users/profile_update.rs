//! `updateProfile`: the input, as the profile's changes; the accounts domain
//! checks and writes them, with what follows from them.

use async_graphql::{Context, InputObject, MaybeUndefined, Object};

use super::{Gender, LocationInput, User};
use crate::{
    domain::users::{ProfileChanges, ProfileText},
    error::AppResult,
    graphql::{
        ContextExt, presence::PresenceVisibility, scalars::Date, social::FriendListVisibility,
    },
    infra::ratelimit::Action,
};

/// Each field left out stays as it is; an explicit null clears it.
#[derive(InputObject)]
pub struct UpdateProfileInput {
    pub display_name: MaybeUndefined<String>,
    pub bio: MaybeUndefined<String>,
    pub birthdate: MaybeUndefined<Date>,
    pub gender: MaybeUndefined<Gender>,
    /// Free tags, trimmed and lower-cased, at most 20; replaces the whole list.
    pub interests: Option<Vec<String>>,
    pub location: MaybeUndefined<LocationInput>,
    /// Who may see your friend list (FRIENDS unless changed).
    pub friend_list_visibility: Option<FriendListVisibility>,
    /// Who may see your presence and lastSeenAt (FRIENDS unless changed);
    /// everyone else sees OFFLINE and no lastSeenAt.
    pub presence_visibility: Option<PresenceVisibility>,
}

/// `None` when undefined, `Some(None)` for null, `Some(Some(v))` for a value.
fn change<T, U>(
    value: MaybeUndefined<T>,
    convert: impl FnOnce(T) -> AppResult<Option<U>>,
) -> AppResult<Option<Option<U>>> {
    match value {
        MaybeUndefined::Undefined => Ok(None),
        MaybeUndefined::Null => Ok(Some(None)),
        MaybeUndefined::Value(v) => convert(v).map(Some),
    }
}

#[derive(Default)]
pub struct UserMutation;

#[Object]
impl UserMutation {
    async fn update_profile(
        &self,
        ctx: &Context<'_>,
        input: UpdateProfileInput,
    ) -> async_graphql::Result<User> {
        let viewer = ctx.require_viewer().await?;
        let state = ctx.state();
        if !matches!(input.location, MaybeUndefined::Undefined) {
            // Moving oneself about and asking for decks is how someone's
            // position is triangulated: moves are counted, like decks.
            state
                .limiter
                .check(Action::LocationPerUser, &viewer.user_id.to_string())
                .await?;
        }
        let changes = ProfileChanges {
            display_name: change(input.display_name, |s| ProfileText::DisplayName.parse(&s))?,
            bio: change(input.bio, |s| ProfileText::Bio.parse(&s))?,
            birthdate: change(input.birthdate, |d| Ok(Some(d.0)))?,
            gender: change(input.gender, |g| Ok(Some(g.into())))?,
            interests: input.interests,
            location: change(input.location, |l| Ok(Some((l.latitude, l.longitude))))?,
            friend_list_visibility: input.friend_list_visibility.map(Into::into),
            presence_visibility: input.presence_visibility.map(Into::into),
        };
        let updated = state
            .accounts
            .update_profile(viewer.user_id, changes)
            .await?;
        Ok(User::new(updated))
    }
}
