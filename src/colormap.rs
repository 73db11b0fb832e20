//! Colormaps for the heatmap overlay: 256-entry RGB tables, committed as data by
//! tools/make_colormaps.py.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// A 256-entry colormap.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Colormap {
    /// OpenCV's `COLORMAP_JET`, byte for byte (pytorch-grad-cam's default).
    #[default]
    Jet,
    /// matplotlib's turbo.
    Turbo,
    /// matplotlib's viridis.
    Viridis,
    /// matplotlib's inferno.
    Inferno,
    /// matplotlib's magma.
    Magma,
}

impl Colormap {
    /// Every colormap, in the order `--help` lists them.
    pub const ALL: [Colormap; 5] = [
        Self::Jet,
        Self::Turbo,
        Self::Viridis,
        Self::Inferno,
        Self::Magma,
    ];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Jet => "jet",
            Self::Turbo => "turbo",
            Self::Viridis => "viridis",
            Self::Inferno => "inferno",
            Self::Magma => "magma",
        }
    }

    /// The table: 256 RGB triples, index = `uint8(255 · cam)`.
    pub fn table(self) -> &'static [u8; 768] {
        match self {
            Self::Jet => include_bytes!("colormaps/jet.rgb"),
            Self::Turbo => include_bytes!("colormaps/turbo.rgb"),
            Self::Viridis => include_bytes!("colormaps/viridis.rgb"),
            Self::Inferno => include_bytes!("colormaps/inferno.rgb"),
            Self::Magma => include_bytes!("colormaps/magma.rgb"),
        }
    }

    /// The table packed as the overlay kernels read it: `r | g << 8 | b << 16`.
    pub fn packed(self) -> [u32; 256] {
        let t = self.table();
        std::array::from_fn(|i| {
            u32::from(t[3 * i]) | u32::from(t[3 * i + 1]) << 8 | u32::from(t[3 * i + 2]) << 16
        })
    }
}

impl fmt::Display for Colormap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Colormap {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Self::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|c| c.name()).collect();
                Error::InvalidRequest(format!(
                    "unknown colormap `{s}`; valid colormaps: {}",
                    names.join(", ")
                ))
            })
    }
}
