"""The Embedding probe: every route PyTorch offers for an int8 Embedding, and what each did."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .models import BATCH, max_diff, quantizer, reason


def embedding() -> tuple[str, str]:
    """Each route PyTorch offers for an int8 Embedding, and what it did."""
    tried = [_attempt(*route) for route in _EMBEDDING_ROUTES]
    worked = [how for ok, how in tried if ok]
    detail = "; ".join(how for _, how in tried)
    return ("yes" if worked else "no"), detail


def _attempt(label: str, route: Callable[[], tuple[bool, str]]) -> tuple[bool, str]:
    try:
        return route()
    except Exception as exc:  # one route's failure is part of the answer
        return False, f"{label}: {reason(exc)}"


class _Bag(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Embedding(32, 8)
        self.fc = nn.Linear(8, 4)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.fc(self.embed(ids).mean(1))


def _ids() -> torch.Tensor:
    return torch.randint(0, 32, (BATCH, 5), generator=torch.Generator().manual_seed(0))


def _embedding_pt2e() -> tuple[bool, str]:
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    model = _Bag().eval()
    prepared = prepare_pt2e(torch.export.export(model, (_ids(),)).module(), quantizer())
    prepared(_ids())
    converted = convert_pt2e(prepared)
    node = next(n for n in converted.graph.nodes if "embedding" in str(n.target))
    source = node.args[0]  # the weight: an fp32 constant, or dequantized int8 ones
    int8 = "dequantize" in str(source.target)
    how = "dequantized int8 weights" if int8 else f"its fp32 weight unquantized ({source.op})"
    return int8, f"PT2E X86InductorQuantizer: the embedding reads {how}"


def _embedding_torchao() -> tuple[bool, str]:
    from torchao.quantization import IntxWeightOnlyConfig, quantize_
    from torchao.quantization.granularity import PerAxis

    model = _Bag().eval()
    with torch.no_grad():
        before = model(_ids())
    config = IntxWeightOnlyConfig(weight_dtype=torch.int8, granularity=PerAxis(0))
    quantize_(model, config, filter_fn=lambda m, _: isinstance(m, nn.Embedding))
    weight = model.embed.weight
    with torch.no_grad():
        diff = max_diff(model(_ids()), before)
    inner = getattr(weight, "qdata", getattr(weight, "int_data", None))
    dtype = inner.dtype if isinstance(inner, torch.Tensor) else weight.dtype
    return dtype == torch.int8, (
        f"torchao quantize_(IntxWeightOnlyConfig int8, per row): weight "
        f"{type(weight).__name__} holding {dtype}, outputs within {diff:.4f}"
    )


def _embedding_fx() -> tuple[bool, str]:
    import warnings

    from torch.ao.quantization import QConfigMapping, float_qparams_weight_only_qconfig
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    mapping = QConfigMapping().set_object_type(nn.Embedding, float_qparams_weight_only_qconfig)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        converted = convert_fx(prepare_fx(_Bag().eval(), mapping, (_ids(),)))
    embed = converted.get_submodule("embed")
    converted(_ids())
    dtype = embed.weight().dtype if callable(getattr(embed, "weight", None)) else None
    return dtype == torch.quint8, (
        f"FX float_qparams_weight_only_qconfig: {type(embed).__module__}."
        f"{type(embed).__name__} with {dtype} weights"
    )


_EMBEDDING_ROUTES = (
    ("PT2E X86InductorQuantizer", _embedding_pt2e),
    ("torchao quantize_(IntxWeightOnlyConfig)", _embedding_torchao),
    ("FX float_qparams_weight_only_qconfig", _embedding_fx),
)
