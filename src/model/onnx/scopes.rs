//! The PyTorch module a node of an exported graph belongs to, so that `--layer layer4` means
//! what `model.layer4` means to pytorch-grad-cam.
//!
//! - The dynamo exporter (`torch.onnx.export(..., dynamo=True)`) writes each node's scopes into
//!   its `pkg.torch.onnx.name_scopes` metadata, a Python list literal: the root `''`, then every
//!   enclosing module's path, then the node's own FX name
//!   (`['', 'layer1', 'layer1.0', 'layer1.0.relu', 'relu_2']`).
//! - The TorchScript exporter writes them into the node's name, `/`-separated, the op type last
//!   (`/layer1/layer1.0/relu_1/Relu`). Each part is a module's attribute name, a numeric one
//!   prefixed with its parent's (`layer1.0` inside `layer1`, `downsample.0` inside
//!   `downsample`); a module called again gets `_N` appended (`relu_1` is the second call of
//!   `relu`).

use std::collections::HashSet;

use super::proto::NodeProto;

/// Recovers module paths node by node, in graph order.
#[derive(Default)]
pub struct Scopes {
    /// Every module path seen so far (a later `relu_1` is a repeated call of a seen `relu`).
    seen: HashSet<String>,
}

impl Scopes {
    /// The path of the innermost module `node` belongs to; `None` for a node at the root or
    /// without scope information.
    pub fn module(&mut self, node: &NodeProto) -> Option<String> {
        let path = match node
            .metadata_props
            .iter()
            .find(|p| p.key == "pkg.torch.onnx.name_scopes")
        {
            Some(p) => {
                let scopes = python_strings(&p.value)?;
                // The last entry is the node's own name, not a module.
                let modules = &scopes[..scopes.len().saturating_sub(1)];
                modules.iter().rev().find(|s| !s.is_empty()).cloned()
            }
            None => self.path_in_name(&node.name),
        }?;
        self.seen.insert(path.clone());
        Some(path)
    }

    /// The module path a TorchScript node name gives, with repeated calls' `_N` removed.
    fn path_in_name(&self, name: &str) -> Option<String> {
        let parts: Vec<&str> = name.strip_prefix('/')?.split('/').collect();
        // The last part is the op (`Relu`, `Conv_1`).
        let scopes = &parts[..parts.len().checked_sub(1)?];
        let mut path: Vec<String> = Vec::new();
        for part in scopes.iter().filter(|p| !p.is_empty()) {
            let segments: Vec<&str> = part.split('.').collect();
            // The longest tail of the path that this part repeats as its head.
            let overlap = (1..=path.len().min(segments.len() - 1))
                .rev()
                .find(|&k| {
                    path[path.len() - k..]
                        .iter()
                        .zip(&segments[..k])
                        .all(|(a, b)| a == b)
                })
                .unwrap_or(0);
            path.extend(segments[overlap..].iter().map(|s| s.to_string()));
            // `relu_1`: a repeated call of `relu`, when `relu` was seen.
            if let Some(last) = path.last().cloned() {
                if let Some((base, n)) = last.rsplit_once('_') {
                    if !base.is_empty() && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) {
                        let mut repeated = path.clone();
                        *repeated.last_mut().expect("not empty") = base.to_string();
                        if self.seen.contains(&repeated.join(".")) {
                            path = repeated;
                        }
                    }
                }
            }
        }
        (!path.is_empty()).then(|| path.join("."))
    }
}

/// The strings of a Python list literal of strings (`['', 'layer1', "a'b"]`); `None` if it is
/// not one.
fn python_strings(text: &str) -> Option<Vec<String>> {
    let inner = text.trim().strip_prefix('[')?.strip_suffix(']')?;
    let mut out = Vec::new();
    let mut chars = inner.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        let Some(quote) = chars.next() else {
            return Some(out);
        };
        if quote != '\'' && quote != '"' {
            return None;
        }
        let mut s = String::new();
        loop {
            match chars.next()? {
                '\\' => s.push(chars.next()?),
                c if c == quote => break,
                c => s.push(c),
            }
        }
        out.push(s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::onnx::proto::StringStringEntryProto;

    fn node(name: &str) -> NodeProto {
        NodeProto {
            name: name.into(),
            ..Default::default()
        }
    }

    #[test]
    fn torchscript_names() {
        let mut s = Scopes::default();
        let paths: Vec<Option<String>> = [
            "/conv1/Conv",
            "/relu/Relu",
            "/layer1/layer1.0/conv1/Conv",
            "/layer1/layer1.0/relu/Relu",
            "/layer1/layer1.0/Add",
            "/layer1/layer1.0/relu_1/Relu",
            "/layer2/layer2.0/downsample/downsample.0/Conv",
            "/features/features.0/features.0.1/Conv",
            "/blocks/conv_1/Conv",
            "/Flatten",
        ]
        .iter()
        .map(|n| s.module(&node(n)))
        .collect();
        let want = [
            Some("conv1"),
            Some("relu"),
            Some("layer1.0.conv1"),
            Some("layer1.0.relu"),
            Some("layer1.0"),
            Some("layer1.0.relu"),
            Some("layer2.0.downsample.0"),
            Some("features.0.1"),
            Some("blocks.conv_1"),
            None,
        ];
        assert_eq!(paths, want.map(|p| p.map(String::from)));
    }

    #[test]
    fn dynamo_name_scopes() {
        let mut s = Scopes::default();
        let mut n = node("node_relu_2");
        n.metadata_props.push(StringStringEntryProto {
            key: "pkg.torch.onnx.name_scopes".into(),
            value: "['', 'layer1', 'layer1.0', 'layer1.0.relu', 'relu_2']".into(),
        });
        assert_eq!(s.module(&n).as_deref(), Some("layer1.0.relu"));
        n.metadata_props[0].value = "['', 'view']".into();
        assert_eq!(s.module(&n), None);
        assert_eq!(
            python_strings(r#"['a', "b'c", 'd\'e']"#),
            Some(vec!["a".into(), "b'c".into(), "d'e".into()])
        );
        assert_eq!(python_strings("['a'"), None);
    }
}
