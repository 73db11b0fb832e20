//! Image decoding on the CPU: any format the `image` crate reads, turned as a viewer shows it
//! (EXIF orientation applied), to RGB8 (grayscale replicated, alpha dropped).

use std::io::Cursor;
use std::path::Path;

use image::{DynamicImage, ImageDecoder, ImageReader};

use crate::error::{one_line, Error, Result};

/// The largest image decoded by default, in pixels (`--max-pixels`): 32 million, e.g. 8000×4000.
/// Its RGB8 upload and RGBA8 overlay fit one 128 MiB storage binding, the smallest the engine
/// meets (lavapipe's).
pub const DEFAULT_MAX_PIXELS: u64 = 32_000_000;

/// Decodes the image file at `path` to RGB8, refusing images over [`DEFAULT_MAX_PIXELS`].
pub fn decode_image(path: impl AsRef<Path>) -> Result<image::RgbImage> {
    decode_image_limited(path, DEFAULT_MAX_PIXELS)
}

/// Decodes the image file at `path` to RGB8, refusing images of more than `max_pixels` pixels
/// before decoding them.
pub fn decode_image_limited(path: impl AsRef<Path>, max_pixels: u64) -> Result<image::RgbImage> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    decode_image_bytes_limited(path, &bytes, max_pixels)
}

/// Decodes an in-memory image; `path` is only used in messages.
pub fn decode_image_bytes(path: &Path, bytes: &[u8]) -> Result<image::RgbImage> {
    decode_image_bytes_limited(path, bytes, DEFAULT_MAX_PIXELS)
}

/// Decodes an in-memory image of at most `max_pixels` pixels; `path` is only used in messages.
pub fn decode_image_bytes_limited(
    path: &Path,
    bytes: &[u8],
    max_pixels: u64,
) -> Result<image::RgbImage> {
    let fail = |reason: String| Error::Image {
        path: path.to_path_buf(),
        reason: one_line(&reason),
    };
    if bytes.is_empty() {
        return Err(fail("the file is empty".into()));
    }
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| fail(e.to_string()))?;
    if reader.format().is_none() {
        return Err(fail("not a recognised image format".into()));
    }
    let mut decoder = reader.into_decoder().map_err(|e| fail(e.to_string()))?;
    let (w, h) = decoder.dimensions();
    let pixels = u64::from(w) * u64::from(h);
    if pixels > max_pixels {
        return Err(fail(format!(
            "{w}×{h} is {pixels} pixels, more than the limit of {max_pixels} (--max-pixels)"
        )));
    }
    if pixels == 0 {
        return Err(fail(format!("{w}×{h}: the image has no pixels")));
    }
    let orientation = decoder.orientation().map_err(|e| fail(e.to_string()))?;
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| fail(e.to_string()))?;
    img.apply_orientation(orientation);
    if img.width() == 0 || img.height() == 0 {
        return Err(fail("the image has no pixels".into()));
    }
    Ok(img.to_rgb8())
}
