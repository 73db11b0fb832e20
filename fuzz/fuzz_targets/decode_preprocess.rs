//! Arbitrary bytes as an image file: decoding (any format the engine accepts, EXIF orientation,
//! the pixel limit) and the CPU side of preprocessing (packing the batch for the GPU) must return
//! a value or an error, never panic or run out of memory.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // A small pixel limit keeps each run fast; the limit check itself is part of what is fuzzed.
    let Ok(img) = gradcam::decode_image_bytes_limited(Path::new("fuzz.img"), data, 1 << 20) else {
        return;
    };
    assert!(img.width() > 0 && img.height() > 0);
    assert_eq!(img.as_raw().len(), img.width() as usize * img.height() as usize * 3);
    let mut bytes = Vec::new();
    let (metas, total) = gradcam::pipeline::pack_images(&[&img, &img], &mut bytes).expect("two decoded images pack");
    assert_eq!(metas.len(), 2);
    assert_eq!(u64::from(total), 2 * u64::from(img.width()) * u64::from(img.height()));
    assert_eq!(bytes.len() % 4, 0);
    assert_eq!(metas[1].offset as usize, img.as_raw().len());
});
