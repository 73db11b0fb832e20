//! Float32 ties between the engine's forward pass and the reference's (tools/make_arch_fixtures.py
//! `flips`), pinned to the reference's side before comparing gradients.

use std::collections::HashMap;

use gradcam::model::{Activation, Op};

use super::Fixture;

/// Sets each op an arch fixture lists as on the edge of float32 rounding (its `flips`: activations
/// near their step, max-pool windows with two near-equal largest values) that went the other way
/// here to the reference's side, in the forward activations of image 0 on the GPU; returns how
/// many (the tensors the backward pass reads; the others share buffers). Then
/// [`gradcam::Explainer::run_backward`] gives the backward pass the reference took.
pub fn pin_ties(explainer: &gradcam::Explainer, flips: &Fixture) -> usize {
    let forward = explainer.forward();
    let model = forward.model();
    let queue = &forward.context().queue;
    // The k-th activation applied in the forward pass is the k-th op with an activation; the
    // k-th max pool, the k-th max-pool op.
    let activated: Vec<(usize, Activation)> = model
        .ops
        .iter()
        .filter_map(|op| match *op {
            Op::Conv { conv, output, .. } => Some((output, model.convs[conv].activation)),
            Op::Linear { linear, output, .. } => Some((output, model.linears[linear].activation)),
            Op::Elementwise { op, output, .. } => Some((output, model.elementwise[op].activation)),
            // The activation after a squeeze-and-excitation block's reduction; its mask is read
            // from the value before it, which a ReLU's side pins the same way.
            Op::SqueezeExcite { se, squeezed, .. } => {
                Some((squeezed, model.squeeze_excite[se].activation))
            }
            _ => None,
        })
        // The reference records ReLU and ReLU6 modules only.
        .filter(|(_, a)| {
            matches!(
                a,
                Activation::Relu | Activation::Relu6 | Activation::FunctionalRelu
            )
        })
        .collect();
    let pools: Vec<usize> = model
        .ops
        .iter()
        .filter_map(|op| match *op {
            Op::MaxPool { input, .. } => Some(input),
            _ => None,
        })
        .collect();
    // Each tensor read back once (image 0 of the batch).
    let mut read: HashMap<usize, Vec<f32>> = HashMap::new();
    let mut value = |tensor: usize, c: usize, y: usize, x: usize| {
        let t = &model.tensors[tensor];
        let index = (y * t.width as usize + x) * t.channels as usize + c;
        let values = read
            .entry(tensor)
            .or_insert_with(|| forward.read_tensor(tensor).expect("read activation"));
        (values[index], index as u64 * 4)
    };
    let mut pinned = 0;
    for row in flips.data.chunks_exact(8) {
        let v: Vec<usize> = row.iter().map(|x| *x as usize).collect();
        let (k, c, y, x) = (v[1], v[2], v[3], v[4]);
        // A tensor the backward pass does not read shares its buffer (gradcam::Forward::keeps):
        // its ties cannot change the gradients.
        let tensor = if v[0] == 0 { activated[k].0 } else { pools[k] };
        if !forward.keeps(tensor) {
            continue;
        }
        let (tensor, at, set) = if v[0] == 0 {
            let (tensor, activation) = activated[k];
            let (out, at) = value(tensor, c, y, x);
            let passes = match activation {
                Activation::Relu6 => out > 0.0 && out < 6.0,
                _ => out > 0.0,
            };
            let reference_passes = v[5] == 1;
            if passes == reference_passes {
                continue;
            }
            // The backward pass reads only the activation's side from its output.
            let set = match (reference_passes, out < 3.0) {
                (true, true) => f32::MIN_POSITIVE,
                (true, false) => 6.0f32.next_down(),
                (false, true) => 0.0,
                (false, false) => 6.0,
            };
            (tensor, at, set)
        } else {
            // This engine routes a window's gradient to its first largest value, row-major; the
            // reference chose (y, x) over (v[6], v[7]).
            let ((first, at), (second, _)) =
                (value(pools[k], c, y, x), value(pools[k], c, v[6], v[7]));
            if first > second || (first == second && (y, x) < (v[6], v[7])) {
                continue;
            }
            let set = if (y, x) < (v[6], v[7]) {
                second
            } else {
                second.next_up()
            };
            (pools[k], at, set)
        };
        queue.write_buffer(forward.tensor(tensor), at, bytemuck::bytes_of(&set));
        pinned += 1;
    }
    pinned
}
