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

/// Changes to the viewer's profile. Each field left out stays as it is; an
/// explicit null clears it, except where a field says otherwise. A value that
/// breaks its rule is `BAD_USER_INPUT` with `extensions.field` naming it.
#[derive(InputObject)]
pub struct UpdateProfileInput {
    /// At most 64 characters, trimmed, no control characters; empty or null
    /// clears it.
    pub display_name: MaybeUndefined<String>,
    /// At most 500 characters, trimmed; line breaks allowed, other control
    /// characters not. Empty or null clears it.
    pub bio: MaybeUndefined<String>,
    /// Must make the user 13 to 120 years old (discovery needs 18 or over);
    /// null clears it. Only you see it; others see `User.age`.
    pub birthdate: MaybeUndefined<Date>,
    /// Null clears it; discovery needs it.
    pub gender: MaybeUndefined<Gender>,
    /// Free tags, trimmed and lower-cased, at most 20 of 1 to 32 characters
    /// each (duplicates dropped); replaces the whole list. An empty list
    /// clears it; null leaves it as it is.
    pub interests: Option<Vec<String>>,
    /// Your position, for discovery's distances: only you see it. Null
    /// clears it. Moves are rate limited (`RATE_LIMITED`).
    pub location: MaybeUndefined<LocationInput>,
    /// Who may see your friend list (FRIENDS unless changed); null leaves it
    /// as it is.
    pub friend_list_visibility: Option<FriendListVisibility>,
    /// Who may see your presence and lastSeenAt (FRIENDS unless changed);
    /// everyone else sees OFFLINE and no lastSeenAt. Null leaves it as it is.
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
    /// Changes the viewer's profile and returns it.
    async fn update_profile(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The profile fields to change.")] input: UpdateProfileInput,
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
