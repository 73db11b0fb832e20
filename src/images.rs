//! Image decoding on the CPU: any format the `image` crate reads, turned as a viewer shows it
//! (EXIF orientation applied), to RGB8 (grayscale replicated, alpha dropped).

use std::io::Cursor;
use std::path::Path;

use image::{DynamicImage, ImageDecoder, ImageReader};

use crate::error::{Error, Result};

/// Decodes the image file at `path` to RGB8.
pub fn decode_image(path: impl AsRef<Path>) -> Result<image::RgbImage> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    decode_image_bytes(path, &bytes)
}

/// Decodes an in-memory image; `path` is only used in messages.
pub fn decode_image_bytes(path: &Path, bytes: &[u8]) -> Result<image::RgbImage> {
    let fail = |reason: String| Error::Image {
        path: path.to_path_buf(),
        reason,
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
    let orientation = decoder.orientation().map_err(|e| fail(e.to_string()))?;
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| fail(e.to_string()))?;
    img.apply_orientation(orientation);
    if img.width() == 0 || img.height() == 0 {
        return Err(fail("the image has no pixels".into()));
    }
    Ok(img.to_rgb8())
}
