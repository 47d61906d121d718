//! The media sweeper: attachments left unsent for a day go (objects, then
//! row), and one it has claimed can no longer be sent.

use bytes::Bytes;
use chrono::Utc;
use entity::attachment;
use kith::domain::{chat::Outgoing, media::UNSENT_ATTACHMENT_LIFETIME};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, sea_query::Expr};

use super::services;
use crate::media::jpeg;

/// The objects under the local store's directory (beside the SQLite file).
fn stored(services: &super::Services) -> usize {
    let dir = kith::config::media_dir_beside(&services.settings.database_url);
    crate::media::stored_files(&dir).len()
}

#[tokio::test]
async fn an_attachment_left_unsent_for_a_day_is_removed_and_cannot_be_sent_after() {
    let services = services().await;
    let ann = services.user("ann").await;
    let bob = services.user("bob").await;
    services.befriend(ann, bob).await;
    let conversation = services.direct(ann, bob).await;
    let upload = || Bytes::from(jpeg(400, 300));
    let old = services
        .media
        .upload_attachment(ann, upload())
        .await
        .unwrap();
    let fresh = services
        .media
        .upload_attachment(ann, upload())
        .await
        .unwrap();
    let sent = services
        .media
        .upload_attachment(ann, upload())
        .await
        .unwrap();
    services
        .chat
        .send(
            ann,
            Outgoing {
                conversation_id: conversation,
                body: "kept".into(),
                client_message_id: "kept".into(),
                reply_to_id: None,
                attachment_ids: vec![sent.id],
            },
        )
        .await
        .unwrap();
    // Two of the three uploaded a day and a minute ago.
    let long_ago = Utc::now()
        - chrono::Duration::from_std(UNSENT_ATTACHMENT_LIFETIME).unwrap()
        - chrono::Duration::minutes(1);
    attachment::Entity::update_many()
        .col_expr(attachment::Column::CreatedAt, Expr::value(long_ago))
        .filter(attachment::Column::Id.is_in([old.id, sent.id]))
        .exec(services.db.primary())
        .await
        .unwrap();
    assert_eq!(stored(&services), 6);

    assert_eq!(services.media.sweep().await.unwrap(), 1);
    // The old unsent one's two sizes went; the sent and the fresh one stay.
    assert_eq!(stored(&services), 4);
    let left = attachment::Entity::find()
        .count(services.db.primary())
        .await
        .unwrap();
    assert_eq!(left, 2);
    assert_eq!(services.media.sweep().await.unwrap(), 0, "nothing twice");
    // Its id is as unusable as any other that is not the sender's to send.
    let late = services
        .chat
        .send(
            ann,
            Outgoing {
                conversation_id: conversation,
                body: "too late".into(),
                client_message_id: "late".into(),
                reply_to_id: None,
                attachment_ids: vec![old.id, fresh.id],
            },
        )
        .await;
    assert!(
        matches!(
            late,
            Err(kith::error::AppError::BadUserInput {
                field: Some("attachmentIds"),
                ..
            })
        ),
        "{late:?}"
    );
    // And the refused send took nothing: the fresh one is still sendable.
    assert!(
        attachment::Entity::find_by_id(fresh.id)
            .one(services.db.primary())
            .await
            .unwrap()
            .unwrap()
            .used_at
            .is_none()
    );
}
