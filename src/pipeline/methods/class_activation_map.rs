//! CAM (Zhou et al. 2016, "Learning Deep Features for Discriminative Localization"; torch-cam's
//! `CAM`, the reference for this method): the target class's classifier weights applied to the
//! activations of the layer that the global average pool before the linear classifier reads,
//! `Σ_c W[class, c] A_c`, without ReLU, min-max normalised at the layer's resolution as torch-cam's
//! `_normalize` (`(x − min) / (max − min + 1e-8)`). No backward pass. A network whose classifier
//! does not read that pool straight away (a hidden linear layer after it, a transformer's class
//! token) has no CAM: an error naming the layer CAM needs.

use super::{channel_weights, combine, torchcam_normalize, LayerInputs, LayerMethod, Needs};
use crate::error::{Error, Result};
use crate::gpu::kernels::launch;
use crate::gpu::params::LogitGradParams;
use crate::gpu::GpuContext;
use crate::pipeline::steps::Steps;

pub(super) struct ClassActivationMap;

impl LayerMethod for ClassActivationMap {
    fn needs(&self) -> Needs {
        Needs::ACTIVATIONS
    }

    fn record(&self, ctx: &GpuContext, steps: &mut Steps, inputs: &LayerInputs) -> Result<u64> {
        let gpu_model = inputs.forward.gpu_model();
        let model = &gpu_model.model;
        let needed = model.pooled_map().ok_or_else(|| {
            Error::InvalidRequest(format!(
                "cam needs a global average pool read by the linear classifier, which {} does not \
                 have",
                model.architecture
            ))
        })?;
        if model.activations_of(inputs.layer) != needed {
            // Named as the default layer where that is it (several names share a tensor:
            // ResNet's `layer4` and `layer4.1`).
            let names: Vec<&String> = model
                .target_layers
                .iter()
                .filter(|(_, t)| model.activations_of(*t) == needed)
                .map(|(n, _)| n)
                .collect();
            let name = names
                .iter()
                .find(|n| **n == &model.default_layer)
                .or(names.first())
                .map_or_else(|| model.tensors[needed].name.clone(), |n| n.to_string());
            return Err(Error::InvalidRequest(format!(
                "cam reads the layer the global average pool before the classifier reads, \
                 `{name}`, and no other"
            )));
        }
        if inputs.eigen_smooth {
            return Err(Error::InvalidRequest(
                "eigen-smooth does not apply to cam".into(),
            ));
        }
        let fc_weight = gpu_model
            .classifier_weight()
            .ok_or_else(|| Error::UnsupportedModel {
                path: model.source.clone(),
                reason: "the classifier's weights exceed one GPU binding".into(),
            })?;
        let channels = inputs.channels;
        // The target class's row of the classifier's weights, per image.
        let weights = channel_weights(ctx, inputs)?;
        steps.push(
            ctx,
            launch::LogitGrad {
                targets: inputs.targets,
                fc_weight,
                grad: &weights,
            },
            move |s| LogitGradParams {
                batch: s.images,
                pixels: 1,
                channels,
                _pad: 0,
            },
        );
        combine(ctx, steps, inputs, &weights, false);
        let stats = torchcam_normalize(ctx, steps, inputs)?;
        Ok(weights.size() + stats)
    }
}
