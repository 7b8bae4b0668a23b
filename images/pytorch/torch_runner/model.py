"""The spec's network (the CIFAR ResNet18 or the small ViT) as a torch.nn.Module, built
from the shared architecture table.

Module names mirror the canonical tensor names (``stages.1.0.conv1.weight``,
``blocks.0.attn.qkv.weight``), so the shared initial weights load without any renaming.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from harness_contract.model.architecture import BlockDef, ConvDef, ResNetDef
from harness_contract.model.network import Network
from harness_contract.model.vit import LAYER_NORM_EPS, ViTDef


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


class Attention(nn.Module):
    """Multi-head self-attention written out (two matmuls and a softmax, as in the Keras
    model), so a quantizer sees each op rather than one fused kernel."""

    def __init__(self, net: ViTDef) -> None:
        super().__init__()
        self.heads, self.head_dim = net.heads, net.head_dim
        self.scale = net.head_dim**-0.5
        self.qkv = nn.Linear(net.dim, 3 * net.dim)
        self.proj = nn.Linear(net.dim, net.dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # (batch, heads, tokens, head_dim)
        attn = torch.softmax(torch.matmul(q, k.transpose(-2, -1)) * self.scale, dim=-1)
        out = torch.matmul(attn, v).transpose(1, 2).reshape(b, n, d)
        return self.proj(out)


class Mlp(nn.Module):
    def __init__(self, net: ViTDef) -> None:
        super().__init__()
        self.fc1, self.act, self.fc2 = (
            nn.Linear(net.dim, net.mlp_dim),
            nn.GELU(),
            nn.Linear(net.mlp_dim, net.dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class EncoderBlock(nn.Module):
    def __init__(self, net: ViTDef) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(net.dim, eps=LAYER_NORM_EPS)
        self.attn = Attention(net)
        self.norm2 = nn.LayerNorm(net.dim, eps=LAYER_NORM_EPS)
        self.mlp = Mlp(net)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class CifarViT(nn.Module):
    def __init__(self, net: ViTDef) -> None:
        super().__init__()
        self.patch_embed = nn.Conv2d(3, net.dim, net.patch, net.patch)
        self.pos_embed = nn.Parameter(torch.zeros(net.tokens, net.dim))
        self.blocks = nn.ModuleList(EncoderBlock(net) for _ in range(net.depth))
        self.norm = nn.LayerNorm(net.dim, eps=LAYER_NORM_EPS)
        self.head = nn.Linear(net.dim, net.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x).flatten(2).transpose(1, 2)  # (batch, tokens, dim), row-major
        x = x + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x).mean(dim=1))


def build_model(net: Network, weights: dict[str, np.ndarray] | None) -> nn.Module:
    """The model from canonical weights, or with PyTorch's default initializers (None)."""
    model: nn.Module = CifarViT(net) if isinstance(net, ViTDef) else CifarResNet(net)
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
