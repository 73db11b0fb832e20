// The matrix X whose first principal component the eigen kernels take
// (src/pipeline/methods/eigen.rs `Source`), element i of [batch, pixels, channels], by
// `params.source`:
//   0  A (Eigen-CAM)
//   1  G * A (EigenGradCAM; HiResCAM's eigen-smooth)
//   2  w_c * A_c, the weights [batch, channels] bound as `gradient` (eigen-smooth of the
//      methods that weight channels: pytorch-grad-cam base_cam.py `weighted_activations`)
//   3  max(G * A, 0) (GradCAMElementWise's eigen-smooth)
//   4  max(G, 0) * A (LayerCAM's eigen-smooth)
// Uses the importer's `params` (pixels, channels, source), `activations` and `gradient`.

fn matrix_value(i: u32) -> f32 {
    let a = activations[i];
    switch params.source {
        case 1u: {
            return gradient[i] * a;
        }
        case 2u: {
            let c = params.channels;
            return gradient[(i / (params.pixels * c)) * c + i % c] * a;
        }
        case 3u: {
            return max(gradient[i] * a, 0.0);
        }
        case 4u: {
            return max(gradient[i], 0.0) * a;
        }
        default: {
            return a;
        }
    }
}
