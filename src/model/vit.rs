//! Vision transformers as graphs: timm's VisionTransformer (ViT, DeiT) and torchvision's
//! `VisionTransformer` (`vit_b_16`, ...), which compute the same network under other names.
//! `patch_embed.proj` / `conv_proj` (a p×p conv of stride p), the patch map read as tokens after
//! the class token `cls_token` / `class_token` (and DeiT's distillation token `dist_token`), plus
//! `pos_embed` / `encoder.pos_embedding`; blocks `blocks.N` / `encoder.layers.encoder_layer_N`:
//! `norm1` / `ln_1` (LayerNorm), the QKV projection (`attn.qkv`; `self_attention.in_proj_*`) on
//! every token, multi-head self-attention, the output projection (`attn.proj`;
//! `self_attention.out_proj`) plus the block's input, then `norm2` / `ln_2`, `mlp.fc1` /
//! `mlp.0` with GELU, `mlp.fc2` / `mlp.3` plus the residual; the final `norm` / `encoder.ln`
//! and the head `head` / `heads.head` on the class token (DeiT's distilled models: the mean of
//! `head` on the class token and `head_dist` on the distillation token, as timm evaluates
//! them; with timm's `global_pool="avg"`, `fc_norm` and `head` on the patch tokens' mean).
//! LayerScale (`ls1.gamma`, `ls2.gamma`: DeiT III, told apart by it and normalised with
//! ImageNet's statistics) where the file has it; normalised queries, keys, attention outputs or
//! MLPs, a LayerNorm before the blocks or after the patch embedding, pre-logits layers,
//! attention-pooled heads and register tokens are refused. The attention's heads are 64
//! channels wide in every listed variant; a custom shape gives its head count in the file's
//! `num_heads` metadata. LayerNorm epsilon 1e-6, heads of 64 channels (every timm and torchvision ViT and DeiT
//! but ViT-H). Width, depth, patch and input size are read from the file; a file of another
//! shape than the named variants is a custom `vit` (timm) or `vision_transformer`
//! (torchvision), built as it is.
//!
//! A CAM at a token layer (the last block's `norm1` / `ln_1` by default, as pytorch-grad-cam's
//! ViT tutorial targets) drops the prefix tokens and lays the patch tokens on their grid, the
//! embedding as channels: the tutorial's `reshape_transform`.

use super::arch::Family;
use super::builder::{Builder, ConvSpec, Description, IMAGENET_MEAN, IMAGENET_STD};
use super::tensors::WeightFile;
use super::{Activation, Model, TokenGrid};
use crate::error::{Error, Result};

/// Whose names a file's tensors and modules have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Naming {
    /// timm's `VisionTransformer`.
    Timm,
    /// torchvision's `VisionTransformer`.
    Torchvision,
}

impl Naming {
    fn class_token(self) -> &'static str {
        match self {
            Naming::Timm => "cls_token",
            Naming::Torchvision => "class_token",
        }
    }

    fn position(self) -> &'static str {
        match self {
            Naming::Timm => "pos_embed",
            Naming::Torchvision => "encoder.pos_embedding",
        }
    }

    fn patch_embed(self) -> &'static str {
        match self {
            Naming::Timm => "patch_embed.proj",
            Naming::Torchvision => "conv_proj",
        }
    }

    fn block(self, i: u32) -> String {
        match self {
            Naming::Timm => format!("blocks.{i}"),
            Naming::Torchvision => format!("encoder.layers.encoder_layer_{i}"),
        }
    }

    /// Block `b`'s module after its own (`norm1`, `mlp.fc1`, ...) in this naming.
    fn part(self, b: &str, timm: &str) -> String {
        let tv = match timm {
            "norm1" => "ln_1",
            "norm2" => "ln_2",
            "attn" => "self_attention",
            "attn.proj" => "self_attention.out_proj",
            "mlp.fc1" => "mlp.0",
            "mlp.act" => "mlp.1",
            "mlp.fc2" => "mlp.3",
            other => other,
        };
        match self {
            Naming::Timm => format!("{b}.{timm}"),
            Naming::Torchvision => format!("{b}.{tv}"),
        }
    }

    /// Block `b`'s QKV projection: its module, weight and bias.
    fn qkv(self, b: &str) -> (String, [String; 2]) {
        match self {
            Naming::Timm => (
                format!("{b}.attn.qkv"),
                [format!("{b}.attn.qkv.weight"), format!("{b}.attn.qkv.bias")],
            ),
            Naming::Torchvision => (
                format!("{b}.self_attention.in_proj"),
                [
                    format!("{b}.self_attention.in_proj_weight"),
                    format!("{b}.self_attention.in_proj_bias"),
                ],
            ),
        }
    }

    fn final_norm(self) -> &'static str {
        match self {
            Naming::Timm => "norm",
            Naming::Torchvision => "encoder.ln",
        }
    }

    fn head(self) -> &'static str {
        match self {
            Naming::Timm => "head",
            Naming::Torchvision => "heads.head",
        }
    }
}

/// A vision transformer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Variant {
    /// The name `--arch` takes.
    pub name: &'static str,
    /// Whose names its tensors have.
    naming: Naming,
    /// Embedding channels (0: any, a custom model).
    width: u32,
    /// Blocks.
    depth: u32,
    /// Patch side.
    patch: u32,
    /// Input side.
    size: u32,
    /// Whether it has DeiT's distillation token and head.
    distilled: bool,
    /// Whether its blocks have LayerScale (DeiT III).
    layer_scale: bool,
    /// Whether it normalises with ImageNet's statistics (DeiT, torchvision) rather than 0.5.
    imagenet: bool,
}

/// A timm ViT of 0.5 normalisation, no distillation token, no LayerScale: what the
/// constructors below start from.
const TIMM_VIT: Variant = Variant {
    name: "",
    naming: Naming::Timm,
    width: 0,
    depth: 0,
    patch: 16,
    size: 224,
    distilled: false,
    layer_scale: false,
    imagenet: false,
};

const fn vit(name: &'static str, width: u32, depth: u32, patch: u32, size: u32) -> Variant {
    Variant {
        name,
        width,
        depth,
        patch,
        size,
        ..TIMM_VIT
    }
}

const fn deit3(name: &'static str, width: u32, depth: u32, size: u32) -> Variant {
    Variant {
        layer_scale: true,
        imagenet: true,
        ..vit(name, width, depth, 16, size)
    }
}

const fn deit(name: &'static str, width: u32, size: u32, distilled: bool) -> Variant {
    Variant {
        distilled,
        imagenet: true,
        ..vit(name, width, 12, 16, size)
    }
}

const fn torchvision(name: &'static str, width: u32, depth: u32, patch: u32) -> Variant {
    Variant {
        naming: Naming::Torchvision,
        imagenet: true,
        ..vit(name, width, depth, patch, 224)
    }
}

/// timm's ViTs, DeiTs and DeiT IIIs, then a custom timm ViT. A ViT and the DeiT of the same shape
/// have the same tensors: the file is recognised as the ViT, whose normalisation is 0.5;
/// `--arch deit_...` (or `--mean/--std`, or the file's `mean`/`std` metadata) gives a DeiT's
/// ImageNet statistics. A DeiT III is told apart by its LayerScale.
pub const TIMM_VARIANTS: [Variant; 29] = [
    vit("vit_tiny_patch16_224", 192, 12, 16, 224),
    vit("vit_tiny_patch16_384", 192, 12, 16, 384),
    vit("vit_small_patch16_224", 384, 12, 16, 224),
    vit("vit_small_patch16_384", 384, 12, 16, 384),
    vit("vit_small_patch32_224", 384, 12, 32, 224),
    vit("vit_small_patch32_384", 384, 12, 32, 384),
    vit("vit_base_patch16_224", 768, 12, 16, 224),
    vit("vit_base_patch16_384", 768, 12, 16, 384),
    vit("vit_base_patch32_224", 768, 12, 32, 224),
    vit("vit_base_patch32_384", 768, 12, 32, 384),
    vit("vit_large_patch16_224", 1024, 24, 16, 224),
    vit("vit_large_patch16_384", 1024, 24, 16, 384),
    vit("vit_large_patch32_384", 1024, 24, 32, 384),
    deit("deit_tiny_patch16_224", 192, 224, false),
    deit("deit_small_patch16_224", 384, 224, false),
    deit("deit_base_patch16_224", 768, 224, false),
    deit("deit_base_patch16_384", 768, 384, false),
    deit("deit_tiny_distilled_patch16_224", 192, 224, true),
    deit("deit_small_distilled_patch16_224", 384, 224, true),
    deit("deit_base_distilled_patch16_224", 768, 224, true),
    deit("deit_base_distilled_patch16_384", 768, 384, true),
    deit3("deit3_small_patch16_224", 384, 12, 224),
    deit3("deit3_small_patch16_384", 384, 12, 384),
    deit3("deit3_medium_patch16_224", 512, 12, 224),
    deit3("deit3_base_patch16_224", 768, 12, 224),
    deit3("deit3_base_patch16_384", 768, 12, 384),
    deit3("deit3_large_patch16_224", 1024, 24, 224),
    deit3("deit3_large_patch16_384", 1024, 24, 384),
    vit("vit", 0, 0, 0, 224),
];

/// torchvision's ViTs (but `vit_h_14`, whose heads are 80 channels wide), then a custom one.
pub const TORCHVISION_VARIANTS: [Variant; 5] = [
    torchvision("vit_b_16", 768, 12, 16),
    torchvision("vit_b_32", 768, 12, 32),
    torchvision("vit_l_16", 1024, 24, 16),
    torchvision("vit_l_32", 1024, 24, 32),
    torchvision("vision_transformer", 0, 0, 0),
];

/// LayerNorm epsilon of timm's and torchvision's ViTs.
const EPS: f32 = 1e-6;

/// Channels per head of every timm and torchvision ViT and DeiT but ViT-H.
const HEAD_DIM: u32 = 64;

/// Whether `file` holds a ViT named as `naming` names them: its class token, patch embedding
/// and first block.
fn claims(file: &WeightFile, naming: Naming) -> bool {
    file.shape(naming.class_token()).is_some()
        && file
            .shape(&format!("{}.weight", naming.patch_embed()))
            .is_some()
        && file
            .shape(&format!(
                "{}.weight",
                naming.part(&naming.block(0), "norm1")
            ))
            .is_some()
}

/// The structure the file has (its name empty).
fn structure(file: &WeightFile, naming: Naming) -> Variant {
    let dim = |name: &str, i: usize| {
        file.shape(name)
            .and_then(|s| s.get(i).copied())
            .map_or(0, |v| v as u32)
    };
    let width = dim(naming.class_token(), 2);
    let patch = dim(&format!("{}.weight", naming.patch_embed()), 2);
    let distilled = naming == Naming::Timm && file.shape("dist_token").is_some();
    // The position embedding covers the prefix tokens too, or (timm's `no_embed_class`) only
    // the patches, a square number of them.
    let positions = dim(naming.position(), 1);
    let root = f64::from(positions).sqrt().round() as u32;
    let tokens = if root * root == positions {
        positions
    } else {
        positions.saturating_sub(1 + u32::from(distilled))
    };
    let grid = f64::from(tokens).sqrt().round() as u32;
    // A malformed patch size gives an impossible input size, never an overflow.
    let size = grid.saturating_mul(patch);
    let mut depth = 0;
    while file
        .shape(&format!(
            "{}.weight",
            naming.part(&naming.block(depth), "norm1")
        ))
        .is_some()
    {
        depth += 1;
    }
    let layer_scale = file
        .shape(&naming.part(&naming.block(0), "ls1.gamma"))
        .is_some();
    Variant {
        name: "",
        naming,
        width,
        depth,
        patch,
        size,
        distilled,
        layer_scale,
        // DeiT, DeiT III and torchvision normalise with ImageNet's statistics.
        imagenet: distilled || layer_scale || naming == Naming::Torchvision,
    }
}

/// Whether variant `v` has the structure `s`.
fn fits(v: &Variant, s: &Variant) -> bool {
    (
        v.width,
        v.depth,
        v.patch,
        v.size,
        v.distilled,
        v.layer_scale,
    ) == (
        s.width,
        s.depth,
        s.patch,
        s.size,
        s.distilled,
        s.layer_scale,
    )
}

/// The variant of `variants` the file is: the one with its structure (the ViT where a ViT and
/// a DeiT share it), else the custom one (the last).
fn candidates(file: &WeightFile, variants: &[Variant]) -> Vec<usize> {
    let s = structure(file, variants[0].naming);
    let custom = variants.len() - 1;
    vec![variants.iter().position(|v| fits(v, &s)).unwrap_or(custom)]
}

/// The attention's heads: the file's `num_heads` metadata, else a listed variant's (heads of
/// 64 channels). A custom shape must say: its heads are nowhere in its tensors, and a wrong count
/// would compute another network without an error.
fn heads(file: &WeightFile, variant: &Variant, width: u32) -> Result<u32> {
    let unsupported = |reason: String| Error::UnsupportedModel {
        path: file.path().to_path_buf(),
        reason,
    };
    let heads = match file.header("num_heads") {
        Some(text) => text
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|h| *h > 0 && width.is_multiple_of(*h))
            .ok_or_else(|| {
                unsupported(format!(
                    "header `num_heads`: `{}` does not divide the embedding of {width}",
                    crate::one_line(text)
                ))
            })?,
        None if variant.width != 0 => width / HEAD_DIM,
        None => {
            return Err(unsupported(format!(
                "a ViT of a shape no listed variant has (embedding {width}) does not say how \
                 many heads its attention has: save it with `metadata={{\"num_heads\": \"N\"}}` \
                 (gradcam.Engine(model=...) does)"
            )))
        }
    };
    if width / heads != HEAD_DIM {
        return Err(unsupported(format!(
            "{heads} heads of {} channels (heads of {HEAD_DIM} run)",
            width / heads
        )));
    }
    Ok(heads)
}

/// Builds `variant` from `file` for `size`² inputs (its structure read from the file; the
/// position embedding fixes the input size).
pub fn build(file: &WeightFile, variant: &Variant, size: u32) -> Result<Model> {
    let naming = variant.naming;
    let found = structure(file, naming);
    // A custom shape's input size is its position embedding's (its listed 224 is a default).
    let size = if variant.width == 0 && size == variant.size {
        found.size
    } else {
        size
    };
    let (width, patch) = (found.width, found.patch);
    let unsupported = |reason: String| Error::UnsupportedModel {
        path: file.path().to_path_buf(),
        reason,
    };
    if width == 0 || !width.is_multiple_of(HEAD_DIM) || patch == 0 || found.depth == 0 {
        return Err(unsupported(format!(
            "not a ViT the engine builds (embedding {width}, patch {patch}, {} blocks; heads of \
             {HEAD_DIM} channels)",
            found.depth
        )));
    }
    if variant.width != 0 && !fits(variant, &found) {
        return Err(unsupported(format!(
            "{} has embedding {}, {} blocks, patch {} and {}² inputs; the file's ViT has {width}, \
             {}, {patch} and {}²",
            variant.name,
            variant.width,
            variant.depth,
            variant.patch,
            variant.size,
            found.depth,
            found.size
        )));
    }
    if size != found.size {
        return Err(unsupported(format!(
            "its position embedding fits {}² inputs, not {size}² (give --input-size {}; \
             interpolating it is not supported)",
            found.size, found.size
        )));
    }
    match file.shape(naming.position()) {
        Some([1, t, c]) if *t > 0 && *c == width as usize => {}
        found => {
            return Err(match found {
                Some(shape) => Error::TensorShape {
                    path: file.path().to_path_buf(),
                    tensor: naming.position().into(),
                    expected: vec![1, 0, width as usize],
                    found: shape.to_vec(),
                },
                None => Error::MissingTensor {
                    path: file.path().to_path_buf(),
                    tensor: naming.position().into(),
                    expected: vec![1, 0, width as usize],
                },
            })
        }
    }
    // Parts of timm's ViTs the builder does not compute: refused rather than left out.
    let entries = file.entries();
    let unsupported_part = [
        ("q_norm.", "normalised queries"),
        ("k_norm.", "normalised keys"),
        ("attn_pool.", "an attention-pooled head"),
        ("reg_token", "register tokens"),
        (".attn.norm.", "normalised attention outputs"),
        (".mlp.norm.", "a normalised MLP"),
        (
            "norm_pre.",
            "a LayerNorm before the blocks (CLIP's, whose epsilon the file does not give)",
        ),
        ("patch_embed.norm.", "a normalised patch embedding"),
        ("heads.pre_logits", "a pre-logits layer"),
    ]
    .into_iter()
    .find_map(|(part, what)| {
        entries
            .iter()
            .find(|(name, _)| name.contains(part))
            .map(|(name, _)| (name, what))
    });
    if let Some((name, what)) = unsupported_part {
        return Err(unsupported(format!(
            "`{name}`: a ViT with {what} is not supported yet"
        )));
    }
    let heads = heads(file, variant, width)?;
    let mut g = Builder::new(file, size);
    let input = g.input();
    let embed = ConvSpec {
        stride: patch,
        conv_bias: true,
        ..ConvSpec::new(naming.patch_embed(), None, patch, width)
    };
    let patches = g.conv(&embed, input, naming.patch_embed())?;
    let grid = size / patch;
    let prefix: &[&str] = if found.distilled {
        &["cls_token", "dist_token"]
    } else {
        &[naming.class_token()]
    };
    g.token_grid(TokenGrid {
        prefix: prefix.len() as u32,
        height: grid,
        width: grid,
    });
    let position = naming.position();
    let mut x = g.token_embed(prefix, position, patches, position)?;
    for i in 0..found.depth {
        let b = naming.block(i);
        let part = |timm: &str| naming.part(&b, timm);
        let block_in = x;
        let norm1 = part("norm1");
        let y = g.layer_norm(&norm1, EPS, x, &norm1)?;
        g.layer(&norm1, y);
        let (qkv_module, qkv_keys) = naming.qkv(&b);
        let qkv = g.pixel_linear_from(&qkv_module, &qkv_keys, y, Activation::None, &qkv_module)?;
        let y = g.attention(heads, qkv, &format!("{}.attention", part("attn")))?;
        let y = g.pixel_linear(&part("attn.proj"), y, Activation::None, &part("attn"))?;
        // LayerScale (timm's `ls1`, `ls2`: DeiT III, CaiT-style ViTs) scales each branch.
        let residual = format!("{b}.attention_residual");
        let x1 = match part("ls1.gamma") {
            gamma if file.shape(&gamma).is_some() => g.scale_add(&gamma, y, block_in, &residual)?,
            _ => g.add(y, block_in, &residual)?,
        };
        let norm2 = part("norm2");
        let y = g.layer_norm(&norm2, EPS, x1, &norm2)?;
        g.layer(&norm2, y);
        let y = g.pixel_linear(&part("mlp.fc1"), y, Activation::Gelu, &part("mlp.act"))?;
        let y = g.pixel_linear(&part("mlp.fc2"), y, Activation::None, &part("mlp"))?;
        x = match part("ls2.gamma") {
            gamma if file.shape(&gamma).is_some() => g.scale_add(&gamma, y, x1, &b)?,
            _ => g.add(y, x1, &b)?,
        };
        g.layer(&b, x);
    }
    // timm's `global_pool="avg"`: the head reads the patch tokens' mean through `fc_norm`, and
    // the final `norm` is the identity (absent from the file).
    let mean_pooled = naming == Naming::Timm && file.shape("fc_norm.weight").is_some();
    let norm = naming.final_norm();
    let x = if mean_pooled && file.shape(&format!("{norm}.weight")).is_none() {
        x
    } else {
        let x = g.layer_norm(norm, EPS, x, norm)?;
        g.layer(norm, x);
        x
    };
    let logits = if mean_pooled {
        let patches = g.patch_grid(x, "patch_tokens")?;
        let pooled = g.global_avg_pool(patches)?;
        let pooled = g.layer_norm("fc_norm", EPS, pooled, "fc_norm")?;
        g.linear(naming.head(), pooled, Activation::None, "logits")?
    } else if found.distilled {
        let tokens = g.select_tokens(2, x, "head_tokens")?;
        g.mean_of_heads(&["head", "head_dist"], tokens, "logits")?
    } else {
        let token = g.select_tokens(1, x, "class_token")?;
        g.linear(naming.head(), token, Activation::None, "logits")?
    };
    // A custom shape normalises as its kind does (a distilled DeiT or torchvision: ImageNet).
    let imagenet = if variant.width == 0 {
        found.imagenet
    } else {
        variant.imagenet
    };
    let (mean, std) = if imagenet {
        (IMAGENET_MEAN, IMAGENET_STD)
    } else {
        ([0.5; 3], [0.5; 3])
    };
    g.finish(
        Description {
            architecture: variant.name.to_string(),
            mean,
            std,
            default_layer: naming.part(&naming.block(found.depth - 1), "norm1"),
        },
        logits,
    )
}

/// timm's family's registration in src/model/arch.rs.
pub const TIMM: Family = Family {
    variants: TIMM_VARIANTS.len(),
    name: |i| TIMM_VARIANTS[i].name,
    input_size: |i| TIMM_VARIANTS[i].size,
    claims: |file| claims(file, Naming::Timm),
    candidates: |file| candidates(file, &TIMM_VARIANTS),
    build: |file, i, size| build(file, &TIMM_VARIANTS[i], size),
};

/// torchvision's family's registration in src/model/arch.rs.
pub const TORCHVISION: Family = Family {
    variants: TORCHVISION_VARIANTS.len(),
    name: |i| TORCHVISION_VARIANTS[i].name,
    input_size: |i| TORCHVISION_VARIANTS[i].size,
    claims: |file| claims(file, Naming::Torchvision),
    candidates: |file| candidates(file, &TORCHVISION_VARIANTS),
    build: |file, i, size| build(file, &TORCHVISION_VARIANTS[i], size),
};

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;

    use safetensors::tensor::{serialize, Dtype, TensorView};

    use crate::model::Model;

    /// A one-block timm ViT of width 64 on 32² inputs (2×2 patches of 16), its tensors `extra`
    /// added and `drop` left out, one head; values small and finite.
    fn timm_file(extra: &[(&str, Vec<usize>)], drop: &[&str]) -> Vec<u8> {
        timm_file_with_heads(extra, drop, Some(1))
    }

    /// [`timm_file`] with `num_heads` metadata `heads` (`None`: none).
    fn timm_file_with_heads(
        extra: &[(&str, Vec<usize>)],
        drop: &[&str],
        heads: Option<u32>,
    ) -> Vec<u8> {
        let c = 64;
        let mut tensors: BTreeMap<String, Vec<usize>> = [
            ("cls_token", vec![1, 1, c]),
            ("pos_embed", vec![1, 5, c]),
            ("patch_embed.proj.weight", vec![c, 3, 16, 16]),
            ("patch_embed.proj.bias", vec![c]),
            ("blocks.0.norm1.weight", vec![c]),
            ("blocks.0.norm1.bias", vec![c]),
            ("blocks.0.attn.qkv.weight", vec![3 * c, c]),
            ("blocks.0.attn.qkv.bias", vec![3 * c]),
            ("blocks.0.attn.proj.weight", vec![c, c]),
            ("blocks.0.attn.proj.bias", vec![c]),
            ("blocks.0.norm2.weight", vec![c]),
            ("blocks.0.norm2.bias", vec![c]),
            ("blocks.0.mlp.fc1.weight", vec![2 * c, c]),
            ("blocks.0.mlp.fc1.bias", vec![2 * c]),
            ("blocks.0.mlp.fc2.weight", vec![c, 2 * c]),
            ("blocks.0.mlp.fc2.bias", vec![c]),
            ("norm.weight", vec![c]),
            ("norm.bias", vec![c]),
            ("head.weight", vec![10, c]),
            ("head.bias", vec![10]),
        ]
        .into_iter()
        .map(|(n, s)| (n.to_string(), s))
        .collect();
        for (name, shape) in extra {
            tensors.insert(name.to_string(), shape.clone());
        }
        for name in drop {
            tensors.remove(*name);
        }
        let data: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
            .into_iter()
            .map(|(name, shape)| {
                let n: usize = shape.iter().product();
                let values: Vec<f32> = (0..n).map(|i| ((i % 7) as f32 - 3.0) * 0.01).collect();
                (name, shape, bytemuck::cast_slice(&values).to_vec())
            })
            .collect();
        let views: Vec<(&str, TensorView)> = data
            .iter()
            .map(|(name, shape, bytes)| {
                let view = TensorView::new(Dtype::F32, shape.clone(), bytes).expect("view");
                (name.as_str(), view)
            })
            .collect();
        let heads = heads.map(|h| [("num_heads".to_string(), h.to_string())].into());
        serialize(views, heads).expect("serialize")
    }

    fn load(bytes: Vec<u8>) -> crate::Result<Model> {
        Model::from_bytes(Path::new("vit.safetensors"), bytes)
    }

    #[test]
    fn a_custom_timm_vit_builds_with_its_token_grid() {
        let model = load(timm_file(&[], &[])).expect("builds");
        assert_eq!(model.architecture, "vit");
        assert_eq!(model.input_size, 32);
        assert_eq!(model.default_layer, "blocks.0.norm1");
        let grid = model.token_grid.expect("token grid");
        assert_eq!((grid.prefix, grid.height, grid.width), (1, 2, 2));
        let layer = model
            .target_layers
            .iter()
            .find(|(n, _)| n == "blocks.0.norm1")
            .map(|(_, t)| *t)
            .expect("layer");
        assert_eq!(model.cam_grid_of(layer), (2, 2));
        assert_eq!(model.mean, [0.5; 3]);
    }

    #[test]
    fn layer_scale_and_a_patch_only_position_embedding_build() {
        let ls = [
            ("blocks.0.ls1.gamma", vec![64]),
            ("blocks.0.ls2.gamma", vec![64]),
            ("pos_embed", vec![1, 4, 64]),
        ];
        let model = load(timm_file(&ls, &[])).expect("builds");
        assert_eq!(model.input_size, 32);
    }

    #[test]
    fn malformed_files_are_one_line_errors() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (timm_file(&[], &["pos_embed"]), "pos_embed"),
            (
                timm_file(&[("pos_embed", vec![1, 5, 32])], &[]),
                "pos_embed",
            ),
            (
                timm_file(&[("blocks.0.attn.q_norm.weight", vec![64])], &[]),
                "normalised queries",
            ),
            (
                timm_file(&[("reg_token", vec![1, 4, 64])], &[]),
                "register tokens",
            ),
            (
                timm_file(&[("cls_token", vec![1, 1, 48])], &[]),
                "heads of 64 channels",
            ),
            (
                timm_file_with_heads(&[], &[], None),
                "does not say how many heads",
            ),
            (
                timm_file_with_heads(&[], &[], Some(2)),
                "2 heads of 32 channels",
            ),
            (
                timm_file_with_heads(&[], &[], Some(3)),
                "`3` does not divide",
            ),
            (
                timm_file(&[("blocks.0.attn.norm.weight", vec![64])], &[]),
                "normalised attention outputs",
            ),
            (
                timm_file(&[("norm_pre.weight", vec![64])], &[]),
                "a LayerNorm before the blocks",
            ),
            (timm_file(&[], &["blocks.0.attn.qkv.bias"]), "qkv.bias"),
            (
                timm_file(&[("patch_embed.proj.weight", vec![64, 3, 0, 0])], &[]),
                "patch 0",
            ),
        ];
        for (bytes, what) in cases {
            let message = load(bytes).expect_err(what).to_string();
            assert!(message.contains(what), "{what}: {message}");
            assert!(!message.contains('\n'), "one line: {message}");
        }
    }

    #[test]
    fn a_named_variant_checks_the_files_shape() {
        let arch = crate::model::Arch::parse("vit_tiny_patch16_224").expect("arch");
        let message = Model::from_bytes_as(
            Path::new("vit.safetensors"),
            timm_file(&[], &[]),
            Some(arch),
        )
        .expect_err("a tiny ViT is 192 wide")
        .to_string();
        assert!(
            message.contains("vit_tiny_patch16_224 has embedding 192"),
            "{message}"
        );
    }
}
