//! Media: profile photos and message attachments. This step owns the image
//! pipeline only, pure and without storage: what an upload is (judged by its
//! bytes), whether it is accepted (bytes, pixels, a whole image of one of four
//! formats), and what is kept of it (upright JPEGs in the configured sizes,
//! stripped of every metadata, and a ThumbHash placeholder). Storage, the
//! GraphQL uploads and `GET /media` build on [`ImageProcessor`].

mod process;
mod sniff;
#[cfg(test)]
mod tests;

pub use process::{
    ImageProcessor, ImageRules, JPEG_QUALITY, OUTPUT_MIME_TYPE, Processed, Source, Variant,
    process_image,
};
pub use sniff::{ImageKind, kind_of, sniff};
