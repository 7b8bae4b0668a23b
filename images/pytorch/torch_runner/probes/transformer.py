"""PyTorch's answers to the support matrix's Transformer questions, each found by PTQ (or
QAT) of a one-block attention model with PT2E and X86InductorQuantizer, the runner's own
flow, then reading the converted q/dq graph: an op runs in int8 when its tensor input
comes from a dequantize (the quantizer annotated it), in float otherwise."""

from __future__ import annotations

import functools

import torch
from torch import nn

from .models import Answer, quantizer

TOKENS, DIM = 4, 8
_DEQUANTIZE = "quantized_decomposed.dequantize_per_"


class TinyAttention(nn.Module):
    """LayerNorm, one head of self-attention written out (matmul, softmax, matmul), a
    residual add, GELU and a linear head: every op the questions ask about."""

    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(DIM)
        self.qkv = nn.Linear(DIM, 3 * DIM)
        self.proj = nn.Linear(DIM, DIM)
        self.act = nn.GELU()
        self.head = nn.Linear(DIM, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(self.norm(x)).chunk(3, dim=-1)
        attn = torch.softmax(torch.matmul(q, k.transpose(-2, -1)) * DIM**-0.5, dim=-1)
        x = x + self.proj(torch.matmul(attn, v))
        return self.head(self.act(x).mean(dim=1))


def tokens(seed: int = 0) -> torch.Tensor:
    return torch.randn(2, TOKENS, DIM, generator=torch.Generator().manual_seed(seed))


def _attention() -> nn.Module:
    torch.manual_seed(0)
    return TinyAttention().eval()


@functools.cache
def _ptq() -> torch.fx.GraphModule:
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    prepared = prepare_pt2e(torch.export.export(_attention(), (tokens(),)).module(), quantizer())
    for seed in range(4):  # calibration
        prepared(tokens(seed))
    return convert_pt2e(prepared)


def _nodes(graph: torch.fx.GraphModule, op: str) -> list[torch.fx.Node]:
    return [n for n in graph.graph.nodes if n.op == "call_function" and op in str(n.target)]


def _int8_input(node: torch.fx.Node) -> bool:
    first = node.args[0]
    return isinstance(first, torch.fx.Node) and _DEQUANTIZE in str(first.target)


def _answer(op: str, what: str) -> Answer:
    nodes = _nodes(_ptq(), op)
    if not nodes:
        return "no", f"the converted graph has no {op} node"
    int8 = [n for n in nodes if _int8_input(n)]
    targets = ", ".join(sorted({str(n.target) for n in nodes}))
    if len(int8) < len(nodes):
        return "no", (
            f"PT2E with X86InductorQuantizer left {len(nodes) - len(int8)} of {len(nodes)} "
            f"{what} ({targets}) in float: no quantize/dequantize pair annotated on its input"
        )
    return "yes", f"PT2E with X86InductorQuantizer feeds all {len(nodes)} {what} ({targets}) int8"


def int8_attention_matmul() -> Answer:
    return _answer("matmul", "attention matmuls (activation x activation)")


def int8_softmax() -> Answer:
    return _answer("softmax", "softmax")


def int8_layer_norm() -> Answer:
    return _answer("layer_norm", "LayerNorm")


def profiler_attention() -> Answer:
    """torch.profiler around the int8 attention block: its matmuls, softmax and LayerNorm
    each appear as ops of their own (the per-op breakdown the report draws)."""
    from torch.profiler import ProfilerActivity, profile

    model = _ptq()
    with torch.no_grad(), profile(activities=[ProfilerActivity.CPU]) as prof:
        model(tokens(9))
    names = {e.name for e in prof.events()}
    wanted = ("aten::matmul", "aten::softmax", "aten::layer_norm", "aten::linear")
    missing = [op for op in wanted if op not in names]
    if missing:
        return "no", f"torch.profiler's trace of the int8 attention block lacks {missing}"
    quant = sorted(n for n in names if "quantize" in n)
    return "yes", (
        f"torch.profiler traced the PT2E int8 attention block op by op: {', '.join(wanted)}"
        f" and the q/dq ops ({', '.join(quant[:2])}...)"
    )


def qat_transformer() -> Answer:
    """prepare_qat_pt2e of the attention block, a few steps, convert: which ops are int8."""
    from torchao.quantization.pt2e import move_exported_model_to_eval
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_qat_pt2e

    model = _attention().train()
    prepared = prepare_qat_pt2e(
        torch.export.export(model, (tokens(),)).module(), quantizer(is_qat=True)
    )
    optimizer = torch.optim.SGD(prepared.parameters(), lr=0.05)
    labels = torch.tensor([0, 1])
    for seed in range(3):
        loss = nn.functional.cross_entropy(prepared(tokens(seed)), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    converted = convert_pt2e(move_exported_model_to_eval(prepared))
    with torch.no_grad():
        converted(tokens(9))
    linears = _nodes(converted, "linear")
    int8 = sum(_int8_input(n) for n in linears)
    floats = [
        op
        for op in ("layer_norm", "matmul", "softmax")
        if not all(map(_int8_input, _nodes(converted, op)))
    ]
    if not int8:
        return "no", "prepare_qat_pt2e -> convert_pt2e left every linear layer in float"
    return "yes", (
        f"prepare_qat_pt2e of LayerNorm + attention + GELU, 3 steps, convert_pt2e: "
        f"{int8} of {len(linears)} linear layers int8; in float: {', '.join(floats) or 'none'}"
    )


PROBES = {
    "int8_attention_matmul": int8_attention_matmul,
    "int8_softmax": int8_softmax,
    "int8_layer_norm": int8_layer_norm,
    "profiler_attention": profiler_attention,
    "qat_transformer": qat_transformer,
}
