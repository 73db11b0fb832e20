//! Every shader parses and validates with naga (the version wgpu uses) with its `#import`s
//! resolved, every file in shaders/ is registered as a kernel, every helper in shaders/lib/ is
//! imported by some kernel, every kernel's bindings in the registry have the names, numbers and
//! kinds of the WGSL's, and every mirrored struct has the field offsets and size naga computes.

use std::collections::BTreeSet;
use std::path::Path;

use gradcam::gpu::kernels::{
    specialization, subgroup_source, BindingKind, ALL_KERNELS, CONV2D_GRAD_BLOCKS,
    CONV2D_GRAD_VARIANTS, CONV2D_TEXTURE_TILES, CONV_SUBGROUP_TILE, DEPTHWISE_BLOCKS,
    DEPTHWISE_GRAD_BLOCKS, DEPTHWISE_GRAD_VARIANTS, DEPTHWISE_VARIANTS, STEM_OX, SUBGROUP_TILE,
    WORKGROUP_TILED,
};
use gradcam::gpu::params::STORAGE_STRUCTS;

fn parse_and_validate(name: &str, source: &str) -> (naga::Module, naga::valid::ModuleInfo) {
    let module = naga::front::wgsl::parse_str(source).unwrap_or_else(|e| {
        panic!(
            "shaders/{name}.wgsl (as prepared by build.rs: line numbers count the inlined \
             #imports) does not parse:\n{}",
            e.emit_to_string(source)
        )
    });
    let info = naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::default(),
    )
    .validate(&module)
    .unwrap_or_else(|e| {
        panic!(
            "shaders/{name}.wgsl (as prepared by build.rs: line numbers count the inlined \
             #imports) does not validate:\n{}",
            e.emit_to_string(source)
        )
    });
    (module, info)
}

#[test]
fn every_shader_validates() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let mut on_disk = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).expect("shaders/ is readable") {
        let path = entry.expect("directory entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("wgsl") {
            continue;
        }
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("utf-8 name")
            .to_string();
        // The kernel as compiled: its `#import`s resolved by build.rs.
        let spec = ALL_KERNELS
            .iter()
            .find(|k| k.name == name)
            .unwrap_or_else(|| panic!("shaders/{name}.wgsl is not in the kernel registry"));
        let (module, _) = parse_and_validate(&name, spec.source);
        let entry_points: Vec<&str> = module
            .entry_points
            .iter()
            .map(|e| e.name.as_str())
            .collect();
        // `main`, and `main_workgroup_tiled` where a variant runs the workgroup-tiled layout.
        let tiled = spec
            .variants
            .iter()
            .any(|v| v.constants.iter().any(|(c, _)| *c == WORKGROUP_TILED));
        let expected: &[&str] = if tiled {
            &["main", "main_workgroup_tiled"]
        } else {
            &["main"]
        };
        assert_eq!(
            entry_points, expected,
            "shaders/{name}.wgsl: its entry points are `main` and, with a workgroup-tiled \
             variant, `main_workgroup_tiled`"
        );
        on_disk.insert(name);
    }
    let registered: BTreeSet<String> = ALL_KERNELS.iter().map(|k| k.name.to_string()).collect();
    assert_eq!(
        on_disk, registered,
        "shaders/ and the kernel registry disagree"
    );
}

/// Whether a shader, or a helper it imports (imports of imports included), has a `#subgroups`
/// block.
fn has_subgroups_block(text: &str) -> bool {
    text.lines().any(|l| {
        let l = l.trim();
        l == "#subgroups"
            || l.strip_prefix("#import ").is_some_and(|module| {
                let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join(format!("shaders/lib/{}.wgsl", module.trim()));
                has_subgroups_block(&std::fs::read_to_string(&path).expect("helper is readable"))
            })
    })
}

/// The copies with the `#subgroups` blocks (compiled only on devices with subgroups) validate
/// with subgroup operations, and every kernel with such a block (its own or an imported
/// helper's) has its copy registered.
#[test]
fn every_subgroup_copy_validates() {
    for spec in ALL_KERNELS {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("shaders/{}.wgsl", spec.name));
        let raw = std::fs::read_to_string(&path).expect("shader is readable");
        let has_block = has_subgroups_block(&raw);
        let copy = subgroup_source(spec.name);
        assert_eq!(
            has_block,
            copy.is_some(),
            "shaders/{}.wgsl: a #subgroups block and a registered subgroup copy go together",
            spec.name
        );
        let Some(source) = copy else { continue };
        let module = naga::front::wgsl::parse_str(source).unwrap_or_else(|e| {
            panic!(
                "{}.subgroups.wgsl does not parse:\n{}",
                spec.name,
                e.emit_to_string(source)
            )
        });
        naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::SUBGROUP,
        )
        .subgroup_stages(naga::valid::ShaderStages::COMPUTE)
        .subgroup_operations(naga::valid::SubgroupOperationSet::all())
        .validate(&module)
        .unwrap_or_else(|e| {
            panic!(
                "{}.subgroups.wgsl does not validate:\n{}",
                spec.name,
                e.emit_to_string(source)
            )
        });
        assert!(
            module
                .entry_points
                .iter()
                .any(|e| e.name == "main_subgroups"),
            "{}.subgroups.wgsl has no main_subgroups",
            spec.name
        );
    }
}

/// The numbers of each `#generate NAME ...` line of shaders/`file`.wgsl (the last `count`
/// arguments).
fn generate_lines(file: &str, name: &str, count: usize) -> Vec<Vec<u32>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("shaders/{file}.wgsl"));
    std::fs::read_to_string(path)
        .expect("shader is readable")
        .lines()
        .filter_map(|l| l.trim().strip_prefix(&format!("#generate {name} ")))
        .map(|args| {
            let numbers: Vec<u32> = args
                .split_whitespace()
                .filter_map(|a| a.parse().ok())
                .collect();
            numbers[numbers.len() - count..].to_vec()
        })
        .collect()
}

/// The block and tile sizes the dispatches are sized by (src/gpu/kernels.rs) are those the
/// shaders' `#generate` lines write out: a mismatch would leave outputs unwritten.
#[test]
fn generated_blocks_match_the_dispatch_sizes() {
    let blocks = [
        (
            "lib/depthwise_conv",
            "depthwise_block",
            DEPTHWISE_VARIANTS,
            &DEPTHWISE_BLOCKS[..],
        ),
        (
            "depthwise_conv_grad",
            "depthwise_grad_block",
            DEPTHWISE_GRAD_VARIANTS,
            &DEPTHWISE_GRAD_BLOCKS[..],
        ),
        (
            "conv2d_grad",
            "image_grad_block",
            CONV2D_GRAD_VARIANTS,
            &CONV2D_GRAD_BLOCKS[..],
        ),
    ];
    for (file, generator, variants, sizes) in blocks {
        let lines = generate_lines(file, generator, 4);
        assert_eq!(
            lines.len(),
            sizes.len(),
            "shaders/{file}.wgsl: one {generator} per size"
        );
        for l in lines {
            let v = specialization(variants, l[0], l[1])
                .unwrap_or_else(|| panic!("no variant for kernel {} stride {}", l[0], l[1]));
            assert_eq!(
                sizes[v - 1],
                (l[2], l[3]),
                "shaders/{file}.wgsl: {generator} {l:?} against the dispatch's block"
            );
        }
    }
    for file in ["lib/pointwise_conv", "pointwise_conv_grad"] {
        for l in generate_lines(file, "subgroup_tile", 2) {
            assert_eq!(
                (l[0], l[1]),
                SUBGROUP_TILE,
                "shaders/{file}.wgsl: subgroup_tile"
            );
        }
    }
    let conv = generate_lines("conv2d", "subgroup_tile", 2);
    assert_eq!(conv, [vec![CONV_SUBGROUP_TILE.0, CONV_SUBGROUP_TILE.1]]);
    let texture = generate_lines("conv2d_texture", "subgroup_tile", 2);
    let tiles: Vec<Vec<u32>> = CONV2D_TEXTURE_TILES
        .iter()
        .map(|t| vec![t.0, t.1])
        .collect();
    assert_eq!(texture, tiles, "shaders/conv2d_texture.wgsl: subgroup_tile");
    for l in generate_lines("conv2d", "subgroup_stem", 1) {
        assert_eq!(l[0], STEM_OX, "shaders/conv2d.wgsl: subgroup_stem");
    }
}

#[test]
fn registered_bindings_match_the_shaders() {
    for spec in ALL_KERNELS {
        let (module, _) = parse_and_validate(spec.name, spec.source);
        let mut bindings: Vec<(u32, u32, &str, naga::AddressSpace)> = module
            .global_variables
            .iter()
            .filter_map(|(_, v)| {
                v.binding
                    .as_ref()
                    .map(|b| (b.group, b.binding, v.name.as_deref().unwrap_or(""), v.space))
            })
            .collect();
        bindings.sort_by_key(|b| (b.0, b.1));
        let wgsl: Vec<&str> = bindings.iter().map(|b| b.2).collect();
        let rust: Vec<&str> = spec.bindings.iter().map(|b| b.0).collect();
        assert_eq!(
            wgsl, rust,
            "shaders/{}.wgsl: the bindings' names in WGSL and in the kernel registry differ",
            spec.name
        );
        for (i, ((group, binding, name, space), (_, kind))) in
            bindings.iter().zip(spec.bindings).enumerate()
        {
            assert_eq!(
                (*group, *binding as usize),
                (0, i),
                "shaders/{}.wgsl: `{name}` must be @group(0) @binding({i})",
                spec.name
            );
            let ok = match kind {
                BindingKind::Uniform => *space == naga::AddressSpace::Uniform,
                BindingKind::Storage => {
                    matches!(space, naga::AddressSpace::Storage { access } if !access.contains(naga::StorageAccess::STORE))
                }
                BindingKind::StorageReadWrite => {
                    matches!(space, naga::AddressSpace::Storage { access } if access.contains(naga::StorageAccess::STORE))
                }
                BindingKind::Texture => *space == naga::AddressSpace::Handle,
            };
            assert!(
                ok,
                "shaders/{}.wgsl: `{name}` is {space:?} in WGSL but {kind:?} in the registry",
                spec.name
            );
        }
    }
}

/// Checks that the WGSL struct `struct_name` of `shader` has the named fields at the offsets
/// `fields` gives and `size` bytes in all; fields whose names start with `_` are padding, and
/// only their size counts.
fn check_struct(
    shader: &str,
    source: &str,
    struct_name: &str,
    fields: &[(&str, usize)],
    size: usize,
) {
    let (module, _) = parse_and_validate(shader, source);
    let (handle, ty) = module
        .types
        .iter()
        .find(|(_, t)| t.name.as_deref() == Some(struct_name))
        .unwrap_or_else(|| panic!("shaders/{shader}.wgsl has no struct {struct_name}"));
    let mut layouter = naga::proc::Layouter::default();
    layouter.update(module.to_ctx()).expect("layout");
    let wgsl_size = layouter[handle].size as usize;
    assert_eq!(
        wgsl_size, size,
        "{shader}.wgsl {struct_name}: WGSL {wgsl_size} bytes, Rust {size} bytes"
    );
    let naga::TypeInner::Struct { members, .. } = &ty.inner else {
        panic!("{shader}.wgsl {struct_name} is not a struct");
    };
    let named = |name: &str| !name.starts_with('_');
    let wgsl: Vec<(&str, usize)> = members
        .iter()
        .map(|m| (m.name.as_deref().unwrap_or(""), m.offset as usize))
        .filter(|(n, _)| named(n))
        .collect();
    let rust: Vec<(&str, usize)> = fields.iter().copied().filter(|(n, _)| named(n)).collect();
    assert_eq!(
        wgsl, rust,
        "{shader}.wgsl {struct_name}: fields (name, byte offset) in WGSL vs Rust"
    );
}

#[test]
fn params_structs_match_wgsl_layout() {
    for spec in ALL_KERNELS {
        check_struct(
            spec.name,
            spec.source,
            "Params",
            spec.params_fields,
            spec.params_size,
        );
    }
    for (shader, struct_name, fields, size) in STORAGE_STRUCTS {
        let spec = ALL_KERNELS
            .iter()
            .find(|k| k.name == *shader)
            .expect("registered kernel");
        check_struct(shader, spec.source, struct_name, fields, *size);
    }
}

#[test]
fn every_shared_helper_is_imported() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders/lib");
    for entry in std::fs::read_dir(&dir).expect("shaders/lib/ is readable") {
        let path = entry.expect("directory entry").path();
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("utf-8 name");
        let marker = format!("// ---- #import {name} ");
        assert!(
            ALL_KERNELS.iter().any(|k| k.source.contains(&marker)),
            "shaders/lib/{name}.wgsl is imported by no kernel"
        );
    }
}

/// Variants are named (the tune cache and `GRADCAM_FORCE` use the names): each name is unique
/// within its kernel and round-trips, and each variant the engine refers to by a constant is the
/// one its name says.
#[test]
fn kernel_variants_are_named() {
    use gradcam::gpu::kernels::*;
    for (id, spec) in ALL_KERNEL_IDS.iter().zip(ALL_KERNELS) {
        let mut names = BTreeSet::new();
        for v in 0..=spec.variants.len() {
            let name = id.variant_name(v).expect("a name");
            assert!(
                !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{}: variant {v} is named `{name}`",
                spec.name
            );
            assert!(names.insert(name), "{}: `{name}` twice", spec.name);
            assert_eq!(id.variant_named(name), Some(v), "{}: `{name}`", spec.name);
        }
        assert_eq!(id.variant_name(spec.variants.len() + 1), None);
        assert_eq!(id.variant_named("no_such_variant"), None);
    }
    let constants = [
        (KernelId::PointwiseConv, POINTWISE_SUBGROUP, "subgroup_tile"),
        (
            KernelId::PointwiseConv,
            POINTWISE_WORKGROUP_TILED,
            "workgroup_tiled",
        ),
        (
            KernelId::PointwiseConvGrad,
            POINTWISE_GRAD_SUBGROUP,
            "subgroup_tile",
        ),
        (KernelId::Linear, LINEAR_SPLIT, "split"),
        (KernelId::Linear, LINEAR_SUBGROUP, "subgroup"),
        (KernelId::LinearGrad, LINEAR_GRAD_SUBGROUP, "subgroup"),
        (KernelId::Conv2d, CONV2D_TILED, "tiled"),
        (KernelId::Conv2d, CONV2D_GEMM, "gemm"),
        (KernelId::Conv2d, CONV2D_SUBGROUP_STEM, "subgroup_stem_3x3"),
        (KernelId::Conv2d, CONV2D_SUBGROUP_TILE, "subgroup_tile"),
        (KernelId::Conv2d, CONV2D_SUBGROUP_STEM7, "subgroup_stem_7x7"),
        (KernelId::DepthwiseConv, DEPTHWISE_STAGED, "staged"),
        (KernelId::Conv2d, conv2d_variant(3, 2, 3), "stem_3x3_s2"),
        (KernelId::DepthwiseConv, depthwise_variant(5, 2), "k5_s2"),
        (
            KernelId::DepthwiseConvGrad,
            depthwise_grad_variant(3, 1),
            "k3_s1",
        ),
        (KernelId::Conv2dGrad, conv2d_grad_variant(7, 2, 3), "k7_s2"),
    ];
    for (kernel, variant, name) in constants {
        assert_eq!(
            kernel.variant_name(variant),
            Some(name),
            "{kernel:?} {variant}"
        );
    }
}
