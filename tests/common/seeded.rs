//! Seeded weights, bit for bit as tools/seeded_weights.py makes them (see its docstring for the
//! rule): the architecture fixtures hold only a manifest of tensor names and shapes and the
//! reference's outputs, and the tests regenerate the weights the reference used.

use std::collections::HashMap;

use safetensors::tensor::TensorView;
use safetensors::Dtype;

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn fnv1a64(text: &str) -> u64 {
    text.bytes().fold(0xCBF2_9CE4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01B3)
    })
}

/// The values of float tensor `name` with `shape`.
pub fn seeded_values(name: &str, shape: &[usize], seed: u64) -> Vec<f32> {
    let n: usize = shape.iter().product();
    let key = splitmix64(seed ^ fnv1a64(name));
    let fan_in: usize = shape.iter().skip(1).product();
    let bound = (6.0 / fan_in as f64).sqrt();
    (0..n as u64)
        .map(|i| {
            let u = (splitmix64(key.wrapping_add(i)) >> 40) as f64 / f64::from(1u32 << 24);
            let v = if name.ends_with("running_var") {
                0.5 + u
            } else if name.ends_with("running_mean") {
                0.4 * u - 0.2
            } else if name.ends_with("weight") && shape.len() == 1 {
                0.5 + 0.5 * u
            } else if name.ends_with("layer_scale") || name.ends_with(".gamma") {
                0.2 + 0.3 * u
            } else if name.ends_with("bias") {
                0.2 * u - 0.1
            } else if ["_token", "pos_embed", "pos_embedding"]
                .iter()
                .any(|end| name.ends_with(end))
            {
                0.04 * u - 0.02
            } else if name.ends_with("weight") {
                (2.0 * u - 1.0) * bound
            } else {
                panic!("no seeded rule for tensor {name}")
            };
            v as f32
        })
        .collect()
}

/// A safetensors file holding every tensor of `manifest` (`[[name, shape, dtype], ...]`, as the
/// fixture's metadata lists `state_dict()`): float tensors seeded, integer ones zero.
pub fn seeded_safetensors(manifest: &str, seed: u64) -> Vec<u8> {
    seeded_safetensors_with(manifest, seed, None)
}

/// [`seeded_safetensors`] with the header's `__metadata__` (`{"num_heads": "3"}`).
pub fn seeded_safetensors_with(
    manifest: &str,
    seed: u64,
    metadata: Option<HashMap<String, String>>,
) -> Vec<u8> {
    let entries: Vec<(String, Vec<usize>, String)> =
        serde_json::from_str(manifest).expect("manifest is [[name, shape, dtype], ...]");
    let data: Vec<(String, Vec<usize>, Dtype, Vec<u8>)> = entries
        .into_iter()
        .map(|(name, shape, dtype)| {
            let n: usize = shape.iter().product();
            match dtype.as_str() {
                "float32" => {
                    let values = seeded_values(&name, &shape, seed);
                    (
                        name,
                        shape,
                        Dtype::F32,
                        bytemuck::cast_slice(&values).to_vec(),
                    )
                }
                "int64" => (name, shape, Dtype::I64, vec![0u8; n * 8]),
                other => panic!("manifest: {name} has dtype {other}"),
            }
        })
        .collect();
    let views: HashMap<String, TensorView> = data
        .iter()
        .map(|(name, shape, dtype, bytes)| {
            let view = TensorView::new(*dtype, shape.clone(), bytes).expect("tensor view");
            (name.clone(), view)
        })
        .collect();
    safetensors::serialize(&views, metadata).expect("serialize")
}
