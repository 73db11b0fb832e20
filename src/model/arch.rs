//! The architectures the engine knows, and recognising which one a weights file holds from its
//! tensor names and shapes.

use super::tensors::WeightFile;
use super::{
    convnext, densenet, efficientnet, efficientnet_lite, inception, mobilenet_v2, mobilenet_v3,
    regnet, resnet, vgg, xception, Model,
};
use crate::error::{one_line, Error, Result};

/// An architecture the engine can build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    /// EfficientNet-Lite0 to Lite4 (index into the Lite variants).
    EfficientNetLite(usize),
    /// torchvision ResNet (index into the ResNet variants).
    ResNet(usize),
    /// torchvision VGG (index into the VGG variants).
    Vgg(usize),
    /// torchvision MobileNetV2.
    MobileNetV2,
    /// torchvision MobileNetV3 (index into the MobileNetV3 variants).
    MobileNetV3(usize),
    /// torchvision DenseNet (index into the DenseNet variants).
    DenseNet(usize),
    /// torchvision EfficientNet-B0 to B7 (index into the EfficientNet variants).
    EfficientNet(usize),
    /// torchvision RegNetY and RegNetX (index into the RegNet variants).
    RegNet(usize),
    /// torchvision ConvNeXt (index into the ConvNeXt variants).
    ConvNext(usize),
    /// torchvision Inception-v3.
    InceptionV3,
    /// timm's `legacy_xception`.
    Xception,
}

/// Every architecture, in the order `--arch` lists them.
pub const ARCHITECTURES: &[Arch] = &[
    Arch::EfficientNetLite(0),
    Arch::EfficientNetLite(1),
    Arch::EfficientNetLite(2),
    Arch::EfficientNetLite(3),
    Arch::EfficientNetLite(4),
    Arch::ResNet(0),
    Arch::ResNet(1),
    Arch::ResNet(2),
    Arch::ResNet(3),
    Arch::ResNet(4),
    Arch::Vgg(0),
    Arch::Vgg(1),
    Arch::MobileNetV2,
    Arch::MobileNetV3(0),
    Arch::MobileNetV3(1),
    Arch::DenseNet(0),
    Arch::DenseNet(1),
    Arch::DenseNet(2),
    Arch::DenseNet(3),
    Arch::EfficientNet(0),
    Arch::EfficientNet(1),
    Arch::EfficientNet(2),
    Arch::EfficientNet(3),
    Arch::EfficientNet(4),
    Arch::EfficientNet(5),
    Arch::EfficientNet(6),
    Arch::EfficientNet(7),
    Arch::RegNet(0),
    Arch::RegNet(1),
    Arch::RegNet(2),
    Arch::RegNet(3),
    Arch::RegNet(4),
    Arch::RegNet(5),
    Arch::RegNet(6),
    Arch::RegNet(7),
    Arch::RegNet(8),
    Arch::RegNet(9),
    Arch::RegNet(10),
    Arch::RegNet(11),
    Arch::RegNet(12),
    Arch::RegNet(13),
    Arch::RegNet(14),
    Arch::ConvNext(0),
    Arch::ConvNext(1),
    Arch::ConvNext(2),
    Arch::ConvNext(3),
    Arch::InceptionV3,
    Arch::Xception,
];

impl Arch {
    /// The name `--arch` takes (`resnet50`, `efficientnet-lite0`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Arch::EfficientNetLite(i) => efficientnet_lite::VARIANTS[i].name,
            Arch::ResNet(i) => resnet::VARIANTS[i].name,
            Arch::Vgg(i) => vgg::VARIANTS[i].name,
            Arch::MobileNetV2 => mobilenet_v2::NAME,
            Arch::MobileNetV3(i) => mobilenet_v3::VARIANTS[i].name,
            Arch::DenseNet(i) => densenet::VARIANTS[i].name,
            Arch::EfficientNet(i) => efficientnet::VARIANTS[i].name,
            Arch::RegNet(i) => regnet::VARIANTS[i].name,
            Arch::ConvNext(i) => convnext::VARIANTS[i].name,
            Arch::InceptionV3 => inception::NAME,
            Arch::Xception => xception::NAME,
        }
    }

    /// The architecture called `name` (case and `-`/`_` insensitive), or an error listing them.
    pub fn parse(name: &str) -> Result<Self> {
        let norm = |s: &str| s.to_ascii_lowercase().replace(['-', '_'], "");
        ARCHITECTURES
            .iter()
            .copied()
            .find(|a| norm(a.name()) == norm(name))
            .ok_or_else(|| {
                let names: Vec<&str> = ARCHITECTURES.iter().map(|a| a.name()).collect();
                Error::InvalidRequest(format!(
                    "unknown architecture `{}`; known: {}",
                    one_line(name),
                    names.join(", ")
                ))
            })
    }

    /// Builds this architecture from `file`.
    pub fn build(self, file: &WeightFile) -> Result<Model> {
        match self {
            Arch::EfficientNetLite(i) => {
                efficientnet_lite::build(file, &efficientnet_lite::VARIANTS[i])
            }
            Arch::ResNet(i) => resnet::build(file, &resnet::VARIANTS[i]),
            Arch::Vgg(i) => vgg::build(file, &vgg::VARIANTS[i]),
            Arch::MobileNetV2 => mobilenet_v2::build(file),
            Arch::MobileNetV3(i) => mobilenet_v3::build(file, &mobilenet_v3::VARIANTS[i]),
            Arch::DenseNet(i) => densenet::build(file, &densenet::VARIANTS[i]),
            Arch::EfficientNet(i) => efficientnet::build(file, &efficientnet::VARIANTS[i]),
            Arch::RegNet(i) => regnet::build(file, &regnet::VARIANTS[i]),
            Arch::ConvNext(i) => convnext::build(file, &convnext::VARIANTS[i]),
            Arch::InceptionV3 => inception::build(file),
            Arch::Xception => xception::build(file),
        }
    }

    /// The architecture of this family that `file`'s structure says it is, if the file looks
    /// like one of the family at all (`None`: not this family).
    fn recognise(file: &WeightFile) -> Option<Vec<Arch>> {
        if resnet::claims(file) {
            return Some(family(
                &resnet::VARIANTS,
                resnet::detect(file),
                Arch::ResNet,
            ));
        }
        if densenet::claims(file) {
            return Some(family(
                &densenet::VARIANTS,
                densenet::detect(file),
                Arch::DenseNet,
            ));
        }
        if xception::claims(file) {
            return Some(vec![Arch::Xception]);
        }
        if inception::claims(file) {
            return Some(vec![Arch::InceptionV3]);
        }
        if convnext::claims(file) {
            return Some(family(
                &convnext::VARIANTS,
                convnext::detect(file),
                Arch::ConvNext,
            ));
        }
        if mobilenet_v3::claims(file) {
            return Some(family(
                &mobilenet_v3::VARIANTS,
                mobilenet_v3::detect(file),
                Arch::MobileNetV3,
            ));
        }
        if regnet::claims(file) {
            return Some(family(
                &regnet::VARIANTS,
                regnet::detect(file),
                Arch::RegNet,
            ));
        }
        if efficientnet::claims(file) {
            return Some(family(
                &efficientnet::VARIANTS,
                efficientnet::detect(file),
                Arch::EfficientNet,
            ));
        }
        if efficientnet_lite::claims(file) {
            return Some(efficientnet_lite::candidates(file));
        }
        if mobilenet_v2::claims(file) {
            return Some(vec![Arch::MobileNetV2]);
        }
        if vgg::claims(file) {
            let v = vgg::detect(file);
            let i = vgg::VARIANTS.iter().position(|k| *k == v).unwrap_or(0);
            return Some(vec![Arch::Vgg(i)]);
        }
        None
    }
}

/// The variant of a family that `detected` is, as an [`Arch`] (`make`), or every variant of the
/// family when the file's structure is none of theirs (each is then tried).
fn family<V: PartialEq>(variants: &[V], detected: Option<V>, make: fn(usize) -> Arch) -> Vec<Arch> {
    match detected.and_then(|v| variants.iter().position(|k| *k == v)) {
        Some(i) => vec![make(i)],
        None => (0..variants.len()).map(make).collect(),
    }
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Builds the model in `file`: as `arch` when given, otherwise as the architecture its tensors
/// say. A file no architecture fits is an error naming the closest one (the builder that read
/// the most tensors) and the first tensor that did not fit.
pub fn build(file: &WeightFile, arch: Option<Arch>) -> Result<Model> {
    // The converter may have named it in the header.
    let named = match file.header("architecture") {
        Some(name) => Some(Arch::parse(name).map_err(|e| Error::UnsupportedModel {
            path: file.path().to_path_buf(),
            reason: format!("header `architecture`: {e}"),
        })?),
        None => None,
    };
    if let Some(arch) = arch.or(named) {
        return arch.build(file);
    }
    let candidates = Arch::recognise(file).unwrap_or_else(|| ARCHITECTURES.to_vec());
    let mut closest: Option<(usize, Arch, Error)> = None;
    for arch in &candidates {
        file.reset_reads();
        match arch.build(file) {
            Ok(model) => return Ok(model),
            Err(e) => {
                let reads = file.reads();
                if closest.as_ref().is_none_or(|(r, _, _)| reads > *r) {
                    closest = Some((reads, *arch, e));
                }
            }
        }
    }
    let (_, arch, error) = closest.expect("there is at least one architecture");
    if candidates.len() == 1 {
        return Err(error);
    }
    // The builder's message without the path, which the outer one names.
    let detail = error.to_string();
    let prefix = format!("{}: ", crate::output::escape_path(file.path()));
    let detail = detail.strip_prefix(&prefix).unwrap_or(&detail);
    Err(Error::UnsupportedModel {
        path: file.path().to_path_buf(),
        reason: format!(
            "no known architecture fits; the closest is {arch}: {}",
            one_line(detail)
        ),
    })
}
