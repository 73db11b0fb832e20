//! Arbitrary bytes as an ONNX model: decoding the protobuf, reading initializers, importing the
//! nodes and fusing them must return a model or an error, never panic or run out of memory.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(model) = gradcam::Model::from_bytes(Path::new("fuzz.onnx"), data.to_vec()) {
        assert!(model.classes > 0);
        assert!(model
            .target_layers
            .iter()
            .any(|(name, _)| *name == model.default_layer));
    }
});
