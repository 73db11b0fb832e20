//! Arbitrary bytes as a weights file: the loader must return a value or an error, never panic,
//! whatever the header, offsets, dtypes, shapes or values.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.safetensors");
    // Every tensor the header lists, at its own shape: exercises dtype conversion and value checks
    // on whatever the file holds.
    if let Ok(file) = gradcam::model::WeightFile::from_bytes(path, data.to_vec()) {
        for (name, shape) in file.entries() {
            let _ = file.tensor(&name, &shape);
        }
    }
    // The whole architecture: names, shapes, BatchNorm folding.
    let _ = gradcam::Model::from_bytes(path, data.to_vec());
});
