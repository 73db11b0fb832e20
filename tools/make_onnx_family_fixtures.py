#!/usr/bin/env python3
"""Generate the ONNX forms of the architecture fixtures' families, in tests/fixtures/onnx/families/:
the same seeded models as tools/make_arch_fixtures.py (the same constructors, seed and input
side), exported by both of torch's ONNX exporters, with their weights left out.

Usage:
    pip install torch torchvision timm onnx onnxscript onnxruntime safetensors pillow numpy
    python3 tools/make_onnx_family_fixtures.py [ARCH ...]

tests/fixtures/onnx/families/<arch>.dynamo.onnx
    torch.onnx.export(..., dynamo=True) with its defaults (the exporter's graph optimisation
    included: BatchNorms after convs folded into them, a linear layer on channels-last pixels a
    MatMul by a folded transposed weight), less each node's source lines and FX node in its
    metadata, which the importer does not read.
tests/fixtures/onnx/families/<arch>.torchscript.onnx (and <arch>.torchscript17.onnx for OPSET17)
    torch.onnx.export(..., dynamo=False, opset_version=20, do_constant_folding=False,
    training=TrainingMode.PRESERVE): the TorchScript exporter's graph with every BatchNorm kept
    as a node and every initializer a state_dict() tensor, so that the weights need not be
    committed. (Its default export, BatchNorm folded into the convs, is what
    tests/fixtures/onnx/tinynet.torchscript.onnx and actnet.torchscript.onnx hold.)

Every initializer that is a state_dict() tensor, or the transpose of a 2-D one, is stored as
external data in `<arch>.weights`, which is not committed: the test writes it from the seed and
the manifest of tests/fixtures/arch/<arch>.safetensors (tests/common/seeded.rs), as the float32
tensors of the manifest in its order, then the transposes of its 2-D ones in the same order,
little-endian, then, for each [conv, BatchNorm, ε] of `<arch>.dynamo.folds.json` (the
convs whose BatchNorm the dynamo exporter folded), the conv's weight and bias with the
BatchNorm folded in (`fold` below). The few other initializers (the dynamo exporter's zero conv biases and shape
constants) stay inline. The test compares each form with the model loaded from the seeded
safetensors file and with the reference's outputs in tests/fixtures/arch/<arch>.safetensors.
"""
import json
import os
import sys
import tempfile

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_arch_fixtures as arch  # noqa: E402
from seeded_weights import fill  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "onnx", "families")
FAMILIES = [
    "densenet121",
    "efficientnet_b0",
    "mobilenet_v3_large",
    "convnext_tiny",
    "regnet_y_400mf",
    "inception_v3",
    "legacy_xception",
]
# Families also exported by the TorchScript exporter at opset 17 (`<arch>.torchscript17.onnx`),
# the default of torch 2.0 to 2.4: GELU written as `x · (1 + erf(x / √2)) · 0.5`.
OPSET17 = ["convnext_tiny"]
# Inline initializers above this many bytes in one file mean that a weight was not recognised.
MAX_INLINE = 256 * 1024


def weights_layout(state):
    """Offsets of each float32 tensor of `state` in `<arch>.weights`, and of the transposes of
    its 2-D ones: ({name: offset}, {name: offset}, total bytes)."""
    offsets, transposed, at = {}, {}, 0
    for name, t in state.items():
        if t.dtype == torch.float32:
            offsets[name] = at
            at += t.numel() * 4
    for name, t in state.items():
        if t.dtype == torch.float32 and t.dim() == 2:
            transposed[name] = at
            at += t.numel() * 4
    return offsets, transposed, at


def write_weights(state, path, folds=()):
    with open(path, "wb") as f:
        for t in state.values():
            if t.dtype == torch.float32:
                f.write(t.numpy().astype("<f4").tobytes())
        for t in state.values():
            if t.dtype == torch.float32 and t.dim() == 2:
                f.write(np.ascontiguousarray(t.numpy().T).astype("<f4").tobytes())
        for conv, bn, eps in folds:
            for value in fold(state, conv, bn, eps):
                f.write(value.astype("<f4").tobytes())


def fold(state, conv, bn, eps):
    """Conv `conv`'s weight and bias with BatchNorm `bn` folded in, in float32, in the order of
    operations of the dynamo exporter's optimiser (onnxscript's fuse_batchnorm rule), which the
    test repeats: s = γ / √(var + ε), w·s, (b − μ)·s + β."""
    f32 = np.float32
    gamma, beta = state[f"{bn}.weight"].numpy(), state[f"{bn}.bias"].numpy()
    mean, var = state[f"{bn}.running_mean"].numpy(), state[f"{bn}.running_var"].numpy()
    scale = gamma / np.sqrt(var + f32(eps))
    weight = state[f"{conv}.weight"].numpy()
    w = weight * scale.reshape(-1, *([1] * (weight.ndim - 1)))
    b = state.get(f"{conv}.bias")
    b = np.zeros_like(mean) if b is None else b.numpy()
    return w.astype(f32), ((b - mean) * scale + beta).astype(f32)


def batchnorm_folds(model, proto):
    """The (conv, BatchNorm, ε) pairs whose folding gives initializers of `proto` that are not
    state_dict() tensors: for each conv, one of the next BatchNorms in module order."""
    from onnx import numpy_helper

    values = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    modules = list(model.named_modules())
    state = model.state_dict()
    folds = []
    for i, (name, m) in enumerate(modules):
        if not isinstance(m, torch.nn.Conv2d):
            continue
        w = values.get(f"{name}.weight")
        if w is None or w.tobytes() == state[f"{name}.weight"].numpy().tobytes():
            continue
        bns = [n for n, b in modules[i + 1:] if isinstance(b, torch.nn.BatchNorm2d)][:3]
        for bn in bns:
            eps = dict(modules)[bn].eps
            fw, _ = fold(state, name, bn, eps)
            if fw.shape == w.shape and fw.tobytes() == w.tobytes():
                folds.append((name, bn, eps))
                break
        else:
            raise SystemExit(f"conv {name}: its exported weight is no BatchNorm folding")
    return folds


def strip(model_proto, state, location, folds=()):
    """Moves every initializer that is a state_dict() tensor (or a 2-D one's transpose, or a
    conv's weight or bias with BatchNorm folded in by `folds`) into external data at
    `location`; returns the bytes left inline."""
    from onnx import TensorProto, numpy_helper

    offsets, transposed, at = weights_layout(state)
    by_shape = {}
    for conv, bn, eps in folds:
        for suffix, value in zip(["weight", "bias"], fold(state, conv, bn, eps)):
            by_shape.setdefault(tuple(value.shape), []).append((f"{conv}.{suffix}", value, at))
            at += value.nbytes
    for name, t in state.items():
        if t.dtype == torch.float32:
            by_shape.setdefault(tuple(t.shape), []).append((name, t.numpy(), offsets[name]))
            if t.dim() == 2:
                by_shape.setdefault(tuple(t.shape[::-1]), []).append(
                    (name + ".T", t.numpy().T, transposed[name])
                )
    inline = 0
    for init in model_proto.graph.initializer:
        value = numpy_helper.to_array(init)
        found = None
        if value.dtype == np.float32:
            candidates = by_shape.get(tuple(value.shape), [])
            # The tensor of the same name first, then any equal one (a transposed weight).
            candidates = sorted(candidates, key=lambda c: c[0] != init.name)
            for name, array, offset in candidates:
                if array.tobytes() == np.ascontiguousarray(value).tobytes():
                    found = offset
                    break
        if found is None:
            inline += value.nbytes
            continue
        init.ClearField("raw_data")
        init.ClearField("float_data")
        init.data_location = TensorProto.EXTERNAL
        del init.external_data[:]
        for key, v in [("location", location), ("offset", str(found)),
                       ("length", str(value.nbytes))]:
            entry = init.external_data.add()
            entry.key, entry.value = key, v
    return inline


def export(name, photo):
    import onnx
    import onnxruntime

    make, side, (mean, std), _ = arch.ARCHS[name]
    model = fill(make(), arch.SEED).eval()
    state = model.state_dict()
    from safetensors import safe_open

    with safe_open(os.path.join(arch.OUT, f"{name}.safetensors"), "np") as f:
        meta = f.metadata()
    manifest = [[k, list(v.shape), str(v.dtype).replace("torch.", "")] for k, v in state.items()]
    assert json.loads(meta["manifest"]) == manifest, f"{name}: the fixture's manifest differs"
    assert meta["seed"] == str(arch.SEED)
    _, x = arch.model_input(photo, side, mean, std)
    with torch.no_grad():
        logits = model(x)[0].numpy()
    location = f"{name}.weights"
    with tempfile.TemporaryDirectory() as tmp:
        batch = torch.export.Dim("batch")
        for kind in ["dynamo", "torchscript"] + (["torchscript17"] if name in OPSET17 else []):
            path = os.path.join(tmp, f"{name}.{kind}.onnx")
            if kind == "dynamo":
                try:
                    torch.onnx.export(
                        model, (x,), path, dynamo=True, dynamic_shapes=({0: batch},),
                        external_data=False,
                    )
                except Exception:  # noqa: BLE001
                    # ConvNeXt's classifier pins the batch (an `as_strided` after the pool).
                    print(f"{name} dynamo: exported for a batch of one")
                    torch.onnx.export(model, (x,), path, dynamo=True, external_data=False)
            else:
                torch.onnx.export(
                    model, x, path, dynamo=False,
                    opset_version=17 if kind == "torchscript17" else 20, do_constant_folding=False,
                    training=torch.onnx.TrainingMode.PRESERVE, input_names=["input"],
                    output_names=["logits"],
                    dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                )
            proto = onnx.load(path)
            # Source lines and FX nodes of each node, which the importer does not read: left
            # out to keep the files small.
            for node in proto.graph.node:
                kept = [p for p in node.metadata_props
                        if p.key not in ("pkg.torch.onnx.stack_trace", "pkg.torch.onnx.fx_node")]
                del node.metadata_props[:]
                node.metadata_props.extend(kept)
            folds = batchnorm_folds(model, proto)
            inline = strip(proto, state, location, folds)
            assert inline <= MAX_INLINE, f"{name} {kind}: {inline} bytes left inline"
            # The weights file of this form, as the test writes it.
            write_weights(state, os.path.join(tmp, location), folds)
            stripped = os.path.join(tmp, f"stripped.{kind}.onnx")
            onnx.save_model(proto, stripped)
            session = onnxruntime.InferenceSession(stripped)
            got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0][0]
            print(f"{name} {kind}: {len(proto.graph.node)} nodes, {inline} bytes inline, "
                  f"onnxruntime logits differ by {np.abs(got - logits).max():.1e} "
                  f"(largest {np.abs(logits).max():.2f})")
            os.makedirs(OUT, exist_ok=True)
            onnx.save_model(proto, os.path.join(OUT, f"{name}.{kind}.onnx"))
            if folds:
                with open(os.path.join(OUT, f"{name}.{kind}.folds.json"), "w") as f:
                    json.dump([[conv, bn, eps] for conv, bn, eps in folds], f)
                    f.write("\n")


def main(names):
    torch.set_num_threads(2)
    photo = Image.open(os.path.join(ROOT, "examples", "images", "chelsea.png")).convert("RGB")
    for name in names:
        export(name, photo)


if __name__ == "__main__":
    main(sys.argv[1:] or FAMILIES)
