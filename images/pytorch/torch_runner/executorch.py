"""ExecuTorch: the model exported, (re)quantized with XNNPACKQuantizer, lowered onto
XNNPACK and run from its ``.pte`` flatbuffer through the runtime's Python bindings.

The counterpart of LiteRT: both are flatbuffer programs run on XNNPACK. The int8 rungs
are ExecuTorch's own quantization of the same fp32 weights (the study's calibration
images, the study's QAT fine-tuning), not the oneDNN model of the variant itself.
"""

from __future__ import annotations

import copy
import importlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from harness_contract.metrics.census import OpCensus
from harness_contract.metrics.figures import ConversionStats, TrainingStats
from harness_contract.study.framework import Lowered, RungUnavailable

from .census import pte_census

FLOW = "pt2e-xnnpack-executorch"
INSTALL = "pip install executorch==1.5.1"
EXAMPLE_BATCH = 2  # a batch of 1 would let export specialize the batch dimension


def require_executorch() -> None:
    """RungUnavailable unless the ExecuTorch exporter and runtime both import."""
    for name in ("executorch.exir", "executorch.runtime"):
        try:
            importlib.import_module(name)
        except ImportError as exc:  # not installed, or a build that does not load
            raise RungUnavailable(
                f"ExecuTorch is not importable here ({name}: {exc})", INSTALL
            ) from exc


# ---------------------------------------------------------------- threads

_pool = {"generation": 0}  # bumped whenever the XNNPACK threadpool is recreated


def set_threads(threads: int) -> None:
    """Run every ExecuTorch program on ``threads`` threads from now on.

    ExecuTorch's XNNPACK delegate takes its pthreadpool when a method is loaded;
    ``_unsafe_reset_threadpool`` replaces that pool, so every method loaded before holds
    a stale one and is reloaded (EdgeModel.method checks the generation)."""
    from executorch.extension.pybindings import portable_lib

    if portable_lib._threadpool_get_thread_count() != threads:
        portable_lib._unsafe_reset_threadpool(threads)
        _pool["generation"] += 1


def thread_count() -> int:
    from executorch.extension.pybindings import portable_lib

    return int(portable_lib._threadpool_get_thread_count())


@dataclass
class EdgeModel:
    """A lowered ExecuTorch program (the .pte bytes) and its loaded ``forward``."""

    program: bytes
    precision: str
    max_batch: int
    _loaded: tuple[int, Any] | None = field(default=None, repr=False)

    def method(self) -> Any:
        generation = _pool["generation"]
        if self._loaded is None or self._loaded[0] != generation:
            from executorch.runtime import Runtime

            self._loaded = None  # drop the old method before loading on the new pool
            program = Runtime.get().load_program(self.program)
            self._loaded = (generation, program.load_method("forward"))
        return self._loaded[1]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.method().execute([x])[0]


# ---------------------------------------------------------------- lowering


def _batch_dim(max_batch: int) -> dict[int, Any]:
    return {0: torch.export.Dim("batch", min=1, max=max(max_batch, EXAMPLE_BATCH))}


def _export(model: nn.Module, max_batch: int) -> torch.export.ExportedProgram:
    example = (torch.randn(EXAMPLE_BATCH, 3, 32, 32),)
    return torch.export.export(model, example, dynamic_shapes=(_batch_dim(max_batch),))


def _to_pte(exported: torch.export.ExportedProgram) -> tuple[bytes, list[str], OpCensus]:
    """Lower onto XNNPACK and serialize; with the ops each XNNPACK delegate runs, and the
    census of those and of the ops left outside the delegates.

    The batch stays dynamic only if nothing narrows its range on the way: the edge
    passes re-run every conv's fake kernel, whose backend choice asks ``batch < 16``
    and, answered from the example batch, would cap the memory-planned input at 15
    images (``set_inputs() failed with error 0x10`` beyond). Size-oblivious guards
    answer such questions without narrowing the range."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    with torch.fx.experimental._config.patch(backed_size_oblivious=True):
        edge = to_edge_transform_and_lower(exported, partitioner=[XnnpackPartitioner()])
        lowered = edge.exported_program()
        ops, counted = delegated_ops(lowered), pte_census(lowered)
        return edge.to_executorch().buffer, ops, counted


def delegated_ops(program: torch.export.ExportedProgram) -> list[str]:
    """The ops inside XNNPACK delegates, int8 ones (fed by a dequantize) marked ``qs8``."""
    found: set[str] = set()
    for module in program.graph_module.children():
        if getattr(module, "backend_id", None) != "XnnpackBackend":
            continue
        for node in module.original_module.graph.nodes:
            if node.op != "call_function" or "quantize" in str(node.target):
                continue
            op = getattr(node.target, "__name__", str(node.target)).removeprefix("aten.")
            fed_int8 = any(
                isinstance(a, torch.fx.Node) and "dequantize" in str(a.target) for a in node.args
            )
            found.add(f"xnnpack.{op}" + (" (qs8)" if fed_int8 else ""))
    return sorted(found)


def lower_fp32(model: nn.Module, max_batch: int) -> Lowered:
    t0 = time.perf_counter()
    program, _, counted = _to_pte(_export(copy.deepcopy(model).cpu().eval(), max_batch))
    return Lowered(
        EdgeModel(program, "fp32", max_batch), compile_s=time.perf_counter() - t0, ops=counted
    )


def _quantizer(is_qat: bool) -> Any:
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )

    config = get_symmetric_quantization_config(is_per_channel=True, is_qat=is_qat)
    return XNNPACKQuantizer().set_global(config)


def _int8_ops(ops: list[str]) -> list[str]:
    int8 = [op for op in ops if op.endswith("(qs8)")]
    if not int8:
        raise RuntimeError(f"the XNNPACK delegates run no int8 op (only {ops or 'nothing'})")
    return int8


@dataclass(frozen=True)
class _Converted:
    model: EdgeModel
    int8_ops: list[str]
    census: OpCensus
    compile_s: float


def _lower_converted(converted: nn.Module, max_batch: int) -> _Converted:
    t0 = time.perf_counter()
    program, ops, counted = _to_pte(_export(converted, max_batch))
    model = EdgeModel(program, "int8", max_batch)
    return _Converted(model, _int8_ops(ops), counted, time.perf_counter() - t0)


def lower_ptq(fp32: nn.Module, calibration: Sequence[torch.Tensor], max_batch: int) -> Lowered:
    """XNNPACKQuantizer (per-channel symmetric) calibrated on the study's images."""
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    t0 = time.perf_counter()
    prepared = prepare_pt2e(
        _export(copy.deepcopy(fp32).cpu().eval(), max_batch).module(), _quantizer(False)
    )
    with torch.no_grad():
        for batch in calibration:
            prepared(batch)
    t1 = time.perf_counter()
    converted = convert_pt2e(prepared)
    t2 = time.perf_counter()
    lowered = _lower_converted(converted, max_batch)
    stats = ConversionStats(
        flow=FLOW,
        device="cpu",
        calibration_samples=sum(len(b) for b in calibration),
        calibration_s=t1 - t0,
        conversion_s=t2 - t1,
        quantized_ops=lowered.int8_ops,
    )
    return Lowered(
        lowered.model,
        compile_s=lowered.compile_s,
        conversion=stats,
        notes=[_own("calibration")],
        ops=lowered.census,
    )


def lower_qat(
    fp32: nn.Module,
    fine_tune: Callable[[Any], tuple[Any, TrainingStats | None]],
    device: torch.device,
    max_batch: int,
) -> Lowered:
    """XNNPACKQuantizer's QAT config, fine-tuned by the study's own QAT trainer."""
    from torchao.quantization.pt2e import (
        allow_exported_model_train_eval,
        move_exported_model_to_eval,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_qat_pt2e

    model = copy.deepcopy(fp32).cpu().train()
    prepared = prepare_qat_pt2e(_export(model, max_batch).module(), _quantizer(True))
    allow_exported_model_train_eval(prepared)  # the trainer calls .train()/.eval()
    tuned, training = fine_tune(prepared.to(device))
    if training is None:  # the study fine-tunes nothing when qat.epochs is 0
        raise RungUnavailable(
            "qat.epochs is 0: the QAT model saw no images, so its per-channel fake-quant "
            "scales were never set and XNNPACK cannot lower it",
            "set qat.epochs to 1 or more",
        )
    t0 = time.perf_counter()
    converted = convert_pt2e(move_exported_model_to_eval(tuned.cpu()))
    t1 = time.perf_counter()
    lowered = _lower_converted(converted, max_batch)
    stats = ConversionStats(
        flow=FLOW, device="cpu", conversion_s=t1 - t0, quantized_ops=lowered.int8_ops
    )
    return Lowered(
        lowered.model,
        compile_s=lowered.compile_s,
        conversion=stats,
        training=training,
        notes=[_own("QAT fine-tuning")],
        ops=lowered.census,
    )


def _own(what: str) -> str:
    return (
        f"its own int8 quantization (XNNPACKQuantizer, per-channel symmetric) of the same "
        f"fp32 weights with the same {what} as the variant, not the oneDNN (X86Inductor) "
        f"int8 model: accuracy and agreement are this model's"
    )


def lowering_note(model: EdgeModel) -> str:
    # No .pte per batch size (unlike Inductor's static compiles): at batch 1 a static
    # export took the same CPU time as this one, and bench_ladder keeps checking it.
    return (
        f"one .pte serves batch 1..{model.max_batch} (dynamic batch dimension, as fast as "
        f"a .pte exported for one batch: benchmarks/bench_ladder.py compares the two); "
        f"XNNPACK threadpool at {thread_count()} thread(s)"
    )
