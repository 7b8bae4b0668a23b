"""PyTorch's answers to harness_contract.study.support.PROBES (the paper's Table IV), each
tried for real on a tiny model (two conv+ReLU, a pool, a linear; 3x8x8 inputs) at the
installed versions, so the whole set takes seconds.

Run by harness_contract.study.support_child in a child process: a probe returns
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

from ..quantize import quantized_ops
from .embedding import embedding
from .models import Answer, Scale, example, lower, max_diff, quantizer, reason, tiny
from .transformer import PROBES as TRANSFORMER_PROBES


@functools.cache
def _int8() -> tuple[nn.Module, torch.fx.GraphModule, torch.fx.GraphModule]:
    """PTQ of the tiny model: (fp32, converted q/dq graph, lowered int8 model)."""
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    fp32 = tiny()
    prepared = prepare_pt2e(torch.export.export(fp32, (example(),)).module(), quantizer())
    for seed in range(4):  # calibration
        prepared(example(seed))
    converted = convert_pt2e(prepared)
    return fp32, converted, lower(converted)


def _ops(model: nn.Module) -> str:
    return ", ".join(quantized_ops(model)) or "none"


# ---------------------------------------------------------------- hardware


def int8_cpu() -> Answer:
    fp32, _, lowered = _int8()
    ops = quantized_ops(lowered)
    if not ops:
        return "no", "PT2E (X86InductorQuantizer) lowering left no int8 kernel in the graph"
    x = example(9)
    with torch.no_grad():
        diff = max_diff(lowered(x), fp32(x))
    return "yes", (
        f"PT2E with X86InductorQuantizer, lowered onto oneDNN, ran on CPU with {', '.join(ops)}; "
        f"largest difference from fp32 {diff:.4f}"
    )


def int8_gpu() -> Answer:
    if not torch.cuda.is_available():
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        return "not probed", f"no CUDA device here (torch {torch.__version__}, {build})"
    _, converted, lowered = _int8()
    x = example(9).cuda()
    try:
        with torch.no_grad():
            lowered.cuda()(x)
    except Exception as exc:  # the answer: the int8 kernels' own error on CUDA
        error = reason(exc)
    else:
        return "yes", f"the oneDNN-lowered int8 model ({_ops(lowered)}) ran on {_gpu_name()}"
    try:  # what does run there: the q/dq reference graph, whose arithmetic is fp32
        with torch.no_grad():
            converted.cuda()(x)
        reference = "the q/dq reference graph runs there but computes in fp32"
    except Exception as exc:
        reference = f"the q/dq reference graph fails there too ({reason(exc)})"
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
        f"the int8 model is a {_kind(lowered)} run by PyTorch's own "
        f"dispatcher ({', '.join(in_torch)}); no separate interpreter"
    )


def _kind(model: nn.Module) -> str:
    return "torch.fx.GraphModule" if isinstance(model, torch.fx.GraphModule) else "nn.Module"


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
    model = tiny().train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    labels = torch.tensor([0, 1])

    def step() -> None:
        loss = nn.functional.cross_entropy(model(example()), labels)
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
        names = {e.name for e in _profile(lambda: lowered(example()))}
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

    exported = torch.export.export(model.train(), (example(),)).module()
    prepared = prepare_qat_pt2e(exported, quantizer(is_qat=True))
    optimizer = torch.optim.SGD(prepared.parameters(), lr=0.05)
    labels = torch.tensor([0, 1])
    loss = torch.zeros(())
    for seed in range(steps):
        loss = nn.functional.cross_entropy(prepared(example(seed)), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return convert_pt2e(move_exported_model_to_eval(prepared)), float(loss)


def qat_convert() -> Answer:
    converted, loss = _qat(tiny())
    lowered = lower(converted)
    ops = quantized_ops(lowered)
    if not ops:
        return "no", "prepare_qat_pt2e -> convert_pt2e left no int8 kernel"
    with torch.no_grad():
        lowered(example(9))
    return "yes", (
        f"prepare_qat_pt2e, 3 training steps (loss {loss:.3f}), convert_pt2e, lowered: "
        f"{', '.join(ops)}"
    )


def custom_layer() -> Answer:
    converted, _ = _qat(tiny(Scale(8)))
    with torch.no_grad():
        converted(example(9))
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
        Recorder(lowered).run(example(9))
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
    x = example(9)
    with torch.no_grad(), tempfile.TemporaryDirectory() as tmp:
        try:
            torch.export.save(torch.export.export(lowered, (x,)), Path(tmp) / "lowered.pt2")
            lowered_note = "the oneDNN-lowered model saves too"
        except Exception as exc:
            lowered_note = f"the oneDNN-lowered model does not save ({reason(exc)})"
        path = Path(tmp) / "int8.pt2"
        program = torch.export.export(converted, (x,))
        torch.export.save(program, path)
        reloaded = torch.export.load(path)
        diff = max_diff(reloaded.module()(x), converted(x))
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
    **TRANSFORMER_PROBES,
}
