"""The CIFAR ResNet18 as a torch.nn.Module, built from the shared architecture table.

Module names mirror the canonical tensor names (``stages.1.0.conv1.weight``), so
the shared initial weights load without any renaming.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from harness_contract.model.architecture import BlockDef, ConvDef, ResNetDef


def _conv(c: ConvDef) -> nn.Conv2d:
    return nn.Conv2d(c.in_ch, c.out_ch, c.kernel, c.stride, padding=c.kernel // 2, bias=c.bias)


def _norm(c: ConvDef) -> nn.Module:
    return nn.BatchNorm2d(c.out_ch) if c.bn else nn.Identity()


class BasicBlock(nn.Module):
    def __init__(self, b: BlockDef) -> None:
        super().__init__()
        self.conv1, self.conv1_bn, self.relu1 = _conv(b.conv1), _norm(b.conv1), nn.ReLU()
        self.conv2, self.conv2_bn = _conv(b.conv2), _norm(b.conv2)
        if b.shortcut is not None:
            self.shortcut = _conv(b.shortcut)
            self.shortcut_bn = _norm(b.shortcut)
        else:
            self.shortcut, self.shortcut_bn = nn.Identity(), nn.Identity()
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2_bn(self.conv2(self.relu1(self.conv1_bn(self.conv1(x)))))
        return self.relu2(out + self.shortcut_bn(self.shortcut(x)))


class CifarResNet(nn.Module):
    def __init__(self, net: ResNetDef) -> None:
        super().__init__()
        self.stem, self.stem_bn, self.relu = _conv(net.stem), _norm(net.stem), nn.ReLU()
        stages: dict[str, list[BasicBlock]] = {}
        for b in net.blocks:
            stages.setdefault(b.name.split(".")[1], []).append(BasicBlock(b))
        self.stages = nn.ModuleList(nn.ModuleList(blocks) for blocks in stages.values())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(net.fc_in, net.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.stem_bn(self.stem(x)))
        for stage in self.stages:
            for block in stage:
                x = block(x)
        return self.fc(torch.flatten(self.pool(x), 1))


def build_model(net: ResNetDef, weights: dict[str, np.ndarray] | None) -> CifarResNet:
    """The model from canonical weights, or with PyTorch's default initializers (None)."""
    model = CifarResNet(net)
    if weights is None:
        return model
    state = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in weights.items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    # BatchNorm's step counter is the only tensor the canonical table does not carry.
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise AssertionError(f"weights do not fit the model: missing {missing}, extra {unexpected}")
    count = sum(p.numel() for p in model.parameters())
    if count != net.parameter_count():
        raise AssertionError(
            f"model has {count} parameters, the table says {net.parameter_count()}"
        )
    return model
