//! Photos and attachments: an upload needs a live session; a photo is its
//! owner's alone to delete or reorder.

use serde_json::json;

use super::{Caller::*, Operation, Witness, World};

const PHOTOS: &str = "{ me { photos { id position } } }";

pub fn operations(w: &World) -> Vec<Operation> {
    let anns_photos = || Witness::new(&w.ann, PHOTOS, json!({}));
    vec![
        Operation::signed_in(
            "uploadPhoto",
            "a new photo",
            "mutation($input: UploadPhotoInput!) { uploadPhoto(input: $input) { id } }",
            json!({ "input": { "file": null } }),
            &w.ann,
        )
        .uploading("variables.input.file")
        .witness(anns_photos()),
        Operation::signed_in(
            "uploadAttachment",
            "a new attachment",
            "mutation($file: Upload!) { uploadAttachment(file: $file) { id } }",
            json!({ "file": null }),
            &w.ann,
        )
        .uploading("variables.file"),
        Operation::signed_in(
            "deletePhoto",
            "ann's photo",
            "mutation($id: ID!) { deletePhoto(id: $id) }",
            json!({ "id": w.ann_photo }),
            &w.ann,
        )
        .witness(anns_photos())
        .refuse(Stranger, &w.stranger, "NOT_FOUND")
        .refuse(OtherParticipant, &w.bob, "NOT_FOUND"),
        Operation::signed_in(
            "reorderPhotos",
            "ann's photos",
            "mutation($ids: [ID!]!) { reorderPhotos(input: { photoIds: $ids }) { id } }",
            json!({ "ids": [w.ann_photo] }),
            &w.ann,
        )
        .witness(anns_photos())
        .refuse(Stranger, &w.stranger, "BAD_USER_INPUT")
        .refuse(OtherParticipant, &w.bob, "BAD_USER_INPUT"),
    ]
}
