"""What runs in int8 (harness_contract.metrics.census): a PyTorch graph's compute ops by
family, each int8 or float.

Read from q/dq graphs (PT2E's converted graph, the graphs inside ExecuTorch's XNNPACK
delegates): an op computes on int8 when the quantizer annotated it, which the converted
graph shows as its data inputs coming from dequantize nodes (a conv/linear's weight too;
bias, norm weights and other constants aside). An op whose input is another op's float
output is float, even where a backend later fuses it into that op's int8 kernel as an
epilogue (oneDNN's conv+add+ReLU, linear+GELU): the census counts what the quantizer
quantized, not what a kernel library fused.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from harness_contract.metrics.census import OpCensus, OpFamily, count_ops

PT2E_SOURCE = "PT2E converted graph"
FX_SOURCE = "FX converted graph (run once: ops reading quantized tensors)"
EXPORTED_SOURCE = "torch.export graph (fp32)"
PTE_SOURCE = ".pte: XNNPACK delegates and the ops outside them"

# aten op names (overload packet, ExecuTorch's ``_copy`` suffix dropped) by family.
_FAMILIES: dict[str, OpFamily] = {
    "conv2d": "conv",
    "convolution": "conv",
    "_convolution": "conv",
    "linear": "linear",
    "addmm": "linear",  # a linear decomposed (bias + matrix product)
    "matmul": "matmul",
    "bmm": "matmul",
    "mm": "matmul",
    "softmax": "softmax",
    "_softmax": "softmax",
    "_safe_softmax": "softmax",
    "layer_norm": "layer_norm",
    "native_layer_norm": "layer_norm",
    "gelu": "gelu",
    "relu": "relu",
    "relu_": "relu",
    "add": "add",
    "add_": "add",
    "mean": "mean",
    # the global average pool is the mean over space (TFLite's MEAN)
    "adaptive_avg_pool2d": "mean",
    "_adaptive_avg_pool2d": "mean",
}
# Ops that move or relabel data, compute nothing: never counted.
_LAYOUT = frozenset(
    {
        "view",
        "_unsafe_view",
        "reshape",
        "permute",
        "transpose",
        "t",
        "flatten",
        "select",
        "slice",
        "expand",
        "unsqueeze",
        "squeeze",
        "contiguous",
        "clone",
        "alias",
        "detach",
        "dropout",
        "lift_fresh",
        "sym_size",
        "sym_numel",
        "sym_stride",
        "_assert_tensor_metadata",
        "_assert_scalar",
        "sym_constrain_range_for_size",
    }
)
_WEIGHTED = frozenset({"conv", "linear"})


def op_name(target: object) -> str | None:
    """The aten op's base name ("conv2d", "native_layer_norm"); None for what is not an
    aten op (quantize/dequantize, Python builtins on sizes, getitem, delegate calls)."""
    if isinstance(target, torch._ops.OpOverload):
        qualified = str(target)  # "aten.conv2d.default"
    else:  # ExecuTorch's EdgeOpOverload names itself "aten.convolution.default"
        qualified = getattr(target, "__name__", "")
    if not qualified.startswith("aten."):
        return None
    return qualified.split(".")[1].removesuffix("_copy")


def _is_dequantize(node: object) -> bool:
    return isinstance(node, torch.fx.Node) and "dequantize" in str(node.target)


def _computes_int8(node: torch.fx.Node, family: OpFamily) -> bool:
    """Whether the quantizer made this op read int8: its activation inputs (and a
    conv/linear's weight) are dequantized; constants (get_attr) aside."""
    if family in _WEIGHTED:
        return len(node.args) > 1 and _is_dequantize(node.args[0]) and _is_dequantize(node.args[1])
    data = [a for a in node.all_input_nodes if a.op != "get_attr"]
    return bool(data) and all(_is_dequantize(a) for a in data)


def graph_ops(
    graph: torch.fx.Graph, *, all_float: bool = False
) -> Iterator[tuple[OpFamily, bool, str]]:
    """Each compute op of ``graph`` as (family, is int8, op name)."""
    for node in graph.nodes:
        if node.op != "call_function":
            continue
        name = op_name(node.target)
        if name is None or name in _LAYOUT:
            continue
        family = _FAMILIES.get(name, "other")
        yield family, (not all_float and _computes_int8(node, family)), name


def pt2e_census(converted: torch.fx.GraphModule) -> OpCensus:
    return count_ops(PT2E_SOURCE, graph_ops(converted.graph))


def exported_census(model: torch.nn.Module, example: tuple[torch.Tensor, ...]) -> OpCensus:
    """An fp32 model's exported graph: every op float."""
    program = torch.export.export(model, example)
    return count_ops(EXPORTED_SOURCE, graph_ops(program.graph, all_float=True))


def pte_census(program: torch.export.ExportedProgram) -> OpCensus:
    """A lowered ExecuTorch program: the ops inside each XNNPACK delegate (int8 where the
    quantizer fed them dequantized tensors) and the ops left outside every delegate,
    which the portable kernels run in float."""
    return count_ops(PTE_SOURCE, _pte_ops(program))


def _pte_ops(program: torch.export.ExportedProgram) -> Iterator[tuple[OpFamily, bool, str]]:
    for module in program.graph_module.children():
        if getattr(module, "backend_id", None) == "XnnpackBackend":
            yield from graph_ops(module.original_module.graph)
    yield from graph_ops(program.graph, all_float=True)


# The FX graph's quantized modules, by class name (fused ReLUs counted with their op).
_FX_MODULES: dict[str, OpFamily] = {
    "Conv2d": "conv",
    "ConvReLU2d": "conv",
    "Linear": "linear",
    "LinearReLU": "linear",
    "LayerNorm": "layer_norm",
    "GELU": "gelu",
    "ReLU": "relu",
    "AdaptiveAvgPool2d": "mean",
}
_FX_FUNCTIONS: dict[str, OpFamily] = {
    "quantized.add": "add",
    "quantized.add_relu": "add",
    "quantized.matmul": "matmul",
    "softmax": "softmax",
    "matmul": "matmul",
    "add": "add",
    "relu": "relu",
    "mean": "mean",
}


def fx_census(gm: torch.fx.GraphModule, example: torch.Tensor) -> OpCensus:
    """The legacy FX flow's converted model has no q/dq graph: it is run once on
    ``example`` and each op counted int8 when it reads quantized tensors."""
    ops: list[tuple[OpFamily, bool, str]] = []
    modules = dict(gm.named_modules())

    class Count(torch.fx.Interpreter):
        def run_node(self, n: torch.fx.Node) -> object:
            inputs = [self.env[a] for a in n.all_input_nodes]
            name = _fx_op(n, modules)
            if name is not None:
                family = _FX_MODULES.get(name) if n.op == "call_module" else None
                family = family or _FX_FUNCTIONS.get(name, "other")
                int8 = any(isinstance(x, torch.Tensor) and x.is_quantized for x in inputs)
                ops.append((family, int8, name))
            return super().run_node(n)

    with torch.no_grad():
        Count(gm).run(example)
    return count_ops(FX_SOURCE, ops)


def _fx_op(n: torch.fx.Node, modules: dict[str, torch.nn.Module]) -> str | None:
    """The op's name, or None for what computes nothing (layout, (de)quantize, sizes)."""
    if n.op == "call_module":
        name = type(modules[n.target]).__name__
        return None if name in ("Identity", "Dropout") else name
    if n.op == "call_method":
        name = n.target
    elif n.op == "call_function":
        name = str(getattr(n.target, "__name__", n.target))
        name = str(n.target) if str(n.target).startswith("quantized.") else name
    else:
        return None
    skip = ("dequantize", "getattr", "getitem", "size", "quantize_per_tensor")
    if name in _LAYOUT or name in skip:
        return None
    return name
