//! The image pipeline against images made here: every accepted format, every
//! kind of bad input, and what the outputs keep and drop.

use std::io::Cursor;

use image::{
    DynamicImage, ImageDecoder as _, ImageFormat, Rgb, RgbImage, Rgba, RgbaImage,
    codecs::{gif::GifEncoder, jpeg::JpegDecoder},
};

#[path = "../../../tests/fixtures/images.rs"]
mod images;

use images::*;

use super::*;
use crate::error::{AppError, AppResult};

fn rules() -> ImageRules {
    ImageRules::default()
}

fn refusal(result: AppResult<Processed>) -> String {
    match result {
        Err(AppError::BadUserInput {
            field: Some("file"),
            message,
        }) => message,
        other => panic!("expected the file to be refused as bad input, got {other:?}"),
    }
}

fn decoded(variant: &Variant) -> RgbImage {
    assert_eq!(variant.mime_type, "image/jpeg");
    let image = image::load_from_memory_with_format(&variant.bytes, ImageFormat::Jpeg)
        .expect("every output is a JPEG");
    assert_eq!(
        (image.width(), image.height()),
        (variant.width, variant.height)
    );
    image.into_rgb8()
}

#[test]
fn each_of_the_four_formats_is_accepted_and_stored_as_jpeg() {
    let source = DynamicImage::ImageRgb8(photo(300, 200));
    let uploads = [
        (ImageKind::Jpeg, jpeg(source.as_rgb8().unwrap())),
        (ImageKind::Png, encode(&source, ImageFormat::Png)),
        (ImageKind::Gif, encode(&source, ImageFormat::Gif)),
        (ImageKind::WebP, encode(&source, ImageFormat::WebP)),
    ];
    for (kind, bytes) in uploads {
        let processed =
            process_image(&bytes, &rules()).unwrap_or_else(|err| panic!("{kind:?}: {err:?}"));
        assert_eq!(processed.source.kind, kind);
        assert_eq!(
            (processed.source.width, processed.source.height),
            (300, 200)
        );
        assert_eq!(processed.source.bytes, bytes.len());
        let sizes: Vec<_> = processed
            .variants
            .iter()
            .map(|v| (v.width, v.height))
            .collect();
        assert_eq!(sizes, [(300, 200), (160, 107)], "{kind:?}");
        for variant in &processed.variants {
            decoded(variant);
        }
        // Recognisably the same picture: the gradient runs dark to light.
        let out = decoded(processed.largest());
        assert!(
            out.get_pixel(5, 5)[0] < out.get_pixel(295, 5)[0],
            "{kind:?}"
        );
    }
}

#[test]
fn an_empty_file_is_refused() {
    assert_eq!(refusal(process_image(&[], &rules())), "the file is empty");
}

#[test]
fn a_jpeg_cut_in_half_is_refused_as_truncated() {
    let whole = jpeg(&photo(200, 150));
    let message = refusal(process_image(&whole[..whole.len() / 2], &rules()));
    assert!(
        message.contains("damaged image") && message.contains("truncated"),
        "{message}"
    );
}

#[test]
fn markup_and_documents_are_refused_as_unsupported_whatever_they_are_called() {
    let disguised: [&[u8]; 5] = [
        b"<html><body><script>alert(document.cookie)</script></body></html>",
        b"<?xml version=\"1.0\"?><svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>",
        b"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"10\" height=\"10\"/>",
        b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n",
        b"GIF8", // a signature's start, not a whole one
    ];
    for bytes in disguised {
        let message = refusal(process_image(bytes, &rules()));
        assert!(message.starts_with("unsupported file type"), "{message}");
    }
}

#[test]
fn a_png_declaring_30000_by_30000_pixels_is_refused_from_its_header() {
    let bomb = png_declaring(30_000, 30_000);
    assert!(bomb.len() < 100);
    let message = refusal(process_image(&bomb, &rules()));
    assert_eq!(
        message,
        "too many pixels: the image is 30000 × 30000 pixels, the most accepted is 40000000 pixels"
    );
}

#[test]
fn the_decoders_own_limits_refuse_a_side_beyond_them_even_when_the_pixel_limit_allows_it() {
    let rules = ImageRules {
        max_pixels: u64::MAX,
        ..rules()
    };
    let message = refusal(process_image(&png_declaring(70_000, 1), &rules));
    assert!(message.starts_with("too many pixels"), "{message}");
}

#[test]
fn a_file_over_the_byte_limit_is_refused() {
    let bytes = jpeg(&photo(200, 150));
    let rules = ImageRules {
        max_bytes: 1000,
        ..rules()
    };
    let message = refusal(process_image(&bytes, &rules));
    assert_eq!(
        message,
        format!(
            "file too large: {} bytes, the most accepted is 1000 bytes",
            bytes.len()
        )
    );
}

#[test]
fn an_image_with_another_file_after_its_end_is_refused() {
    let picture = DynamicImage::ImageRgb8(photo(40, 30));
    let mut png_then_html = encode(&picture, ImageFormat::Png);
    png_then_html.extend_from_slice(b"<html><script>alert(1)</script></html>");
    let mut gif_then_zip = encode(&picture, ImageFormat::Gif);
    gif_then_zip.extend_from_slice(b"PK\x03\x04\x14\x00\x00\x00\x08\x00");
    let mut jpeg_then_html = jpeg(picture.as_rgb8().unwrap());
    jpeg_then_html.extend_from_slice(b"<script>alert(1)</script>");
    let mut webp_then_html = encode(&picture, ImageFormat::WebP);
    webp_then_html.extend_from_slice(b"<html></html>");
    for bytes in [png_then_html, gif_then_zip, jpeg_then_html, webp_then_html] {
        let message = refusal(process_image(&bytes, &rules()));
        assert!(message.contains("follow the end of the image"), "{message}");
    }
}

#[test]
fn a_motion_photo_keeps_its_still_and_drops_its_video() {
    let mut motion = jpeg(&photo(40, 30));
    motion.extend_from_slice(b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom");
    let processed = process_image(&motion, &rules()).expect("a motion photo is accepted");
    assert_eq!(
        (processed.largest().width, processed.largest().height),
        (40, 30)
    );
}

#[test]
fn exif_orientation_is_applied_and_no_metadata_gps_above_all_survives() {
    // Stored 64 × 32, red on the left, blue on the right: shown turned 90°
    // clockwise, that is 32 × 64 with red on top.
    let stored = RgbImage::from_fn(64, 32, |x, _| match x < 32 {
        true => Rgb([230, 20, 20]),
        false => Rgb([20, 20, 230]),
    });
    let exif = exif_with_orientation_6_and_gps();
    let upload = with_app1(&jpeg(&stored), &exif);
    let mut decoder = JpegDecoder::new(Cursor::new(&upload)).unwrap();
    assert!(
        decoder.exif_metadata().unwrap().is_some(),
        "the upload carries EXIF"
    );
    let gps_latitude = &exif[exif.len() - 24..];

    let processed = process_image(&upload, &rules()).unwrap();
    assert_eq!((processed.source.width, processed.source.height), (32, 64));
    for variant in &processed.variants {
        let bytes = &variant.bytes[..];
        assert!(
            !bytes.windows(4).any(|w| w == b"Exif"),
            "an Exif block survived"
        );
        assert!(
            !bytes.windows(24).any(|w| w == gps_latitude),
            "the GPS latitude survived"
        );
        let mut decoder = JpegDecoder::new(Cursor::new(bytes)).unwrap();
        assert_eq!(decoder.exif_metadata().unwrap(), None);
        assert_eq!(decoder.xmp_metadata().unwrap(), None);
        let out = decoded(variant);
        assert_eq!(out.dimensions(), (32, 64));
        let (top, bottom) = (out.get_pixel(16, 8), out.get_pixel(16, 56));
        assert!(top[0] > 180 && top[2] < 80, "top should be red: {top:?}");
        assert!(
            bottom[2] > 180 && bottom[0] < 80,
            "bottom should be blue: {bottom:?}"
        );
    }
}

#[test]
fn sizes_are_capped_at_the_image_and_never_upscaled() {
    let rules = rules();
    assert_eq!(rules.long_sides_for(4000), [1280, 640, 160]);
    assert_eq!(rules.long_sides_for(1280), [1280, 640, 160]);
    assert_eq!(rules.long_sides_for(500), [500, 160]);
    assert_eq!(rules.long_sides_for(160), [160]);
    assert_eq!(rules.long_sides_for(90), [90]);
    let unordered = ImageRules {
        sizes: vec![160, 1280, 640, 640],
        ..ImageRules::default()
    };
    assert_eq!(unordered.long_sides_for(700), [700, 640, 160]);
    let none = ImageRules {
        sizes: vec![],
        ..ImageRules::default()
    };
    assert_eq!(none.long_sides_for(700), [700]);

    let small = process_image(&jpeg(&photo(500, 250)), &rules).unwrap();
    let sizes: Vec<_> = small.variants.iter().map(|v| (v.width, v.height)).collect();
    assert_eq!(sizes, [(500, 250), (160, 80)]);

    let large = process_image(&jpeg(&photo(1500, 1000)), &rules).unwrap();
    let sizes: Vec<_> = large.variants.iter().map(|v| (v.width, v.height)).collect();
    assert_eq!(sizes, [(1280, 853), (640, 427), (160, 107)]);
    assert_eq!((large.source.width, large.source.height), (1500, 1000));
    assert_eq!(large.variant_for(200).width, 640);
    assert_eq!(large.variant_for(160).width, 160);
    assert_eq!(large.variant_for(5000).width, 1280);
}

#[test]
fn transparency_is_composited_onto_white() {
    // Left half transparent red, right half opaque black, middle rows black
    // at half opacity.
    let image = RgbaImage::from_fn(40, 20, |x, y| match (x < 20, (8..12).contains(&y)) {
        (_, true) => Rgba([0, 0, 0, 128]),
        (true, false) => Rgba([255, 0, 0, 0]),
        (false, false) => Rgba([0, 0, 0, 255]),
    });
    let image = DynamicImage::ImageRgba8(image);
    for format in [ImageFormat::Png, ImageFormat::WebP] {
        let processed = process_image(&encode(&image, format), &rules()).unwrap();
        let out = decoded(processed.largest());
        let (clear, opaque, half) = (
            out.get_pixel(5, 2),
            out.get_pixel(35, 2),
            out.get_pixel(5, 10),
        );
        assert!(
            clear.0.iter().all(|&c| c > 240),
            "{format:?}: transparent should be white: {clear:?}"
        );
        assert!(
            opaque.0.iter().all(|&c| c < 20),
            "{format:?}: opaque black stays black: {opaque:?}"
        );
        assert!(
            half.0.iter().all(|&c| (100..160).contains(&c)),
            "{format:?}: half black on white is grey: {half:?}"
        );
    }
}

#[test]
fn an_animated_gif_keeps_its_first_frame() {
    let frame = |colour: [u8; 4]| image::Frame::new(RgbaImage::from_pixel(30, 20, Rgba(colour)));
    let mut gif = Vec::new();
    {
        let mut encoder = GifEncoder::new(&mut gif);
        encoder
            .encode_frames([frame([220, 10, 10, 255]), frame([10, 10, 220, 255])])
            .unwrap();
    }
    let processed = process_image(&gif, &rules()).unwrap();
    assert_eq!(processed.source.kind, ImageKind::Gif);
    let out = decoded(processed.largest());
    let pixel = out.get_pixel(15, 10);
    assert!(
        pixel[0] > 180 && pixel[2] < 60,
        "the first frame is red: {pixel:?}"
    );
}

#[test]
fn the_placeholder_is_a_thumbhash_of_the_images_shape() {
    use base64::Engine as _;
    for (width, height) in [(400, 200), (120, 300)] {
        let processed = process_image(&jpeg(&photo(width, height)), &rules()).unwrap();
        let hash = base64::engine::general_purpose::STANDARD
            .decode(&processed.placeholder)
            .expect("standard base64");
        let (w, h, rgba) = thumbhash::thumb_hash_to_rgba(&hash).expect("a ThumbHash");
        assert_eq!(rgba.len(), w * h * 4);
        let aspect = w as f32 / h as f32;
        let expected = width as f32 / height as f32;
        assert!(
            (aspect - expected).abs() < 0.15 * expected,
            "{w}×{h} for {width}×{height}"
        );
    }
}

#[tokio::test]
async fn the_processor_works_off_the_runtime_and_refuses_an_oversized_upload_before_waiting() {
    let processor = ImageProcessor::new(rules(), 1);
    let uploads = (0..3).map(|_| bytes::Bytes::from(jpeg(&photo(200, 100))));
    let results =
        futures_util::future::join_all(uploads.map(|bytes| processor.process(bytes))).await;
    for result in results {
        assert_eq!(result.unwrap().largest().width, 200);
    }
    let small = ImageProcessor::new(
        ImageRules {
            max_bytes: 10,
            ..rules()
        },
        1,
    );
    let message = refusal(
        small
            .process(bytes::Bytes::from(jpeg(&photo(20, 10))))
            .await,
    );
    assert!(message.starts_with("file too large"), "{message}");
    let message = refusal(small.process(bytes::Bytes::from_static(b"<html>")).await);
    assert!(message.starts_with("unsupported file type"), "{message}");
}
