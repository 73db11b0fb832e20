//! The architectures the engine knows, and recognising which one a weights file holds from its
//! tensor names and shapes.

use super::tensors::WeightFile;
use super::{
    convnext, densenet, efficientnet, efficientnet_lite, inception, mobilenet_v2, mobilenet_v3,
    regnet, resnet, vgg, vit, xception, Model,
};
use crate::error::{one_line, Error, Result};

/// How an architecture family's builder file registers itself (its `FAMILY` constant, listed
/// once in [`FAMILIES`]).
#[derive(Debug)]
pub struct Family {
    /// How many variants it has.
    pub variants: usize,
    /// Variant `i`'s name, as `--arch` takes it.
    pub name: fn(usize) -> &'static str,
    /// Variant `i`'s input size when the user gives none: the side of the square image it was
    /// trained on.
    pub input_size: fn(usize) -> u32,
    /// Whether a file looks like this family at all (its characteristic tensors are there).
    pub claims: fn(&WeightFile) -> bool,
    /// The variants a claimed file's structure fits (every variant when it fits none: each is
    /// tried, and the error names the closest).
    pub candidates: fn(&WeightFile) -> Vec<usize>,
    /// Builds variant `i` from a file for square inputs of the given side.
    pub build: fn(&WeightFile, usize, u32) -> Result<Model>,
}

/// Every family, in the order a file is recognised (the first that claims it) and `--arch`
/// lists them. A new family is its builder file and one line here.
pub const FAMILIES: &[&Family] = &[
    &efficientnet_lite::FAMILY,
    &resnet::FAMILY,
    &densenet::FAMILY,
    &xception::FAMILY,
    &inception::FAMILY,
    &convnext::FAMILY,
    &vit::TIMM,
    &vit::TORCHVISION,
    &mobilenet_v3::FAMILY,
    &regnet::FAMILY,
    &efficientnet::FAMILY,
    &mobilenet_v2::FAMILY,
    &vgg::FAMILY,
];

/// The variants of a family that `detected` is (found among `variants`), or every variant when
/// it is none of them: a family's [`Family::candidates`].
pub fn detected<V: PartialEq>(variants: &[V], detected: Option<V>) -> Vec<usize> {
    match detected.and_then(|v| variants.iter().position(|k| *k == v)) {
        Some(i) => vec![i],
        None => (0..variants.len()).collect(),
    }
}

/// An architecture the engine can build: a variant of a family.
#[derive(Clone, Copy, Debug)]
pub struct Arch {
    family: &'static Family,
    variant: usize,
}

impl PartialEq for Arch {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self.family, other.family) && self.variant == other.variant
    }
}

impl Eq for Arch {}

/// Every architecture, in the order `--arch` lists them.
pub fn architectures() -> impl Iterator<Item = Arch> {
    FAMILIES
        .iter()
        .flat_map(|&family| (0..family.variants).map(move |variant| Arch { family, variant }))
}

impl Arch {
    /// The name `--arch` takes (`resnet50`, `efficientnet-lite0`, ...).
    pub fn name(self) -> &'static str {
        (self.family.name)(self.variant)
    }

    /// The architecture called `name` (case and `-`/`_` insensitive), or an error listing them.
    pub fn parse(name: &str) -> Result<Self> {
        let norm = |s: &str| s.to_ascii_lowercase().replace(['-', '_'], "");
        architectures()
            .find(|a| norm(a.name()) == norm(name))
            .ok_or_else(|| {
                let names: Vec<&str> = architectures().map(|a| a.name()).collect();
                Error::InvalidRequest(format!(
                    "unknown architecture `{}`; known: {}",
                    one_line(name),
                    names.join(", ")
                ))
            })
    }

    /// The input size it was trained on (224 for most, 299 for Inception-v3 and Xception, 224
    /// to 600 for the EfficientNets).
    pub fn input_size(self) -> u32 {
        (self.family.input_size)(self.variant)
    }

    /// Builds this architecture from `file`, for square inputs of side `input_size` (`None`: its
    /// own, [`Arch::input_size`]).
    pub fn build(self, file: &WeightFile, input_size: Option<u32>) -> Result<Model> {
        (self.family.build)(file, self.variant, input_size.unwrap_or(self.input_size()))
    }

    /// The architectures of the family that claims `file`, as far as its structure tells them
    /// apart (`None`: no family claims it).
    fn recognise(file: &WeightFile) -> Option<Vec<Arch>> {
        let family = FAMILIES.iter().find(|f| (f.claims)(file))?;
        Some(
            (family.candidates)(file)
                .into_iter()
                .map(|variant| Arch { family, variant })
                .collect(),
        )
    }
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Builds the model in `file`: as `arch` when given, otherwise as the architecture its tensors
/// say. A file no architecture fits is an error naming the closest one (the builder that read
/// the most tensors) and the first tensor that did not fit. `input_size` overrides the
/// architecture's input size.
pub fn build(file: &WeightFile, arch: Option<Arch>, input_size: Option<u32>) -> Result<Model> {
    // The converter may have named it in the header.
    let named = match file.header("architecture") {
        Some(name) => Some(Arch::parse(name).map_err(|e| Error::UnsupportedModel {
            path: file.path().to_path_buf(),
            reason: format!("header `architecture`: {e}"),
        })?),
        None => None,
    };
    if let Some(arch) = arch.or(named) {
        return arch.build(file, input_size);
    }
    let candidates = Arch::recognise(file).unwrap_or_else(|| architectures().collect());
    let mut closest: Option<(usize, Arch, Error)> = None;
    for arch in &candidates {
        file.reset_reads();
        match arch.build(file, input_size) {
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
