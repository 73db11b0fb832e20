//! Every shader parses and validates with naga (the version wgpu uses) with its `#import`s
//! resolved, every file in shaders/ is registered as a kernel, every helper in shaders/lib/ is
//! imported by some kernel, and every mirrored parameter struct has the size naga computes.

use std::collections::BTreeSet;
use std::path::Path;

use gradcam::gpu::kernels::ALL_KERNELS;
use gradcam::gpu::params::PARAMS_SIZES;

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
        let source = ALL_KERNELS
            .iter()
            .find(|k| k.name == name)
            .map(|k| k.source)
            .unwrap_or_else(|| panic!("shaders/{name}.wgsl is not in the kernel registry"));
        let (module, _) = parse_and_validate(&name, source);
        let entry_points: Vec<&str> = module
            .entry_points
            .iter()
            .map(|e| e.name.as_str())
            .collect();
        assert_eq!(
            entry_points,
            ["main"],
            "shaders/{name}.wgsl must have exactly one entry point, `main`"
        );
        on_disk.insert(name);
    }
    let registered: BTreeSet<String> = ALL_KERNELS.iter().map(|k| k.name.to_string()).collect();
    assert_eq!(
        on_disk, registered,
        "shaders/ and the kernel registry disagree"
    );
}

#[test]
fn registered_bindings_match_the_shaders() {
    for spec in ALL_KERNELS {
        let (module, _) = parse_and_validate(spec.name, spec.source);
        let mut bindings: Vec<(u32, naga::AddressSpace)> = module
            .global_variables
            .iter()
            .filter_map(|(_, v)| v.binding.as_ref().map(|b| (b.binding, v.space)))
            .collect();
        bindings.sort_by_key(|b| b.0);
        assert_eq!(
            bindings.len(),
            spec.bindings.len(),
            "{}: binding count",
            spec.name
        );
        for (i, ((binding, space), kind)) in bindings.iter().zip(spec.bindings).enumerate() {
            assert_eq!(
                *binding as usize, i,
                "{}: bindings must be numbered 0..",
                spec.name
            );
            let ok = match kind {
                gradcam::gpu::kernels::BindingKind::Uniform => {
                    *space == naga::AddressSpace::Uniform
                }
                gradcam::gpu::kernels::BindingKind::Storage => {
                    matches!(space, naga::AddressSpace::Storage { access } if !access.contains(naga::StorageAccess::STORE))
                }
                gradcam::gpu::kernels::BindingKind::StorageReadWrite => {
                    matches!(space, naga::AddressSpace::Storage { access } if access.contains(naga::StorageAccess::STORE))
                }
            };
            assert!(
                ok,
                "{}: binding {i} is {space:?} in WGSL but {kind:?} in the registry",
                spec.name
            );
        }
    }
}

#[test]
fn params_structs_match_wgsl_layout() {
    for (shader, struct_name, rust_size) in PARAMS_SIZES {
        let spec = ALL_KERNELS
            .iter()
            .find(|k| k.name == *shader)
            .expect("registered kernel");
        let (module, _) = parse_and_validate(shader, spec.source);
        let (_, ty) = module
            .types
            .iter()
            .find(|(_, t)| t.name.as_deref() == Some(*struct_name))
            .unwrap_or_else(|| panic!("shaders/{shader}.wgsl has no struct {struct_name}"));
        let mut layouter = naga::proc::Layouter::default();
        layouter.update(module.to_ctx()).expect("layout");
        let handle = module.types.get(ty).expect("type handle");
        let size = layouter[handle].size as usize;
        assert_eq!(
            size, *rust_size,
            "{shader}.wgsl {struct_name}: WGSL {size} bytes, Rust {rust_size} bytes"
        );
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
