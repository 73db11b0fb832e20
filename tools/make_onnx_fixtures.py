#!/usr/bin/env python3
"""Generate the ONNX import fixtures in tests/fixtures/onnx/ from the references: two small CNNs
written for the tests (seeded weights, tools/seeded_weights.py), exported by both of torch's ONNX
exporters, and pytorch-grad-cam's GradCAM on the PyTorch modules themselves.

Usage:
    pip install torch onnx onnxscript grad-cam==1.5.7 safetensors pillow numpy
    python3 tools/make_onnx_fixtures.py

tests/fixtures/onnx/tinynet.torchscript.onnx   torch.onnx.export(..., dynamo=False): module paths
                                               in node names (`/layer1/layer1.0/relu_1/Relu`),
                                               BatchNorm folded into the convs
tests/fixtures/onnx/tinynet.dynamo.onnx        torch.onnx.export(..., dynamo=True): module paths
                                               in `pkg.torch.onnx.name_scopes`, BatchNorm folded,
                                               the pool a ReduceMean and the flatten a Reshape
tests/fixtures/onnx/tinynet.external.onnx     the TorchScript export with every initializer in
    (+ tinynet.external.onnx.data)             the external data file beside it
tests/fixtures/onnx/unsupported.onnx           conv, a Tanh node named `gate` (an op the
                                               importer does not run yet), pool, flatten, Gemm
tests/fixtures/onnx/actnet.{torchscript,dynamo}.onnx, actnet.safetensors
                                               the same for ActNet: SiLU, BatchNorm-ReLU before a
                                               conv, Hardswish, squeeze-and-excitation (ReLU,
                                               Hardsigmoid gate), a concatenated branch, 1×7 and
                                               7×1, grouped and dilated convs, a zero Pad
                                               before a conv, ceil-mode max and average pools,
                                               average pools with and without padding counted,
                                               GELU, LeakyReLU, GELU (tanh), Hardsigmoid
                                               (TorchScript at opset 20, for Gelu)
tests/fixtures/onnx/tinynet.safetensors
    image              u8  [S, S, 3]  examples/images/chelsea.png resized to S = 64 (PIL bicubic)
    logits             f32 [10]       the module's logits for x = (image / 255 - mean) / std
                                      (ImageNet statistics, float32, in this order)
    cam.<layer>        f32 [S, S]     GradCAM(model, target_layers=[<layer>]) for the predicted
                                      class, at `head` (the default layer), `layer2`, `layer1`
    cam.<layer>.f64    f32 [S, S]     the same in float64, where it differs from float32 by
                                      more than 1e-5
  metadata: seed, classes (the predicted class), mean, std.
"""
import copy
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn
from PIL import Image
from safetensors.numpy import save_file
from torchvision.ops import SqueezeExcitation

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from seeded_weights import fill  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "onnx")
SEED = 20261207
SIDE = 64
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


class Block(nn.Module):
    """torchvision's BasicBlock: conv-BN-ReLU, conv-BN, add the (downsampled) input, ReLU."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class TinyNet(nn.Module):
    """A stem, two stages of residual blocks, a ReLU6 head with a biased conv, global average
    pool, flatten and a linear classifier."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = nn.Sequential(Block(8, 8, 1), Block(8, 8, 1))
        self.layer2 = nn.Sequential(Block(8, 16, 2))
        self.head = nn.Sequential(nn.Conv2d(16, 32, 1), nn.BatchNorm2d(32), nn.ReLU6(inplace=True))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.head(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class ActNet(nn.Module):
    """The activations whose derivative needs their input, and BatchNorms that follow no conv."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.SiLU())
        # Ceil mode: a last, partial window (32 → 16 pixels, where floor mode gives 15).
        self.pool = nn.MaxPool2d(3, 2, ceil_mode=True)
        # Pre-activation, as DenseNet's layers: BatchNorm and ReLU before the conv.
        self.layer1 = nn.Sequential(nn.BatchNorm2d(16), nn.ReLU(), nn.Conv2d(16, 16, 3, 1, 1))
        self.layer2 = nn.Sequential(
            nn.Conv2d(16, 32, 3, 2, 1, bias=False), nn.BatchNorm2d(32), nn.Hardswish()
        )
        # Squeeze-and-excitation as MobileNetV3's (ReLU, hardsigmoid gate), squeezing to a width
        # that is no multiple of 4.
        self.se = SqueezeExcitation(32, 6, activation=nn.ReLU, scale_activation=nn.Hardsigmoid)
        # A branch concatenated to the trunk, an average pool not counting padding, and one
        # halving the map.
        self.branch = nn.Conv2d(32, 16, 1)
        self.mix = nn.AvgPool2d(3, 1, 1, count_include_pad=False)
        self.layer3 = nn.Sequential(
            nn.Conv2d(48, 32, 1), nn.GELU(), nn.Conv2d(32, 32, 3, 1, 1), nn.LeakyReLU(0.1)
        )
        # Factorised 1×7 and 7×1 convs (Inception's, the first padded 2 left and 4 right by a
        # ZeroPad2d), grouped and dilated convs.
        self.factor = nn.Sequential(
            nn.ZeroPad2d((2, 4, 0, 0)), nn.Conv2d(32, 32, (1, 7), groups=4), nn.ReLU(),
            nn.Conv2d(32, 32, (7, 1), padding=(3, 0), bias=False), nn.BatchNorm2d(32), nn.ReLU(),
            nn.Conv2d(32, 32, 3, padding=2, dilation=2, groups=8),
        )
        # Ceil mode with the padding counted: the last window's divisor is what of it lies in
        # the padded map (8 → 5 pixels, the last window 2 of 3 wide).
        self.down = nn.AvgPool2d(3, 2, 1, ceil_mode=True)
        self.head = nn.Sequential(
            nn.Conv2d(32, 48, 1), nn.GELU(approximate="tanh"), nn.BatchNorm2d(48), nn.Hardsigmoid()
        )
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(48, 10)

    def forward(self, x):
        x = self.se(self.layer2(self.layer1(self.pool(self.stem(x)))))
        x = self.mix(torch.cat([x, self.branch(x)], 1))
        x = self.head(self.down(self.factor(self.layer3(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


NETS = {
    "tinynet": (TinyNet, ["head", "layer2", "layer1"], 17),
    "actnet": (ActNet, ["head", "factor", "layer3", "mix", "se", "layer2", "layer1"], 20),
}


def module(model, path):
    for part in path.split("."):
        model = model[int(part)] if part.isdigit() else getattr(model, part)
    return model


def export(name, make, layers, opset, photo):
    from pytorch_grad_cam import GradCAM

    model = fill(make(), SEED).eval()
    image = np.asarray(photo.resize((SIDE, SIDE), Image.BICUBIC), dtype=np.uint8)
    x = (image.astype(np.float32) / np.float32(255) - np.array(MEAN, np.float32)) / np.array(
        STD, np.float32
    )
    x = torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None]
    with torch.no_grad():
        logits = model(x)[0]
    predicted = int(logits.argmax())
    out = {"image": image, "logits": logits.numpy().astype(np.float32)}
    for layer in layers:
        with GradCAM(model=model, target_layers=[module(model, layer)]) as cam:
            result = cam(input_tensor=x, targets=None)[0]
        out[f"cam.{layer}"] = result.astype(np.float32)
        m64 = copy.deepcopy(model).double()
        with GradCAM(model=m64, target_layers=[module(m64, layer)]) as cam:
            exact = cam(input_tensor=x.double(), targets=None)[0]
        if np.abs(exact - result).max() > 1e-5:
            out[f"cam.{layer}.f64"] = exact.astype(np.float32)
            print(f"  {name} cam.{layer}: float32 and float64 differ by "
                  f"{np.abs(exact - result).max():.1e}")
    metadata = {
        "seed": str(SEED),
        "classes": str(predicted),
        "mean": json.dumps(MEAN),
        "std": json.dumps(STD),
    }
    save_file(out, os.path.join(OUT, f"{name}.safetensors"), metadata=metadata)

    batch = torch.export.Dim("batch")
    torch.onnx.export(
        model, x, os.path.join(OUT, f"{name}.torchscript.onnx"), dynamo=False,
        opset_version=opset, input_names=["input"], output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
    )
    torch.onnx.export(
        model, (x,), os.path.join(OUT, f"{name}.dynamo.onnx"), dynamo=True,
        dynamic_shapes=({0: batch},), external_data=False,
    )
    # Both exports compute the module's logits.
    import onnxruntime

    for kind in ["torchscript", "dynamo"]:
        session = onnxruntime.InferenceSession(os.path.join(OUT, f"{name}.{kind}.onnx"))
        got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0][0]
        print(f"{name} {kind}: onnxruntime logits differ by "
              f"{np.abs(got - logits.numpy()).max():.1e}")
    print(f"{name}: predicted {predicted}, top-5 {torch.topk(logits, 5).indices.tolist()}")


def main():
    torch.set_num_threads(2)
    os.makedirs(OUT, exist_ok=True)
    photo = Image.open(os.path.join(ROOT, "examples", "images", "chelsea.png")).convert("RGB")
    for name, (make, layers, opset) in NETS.items():
        export(name, make, layers, opset, photo)

    import onnx
    from onnx import TensorProto, helper, numpy_helper

    exported = onnx.load(os.path.join(OUT, "tinynet.torchscript.onnx"))
    onnx.save_model(
        exported, os.path.join(OUT, "tinynet.external.onnx"), save_as_external_data=True,
        all_tensors_to_one_file=True, location="tinynet.external.onnx.data", size_threshold=0,
    )
    rng = np.random.default_rng(SEED)
    weights = [
        numpy_helper.from_array(rng.standard_normal((4, 3, 1, 1)).astype(np.float32), "w"),
        numpy_helper.from_array(rng.standard_normal((2, 4)).astype(np.float32), "fc.weight"),
        numpy_helper.from_array(np.zeros(2, np.float32), "fc.bias"),
    ]
    nodes = [
        helper.make_node("Conv", ["input", "w"], ["c"], name="conv"),
        helper.make_node("Tanh", ["c"], ["s"], name="gate"),
        helper.make_node("GlobalAveragePool", ["s"], ["p"], name="pool"),
        helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "fc.weight", "fc.bias"], ["logits"], name="fc", transB=1),
    ]
    graph = helper.make_graph(
        nodes, "unsupported",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 2])], weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save_model(model, os.path.join(OUT, "unsupported.onnx"))


if __name__ == "__main__":
    main()
