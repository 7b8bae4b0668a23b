"""PyTorch's answers to harness_contract.support.PROBES (the paper's Table IV), each
tried for real on a tiny model (two conv+ReLU, a pool, a linear; 3x8x8 inputs) at the
installed versions, so the whole set takes seconds.

Run by harness_contract.support_child in a child process: a probe returns
(outcome, detail) or raises (a "no" with its error). The int8 model is built once
and shared by the probes that read it (functools.cache).
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from .quantize import quantized_ops

Answer = tuple[str, str]
BATCH = 2


class Tiny(nn.Module):
    """Two conv+ReLU pairs, a pool and a linear layer: every pattern the probes ask about."""

    def __init__(self, middle: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.middle = middle if middle is not None else nn.Identity()
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.relu2 = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.middle(self.relu1(self.conv1(x)))
        return self.fc(torch.flatten(self.pool(self.relu2(self.conv2(x))), 1))


class Scale(nn.Module):
    """A custom layer no quantizer knows: a learned per-channel scale and shift."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.ones(1, channels, 1, 1))
        self.shift = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gain + self.shift


def _example(seed: int = 0) -> torch.Tensor:
    return torch.randn(BATCH, 3, 8, 8, generator=torch.Generator().manual_seed(seed))


def _tiny(middle: nn.Module | None = None) -> nn.Module:
    torch.manual_seed(0)
    return Tiny(middle).eval()


def _quantizer(is_qat: bool = False):
    from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer as xiq

    config = xiq.get_default_x86_inductor_quantization_config(is_qat=is_qat)
    return xiq.X86InductorQuantizer().set_global(config)


def _lower(converted: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """q/dq reference graph -> oneDNN int8 kernels (torchao's own lowering)."""
    from torchao.quantization.pt2e.lowering import lower_pt2e_quantized_to_x86

    with torch.no_grad():
        return lower_pt2e_quantized_to_x86(converted, (_example(),))


@functools.cache
def _int8() -> tuple[nn.Module, torch.fx.GraphModule, torch.fx.GraphModule]:
    """PTQ of the tiny model: (fp32, converted q/dq graph, lowered int8 model)."""
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    fp32 = _tiny()
    prepared = prepare_pt2e(torch.export.export(fp32, (_example(),)).module(), _quantizer())
    for seed in range(4):  # calibration
        prepared(_example(seed))
    converted = convert_pt2e(prepared)
    return fp32, converted, _lower(converted)


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.detach().float().cpu() - b.detach().float().cpu()).abs().max())


def _ops(model: nn.Module) -> str:
    return ", ".join(quantized_ops(model)) or "none"


# ---------------------------------------------------------------- hardware


def int8_cpu() -> Answer:
    fp32, _, lowered = _int8()
    ops = quantized_ops(lowered)
    if not ops:
        return "no", "PT2E (X86InductorQuantizer) lowering left no int8 kernel in the graph"
    x = _example(9)
    with torch.no_grad():
        diff = _max_diff(lowered(x), fp32(x))
    return "yes", (
        f"PT2E with X86InductorQuantizer, lowered onto oneDNN, ran on CPU with {', '.join(ops)}; "
        f"largest difference from fp32 {diff:.4f}"
    )


def int8_gpu() -> Answer:
    if not torch.cuda.is_available():
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        return "not probed", f"no CUDA device here (torch {torch.__version__}, {build})"
    _, converted, lowered = _int8()
    x = _example(9).cuda()
    try:
        with torch.no_grad():
            lowered.cuda()(x)
    except Exception as exc:  # the answer: the int8 kernels' own error on CUDA
        error = _reason(exc)
    else:
        return "yes", f"the oneDNN-lowered int8 model ({_ops(lowered)}) ran on {_gpu_name()}"
    try:  # what does run there: the q/dq reference graph, whose arithmetic is fp32
        with torch.no_grad():
            converted.cuda()(x)
        reference = "the q/dq reference graph runs there but computes in fp32"
    except Exception as exc:
        reference = f"the q/dq reference graph fails there too ({_reason(exc)})"
    return "no", f"int8 model on {_gpu_name()}: {error}; {reference}"


def _gpu_name() -> str:
    return torch.cuda.get_device_name(0)


def int8_native() -> Answer:
    _, _, lowered = _int8()
    ops = quantized_ops(lowered)
    in_torch = [op for op in ops if _is_torch_op(op)]
    if not isinstance(lowered, nn.Module) or not in_torch:
        return "no", f"the int8 model ({type(lowered).__name__}) calls no int8 op of torch.ops"
    return "yes", (
        f"the int8 model is a {type(lowered).__mro__[1].__name__} run by PyTorch's own "
        f"dispatcher ({', '.join(in_torch)}); no separate interpreter"
    )


def _is_torch_op(name: str) -> bool:
    namespace, _, rest = name.partition(".")
    return hasattr(getattr(torch.ops, namespace, None), rest.split(".")[0])


# ---------------------------------------------------------------- profiler


def _profile(step: Callable[[], object]) -> list:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], with_stack=True) as prof:
        step()
    return list(prof.events())


def profiler_training() -> Answer:
    model = _tiny().train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    labels = torch.tensor([0, 1])

    def step() -> None:
        loss = nn.functional.cross_entropy(model(_example()), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    names = {e.name for e in _profile(step)}
    layers = sorted(n.removeprefix("nn.Module: ") for n in names if n.startswith("nn.Module: "))
    backward = sorted(n for n in names if n.endswith("Backward0") and "::" not in n)
    leaves = [type(m).__name__ for m in model.modules() if not list(m.children())]
    missing = [kind for kind in set(leaves) if not any(n.startswith(kind) for n in layers)]
    if missing or not backward:
        return "no", f"layers missing from the trace: {missing}; backward ops: {backward}"
    return "yes", (
        f"torch.profiler (with_stack) traced forward and backward: layers {', '.join(layers)}; "
        f"backward ops {', '.join(backward[:4])}..."
    )


def profiler_int8() -> Answer:
    _, _, lowered = _int8()
    with torch.no_grad():
        names = {e.name for e in _profile(lambda: lowered(_example()))}
    int8 = sorted(n for n in names if n.startswith(("onednn::q", "quantized::")))
    if not int8:
        return "no", f"no int8 op among the {len(names)} traced events"
    return "yes", f"torch.profiler traced int8 inference op by op: {', '.join(int8)}"


# ---------------------------------------------------------------- quantization


def auto_fusion() -> Answer:
    _, _, lowered = _int8()
    convs = [n for n in lowered.graph.nodes if "qconv" in str(n.target)]
    fused = [n for n in convs if "relu" in [a for a in n.args if isinstance(a, str)]]
    relus = [n for n in lowered.graph.nodes if "relu" in str(n.target)]
    if not convs:
        return "no", "the lowered graph has no int8 convolution"
    if len(fused) < len(convs) or relus:
        return "no", f"{len(fused)} of {len(convs)} convs fused with ReLU; {len(relus)} ReLU left"
    return "yes", (
        f"PT2E fused all {len(convs)} conv+ReLU pairs into {convs[0].target} with post-op "
        "'relu', no fuse_modules call"
    )


def auto_setup() -> Answer:
    from torch.ao.quantization import DeQuantStub, QuantStub

    fp32, converted, lowered = _int8()
    stubs = [m for m in fp32.modules() if isinstance(m, QuantStub | DeQuantStub)]
    quantize = [n for n in converted.graph.nodes if "quantize_per_tensor" in str(n.target)]
    if stubs or not quantize or not quantized_ops(lowered):
        return "no", f"stubs in the model: {len(stubs)}; quantize nodes inserted: {len(quantize)}"
    return "yes", (
        "prepare_pt2e on the exported model, no QuantStub/DeQuantStub and no annotation: "
        f"it placed {len(quantize)} quantize nodes itself; int8 ops {_ops(lowered)}"
    )


def _qat(model: nn.Module, steps: int = 3) -> tuple[torch.fx.GraphModule, float]:
    """prepare_qat_pt2e, a few SGD steps, convert: (q/dq int8 program, last loss)."""
    from torchao.quantization.pt2e import move_exported_model_to_eval
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_qat_pt2e

    exported = torch.export.export(model.train(), (_example(),)).module()
    prepared = prepare_qat_pt2e(exported, _quantizer(is_qat=True))
    optimizer = torch.optim.SGD(prepared.parameters(), lr=0.05)
    labels = torch.tensor([0, 1])
    loss = torch.zeros(())
    for seed in range(steps):
        loss = nn.functional.cross_entropy(prepared(_example(seed)), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return convert_pt2e(move_exported_model_to_eval(prepared)), float(loss)


def qat_convert() -> Answer:
    converted, loss = _qat(_tiny())
    lowered = _lower(converted)
    ops = quantized_ops(lowered)
    if not ops:
        return "no", "prepare_qat_pt2e -> convert_pt2e left no int8 kernel"
    with torch.no_grad():
        lowered(_example(9))
    return "yes", (
        f"prepare_qat_pt2e, 3 training steps (loss {loss:.3f}), convert_pt2e, lowered: "
        f"{', '.join(ops)}"
    )


def custom_layer() -> Answer:
    converted, _ = _qat(_tiny(Scale(8)))
    with torch.no_grad():
        converted(_example(9))
    targets = [str(n.target) for n in converted.graph.nodes if n.op == "call_function"]
    int8_weights = sum("dequantize_per_channel" in t for t in targets)
    kept = sorted({t for t in targets if t in _FP32_MATH})
    if not int8_weights:
        return "no", "QAT of a model with a custom layer converted without int8 weights"
    return "yes", (
        "prepare_qat_pt2e -> convert_pt2e of a model with an unannotated custom layer "
        f"(x * gain + shift) ran: {int8_weights} layers with int8 weights; the custom layer "
        f"stays fp32 ({', '.join(kept) or 'folded away'})"
    )


_FP32_MATH = {"aten.mul.Tensor", "aten.add.Tensor"}


def embedding() -> Answer:
    """Each route PyTorch offers for an int8 Embedding, and what it did."""
    tried = [_attempt(*route) for route in _EMBEDDING_ROUTES]
    worked = [how for ok, how in tried if ok]
    detail = "; ".join(how for _, how in tried)
    return ("yes" if worked else "no"), detail


def _attempt(label: str, route: Callable[[], tuple[bool, str]]) -> tuple[bool, str]:
    try:
        return route()
    except Exception as exc:  # one route's failure is part of the answer
        return False, f"{label}: {_reason(exc)}"


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
    prepared = prepare_pt2e(torch.export.export(model, (_ids(),)).module(), _quantizer())
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
        diff = _max_diff(model(_ids()), before)
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


# ---------------------------------------------------------------- analysis


def per_layer_access() -> Answer:
    _, _, lowered = _int8()
    seen: dict[str, torch.Tensor] = {}

    class Recorder(torch.fx.Interpreter):
        def run_node(self, n: torch.fx.Node):  # every node's output, as it is computed
            out = super().run_node(n)
            if isinstance(out, torch.Tensor) and n.op == "call_function":
                seen[n.name] = out
            return out

    with torch.no_grad():
        Recorder(lowered).run(_example(9))
    int8 = {k: v for k, v in seen.items() if v.dtype in (torch.uint8, torch.int8)}
    convs = [k for k in int8 if "qconv" in k]
    if not convs:
        return "no", f"no int8 conv output among the {len(seen)} tensors read"
    name, tensor = convs[0], int8[convs[0]]
    return "yes", (
        f"a torch.fx.Interpreter over the int8 model read {len(seen)} intermediate tensors, "
        f"{len(int8)} of them int8 (e.g. {name}: {tensor.dtype} {list(tensor.shape)})"
    )


def int8_export() -> Answer:
    """The int8 program to a .pt2 and back. The oneDNN-lowered model holds packed
    (opaque) weights, so what can be saved is the q/dq program with its int8 weights."""
    _, converted, lowered = _int8()
    x = _example(9)
    with torch.no_grad(), tempfile.TemporaryDirectory() as tmp:
        try:
            torch.export.save(torch.export.export(lowered, (x,)), Path(tmp) / "lowered.pt2")
            lowered_note = "the oneDNN-lowered model saves too"
        except Exception as exc:
            lowered_note = f"the oneDNN-lowered model does not save ({_reason(exc)})"
        path = Path(tmp) / "int8.pt2"
        program = torch.export.export(converted, (x,))
        torch.export.save(program, path)
        reloaded = torch.export.load(path)
        diff = _max_diff(reloaded.module()(x), converted(x))
        size = path.stat().st_size
    int8 = [k for k, v in reloaded.state_dict.items() | reloaded.constants.items() if _is_int8(v)]
    if diff != 0 or not int8:
        return "no", f"reloaded .pt2: {len(int8)} int8 tensors, outputs differ by {diff}"
    return "yes", (
        f"torch.export.save of the q/dq int8 program ({size / 1024:.0f} KiB .pt2, "
        f"{len(int8)} int8 weight tensors) and torch.export.load gave identical outputs; "
        f"{lowered_note}"
    )


def _is_int8(value: object) -> bool:
    return isinstance(value, torch.Tensor) and value.dtype in (torch.int8, torch.uint8)


def _reason(exc: BaseException) -> str:
    from harness_contract.failures import reason_of

    return reason_of(exc)


PROBES: dict[str, Callable[[], Answer]] = {
    "int8_cpu": int8_cpu,
    "int8_gpu": int8_gpu,
    "int8_native": int8_native,
    "profiler_training": profiler_training,
    "profiler_int8": profiler_int8,
    "auto_fusion": auto_fusion,
    "auto_setup": auto_setup,
    "qat_convert": qat_convert,
    "custom_layer": custom_layer,
    "embedding": embedding,
    "per_layer_access": per_layer_access,
    "int8_export": int8_export,
}
