//! Image decoding on the CPU: any format the `image` crate reads, turned as a viewer shows it
//! (EXIF orientation applied), to RGB8 (grayscale replicated, alpha dropped).

use std::fs::File;
use std::io::{BufRead, BufReader, Cursor, Seek};
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
///
/// Only a regular file is read: a FIFO, socket or device is an error at once, without blocking
/// (the file is opened non-blocking and checked before any read). A file larger than
/// [`max_file_bytes`] is refused before reading, and the image is decoded from the file as it is
/// read, never from a whole-file copy.
pub fn decode_image_limited(path: impl AsRef<Path>, max_pixels: u64) -> Result<image::RgbImage> {
    let path = path.as_ref();
    let fail = |reason: String| Error::Image {
        path: path.to_path_buf(),
        reason,
    };
    let file = open_regular(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let len = file
        .metadata()
        .map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?
        .len();
    if len == 0 {
        return Err(fail("the file is empty".into()));
    }
    let limit = max_file_bytes(max_pixels);
    if len > limit {
        return Err(fail(format!(
            "the file is {len} bytes, more than {limit} (the most an image within --max-pixels \
             {max_pixels} can take)"
        )));
    }
    decode_reader(path, BufReader::new(file), max_pixels)
}

/// The largest image file read for a pixel limit: 8 bytes per pixel (16-bit RGBA, uncompressed)
/// plus 16 MiB of headers and metadata.
pub fn max_file_bytes(max_pixels: u64) -> u64 {
    max_pixels.saturating_mul(8).saturating_add(16 << 20)
}

/// Opens `path` for reading if it is a regular file (following symlinks), without ever blocking
/// on a FIFO or device.
fn open_regular(path: &Path) -> std::io::Result<File> {
    // Refused before opening (opening some devices has effects), and checked again on the
    // opened file in case the name changed in between.
    check_regular(&std::fs::metadata(path)?)?;
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // O_NONBLOCK: opening a FIFO with no writer returns at once instead of waiting.
        options.custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32);
    }
    let file = options.open(path)?;
    check_regular(&file.metadata()?)?;
    Ok(file)
}

fn check_regular(meta: &std::fs::Metadata) -> std::io::Result<()> {
    if meta.is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "is a folder, not an image file",
        ));
    }
    if !meta.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file (a FIFO, socket or device is not read)",
        ));
    }
    Ok(())
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
    if bytes.is_empty() {
        return Err(Error::Image {
            path: path.to_path_buf(),
            reason: "the file is empty".into(),
        });
    }
    decode_reader(path, Cursor::new(bytes), max_pixels)
}

/// Decodes from `reader`, checking the size from the header before decoding the pixels.
fn decode_reader<R: BufRead + Seek>(
    path: &Path,
    reader: R,
    max_pixels: u64,
) -> Result<image::RgbImage> {
    let fail = |reason: String| Error::Image {
        path: path.to_path_buf(),
        reason: one_line(&reason),
    };
    let reader = ImageReader::new(reader)
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
    Ok(img.into_rgb8())
}
