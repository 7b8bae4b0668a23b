"""The network a spec asks for (``model.arch``): the one place that chooses between them."""

from __future__ import annotations

from harness_contract.model.architecture import ResNetDef, resnet18
from harness_contract.model.vit import ViTDef, vit
from harness_contract.spec import ModelSpec

Network = ResNetDef | ViTDef


def network(model: ModelSpec) -> Network:
    return vit(model) if model.arch == "vit" else resnet18(model)


def title(model: ModelSpec) -> str:
    """The network in a few words, as reports name it: "ResNet10 (nobn, width x0.25)",
    "ViT (4 blocks, width 64, 4 heads, patch 4)"."""
    net = network(model)
    if isinstance(net, ViTDef):
        return net.title
    layers = 2 + 2 * len(net.blocks)  # stem + two convs a block + fc: 18 at 2 blocks a stage
    return f"ResNet{layers} ({model.variant}, width x{model.width_multiplier:g})"
