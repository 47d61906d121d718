//! Discovery in GraphQL: preferences, recommendations, swipes and matches.

use std::collections::HashMap;

use async_graphql::{
    Context, ID, InputObject, Object, OutputType, SimpleObject,
    connection::{Connection, ConnectionNameType, Edge, EdgeNameType, EmptyFields},
};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{
    domain::discovery::{
        Match as DomainMatch, PreferenceChanges, Preferences, SwipeKind, SwipeOutcome,
        recommendations::{Card, Filter, Request},
    },
    error::AppResult,
    graphql::{
        ContextExt,
        chat::Conversation,
        groups::TotalCount,
        ids::{self, NodeKind},
        pagination::{Page, decode_cursor, encode_cursor, page_size},
        social::users_in_order,
        users::{Gender, User, load_user},
    },
    infra::ratelimit::Action,
};

/// Whom the viewer wants recommended. The same age and gender limits decide
/// whom they are recommended to.
#[derive(SimpleObject)]
pub struct DiscoveryPreferences {
    /// The youngest age, in years, to recommend (18 to 99).
    pub min_age: i32,
    /// The oldest age, in years, to recommend (18 to 99, not below `minAge`).
    pub max_age: i32,
    /// The genders to recommend; at least one.
    pub genders: Vec<Gender>,
    /// The farthest to recommend, in kilometres (1 to 300).
    pub max_distance_km: i32,
    /// True while the viewer is shown in others' recommendations (and may be
    /// liked by those they have not liked).
    pub discoverable: bool,
}

impl From<Preferences> for DiscoveryPreferences {
    fn from(preferences: Preferences) -> Self {
        Self {
            min_age: preferences.min_age,
            max_age: preferences.max_age,
            genders: preferences
                .genders
                .genders()
                .into_iter()
                .map(Into::into)
                .collect(),
            max_distance_km: preferences.max_distance_km,
            discoverable: preferences.discoverable,
        }
    }
}

/// Changes to the viewer's discovery preferences. Omitted (or null) fields
/// keep their value. A value out of range is `BAD_USER_INPUT` with `extensions.field`
/// naming it.
#[derive(InputObject)]
pub struct UpdateDiscoveryPreferencesInput {
    /// Years, 18 to 99, not above `maxAge`.
    pub min_age: Option<i32>,
    /// Years, 18 to 99, not below `minAge`.
    pub max_age: Option<i32>,
    /// At least one.
    pub genders: Option<Vec<Gender>>,
    /// Kilometres, 1 to 300.
    pub max_distance_km: Option<i32>,
    /// False hides the viewer from others' recommendations.
    pub discoverable: Option<bool>,
}

/// Limits for one call, in place of the viewer's preferences (or, with
/// `usePreferences: false`, of the widest limits).
#[derive(InputObject, Default)]
pub struct RecommendationFilter {
    /// Years, 18 to 99, not above the max age in effect.
    pub min_age: Option<i32>,
    /// Years, 18 to 99, not below the min age in effect.
    pub max_age: Option<i32>,
    /// At least one.
    pub genders: Option<Vec<Gender>>,
    /// Kilometres, 1 to 300.
    pub max_distance_km: Option<i32>,
    /// Only candidates who share at least one of these interests (at most 20
    /// tags of 1 to 32 characters; compared lower-case).
    pub interests: Option<Vec<String>>,
}

impl From<RecommendationFilter> for Filter {
    fn from(filter: RecommendationFilter) -> Self {
        Self {
            min_age: filter.min_age,
            max_age: filter.max_age,
            genders: filter
                .genders
                .map(|genders| genders.into_iter().map(Into::into).collect()),
            max_distance_km: filter.max_distance_km,
            interests: filter.interests,
        }
    }
}

/// How well a candidate suits the viewer: `score` and its shown parts, each
/// 0–1. The score also weighs a hidden part, which neither it nor anything
/// else lets a client read back.
#[derive(SimpleObject)]
pub struct Compatibility {
    /// The overall fit, 0–1: the weighted sum of the parts below and the
    /// hidden one. What `recommendations` ranks by.
    pub score: f64,
    /// How much the two lists of interests overlap.
    pub shared_interests: f64,
    /// 1 next door, 0 at the edge of the distance limit.
    pub distance: f64,
    /// 1 while online, halving every two days since last seen.
    pub recent_activity: f64,
    /// Grows with mutual friends: 0.5 at two.
    pub mutual_friends: f64,
}

// Why a candidate is recommended, on each edge of `recommendations`
// (flattened into `RecommendationEdge`: only its fields are in the schema).
#[derive(SimpleObject)]
pub struct RecommendationEdgeFields {
    /// Whole kilometres, at least 1, measured to a coarse cell around the
    /// candidate: never their exact position.
    pub distance_km: i32,
    /// How well the candidate suits the viewer.
    pub compatibility: Compatibility,
    /// The interests the candidate and the viewer share.
    pub common_interests: Vec<String>,
    /// How many friends the candidate and the viewer have in common.
    pub mutual_friends_count: i64,
    /// The candidate super-liked the viewer (a plain like stays secret).
    pub super_liked_viewer: bool,
}

impl From<Card> for RecommendationEdgeFields {
    fn from(card: Card) -> Self {
        Self {
            distance_km: card.distance_km,
            compatibility: Compatibility {
                score: card.score,
                shared_interests: card.parts.shared_interests,
                distance: card.parts.distance,
                recent_activity: card.parts.recent_activity,
                mutual_friends: card.parts.mutual_friends,
            },
            common_interests: card.common_interests,
            mutual_friends_count: card.mutual_friends,
            super_liked_viewer: card.super_liked_viewer,
        }
    }
}

pub struct RecommendationConnectionName;

impl ConnectionNameType for RecommendationConnectionName {
    fn type_name<T: OutputType>() -> String {
        "RecommendationConnection".into()
    }
}

pub struct RecommendationEdgeName;

impl EdgeNameType for RecommendationEdgeName {
    fn type_name<T: OutputType>() -> String {
        "RecommendationEdge".into()
    }
}

pub type RecommendationConnection = Connection<
    String,
    User,
    EmptyFields,
    RecommendationEdgeFields,
    RecommendationConnectionName,
    RecommendationEdgeName,
>;

// Two users who liked each other, as one of them sees it.
pub struct Match {
    matched: DomainMatch,
    viewer: Uuid,
}

/// Two users who liked each other, as one of them sees it. Only the two see
/// it; it lasts until either unmatches or blocks the other.
#[Object]
impl Match {
    /// The match's global ID (for `node` and `unmatch`).
    pub async fn id(&self) -> ID {
        ids::encode(NodeKind::Match, self.matched.id)
    }

    /// The other user; null if their account is gone.
    async fn user(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        Ok(load_user(ctx, self.matched.other(self.viewer)).await?)
    }

    /// The pair's direct conversation, opened with the match (`directConversation`
    /// opens it should that have failed).
    async fn conversation(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Conversation>> {
        Ok(ctx
            .state()
            .chat
            .existing_direct_conversation(self.viewer, self.matched.other(self.viewer))
            .await?
            .map(Conversation))
    }

    /// When the second like made the match.
    async fn created_at(&self) -> DateTime<Utc> {
        self.matched.created_at
    }
}

impl Match {
    pub fn new(matched: DomainMatch, viewer: Uuid) -> Self {
        Self { matched, viewer }
    }
}

pub type MatchConnection = Connection<String, Match, TotalCount, EmptyFields>;

// What a swipe came to.
pub struct SwipeResult {
    outcome: SwipeOutcome,
    target: Uuid,
    viewer: Uuid,
}

/// What a swipe (`like`, `pass`, `superLike`) came to.
#[Object]
impl SwipeResult {
    /// The user swiped on; null if their account is gone.
    async fn user(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        Ok(load_user(ctx, self.target).await?)
    }

    /// The pair's match: made by this like, or from before; null otherwise.
    #[graphql(name = "match")]
    async fn matched(&self) -> Option<Match> {
        self.outcome
            .matched
            .clone()
            .map(|matched| Match::new(matched, self.viewer))
    }

    /// After a super like: how many are left in the last 24 hours (5 a day
    /// by default); null after any other swipe.
    async fn super_likes_remaining(&self) -> Option<u32> {
        self.outcome.super_likes_left
    }
}

#[derive(Default)]
pub struct DiscoveryQuery;

#[Object]
impl DiscoveryQuery {
    /// People to swipe on, best first. Needs the viewer's birthdate (18+),
    /// gender and location (`FORBIDDEN`, saying what is missing, without).
    /// Pages never repeat or skip anyone: the first page ranks everyone in
    /// range once, and later pages read on from that ranking, leaving out
    /// whoever was swiped or blocked since.
    #[graphql(complexity = "crate::graphql::pagination::cost(first, child_complexity)")]
    async fn recommendations(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "How many to return: 0 to 100 (more is `BAD_USER_INPUT`); 20 when left out."
        )]
        first: Option<i32>,
        #[graphql(
            desc = "An `endCursor` of the previous page, asked with the same `usePreferences` and `filter`: return the candidates ranked after it."
        )]
        after: Option<String>,
        #[graphql(
            default = true,
            desc = "True: start from the viewer's `discoveryPreferences`; false: from the widest limits (ages 18–99, every gender, 300 km)."
        )]
        use_preferences: bool,
        #[graphql(desc = "Limits for this call, in place of those `usePreferences` chose.")]
        filter: Option<RecommendationFilter>,
    ) -> async_graphql::Result<RecommendationConnection> {
        let viewer = ctx.require_viewer().await?;
        let first = page_size(first, "first")?;
        let after = after
            .map(|cursor| decode_cursor(&cursor, "after"))
            .transpose()?;
        let has_previous = after.is_some();
        let page = ctx
            .state()
            .recommendations
            .page(
                viewer.user_id,
                Request {
                    use_preferences,
                    filter: filter.unwrap_or_default().into(),
                    first,
                    after,
                },
            )
            .await?;
        let ids: Vec<Uuid> = page.cards.iter().map(|(_, card)| card.user_id).collect();
        let mut users: HashMap<Uuid, User> = users_in_order(ctx, &ids)
            .await?
            .into_iter()
            .map(|user| (user.0.id, user))
            .collect();
        let mut connection =
            Connection::with_additional_fields(has_previous, page.has_next, EmptyFields);
        connection
            .edges
            .extend(page.cards.into_iter().filter_map(|(cursor, card)| {
                let user = users.remove(&card.user_id)?;
                Some(Edge::with_additional_fields(
                    encode_cursor(&cursor),
                    user,
                    card.into(),
                ))
            }));
        Ok(connection)
    }

    /// The viewer's standing matches, newest first. `totalCount` is always
    /// null here.
    #[graphql(complexity = "crate::graphql::pagination::cost(first, child_complexity)")]
    async fn matches(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "How many to return: 0 to 100 (more is `BAD_USER_INPUT`); 20 when left out."
        )]
        first: Option<i32>,
        #[graphql(
            desc = "An `endCursor` (or edge `cursor`) of the previous page: return what comes after it."
        )]
        after: Option<String>,
    ) -> async_graphql::Result<MatchConnection> {
        let viewer = ctx.require_viewer().await?;
        let page = Page::forward(first, after)?;
        let before = page.after_uuid()?;
        let mut matches = ctx
            .state()
            .discovery
            .matches(viewer.user_id, before, page.fetch_limit())
            .await?;
        let has_next = matches.len() > page.first;
        matches.truncate(page.first);
        let mut connection = Connection::with_additional_fields(
            page.after.is_some(),
            has_next,
            TotalCount { total_count: None },
        );
        connection.edges.extend(matches.into_iter().map(|matched| {
            Edge::new(
                encode_cursor(&matched.id.to_string()),
                Match::new(matched, viewer.user_id),
            )
        }));
        Ok(connection)
    }
}

#[derive(Default)]
pub struct DiscoveryMutation;

#[Object]
impl DiscoveryMutation {
    /// Changes whom the viewer wants recommended (and whom they are
    /// recommended to); returns the preferences now in effect.
    async fn update_discovery_preferences(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The preferences to change; the rest keep their value.")]
        input: UpdateDiscoveryPreferencesInput,
    ) -> async_graphql::Result<DiscoveryPreferences> {
        let viewer = ctx.require_viewer().await?;
        let changes = PreferenceChanges {
            min_age: input.min_age,
            max_age: input.max_age,
            genders: input
                .genders
                .map(|genders| genders.into_iter().map(Into::into).collect()),
            max_distance_km: input.max_distance_km,
            discoverable: input.discoverable,
        };
        Ok(ctx
            .state()
            .discovery
            .update_preferences(viewer.user_id, changes)
            .await?
            .into())
    }

    /// Likes a user; if they liked the viewer, that is a match (both get a
    /// `MatchNotification`). Liking someone discovery would not show you is
    /// `FORBIDDEN`, unless they liked you. Swipes are rate limited per user
    /// (`RATE_LIMITED`).
    async fn like(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The `User.id` to like.")] user_id: ID,
    ) -> async_graphql::Result<SwipeResult> {
        swipe(ctx, &user_id, SwipeKind::Like).await
    }

    /// Passes on a user: they are not recommended again until the cooldown
    /// (7 days by default) is over. Passing on a match is `CONFLICT` (unmatch
    /// instead), as is passing on someone you super-liked.
    async fn pass(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The `User.id` to pass on.")] user_id: ID,
    ) -> async_graphql::Result<SwipeResult> {
        swipe(ctx, &user_id, SwipeKind::Pass).await
    }

    /// A like they can see coming (`superLikedViewer` on their
    /// recommendation): 5 in any 24 hours by default, `RATE_LIMITED` beyond.
    /// It cannot be taken back.
    async fn super_like(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The `User.id` to super-like.")] user_id: ID,
    ) -> async_graphql::Result<SwipeResult> {
        swipe(ctx, &user_id, SwipeKind::SuperLike).await
    }

    /// Ends a match for good: the pair is not recommended or matched again,
    /// and their conversation is closed to new messages (unless they are
    /// friends). Both get a `MatchEndedNotification`. Returns the match's ID;
    /// one that is not the viewer's (or ended) is `NOT_FOUND`.
    async fn unmatch(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The `Match.id` to end.")] match_id: ID,
    ) -> async_graphql::Result<ID> {
        let viewer = ctx.require_viewer().await?;
        let id = ids::expect(&match_id, NodeKind::Match)?;
        let ended = ctx.state().discovery.unmatch(viewer.user_id, id).await?;
        Ok(ids::encode(NodeKind::Match, ended.id))
    }
}

async fn swipe(
    ctx: &Context<'_>,
    user_id: &ID,
    kind: SwipeKind,
) -> async_graphql::Result<SwipeResult> {
    let viewer = ctx.require_viewer().await?;
    ctx.state()
        .limiter
        .check(Action::SwipePerUser, &viewer.user_id.to_string())
        .await?;
    let target = ids::expect(user_id, NodeKind::User)?;
    let outcome = ctx
        .state()
        .discovery
        .swipe(viewer.user_id, target, kind)
        .await?;
    Ok(SwipeResult {
        outcome,
        target,
        viewer: viewer.user_id,
    })
}

/// A match of the viewer's, for `node(id:)`.
pub async fn find_match(ctx: &Context<'_>, id: Uuid) -> AppResult<Option<Match>> {
    let Some(viewer) = ctx.viewer().await? else {
        return Ok(None);
    };
    Ok(ctx
        .state()
        .discovery
        .match_for(viewer.user_id, id)
        .await?
        .map(|matched| Match::new(matched, viewer.user_id)))
}

/// `User.discoveryPreferences`, for the account's owner.
pub fn preferences_of(user: &entity::user::Model) -> DiscoveryPreferences {
    Preferences::of(user).into()
}
