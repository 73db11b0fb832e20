#!/usr/bin/env python3
"""Deterministic "seeded" weights for any state_dict, reproduced bit for bit by the Rust tests
(tests/common/seeded.rs), so that fixtures for architectures without shipped weights need only
the reference outputs committed, not hundreds of megabytes of weights.

Every float tensor `name` of n values gets, for i in 0..n,
    z_i  = splitmix64(splitmix64(seed ^ fnv1a64(name)) + i)        (64-bit wrapping arithmetic)
    u_i  = (z_i >> 40) / 2**24                                       (exact, in [0, 1))
and a value by the tensor's role, computed in float64 and rounded once to float32:
    *.running_var            0.5 + u                  (BatchNorm statistics, realistic range)
    *.running_mean           0.4 u - 0.2
    1-D *.weight             0.5 + 0.5 u              (BatchNorm scale)
    *.layer_scale, *.gamma   0.2 + 0.3 u              (ConvNeXt's per-channel layer scale, timm's
                                                      LayerScale)
    1-D *.bias               0.2 u - 0.1
    k-D *.weight (k >= 2)    (2u - 1) sqrt(6 / fan_in), fan_in = prod(shape[1:])   (He uniform)
    *_token, *pos_embed,     0.04 u - 0.02            (a transformer's prefix tokens and position
    *pos_embedding                                    embeddings, about timm's 0.02 scale)
Integer tensors (num_batches_tracked) are left at 0.
"""
import numpy as np

MASK = (1 << 64) - 1


def splitmix64(z):
    """splitmix64's output function on a uint64 array (or scalar as a 0-d array)."""
    z = (z + np.uint64(0x9E3779B97F4A7C15)) & np.uint64(MASK)
    z = ((z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & np.uint64(MASK)
    z = ((z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & np.uint64(MASK)
    return z ^ (z >> np.uint64(31))


def fnv1a64(text):
    h = 0xCBF29CE484222325
    for b in text.encode("utf-8"):
        h = ((h ^ b) * 0x100000001B3) & MASK
    return h


def seeded_values(name, shape, seed):
    """The float32 values of tensor `name` with `shape`, as described above."""
    n = int(np.prod(shape)) if len(shape) else 1
    with np.errstate(over="ignore"):
        key = splitmix64(np.array(seed ^ fnv1a64(name), dtype=np.uint64))
        z = splitmix64(key + np.arange(n, dtype=np.uint64))
    u = (z >> np.uint64(40)).astype(np.float64) / float(1 << 24)
    if name.endswith("running_var"):
        v = 0.5 + u
    elif name.endswith("running_mean"):
        v = 0.4 * u - 0.2
    elif name.endswith("weight") and len(shape) == 1:
        v = 0.5 + 0.5 * u
    elif name.endswith(("layer_scale", ".gamma")):
        v = 0.2 + 0.3 * u
    elif name.endswith("bias"):
        v = 0.2 * u - 0.1
    elif name.endswith(("_token", "pos_embed", "pos_embedding")):
        v = 0.04 * u - 0.02
    elif name.endswith("weight"):
        fan_in = int(np.prod(shape[1:]))
        v = (2.0 * u - 1.0) * np.sqrt(6.0 / fan_in)
    else:
        raise ValueError(f"no seeded rule for tensor {name}")
    return v.astype(np.float32).reshape(shape)


def fill(model, seed):
    """Overwrites every float tensor of `model.state_dict()` with its seeded values."""
    import torch

    state = model.state_dict()
    for name, tensor in state.items():
        if tensor.dtype.is_floating_point:
            values = seeded_values(name, tuple(tensor.shape), seed)
            tensor.copy_(torch.from_numpy(values))
    return model
