"""Where the time went: profiler ops sorted into the categories the paper reads conclusions from.

Each runner turns its own profiler's output into ``OpSample`` rows (name, device,
self time); everything after that, the categories, the shares and the top ops, is
decided here once, so PyTorch and TensorFlow traces are read by the same rules.
Self times are used throughout: summing an op with its children would count the
same microseconds twice.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from harness_contract.metrics.figures import OpTime, TopOp

# Category -> label shown in reports, in the order tables list them.
CATEGORIES = {
    "convolution": "convolution",
    "matmul": "matmul/linear",
    "quantize": "quantize/dequantize",
    "elementwise": "elementwise",
    "normalization": "normalization",
    "pooling": "pooling",
    "data": "data loading",
    "memory": "copies/layout",
    "overhead": "Python/launch overhead",
    "other": "other",
}

# Ordered: the first rule that matches wins ("quantized::conv2d" is a convolution,
# "addmm" a matmul, "convert_element_type" not a convolution).
_RULES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (category, re.compile(pattern, re.IGNORECASE))
    for category, pattern in (
        ("idle", r"^idle$"),
        # torch.profiler's step span (its self time is Python and dispatch between ops) and
        # the CUDA runtime calls that launch kernels and wait for them.
        ("overhead", r"^ProfilerStep[#*]|^cuda[A-Z]"),
        ("data", r"harness::input|iterator|dataloader|data_loader|prefetch"),
        ("convolution", r"conv(?!ert)"),
        (
            "matmul",
            r"matmul|addmm|aten::b?mm\b|linear|gemm|(?<!_local_scalar_)dense|einsum|fully_connected",
        ),
        (
            "quantize",
            r"dequantize|quantize_per|quantizev2|fake_?quant|requantize|qparams"
            r"|quantized_decomposed::quantize|^quantize$|aten::quantize|fq_?helper",
        ),
        ("normalization", r"batch_?norm|layer_?norm|group_?norm|instance_?norm"),
        ("pooling", r"pool"),
        (
            "memory",
            r"copy|memcpy|memset|aten::to\b|contiguous|clone|\bcat\b|concat|stack|identity"
            r"|transpose|permute|reshape|view|squeeze|flatten|empty|zeros|fill|slice|pad"
            r"|gather|expand|as_strided|resize|broadcast|tile|pack|stitch|assignvariable"
            r"|readvariable|aten::select\b|aten::t\b|ones|zero_|detach",
        ),
        (
            "elementwise",
            r"relu|add|mul|sub|div|sigmoid|tanh|exp|log|softmax|clamp|where|neg|sqrt|pow|sum"
            r"|mean|max|min|reduce|elementwise|foreach|sgd|applygradient|applymomentum|bias"
            r"|resourceapply|entropy|nll|threshold|hardtanh|gelu|sign|abs|square|cast|norm|argmax|sort|eq"
            r"|lerp|addcmul|fill|rsqrt|reciprocal|l2loss|prod|round",
        ),
    )
)


def categorize(name: str) -> str:
    """The category of an op, kernel or annotation name; "idle" for profiler idle time."""
    for category, pattern in _RULES:
        if pattern.search(name):
            return category
    return "other"


@dataclass(frozen=True)
class OpSample:
    """One op's self time on one device, as a runner read it off its profiler."""

    name: str
    device: str  # "cpu" or "gpu"
    self_us: float
    calls: int = 1
    category: str | None = None  # set to override the name-based rule


def summarize(
    samples: Iterable[OpSample], top: int = 10
) -> tuple[list[OpTime], list[TopOp], dict[str, float]]:
    """Time per (category, device) with its share of that device's total; the top ops;
    and each device's total in microseconds. Idle time and the runners' own region
    markers (``harness::...``) are left out: they are not work the model did."""
    by_category: dict[tuple[str, str], float] = defaultdict(float)
    by_op: dict[tuple[str, str], list] = defaultdict(lambda: [0.0, 0, "other"])
    for s in samples:
        category = s.category or categorize(s.name)
        if category == "idle" or s.self_us <= 0:
            continue
        if s.category is None and s.name.startswith("harness::"):
            continue
        by_category[(category, s.device)] += s.self_us
        entry = by_op[(s.name, s.device)]
        entry[0] += s.self_us
        entry[1] += s.calls
        entry[2] = category
    totals: dict[str, float] = defaultdict(float)
    for (_, device), us in by_category.items():
        totals[device] += us
    order = list(CATEGORIES)
    rows = [
        OpTime(category=cat, device=dev, time_us=us, share=us / totals[dev])
        for (cat, dev), us in sorted(
            by_category.items(), key=lambda kv: (kv[0][1], order.index(kv[0][0]))
        )
    ]
    ranked = sorted(by_op.items(), key=lambda kv: -kv[1][0])[:top]
    tops = [
        TopOp(
            name=name[:200],
            category=category,
            device=dev,
            time_us=us,
            calls=int(calls),
            share=us / totals[dev],
        )
        for (name, dev), (us, calls, category) in ranked
    ]
    return rows, tops, dict(totals)
