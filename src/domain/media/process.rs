//! From an uploaded image to what is stored: checked by its bytes, bounded
//! before it is decoded, turned upright, flattened, scaled to each size and
//! re-encoded as JPEG with no metadata, plus a ThumbHash placeholder.
//!
//! Output decisions:
//! - Every size is a baseline JPEG at quality 82 (`image/jpeg`), whatever came
//!   in. Clients get one type they all decode; photos (what profiles and chats
//!   carry) are several times smaller than as PNG or lossless WebP (the only
//!   WebP `image` writes without C), and encoding costs the same whatever the
//!   upload was, so a crafted PNG cannot make kith write huge files.
//! - Transparency is composited onto white, the background of most apps'
//!   light theme; a sticker with a transparent background shows on a white
//!   card. Animations (GIF, animated WebP) keep their first frame only.
//! - Re-encoding from pixels drops everything else the file carried: EXIF
//!   (GPS position, camera serial, times), XMP, IPTC, comments, ICC profiles,
//!   PNG text chunks. The EXIF orientation is applied to the pixels first, so
//!   nothing downstream needs to know it.
//! - Each configured size is a long side; the one produced for it is
//!   `min(size, the image's long side)`, never larger than the upload, and
//!   sizes that come out equal are produced once. Smaller sizes are scaled
//!   from the next larger output (Lanczos3, fast_image_resize), not from the
//!   original: the same quality at a fraction of the work.

use std::{io::Cursor, sync::Arc};

use base64::Engine as _;
use bytes::Bytes;
use fast_image_resize::{
    FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer,
    images::{Image as ResizeImage, ImageRef},
};
use image::{
    DynamicImage, ImageDecoder, ImageError, ImageReader, Limits, RgbImage,
    codecs::jpeg::JpegEncoder, metadata::Orientation,
};
use tokio::sync::Semaphore;

use super::sniff::{ImageKind, sniff};
use crate::{
    config::Settings,
    error::{AppError, AppResult},
};

/// The JPEG quality of every output: where photos stop showing artefacts at
/// phone sizes while staying a fraction of the upload's bytes.
pub const JPEG_QUALITY: u8 = 82;
pub const OUTPUT_MIME_TYPE: &str = "image/jpeg";
/// The placeholder is computed from a version at most this long on its long
/// side (ThumbHash's own limit).
const PLACEHOLDER_SOURCE_SIDE: u32 = 100;

/// What an upload may be and which sizes are made of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRules {
    /// Largest accepted upload, in bytes.
    pub max_bytes: usize,
    /// Most pixels (width × height, as the header declares them) accepted.
    pub max_pixels: u64,
    /// Long sides to produce, in pixels; order and repeats do not matter.
    pub sizes: Vec<u32>,
}

impl Default for ImageRules {
    fn default() -> Self {
        Self {
            max_bytes: 10 * 1024 * 1024,
            max_pixels: 40_000_000,
            sizes: vec![1280, 640, 160],
        }
    }
}

impl ImageRules {
    /// The rules the operator set (`KITH_MEDIA_*`).
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            max_bytes: settings.media_max_bytes,
            max_pixels: settings.media_max_pixels,
            sizes: settings.media_sizes.0.clone(),
        }
    }

    /// The decoder's own limits, a second line behind the header check: no
    /// side over 65,535 (JPEG's own bound) and no more memory than the largest
    /// accepted image takes at 8 bytes a pixel (16-bit RGBA PNG, the widest
    /// the four formats decode to).
    fn decoder_limits(&self) -> Limits {
        let mut limits = Limits::default();
        limits.max_image_width = Some(u32::from(u16::MAX));
        limits.max_image_height = Some(u32::from(u16::MAX));
        limits.max_alloc = Some(self.max_pixels.saturating_mul(8));
        limits
    }

    /// The long sides produced for an image whose long side is `long_side`:
    /// each size capped at it, largest first, each once.
    pub fn long_sides_for(&self, long_side: u32) -> Vec<u32> {
        let mut sides: Vec<u32> = self
            .sizes
            .iter()
            .filter(|&&size| size > 0)
            .map(|&size| size.min(long_side))
            .collect();
        sides.sort_unstable_by(|a, b| b.cmp(a));
        sides.dedup();
        if sides.is_empty() {
            // No size asked for (settings refuse that): the image as it is.
            sides.push(long_side);
        }
        sides
    }
}

/// One stored size of an image.
#[derive(Clone, Debug)]
pub struct Variant {
    pub width: u32,
    pub height: u32,
    pub mime_type: &'static str,
    pub bytes: Bytes,
}

impl Variant {
    pub fn long_side(&self) -> u32 {
        self.width.max(self.height)
    }
}

/// What an upload was, as received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Source {
    pub kind: ImageKind,
    /// Upright, after the EXIF orientation is applied.
    pub width: u32,
    pub height: u32,
    pub bytes: usize,
}

/// An upload made ready to store.
#[derive(Clone, Debug)]
pub struct Processed {
    pub source: Source,
    /// Largest first; never empty.
    pub variants: Vec<Variant>,
    /// ThumbHash of the image, standard base64 (about 25 to 35 characters).
    pub placeholder: String,
}

impl Processed {
    /// The largest size: its width, height, type and byte count are the ones
    /// a `Photo` or `Attachment` shows.
    pub fn largest(&self) -> &Variant {
        &self.variants[0]
    }

    /// The variant to serve for a requested long side: the smallest one at
    /// least that long, or the largest there is.
    pub fn variant_for(&self, long_side: u32) -> &Variant {
        self.variants
            .iter()
            .rev()
            .find(|variant| variant.long_side() >= long_side)
            .unwrap_or(self.largest())
    }
}

/// Image work off the async runtime, a bounded number at once.
///
/// Peak memory is bounded by `permits` × one processing: the upload
/// (≤ `max_bytes`), its decoded pixels (≤ `max_pixels` × 8 bytes for a
/// 16-bit RGBA PNG, × 3 for a photo) and its RGB copy, and the outputs (a
/// fraction of that). With the defaults, 40 MP: about 120 MB per photo and at
/// worst ~450 MB for a 16-bit RGBA PNG; the semaphore keeps the rest waiting.
#[derive(Clone)]
pub struct ImageProcessor {
    rules: Arc<ImageRules>,
    permits: Arc<Semaphore>,
}

impl ImageProcessor {
    /// `concurrency` images processed at once (at least one).
    pub fn new(rules: ImageRules, concurrency: usize) -> Self {
        Self {
            rules: Arc::new(rules),
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
        }
    }

    pub fn rules(&self) -> &ImageRules {
        &self.rules
    }

    /// Processes `bytes` on a blocking thread once a permit is free. An upload
    /// over the byte limit is refused before waiting for one.
    pub async fn process(&self, bytes: Bytes) -> AppResult<Processed> {
        check_size(bytes.len(), self.rules.max_bytes)?;
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| AppError::Internal(anyhow::anyhow!("image processor closed")))?;
        let rules = self.rules.clone();
        tokio::task::spawn_blocking(move || {
            // Held by the work, not the caller: a caller that goes away does
            // not free the permit of work still running.
            let _permit = permit;
            process_image(&bytes, &rules)
        })
        .await
        .map_err(|err| AppError::Internal(anyhow::anyhow!("image processing panicked: {err}")))?
    }
}

fn check_size(bytes: usize, max_bytes: usize) -> AppResult<()> {
    if bytes > max_bytes {
        return Err(AppError::bad_input(
            "file",
            format!("file too large: {bytes} bytes, the most accepted is {max_bytes} bytes"),
        ));
    }
    Ok(())
}

fn too_many_pixels(width: u32, height: u32, max_pixels: u64) -> AppError {
    AppError::bad_input(
        "file",
        format!(
            "too many pixels: the image is {width} × {height} pixels, the most accepted is \
             {max_pixels} pixels"
        ),
    )
}

/// A decoder's refusal, in words for the client.
fn decode_error(err: ImageError, kind: ImageKind) -> AppError {
    match err {
        // Only the decoder's own limits get here, the header check having
        // passed: said apart, so a test can tell which line refused.
        ImageError::Limits(err) => AppError::bad_input(
            "file",
            format!("too many pixels: the image is more than the decoder may take ({err})"),
        ),
        ImageError::Unsupported(err) => AppError::bad_input(
            "file",
            format!("unsupported image: {} ({err})", kind.mime_type()),
        ),
        err @ (ImageError::Decoding(_) | ImageError::IoError(_) | ImageError::Parameter(_)) => {
            AppError::bad_input(
                "file",
                format!(
                    "damaged image: the {} could not be decoded ({err})",
                    kind.mime_type()
                ),
            )
        }
        err => AppError::Internal(anyhow::Error::new(err).context("decoding an upload")),
    }
}

/// Everything `ImageProcessor::process` does, on the calling thread: for
/// tests, benchmarks and callers already off the runtime.
pub fn process_image(bytes: &[u8], rules: &ImageRules) -> AppResult<Processed> {
    check_size(bytes.len(), rules.max_bytes)?;
    let kind = sniff(bytes)?;

    let mut reader = ImageReader::with_format(Cursor::new(bytes), kind.image_format());
    reader.limits(rules.decoder_limits());
    // Reads the header only; a limit refused here is a dimension limit.
    let mut decoder = reader
        .into_decoder()
        .map_err(|err| decode_error(err, kind))?;
    let (width, height) = decoder.dimensions();
    if u64::from(width) * u64::from(height) > rules.max_pixels {
        return Err(too_many_pixels(width, height, rules.max_pixels));
    }
    if width == 0 || height == 0 {
        return Err(AppError::bad_input(
            "file",
            "damaged image: it has no pixels",
        ));
    }
    // A damaged EXIF block costs the photo its rotation, not its upload.
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let mut limits = rules.decoder_limits();
    let reserved = limits
        .reserve(decoder.total_bytes())
        .and_then(|()| decoder.set_limits(limits));
    reserved.map_err(|err| decode_error(err, kind))?;
    let image = DynamicImage::from_decoder(decoder).map_err(|err| decode_error(err, kind))?;

    let flat = flatten_onto_white(image);
    let upright = |w: u32, h: u32| match orientation {
        Orientation::Rotate90
        | Orientation::Rotate270
        | Orientation::Rotate90FlipH
        | Orientation::Rotate270FlipH => (h, w),
        _ => (w, h),
    };
    let (source_width, source_height) = upright(width, height);

    // Scaled in the stored orientation and turned afterwards: turning the
    // outputs costs far less than turning the full-size image.
    let mut variants = Vec::new();
    let mut resizer = Resizer::new();
    let mut previous = flat;
    for long_side in rules.long_sides_for(width.max(height)) {
        let scaled = scale_to_long_side(&mut resizer, &previous, long_side)?;
        variants.push(encode_upright(&scaled, orientation)?);
        previous = scaled;
    }
    let small = scale_to_long_side(
        &mut resizer,
        &previous,
        PLACEHOLDER_SOURCE_SIDE.min(previous.width().max(previous.height())),
    )?;
    let mut small = DynamicImage::ImageRgb8(small);
    small.apply_orientation(orientation);
    let small = small.to_rgba8();
    let hash = thumbhash::rgba_to_thumb_hash(
        small.width() as usize,
        small.height() as usize,
        small.as_raw(),
    );

    Ok(Processed {
        source: Source {
            kind,
            width: source_width,
            height: source_height,
            bytes: bytes.len(),
        },
        variants,
        placeholder: base64::engine::general_purpose::STANDARD.encode(hash),
    })
}

/// RGB pixels, any transparency composited onto white.
fn flatten_onto_white(image: DynamicImage) -> RgbImage {
    if !image.color().has_alpha() {
        return image.into_rgb8();
    }
    let rgba = image.into_rgba8();
    let (width, height) = rgba.dimensions();
    let mut rgb = Vec::with_capacity(width as usize * height as usize * 3);
    for pixel in rgba.pixels() {
        let [r, g, b, a] = pixel.0;
        let alpha = u32::from(a);
        for channel in [r, g, b] {
            let blended = (u32::from(channel) * alpha + 255 * (255 - alpha) + 127) / 255;
            rgb.push(blended as u8);
        }
    }
    RgbImage::from_raw(width, height, rgb).expect("three bytes for every pixel")
}

/// `image` with its long side `long_side` (the same image when it already is).
fn scale_to_long_side(
    resizer: &mut Resizer,
    image: &RgbImage,
    long_side: u32,
) -> AppResult<RgbImage> {
    let (width, height) = image.dimensions();
    let current = width.max(height);
    if long_side >= current {
        return Ok(image.clone());
    }
    let scale = |side: u32| {
        ((u64::from(side) * u64::from(long_side) + u64::from(current) / 2) / u64::from(current))
            .max(1) as u32
    };
    let (new_width, new_height) = (scale(width), scale(height));
    let resize_failed = |err: &dyn std::fmt::Display| {
        AppError::Internal(anyhow::anyhow!("resizing an image: {err}"))
    };
    let source = ImageRef::new(width, height, image.as_raw(), PixelType::U8x3)
        .map_err(|e| resize_failed(&e))?;
    let mut target = ResizeImage::new(new_width, new_height, PixelType::U8x3);
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3));
    resizer
        .resize(&source, &mut target, &options)
        .map_err(|e| resize_failed(&e))?;
    RgbImage::from_raw(new_width, new_height, target.into_vec())
        .ok_or_else(|| resize_failed(&"the resized buffer has the wrong length"))
}

fn encode_upright(image: &RgbImage, orientation: Orientation) -> AppResult<Variant> {
    let turned;
    let upright = match orientation {
        Orientation::NoTransforms => image,
        _ => {
            let mut image = DynamicImage::ImageRgb8(image.clone());
            image.apply_orientation(orientation);
            turned = image.into_rgb8();
            &turned
        }
    };
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY)
        .encode_image(upright)
        .map_err(|err| AppError::Internal(anyhow::Error::new(err).context("encoding a JPEG")))?;
    Ok(Variant {
        width: upright.width(),
        height: upright.height(),
        mime_type: OUTPUT_MIME_TYPE,
        bytes: Bytes::from(out),
    })
}
