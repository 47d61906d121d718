//! The social graph's lists, cached: each user's friends, who blocked each
//! user, and whom each user blocked or has a pending request with, as sorted
//! ids. The reads that walk the graph (friend pages, mutual
//! friends, friend suggestions, the mutual friends of recommendations, how the
//! viewer stands to a friend) intersect these lists in memory. Joining
//! `friendships` with itself instead read thousands of index entries per page
//! in PostgreSQL: the friends of a typical user's friends are well connected.
//!
//! `Social` forgets a user's lists after every write that changes them commits
//! (on every replica, through the two-level cache). The checks that authorise a
//! write (may these two message? are they still friends?) read the database in
//! their own transaction instead: a list may lag a write by the moment its
//! invalidation takes to reach another replica, which a page may show but a
//! permission must not use.

use std::{collections::HashMap, sync::Arc, time::Duration};

use entity::{block, friend_request, friendship};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, QueryFilter, QuerySelect,
    sea_query::{Alias, Expr, Query, UnionType},
};
use uuid::Uuid;

use crate::{
    error::AppResult,
    infra::{
        cache::{Capacity, Freshness, Invalidations, TwoLevelCache},
        db::Db,
        redis::Redis,
    },
};

/// Sorted ids.
pub type IdList = Arc<[Uuid]>;

/// Ids each replica keeps at hand across its lists (16 bytes each): every
/// friend list of 100,000 users with 50 friends each is 5,000,000, so a
/// replica keeps the lists of its busiest users (64 MB of ids) at most.
const LOCAL_IDS: u64 = 4_000_000;
const LOCAL_TTL: Duration = Duration::from_secs(300);
const SHARED_TTL: Duration = Duration::from_secs(600);
/// Users whose lists one query loads: well inside either database's limit of
/// bound parameters.
const LOAD_CHUNK: usize = 1_000;

#[derive(Clone)]
pub struct Graph {
    db: Db,
    friends: TwoLevelCache<IdList>,
    /// Keyed by the blocked user: the users who blocked them, hidden from them.
    blockers: TwoLevelCache<IdList>,
    /// Everyone each user blocked or has a pending request with, either way:
    /// whom their friend suggestions leave out.
    pending_or_blocked: TwoLevelCache<IdList>,
}

impl Graph {
    pub fn new(db: Db, shared: Option<&Redis>, pubsub: Invalidations) -> Self {
        let cache = |name| {
            TwoLevelCache::new(
                name,
                Freshness::Eventual,
                Capacity::Weight {
                    max: LOCAL_IDS,
                    weigh: |ids: &IdList| u32::try_from(ids.len()).unwrap_or(u32::MAX).max(1),
                },
                LOCAL_TTL,
                SHARED_TTL,
                shared,
                pubsub.clone(),
            )
        };
        Self {
            db,
            friends: cache("friends"),
            blockers: cache("blockers"),
            pending_or_blocked: cache("pending_or_blocked"),
        }
    }

    /// Drops the local copies other replicas invalidate, for as long as they run.
    pub fn follow_invalidations(&self) -> [tokio::task::JoinHandle<()>; 3] {
        [
            tokio::spawn(self.friends.clone().follow_invalidations()),
            tokio::spawn(self.blockers.clone().follow_invalidations()),
            tokio::spawn(self.pending_or_blocked.clone().follow_invalidations()),
        ]
    }

    /// After a friendship of theirs began or ended.
    pub async fn forget_friends(&self, users: &[Uuid]) {
        self.friends.invalidate(users).await;
    }

    /// After someone blocked them, or lifted a block.
    pub async fn forget_blockers(&self, users: &[Uuid]) {
        self.blockers.invalidate(users).await;
    }

    /// After a request of theirs was made or ended, or they blocked someone,
    /// were blocked, or lifted a block.
    pub async fn forget_pending_or_blocked(&self, users: &[Uuid]) {
        self.pending_or_blocked.invalidate(users).await;
    }

    pub async fn friends_of(&self, user: Uuid) -> AppResult<IdList> {
        Ok(one_of(self.friends_of_many(&[user]).await?, user))
    }

    /// Every user's friends, one query for those not cached (per thousand).
    pub async fn friends_of_many(&self, users: &[Uuid]) -> AppResult<HashMap<Uuid, IdList>> {
        self.friends
            .get_many_or_load(users, |missing| {
                load_lists::<friendship::Entity>(
                    &self.db,
                    (friendship::Column::UserId, friendship::Column::FriendId),
                    missing,
                )
            })
            .await
    }

    /// The users who blocked `user`.
    pub async fn blockers_of(&self, user: Uuid) -> AppResult<IdList> {
        let found = self
            .blockers
            .get_many_or_load(&[user], |missing| {
                load_lists::<block::Entity>(
                    &self.db,
                    (block::Column::BlockedId, block::Column::BlockerId),
                    missing,
                )
            })
            .await?;
        Ok(one_of(found, user))
    }

    /// Everyone `user` blocked or has a pending request with, either way.
    pub async fn pending_or_blocked_of(&self, user: Uuid) -> AppResult<IdList> {
        let found = self
            .pending_or_blocked
            .get_or_load(user, || async move {
                load_pending_or_blocked(self.db.primary(), user)
                    .await
                    .map(Some)
            })
            .await?;
        Ok(found.unwrap_or_default())
    }

    /// How many friends `viewer` shares with each of `others`.
    pub async fn mutual_counts(
        &self,
        viewer: Uuid,
        others: &[Uuid],
    ) -> AppResult<HashMap<Uuid, i64>> {
        let mine = self.friends_of(viewer).await?;
        if mine.is_empty() {
            return Ok(others.iter().map(|&other| (other, 0)).collect());
        }
        let theirs = self.friends_of_many(others).await?;
        Ok(others
            .iter()
            .map(|other| {
                let shared = theirs
                    .get(other)
                    .map_or(0, |list| count_shared(&mine, list));
                (*other, shared as i64)
            })
            .collect())
    }

    /// The friends of `viewer`'s friends that `counted` lets through (the
    /// viewer may be among them), each with how many of the viewer's friends
    /// they are a friend of, in id order.
    pub async fn friends_of_friends(
        &self,
        viewer: Uuid,
        counted: impl Fn(Uuid) -> bool,
    ) -> AppResult<Vec<(Uuid, i64)>> {
        let mine = self.friends_of(viewer).await?;
        let lists = self.friends_of_many(&mine).await?;
        Ok(count_across(lists.values(), counted))
    }
}

/// The lists of `keys` from `E`'s `(owner, member)` rows, one query per
/// thousand keys, from the primary: a cached list serves every replica for
/// minutes, so it must not be a lagging replica's.
async fn load_lists<E: EntityTrait>(
    db: &Db,
    (owner, member): (E::Column, E::Column),
    keys: Vec<Uuid>,
) -> AppResult<HashMap<Uuid, IdList>> {
    let mut lists = HashMap::with_capacity(keys.len());
    for chunk in keys.chunks(LOAD_CHUNK) {
        let rows: Vec<(Uuid, Uuid)> = E::find()
            .select_only()
            .columns([owner, member])
            .filter(owner.is_in(chunk.iter().copied()))
            .into_tuple()
            .all(db.primary())
            .await?;
        lists.extend(group_sorted(chunk, rows));
    }
    Ok(lists)
}

/// [`Graph::pending_or_blocked_of`] from the database: one union of the
/// user's blocks and their requests both ways.
async fn load_pending_or_blocked(db: &impl ConnectionTrait, user: Uuid) -> AppResult<IdList> {
    let mut union = Query::select()
        .expr_as(Expr::col(block::Column::BlockedId), Alias::new("other"))
        .from(block::Entity)
        .and_where(block::Column::BlockerId.eq(user))
        .to_owned();
    for (mine, theirs) in [
        (
            friend_request::Column::FromUserId,
            friend_request::Column::ToUserId,
        ),
        (
            friend_request::Column::ToUserId,
            friend_request::Column::FromUserId,
        ),
    ] {
        union.union(
            UnionType::All,
            Query::select()
                .expr_as(Expr::col(theirs), Alias::new("other"))
                .from(friend_request::Entity)
                .and_where(mine.eq(user))
                .to_owned(),
        );
    }
    #[derive(FromQueryResult)]
    struct Other {
        other: Uuid,
    }
    let backend = db.get_database_backend();
    let mut others: Vec<Uuid> = Other::find_by_statement(backend.build(&union))
        .all(db)
        .await?
        .into_iter()
        .map(|row| row.other)
        .collect();
    others.sort_unstable();
    Ok(IdList::from(others))
}

/// `key`'s list from a lookup, empty when it has none.
fn one_of(mut lists: HashMap<Uuid, IdList>, key: Uuid) -> IdList {
    lists.remove(&key).unwrap_or_else(|| Arc::from([]))
}

/// Whether sorted `list` holds `id`.
pub fn holds(list: &[Uuid], id: Uuid) -> bool {
    list.binary_search(&id).is_ok()
}

/// How many ids two sorted lists share: the shorter one looked up in the
/// longer, so a hub's long list costs a few probes per id, not a walk.
pub fn count_shared(a: &[Uuid], b: &[Uuid]) -> usize {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    short.iter().filter(|id| holds(long, **id)).count()
}

/// The ids two sorted lists share, in order.
pub fn shared<'a>(a: &'a [Uuid], b: &'a [Uuid]) -> impl Iterator<Item = Uuid> + 'a {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    short.iter().copied().filter(|id| holds(long, *id))
}

/// Each id of `lists` that `counted` lets through, with how many lists hold
/// it, in id order. The ids let through are sorted together and counted in runs: a
/// viewer's friends of friends run to thousands, and hashing each one into a
/// map cost several times this sort. (A UUID's bytes and its `u128` order
/// alike, and `u128`s compare faster.)
fn count_across<'a>(
    lists: impl Iterator<Item = &'a IdList>,
    counted: impl Fn(Uuid) -> bool,
) -> Vec<(Uuid, i64)> {
    // Filtered before sorting: recommendations count only their few
    // candidates among thousands of friends of friends.
    let mut all: Vec<u128> = lists
        .flat_map(|list| list.iter().copied())
        .filter(|id| counted(*id))
        .map(|id| id.as_u128())
        .collect();
    all.sort_unstable();
    all.chunk_by(|a, b| a == b)
        .map(|run| (Uuid::from_u128(run[0]), run.len() as i64))
        .collect()
}

/// `(owner, id)` rows as one sorted list per key, empty for keys with none.
fn group_sorted(keys: &[Uuid], rows: Vec<(Uuid, Uuid)>) -> HashMap<Uuid, IdList> {
    let mut grouped: HashMap<Uuid, Vec<Uuid>> = keys.iter().map(|&key| (key, Vec::new())).collect();
    for (owner, id) in rows {
        grouped.entry(owner).or_default().push(id);
    }
    grouped
        .into_iter()
        .map(|(owner, mut ids)| {
            ids.sort_unstable();
            (owner, IdList::from(ids))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: &[u128]) -> Vec<Uuid> {
        n.iter().map(|&n| Uuid::from_u128(n)).collect()
    }

    #[test]
    fn shared_ids_are_found_whichever_list_is_longer() {
        let a = ids(&[1, 3, 5, 7, 9]);
        let b = ids(&[2, 3, 9]);
        assert_eq!(count_shared(&a, &b), 2);
        assert_eq!(count_shared(&b, &a), 2);
        assert_eq!(shared(&a, &b).collect::<Vec<_>>(), ids(&[3, 9]));
        assert_eq!(count_shared(&a, &[]), 0);
    }

    #[test]
    fn ids_are_counted_across_lists_once_each_in_order() {
        let lists = [ids(&[1, 4, 9]), ids(&[4, 9]), ids(&[2, 9]), ids(&[])].map(IdList::from);
        let counted = count_across(lists.iter(), |id| id != Uuid::from_u128(2));
        assert_eq!(
            counted,
            vec![
                (Uuid::from_u128(1), 1),
                (Uuid::from_u128(4), 2),
                (Uuid::from_u128(9), 3)
            ]
        );
    }

    #[test]
    fn rows_group_into_sorted_lists_with_an_empty_one_for_keys_without_rows() {
        let keys = ids(&[1, 2]);
        let rows = vec![
            (keys[0], Uuid::from_u128(30)),
            (keys[0], Uuid::from_u128(10)),
        ];
        let grouped = group_sorted(&keys, rows);
        assert_eq!(&*grouped[&keys[0]], ids(&[10, 30]).as_slice());
        assert!(grouped[&keys[1]].is_empty());
    }
}
