//! Whom discovery hides from a viewer (whom they swiped, a pass only during
//! its cooldown; a block either way), and the swipes others made on them.

use std::{
    collections::{HashMap, HashSet},
    sync::LazyLock,
};

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, FromQueryResult, Value};
use uuid::Uuid;

use super::Recommendations;
use crate::{
    domain::{discovery::SwipeKind, social},
    error::AppResult,
    infra::sql,
};

impl Recommendations {
    /// How the viewer stands with others, in one statement: whom discovery
    /// hides from them (swiped by them, a pass only during its cooldown; a
    /// block either way), and the swipes others made on them.
    pub(super) async fn standing(&self, viewer: Uuid, now: DateTime<Utc>) -> AppResult<Standing> {
        #[derive(FromQueryResult)]
        struct Row {
            id: Uuid,
            kind: Option<String>,
            created_at: Option<DateTime<Utc>>,
            side: i32,
        }
        const BY_VIEWER: i32 = 0;
        const ON_VIEWER: i32 = 1;
        const BLOCKED: i32 = 2;
        // Blocks are social's to read: its fragment lists whom the viewer
        // blocked or was blocked by.
        let sql = format!(
            "SELECT target_id AS id, kind, created_at, {BY_VIEWER} AS side
               FROM swipes WHERE swiper_id = ?
             UNION ALL
             SELECT swiper_id, kind, created_at, {ON_VIEWER} FROM swipes WHERE target_id = ?
             UNION ALL
             SELECT other, NULL, NULL, {BLOCKED} FROM ({}) blocked",
            social::blocked_either_way_ids_sql("?")
        );
        let backend = self.db.get_database_backend();
        let rows = Row::find_by_statement(sql::statement(
            backend,
            &sql,
            vec![viewer.into(), viewer.into(), viewer.into(), viewer.into()],
        ))
        .all(&self.db)
        .await?;
        let cooled_down = self.cooled_down(now);
        let mut standing = Standing::default();
        for row in rows {
            let kind = row.kind.as_deref().map(SwipeKind::from_stored);
            match row.side {
                BY_VIEWER => {
                    let cooling = row.created_at.is_none_or(|at| at > cooled_down);
                    if kind != Some(SwipeKind::Pass) || cooling {
                        standing.hidden.insert(row.id);
                    }
                }
                ON_VIEWER => {
                    standing
                        .their_swipes
                        .extend(kind.map(|kind| (row.id, kind)));
                }
                _ => {
                    standing.hidden.insert(row.id);
                }
            }
        }
        Ok(standing)
    }

    /// Passes made before this are over.
    fn cooled_down(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        // A cooldown too long to subtract holds passes back for good.
        now.checked_sub_signed(self.pass_cooldown)
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }

    /// Which of `ids` discovery may still show the viewer.
    pub(super) async fn still_open(
        &self,
        viewer: Uuid,
        ids: &[Uuid],
        now: DateTime<Utc>,
    ) -> AppResult<HashSet<Uuid>> {
        #[derive(FromQueryResult)]
        struct Open {
            id: Uuid,
        }
        if ids.is_empty() {
            return Ok(HashSet::new());
        }
        let mut values: Vec<Value> = ids.iter().map(|id| Value::from(*id)).collect();
        values.extend(self.still_open_values(viewer, now));
        let sql = format!(
            "SELECT u.id FROM users u WHERE u.id IN ({}) AND {}",
            sql::placeholders(ids.len()),
            *STILL_OPEN
        );
        let backend = self.db.get_database_backend();
        Ok(
            Open::find_by_statement(sql::statement(backend, &sql, values))
                .all(&self.db)
                .await?
                .into_iter()
                .map(|open| open.id)
                .collect(),
        )
    }

    /// The values of [`STILL_OPEN`], in order.
    fn still_open_values(&self, viewer: Uuid, now: DateTime<Utc>) -> [Value; 5] {
        [
            viewer.into(),
            viewer.into(),
            self.cooled_down(now).into(),
            viewer.into(),
            viewer.into(),
        ]
    }
}

/// The user `u` may be shown to the viewer: discoverable, not the viewer, not
/// swiped by them (a pass counts until its cooldown is over), and no block
/// either way (social's fragment). Values:
/// [`Recommendations::still_open_values`].
static STILL_OPEN: LazyLock<String> = LazyLock::new(|| {
    format!(
        "u.discoverable AND u.id <> ?
    AND NOT EXISTS (SELECT 1 FROM swipes v WHERE v.swiper_id = ? AND v.target_id = u.id
                    AND (v.kind <> 'PASS' OR v.created_at > ?))
    AND NOT {}",
        social::blocked_either_way_sql("?", "u.id")
    )
});

/// See [`Recommendations::standing`].
#[derive(Default)]
pub(super) struct Standing {
    pub(super) hidden: HashSet<Uuid>,
    pub(super) their_swipes: HashMap<Uuid, SwipeKind>,
}
