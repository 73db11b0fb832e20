//! A vision transformer's token sequence from its patch embedding (timm's `_pos_embed`,
//! torchvision's `class_token` and `encoder.pos_embedding`): the `h×w` patch map read row by row
//! as `h·w` tokens, after `k` learned prefix tokens (a class token; DeiT's distillation token),
//! and a position embedding added to every token:
//! `y[t] = prefix[t] + pos[t]` for `t < k`, `y[k + i] = x[i] + pos[k + i]`; or, where the
//! position embedding covers the patch tokens only (timm's `no_embed_class`: DeiT III),
//! `y[t] = prefix[t]` and `y[k + i] = x[i] + pos[i]`.
//!
//! Tokens are stored as a 1×(k + h·w) map of the embedding's channels, so the patch tokens are
//! the patch map's values in place (NHWC).
//!
//! Gradient: `∂x[i] = ∂y[k + i]` (keeps nothing). Not a bias layer for FullGrad.

use super::{single, Keeps, OpRule, Shape};

/// The prefix tokens and position embedding.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenEmbed {
    /// `[k, channels]`: the class token (and distillation token).
    pub prefix: Vec<f32>,
    /// `[k + h·w, channels]`, added to every token, or `[h·w, channels]`, added to the patch
    /// tokens ([`TokenEmbed::position_covers_prefix`]).
    pub position: Vec<f32>,
    /// Whether the position embedding has the prefix tokens' too.
    pub position_covers_prefix: bool,
    /// `k`.
    pub prefix_tokens: u32,
}

impl TokenEmbed {
    /// The values added to each token of the sequence, `[k + h·w, channels]`: the prefix tokens
    /// (plus their position embedding, one float32 sum each, as PyTorch adds them), then the
    /// patch tokens' position embedding.
    pub fn table(&self) -> Vec<f32> {
        if self.position_covers_prefix {
            let mut table = self.position.clone();
            for (t, p) in table.iter_mut().zip(&self.prefix) {
                *t += *p;
            }
            table
        } else {
            [self.prefix.as_slice(), &self.position].concat()
        }
    }
}

impl OpRule for TokenEmbed {
    fn kind(&self) -> &'static str {
        "TokenEmbed"
    }

    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape, String> {
        let (h, w, c) = single(inputs);
        let tokens = u64::from(self.prefix_tokens) + u64::from(h) * u64::from(w);
        let c64 = u64::from(c);
        if self.prefix.len() as u64 != u64::from(self.prefix_tokens) * c64 {
            return Err(format!(
                "{} prefix values for {} tokens of {c} channels",
                self.prefix.len(),
                self.prefix_tokens
            ));
        }
        let covered = if self.position_covers_prefix {
            tokens
        } else {
            u64::from(h) * u64::from(w)
        };
        let position = self.position.len() as u64;
        if position != covered * c64 {
            return Err(format!(
                "a position embedding of {position} values for {tokens} tokens of {c} channels"
            ));
        }
        let tokens = u32::try_from(tokens).map_err(|_| format!("{tokens} tokens"))?;
        Ok((1, tokens, c))
    }

    fn keeps(&self) -> Keeps {
        Keeps::Nothing
    }
}
