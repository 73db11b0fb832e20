//! timm's VisionTransformer (ViT, DeiT) as a graph: `patch_embed.proj` (a p×p conv of stride p),
//! the patch map read as tokens after the class token `cls_token` (and DeiT's distillation token
//! `dist_token`), plus `pos_embed`; blocks `blocks.N`: `norm1` (LayerNorm), `attn.qkv` (linear
//! on every token), multi-head self-attention, `attn.proj` (linear) plus the block's input, then
//! `norm2`, `mlp.fc1` with GELU, `mlp.fc2` plus the residual; the final `norm` and the head
//! `head` on the class token (DeiT's distilled models: the mean of `head` on the class token and
//! `head_dist` on the distillation token, as timm evaluates them). LayerNorm epsilon 1e-6, heads
//! of 64 channels. Width, depth, patch and input size are read from the file.
//!
//! A CAM at a token layer (`blocks.11.norm1`, the default, as pytorch-grad-cam's ViT tutorial
//! targets) drops the prefix tokens and lays the patch tokens on their grid, the embedding as
//! channels: the tutorial's `reshape_transform`.

use super::arch::{detected, Family};
use super::builder::{Builder, ConvSpec, Description, IMAGENET_MEAN, IMAGENET_STD};
use super::tensors::WeightFile;
use super::{Activation, Model, TokenGrid};
use crate::error::{Error, Result};

/// A timm vision transformer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Variant {
    /// The name `--arch` takes.
    pub name: &'static str,
    /// Embedding channels.
    width: u32,
    /// Blocks.
    depth: u32,
    /// Patch side.
    patch: u32,
    /// Input side.
    size: u32,
    /// Whether it has DeiT's distillation token and head.
    distilled: bool,
    /// Whether it normalises with ImageNet's statistics (DeiT) rather than 0.5 (ViT).
    imagenet: bool,
}

const fn vit(name: &'static str, width: u32, depth: u32, patch: u32, size: u32) -> Variant {
    Variant {
        name,
        width,
        depth,
        patch,
        size,
        distilled: false,
        imagenet: false,
    }
}

const fn deit(name: &'static str, width: u32, patch: u32, size: u32, distilled: bool) -> Variant {
    Variant {
        name,
        width,
        depth: 12,
        patch,
        size,
        distilled,
        imagenet: true,
    }
}

/// timm's ViTs and DeiTs. A ViT and the DeiT of the same shape have the same tensors: the file
/// is recognised as the ViT, whose normalisation is 0.5; `--arch deit_...` (or `--mean/--std`,
/// or the file's `mean`/`std` metadata) gives a DeiT's ImageNet statistics.
pub const VARIANTS: [Variant; 22] = [
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
    deit("deit_tiny_patch16_224", 192, 16, 224, false),
    deit("deit_small_patch16_224", 384, 16, 224, false),
    deit("deit_base_patch16_224", 768, 16, 224, false),
    deit("deit_base_patch16_384", 768, 16, 384, false),
    deit("deit_tiny_distilled_patch16_224", 192, 16, 224, true),
    deit("deit_small_distilled_patch16_224", 384, 16, 224, true),
    deit("deit_base_distilled_patch16_224", 768, 16, 224, true),
    deit("deit_base_distilled_patch16_384", 768, 16, 384, true),
    vit("vit_huge_patch14_224", 1280, 32, 14, 224),
];

/// LayerNorm epsilon of timm's ViTs.
const EPS: f32 = 1e-6;

/// Channels per head of every timm ViT and DeiT.
const HEAD_DIM: u32 = 64;

/// Whether `file` holds a timm ViT: its class token, patch embedding and first attention.
pub fn claims(file: &WeightFile) -> bool {
    file.shape("cls_token").is_some()
        && file.shape("patch_embed.proj.weight").is_some()
        && file.shape("blocks.0.attn.qkv.weight").is_some()
}

/// The structure the file has: (width, depth, patch, input side, distilled).
fn structure(file: &WeightFile) -> Variant {
    let dim = |name: &str, i: usize| {
        file.shape(name)
            .and_then(|s| s.get(i).copied())
            .map_or(0, |v| v as u32)
    };
    let width = dim("cls_token", 2);
    let patch = dim("patch_embed.proj.weight", 2);
    let distilled = file.shape("dist_token").is_some();
    let tokens = dim("pos_embed", 1).saturating_sub(1 + u32::from(distilled));
    let grid = (f64::from(tokens).sqrt().round()) as u32;
    let mut depth = 0;
    while file
        .shape(&format!("blocks.{depth}.norm1.weight"))
        .is_some()
    {
        depth += 1;
    }
    Variant {
        name: "",
        width,
        depth,
        patch,
        size: grid * patch,
        distilled,
        imagenet: distilled,
    }
}

/// The variant with the file's structure (the ViT where a ViT and a DeiT share it).
pub fn detect(file: &WeightFile) -> Option<Variant> {
    let s = structure(file);
    VARIANTS.into_iter().find(|v| {
        (v.width, v.depth, v.patch, v.size, v.distilled)
            == (s.width, s.depth, s.patch, s.size, s.distilled)
    })
}

/// Builds `variant` from `file` for `size`² inputs (its structure read from the file; the
/// position embedding fixes the input size).
pub fn build(file: &WeightFile, variant: &Variant, size: u32) -> Result<Model> {
    let found = structure(file);
    let (width, patch) = (found.width, found.patch);
    if width == 0 || !width.is_multiple_of(HEAD_DIM) || patch == 0 || found.depth == 0 {
        return Err(Error::UnsupportedModel {
            path: file.path().to_path_buf(),
            reason: format!(
                "not a timm ViT the engine builds (embedding {width}, patch {patch}, {} blocks; \
                 heads of {HEAD_DIM} channels)",
                found.depth
            ),
        });
    }
    if size != found.size {
        return Err(Error::UnsupportedModel {
            path: file.path().to_path_buf(),
            reason: format!(
                "its position embedding fits {}² inputs, not {size}² (interpolating it is not \
                 supported)",
                found.size
            ),
        });
    }
    let heads = width / HEAD_DIM;
    let mut g = Builder::new(file, size);
    let input = g.input();
    let embed = ConvSpec {
        stride: patch,
        conv_bias: true,
        ..ConvSpec::new("patch_embed.proj", None, patch, width)
    };
    let patches = g.conv(&embed, input, "patch_embed")?;
    let grid = size / patch;
    let prefix: &[&str] = if found.distilled {
        &["cls_token", "dist_token"]
    } else {
        &["cls_token"]
    };
    g.token_grid(TokenGrid {
        prefix: prefix.len() as u32,
        height: grid,
        width: grid,
    });
    let mut x = g.token_embed(prefix, "pos_embed", patches, "pos_embed")?;
    for i in 0..found.depth {
        let p = format!("blocks.{i}");
        let block_in = x;
        let norm1 = format!("{p}.norm1");
        let y = g.layer_norm(&norm1, EPS, x, &norm1)?;
        g.layer(&norm1, y);
        let qkv = g.pixel_linear(
            &format!("{p}.attn.qkv"),
            y,
            Activation::None,
            &format!("{p}.attn.qkv"),
        )?;
        let y = g.attention(heads, qkv, &format!("{p}.attn.attention"))?;
        let y = g.pixel_linear(
            &format!("{p}.attn.proj"),
            y,
            Activation::None,
            &format!("{p}.attn"),
        )?;
        let x1 = g.add(y, block_in, &format!("{p}.attn_residual"))?;
        let norm2 = format!("{p}.norm2");
        let y = g.layer_norm(&norm2, EPS, x1, &norm2)?;
        g.layer(&norm2, y);
        let y = g.pixel_linear(
            &format!("{p}.mlp.fc1"),
            y,
            Activation::Gelu,
            &format!("{p}.mlp.act"),
        )?;
        let y = g.pixel_linear(
            &format!("{p}.mlp.fc2"),
            y,
            Activation::None,
            &format!("{p}.mlp"),
        )?;
        x = g.add(y, x1, &p)?;
        g.layer(&p, x);
    }
    let x = g.layer_norm("norm", EPS, x, "norm")?;
    g.layer("norm", x);
    let logits = if found.distilled {
        let tokens = g.select_tokens(2, x, "head_tokens")?;
        g.mean_of_heads(&["head", "head_dist"], tokens, "logits")?
    } else {
        let token = g.select_tokens(1, x, "class_token")?;
        g.linear("head", token, Activation::None, "logits")?
    };
    let (mean, std) = if variant.imagenet {
        (IMAGENET_MEAN, IMAGENET_STD)
    } else {
        ([0.5; 3], [0.5; 3])
    };
    g.finish(
        Description {
            architecture: variant.name.to_string(),
            mean,
            std,
            default_layer: format!("blocks.{}.norm1", found.depth - 1),
        },
        logits,
    )
}

/// The family's registration in src/model/arch.rs.
pub const FAMILY: Family = Family {
    variants: VARIANTS.len(),
    name: |i| VARIANTS[i].name,
    input_size: |i| VARIANTS[i].size,
    claims,
    candidates: |file| detected(&VARIANTS, detect(file)),
    build: |file, i, size| build(file, &VARIANTS[i], size),
};
