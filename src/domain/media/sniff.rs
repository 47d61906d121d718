//! What an upload is, judged by its bytes alone (never by a file name or a
//! client's `Content-Type`): the signature says which of the four accepted
//! formats it claims to be, and a walk over that format's container (JPEG
//! markers, PNG chunks, GIF blocks, the RIFF length of WebP) says whether the
//! image is whole and whether anything follows its end.
//!
//! Bytes after the end are refused: that is where a polyglot keeps its second
//! self (a ZIP or JAR after a GIF, HTML after a JPEG). The outputs are
//! re-encoded and the original is never served, so this is a second line; it
//! also turns away files a client cut short. One exception: a JPEG followed
//! by an MP4 (an ISO-BMFF `ftyp` box right after its end) is a phone's motion
//! photo, common enough that refusing it would refuse ordinary uploads; the
//! video is simply dropped.

use crate::error::{AppError, AppResult};

/// The accepted formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageKind {
    Jpeg,
    Png,
    Gif,
    WebP,
}

impl ImageKind {
    pub fn mime_type(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::Gif => "image/gif",
            Self::WebP => "image/webp",
        }
    }

    pub(super) fn image_format(self) -> image::ImageFormat {
        match self {
            Self::Jpeg => image::ImageFormat::Jpeg,
            Self::Png => image::ImageFormat::Png,
            Self::Gif => image::ImageFormat::Gif,
            Self::WebP => image::ImageFormat::WebP,
        }
    }
}

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// The format `bytes` claim by their first bytes, if one of the four.
pub fn kind_of(bytes: &[u8]) -> Option<ImageKind> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(ImageKind::Jpeg)
    } else if bytes.starts_with(PNG_SIGNATURE) {
        Some(ImageKind::Png)
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some(ImageKind::Gif)
    } else if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
        Some(ImageKind::WebP)
    } else {
        None
    }
}

/// Why a file of an accepted format was refused by its structure.
#[derive(Debug, PartialEq, Eq)]
enum Flaw {
    /// The file ends before the image does.
    Truncated,
    /// The structure is not the format's.
    Malformed(&'static str),
}

/// The accepted format of `bytes`, when the file is one whole image of it with
/// nothing after; a `BAD_USER_INPUT` error on `file` naming the fault otherwise.
pub fn sniff(bytes: &[u8]) -> AppResult<ImageKind> {
    if bytes.is_empty() {
        return Err(AppError::bad_input("file", "the file is empty"));
    }
    let kind = kind_of(bytes).ok_or_else(|| {
        AppError::bad_input(
            "file",
            "unsupported file type: only JPEG, PNG, WebP and GIF images are accepted",
        )
    })?;
    let end = match kind {
        ImageKind::Jpeg => jpeg_end(bytes),
        ImageKind::Png => png_end(bytes),
        ImageKind::Gif => gif_end(bytes),
        ImageKind::WebP => webp_end(bytes),
    }
    .map_err(|flaw| {
        let what = kind.mime_type();
        AppError::bad_input(
            "file",
            match flaw {
                Flaw::Truncated => {
                    format!("damaged image: the {what} file ends before its image does (truncated)")
                }
                Flaw::Malformed(detail) => {
                    format!("damaged image: not a valid {what} file ({detail})")
                }
            },
        )
    })?;
    let trailer = &bytes[end..];
    let motion_photo = kind == ImageKind::Jpeg && is_motion_photo_video(trailer);
    if !trailer.is_empty() && !motion_photo {
        return Err(AppError::bad_input(
            "file",
            format!(
                "damaged image: {} bytes follow the end of the image; a file that is \
                 also another type of file is refused",
                trailer.len()
            ),
        ));
    }
    Ok(kind)
}

fn is_motion_photo_video(trailer: &[u8]) -> bool {
    trailer.len() >= 8 && &trailer[4..8] == b"ftyp"
}

fn be16(bytes: &[u8], at: usize) -> Option<usize> {
    Some(u16::from_be_bytes(bytes.get(at..at + 2)?.try_into().ok()?).into())
}

fn be32(bytes: &[u8], at: usize) -> Option<usize> {
    usize::try_from(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?)).ok()
}

/// Where a JPEG's EOI marker ends: markers and their segments from SOI on,
/// each scan's entropy-coded data skipped up to the next real marker (a 0xFF
/// there is followed by a stuffed 0x00 or a restart marker).
fn jpeg_end(b: &[u8]) -> Result<usize, Flaw> {
    let mut i = 2;
    loop {
        if b.get(i) != Some(&0xFF) {
            return match i >= b.len() {
                true => Err(Flaw::Truncated),
                false => Err(Flaw::Malformed("a marker was expected")),
            };
        }
        while b.get(i) == Some(&0xFF) {
            i += 1;
        }
        let marker = *b.get(i).ok_or(Flaw::Truncated)?;
        i += 1;
        match marker {
            0xD9 => return Ok(i),
            0xD0..=0xD7 | 0x01 => continue,
            0x00 | 0xD8 => return Err(Flaw::Malformed("a marker out of place")),
            _ => {}
        }
        let length = be16(b, i).ok_or(Flaw::Truncated)?;
        if length < 2 {
            return Err(Flaw::Malformed("a segment shorter than its length field"));
        }
        i += length;
        if i > b.len() {
            return Err(Flaw::Truncated);
        }
        if marker == 0xDA {
            // Entropy-coded data runs to the first 0xFF not followed by 0x00
            // (a stuffed byte) or a restart marker.
            loop {
                let at = i + b[i..]
                    .iter()
                    .position(|&x| x == 0xFF)
                    .ok_or(Flaw::Truncated)?;
                match *b.get(at + 1).ok_or(Flaw::Truncated)? {
                    0x00 | 0xD0..=0xD7 => i = at + 2,
                    _ => {
                        i = at;
                        break;
                    }
                }
            }
        }
    }
}

/// Where a PNG's IEND chunk ends.
fn png_end(b: &[u8]) -> Result<usize, Flaw> {
    let mut i = PNG_SIGNATURE.len();
    loop {
        let length = be32(b, i).ok_or(Flaw::Truncated)?;
        if length > i32::MAX as usize {
            return Err(Flaw::Malformed("a chunk longer than the format allows"));
        }
        let kind = b.get(i + 4..i + 8).ok_or(Flaw::Truncated)?;
        let is_end = kind == b"IEND";
        i += 12 + length;
        if i > b.len() {
            return Err(Flaw::Truncated);
        }
        if is_end {
            return Ok(i);
        }
    }
}

/// Where a GIF's trailer byte ends: the header, the global colour table, then
/// extensions and images (each a run of sub-blocks) up to the trailer.
fn gif_end(b: &[u8]) -> Result<usize, Flaw> {
    fn colour_table(flags: u8) -> usize {
        match flags & 0x80 {
            0 => 0,
            _ => 3 << ((flags & 0x07) + 1),
        }
    }
    fn sub_blocks(b: &[u8], mut i: usize) -> Result<usize, Flaw> {
        loop {
            let size = usize::from(*b.get(i).ok_or(Flaw::Truncated)?);
            i += 1 + size;
            if size == 0 {
                return Ok(i);
            }
        }
    }
    let flags = *b.get(10).ok_or(Flaw::Truncated)?;
    let mut i = 13 + colour_table(flags);
    loop {
        match *b.get(i).ok_or(Flaw::Truncated)? {
            0x3B => return Ok(i + 1),
            0x21 => i = sub_blocks(b, i + 2)?,
            0x2C => {
                let flags = *b.get(i + 9).ok_or(Flaw::Truncated)?;
                // Descriptor, local colour table, LZW minimum code size.
                i = sub_blocks(b, i + 10 + colour_table(flags) + 1)?;
            }
            _ => return Err(Flaw::Malformed("an unknown block")),
        }
    }
}

/// Where a WebP's RIFF container ends, by its length field.
fn webp_end(b: &[u8]) -> Result<usize, Flaw> {
    let length = u32::from_le_bytes(b[4..8].try_into().map_err(|_| Flaw::Truncated)?);
    let end = 8 + usize::try_from(length).map_err(|_| Flaw::Truncated)?;
    if end > b.len() {
        return Err(Flaw::Truncated);
    }
    Ok(end)
}
