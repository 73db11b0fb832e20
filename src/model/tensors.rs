//! Reading named tensors from a safetensors file, with checks that name the file and tensor.

use std::path::{Path, PathBuf};

use safetensors::tensor::Metadata;
use safetensors::{Dtype, SafeTensors};

use crate::error::{one_line, Error, Result};

/// A safetensors file read into memory, its header parsed and validated.
pub struct WeightFile {
    path: PathBuf,
    bytes: Vec<u8>,
    header_len: usize,
    metadata: Metadata,
    /// Tensors read successfully so far: how far a builder got (see [`WeightFile::reads`]).
    reads: std::cell::Cell<usize>,
}

impl std::fmt::Debug for WeightFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WeightFile")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl WeightFile {
    /// Reads and validates `path`: header, offsets and total length.
    pub fn open(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_bytes(path, bytes)
    }

    /// Parses an in-memory file; `path` is only used in messages.
    pub fn from_bytes(path: &Path, bytes: Vec<u8>) -> Result<Self> {
        let format_error = |reason: String| Error::WeightsFormat {
            path: path.to_path_buf(),
            reason: one_line(&reason),
        };
        // deserialize checks the header, every tensor's offsets and the total data length.
        SafeTensors::deserialize(&bytes).map_err(|e| format_error(e.to_string()))?;
        let (header_len, metadata) =
            SafeTensors::read_metadata(&bytes).map_err(|e| format_error(e.to_string()))?;
        Ok(Self {
            path: path.to_path_buf(),
            bytes,
            header_len,
            metadata,
            reads: std::cell::Cell::new(0),
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every tensor's name and shape, in the header's order.
    pub fn entries(&self) -> Vec<(String, Vec<usize>)> {
        self.metadata
            .offset_keys()
            .into_iter()
            .filter_map(|name| {
                self.metadata
                    .info(&name)
                    .map(|i| (name.clone(), i.shape.clone()))
            })
            .collect()
    }

    /// A value of the header's `__metadata__`, if present.
    pub fn header(&self, key: &str) -> Option<&str> {
        self.metadata
            .metadata()
            .as_ref()
            .and_then(|m| m.get(key))
            .map(String::as_str)
    }

    /// The shape of `name`, if present.
    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.metadata.info(name).map(|i| i.shape.as_slice())
    }

    /// Tensor `name` as f32 (F16/BF16 converted), after checking it has shape `expected` and only
    /// finite values.
    pub fn tensor(&self, name: &str, expected: &[usize]) -> Result<Vec<f32>> {
        let info = self
            .metadata
            .info(name)
            .ok_or_else(|| Error::MissingTensor {
                path: self.path.clone(),
                tensor: name.to_string(),
                expected: expected.to_vec(),
            })?;
        if info.shape != expected {
            return Err(Error::TensorShape {
                path: self.path.clone(),
                tensor: name.to_string(),
                expected: expected.to_vec(),
                found: info.shape.clone(),
            });
        }
        let start = 8 + self.header_len + info.data_offsets.0;
        let end = 8 + self.header_len + info.data_offsets.1;
        let data = &self.bytes[start..end];
        let values: Vec<f32> = match info.dtype {
            Dtype::F32 => data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Dtype::F16 => data
                .chunks_exact(2)
                .map(|b| f16_to_f32(u16::from_le_bytes([b[0], b[1]])))
                .collect(),
            Dtype::BF16 => data
                .chunks_exact(2)
                .map(|b| f32::from_bits(u32::from(u16::from_le_bytes([b[0], b[1]])) << 16))
                .collect(),
            other => {
                return Err(Error::TensorDtype {
                    path: self.path.clone(),
                    tensor: name.to_string(),
                    found: format!("{other:?}"),
                })
            }
        };
        if let Some(index) = values.iter().position(|v| !v.is_finite()) {
            return Err(Error::TensorNotFinite {
                path: self.path.clone(),
                tensor: name.to_string(),
                index,
            });
        }
        self.reads.set(self.reads.get() + 1);
        Ok(values)
    }

    /// How many tensors have been read successfully: when every architecture's builder fails,
    /// the one that read the most is the closest match.
    pub fn reads(&self) -> usize {
        self.reads.get()
    }

    /// Forgets the count of [`WeightFile::reads`], before another builder tries the file.
    pub fn reset_reads(&self) {
        self.reads.set(0);
    }
}

/// IEEE 754 half to single precision, subnormals and infinities included.
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let mant = u32::from(h & 0x3ff);
    let bits = match (exp, mant) {
        (0, 0) => sign,
        (0, m) => {
            // Subnormal: normalize the mantissa.
            let shift = m.leading_zeros() - 21;
            let m = (m << shift) & 0x3ff;
            sign | ((127 - 15 + 1 - shift) << 23) | (m << 13)
        }
        (0x1f, m) => sign | 0x7f80_0000 | (m << 13),
        (e, m) => sign | ((e + 127 - 15) << 23) | (m << 13),
    };
    f32::from_bits(bits)
}

#[cfg(test)]
mod tests {
    use super::f16_to_f32;

    #[test]
    fn f16_conversion() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x0200), 2f32.powi(-15));
        assert!(f16_to_f32(0x7c00).is_infinite());
        assert_eq!(f16_to_f32(0x3555), 0.333_251_95);
    }
}
