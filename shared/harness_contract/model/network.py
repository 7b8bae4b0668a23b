"""The network a spec asks for (``model.arch``): the one place that chooses between them."""

from __future__ import annotations

from harness_contract.model.architecture import ResNetDef, resnet18
from harness_contract.model.vit import ViTDef, vit
from harness_contract.spec import ModelSpec

Network = ResNetDef | ViTDef


def network(model: ModelSpec) -> Network:
    return vit(model) if model.arch == "vit" else resnet18(model)
