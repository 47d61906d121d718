//! Photos: deleting and reordering (uploads carry files, which a JSON
//! request cannot: `media::bad_uploads` sends those as multipart).

use serde_json::json;

use super::{Bad::*, Call, Table, World, bad, invalid, not_found};

#[rustfmt::skip]
pub fn table(world: &World) -> Table {
    let mut table = Table::default();
    let ann = Some(&world.ann);
    let own = &world.ann_photo;
    let foreign = &world.foreign_photo;

    table.add(
        Call::new("deletePhoto(id: ID!)", ann, json!({}))
            .ids("id", own, not_found())
            .row("id", ForeignId, foreign.clone(), not_found()),
    );

    table.add(
        Call::new(
            "reorderPhotos(input: ReorderPhotosInput!) { id }",
            ann,
            json!({ "input": { "photoIds": [own] } }),
        )
        .row("input.photoIds", Empty, json!([]), bad("photoIds"))
        .row("input.photoIds", ForeignId, json!([foreign]), bad("photoIds"))
        .row("input.photoIds", ForeignId, json!([own, foreign]), bad("photoIds"))
        .row("input.photoIds", WrongTypeId, json!([world.ann_attachment]), bad("photoIds"))
        .row("input.photoIds", WrongFormat, json!(["not-an-id"]), bad("photoIds"))
        .row("input.photoIds", TooLong, json!([own, own]), bad("photoIds"))
        .row("input.photoIds", Invalid, json!([null]), invalid())
        .missing("input.photoIds"),
    );

    table
}

#[tokio::test]
async fn media_refuses_bad_input_and_writes_nothing() {
    super::run_table(table).await;
}
