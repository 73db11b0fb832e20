//! Class labels, one per line in class-index order.

use std::path::Path;

use crate::error::{Error, Result};

/// weights/imagenet_classes.txt.
const IMAGENET: &str = include_str!("../weights/imagenet_classes.txt");

/// Names for a model's classes.
#[derive(Clone, Debug)]
pub struct Labels {
    names: Vec<String>,
}

impl Labels {
    /// Reads `path`, which must hold exactly `classes` non-empty lines.
    pub fn load(path: &Path, classes: usize) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &text, classes)
    }

    /// Parses the text of a labels file; `path` is only used in messages.
    pub fn parse(path: &Path, text: &str, classes: usize) -> Result<Self> {
        // A UTF-8 byte-order mark (as some editors write) is not part of the first label.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let names: Vec<String> = text
            .lines()
            .map(|l| l.trim_end_matches('\r').to_string())
            .collect();
        if names.len() != classes {
            return Err(Error::Labels {
                path: path.to_path_buf(),
                reason: format!("{} labels for a model with {classes} classes", names.len()),
            });
        }
        if let Some(i) = names.iter().position(|n| n.trim().is_empty()) {
            return Err(Error::Labels {
                path: path.to_path_buf(),
                reason: format!("line {} is empty", i + 1),
            });
        }
        Ok(Self { names })
    }

    /// The 1,000 ImageNet class names, in torchvision's order (compiled in).
    pub fn imagenet() -> Self {
        Self::parse(Path::new("<built-in imagenet_classes.txt>"), IMAGENET, 1000)
            .expect("the built-in ImageNet labels are 1,000 non-empty lines")
    }

    /// The names a model with `classes` classes gets by default: ImageNet's for 1,000 classes,
    /// `class N` otherwise.
    pub fn default_for(classes: usize) -> Self {
        if classes == 1000 {
            Self::imagenet()
        } else {
            Self::numbered(classes)
        }
    }

    /// Generic names `class N` for a model without a labels file.
    pub fn numbered(classes: usize) -> Self {
        Self {
            names: (0..classes).map(|i| format!("class {i}")).collect(),
        }
    }

    /// The name of class `index`.
    pub fn get(&self, index: usize) -> &str {
        self.names.get(index).map(String::as_str).unwrap_or("?")
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether there are no labels.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}
