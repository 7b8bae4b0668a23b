"""Static int8 quantization of the fp32 model: PTQ with calibration, and QAT.

Two flows, chosen by ``pytorch.quant_flow``:

* ``pt2e`` (default): torch.export -> torchao ``prepare_pt2e``/``prepare_qat_pt2e``
  with ``X86InductorQuantizer`` -> ``convert_pt2e`` -> lowered onto oneDNN int8
  kernels (``onednn.qconv_pointwise`` ...). Without the lowering the converted
  graph is only a q/dq *reference* that runs in fp32 and is slower than fp32.
* ``fx``: the legacy ``torch.ao.quantization`` FX flow the paper used
  (fbgemm/x86 ``quantized::conv2d`` kernels). Deprecated upstream, still works.

Either way the result is checked to really contain int8 kernels.
"""

from __future__ import annotations

import copy
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from harness_contract.metrics.figures import ConversionStats
from harness_contract.versions import pinned_line

EXAMPLE_BATCH = 2  # export traces with batch 2; the batch dimension is then made dynamic


@dataclass
class Int8Model:
    """An int8 model: what runs (lowered) and what is serialized (its int8 tensors)."""

    runnable: nn.Module
    serializable: nn.Module
    flow: str
    parameters: int


def _example() -> tuple[torch.Tensor, ...]:
    return (torch.randn(EXAMPLE_BATCH, 3, 32, 32),)


def _count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def quantized_ops(model: nn.Module) -> list[str]:
    """The int8 kernels a converted graph calls: the proof that conversion really happened."""
    found: set[str] = set()
    graph = getattr(model, "graph", None)
    for node in graph.nodes if graph is not None else []:
        if node.op == "call_function":
            name = str(node.target)
            if name.startswith(("onednn.q", "quantized.")):
                found.add(name)
        elif node.op == "call_module":
            mod = model.get_submodule(node.target)
            if type(mod).__module__.startswith("torch.ao.nn.quantized"):
                found.add(f"{type(mod).__module__}.{type(mod).__name__}")
    return sorted(found)


def _require_int8(model: nn.Module, flow: str) -> list[str]:
    ops = quantized_ops(model)
    if not ops:
        raise RuntimeError(
            f"{flow} conversion produced a graph with no int8 kernels (torch {torch.__version__}; "
            f"the harness is tested with {pinned_line('pytorch')}: install those, or "
            f"set pytorch.quant_flow=fx)"
        )
    return ops


def _calibrate_and_convert(
    flow: PT2EFlow | FXFlow,
    prepare: Callable[[nn.Module], nn.Module],
    fp32: nn.Module,
    calibration: Sequence[torch.Tensor],
) -> tuple[Int8Model, ConversionStats]:
    """PTQ for either flow: insert observers, run the calibration batches, convert.

    calibration_s covers graph capture, observer insertion and the calibration passes;
    conversion_s covers observers -> int8 and the lowering onto int8 kernels.
    """
    model = copy.deepcopy(fp32).cpu().eval()
    t0 = time.perf_counter()
    prepared = prepare(model)
    with torch.no_grad():
        for batch in calibration:
            prepared(batch)
    t1 = time.perf_counter()
    int8, ops = flow._convert(prepared, _count_params(fp32))
    stats = ConversionStats(
        flow=flow.name,
        device="cpu",
        calibration_samples=sum(len(b) for b in calibration),
        calibration_s=t1 - t0,
        conversion_s=time.perf_counter() - t1,
        quantized_ops=ops,
    )
    return int8, stats


# ---------------------------------------------------------------- PT2E


class PT2EFlow:
    name = "pt2e-x86-inductor"

    def __init__(self) -> None:
        from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer as xiq

        self._xiq = xiq

    def _quantizer(self, is_qat: bool):
        q = self._xiq.X86InductorQuantizer()
        return q.set_global(self._xiq.get_default_x86_inductor_quantization_config(is_qat=is_qat))

    @staticmethod
    def _export(model: nn.Module) -> nn.Module:
        dynamic = ({0: torch.export.Dim.DYNAMIC},)
        return torch.export.export(model, _example(), dynamic_shapes=dynamic).module()

    def ptq(
        self, fp32: nn.Module, calibration: Sequence[torch.Tensor]
    ) -> tuple[Int8Model, ConversionStats]:
        from torchao.quantization.pt2e.quantize_pt2e import prepare_pt2e

        def prepare(model: nn.Module) -> nn.Module:
            return prepare_pt2e(self._export(model), self._quantizer(is_qat=False))

        return _calibrate_and_convert(self, prepare, fp32, calibration)

    def prepare_qat(self, fp32: nn.Module, device: torch.device) -> nn.Module:
        from torchao.quantization.pt2e import allow_exported_model_train_eval
        from torchao.quantization.pt2e.quantize_pt2e import prepare_qat_pt2e

        model = copy.deepcopy(fp32).cpu().train()
        prepared = prepare_qat_pt2e(self._export(model), self._quantizer(is_qat=True))
        allow_exported_model_train_eval(prepared)  # so the trainer may call .train()/.eval()
        return prepared.to(device)

    def convert_qat(self, qat: nn.Module, parameters: int) -> tuple[Int8Model, ConversionStats]:
        from torchao.quantization.pt2e import move_exported_model_to_eval

        t0 = time.perf_counter()
        model = move_exported_model_to_eval(qat.cpu())
        int8, ops = self._convert(model, parameters)
        return int8, ConversionStats(
            flow=self.name, device="cpu", conversion_s=time.perf_counter() - t0, quantized_ops=ops
        )

    def _convert(self, prepared: nn.Module, parameters: int) -> tuple[Int8Model, list[str]]:
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e

        converted = convert_pt2e(prepared)
        _drop_unused_attributes(converted)
        lowered = _lower_to_x86(converted)
        return Int8Model(lowered, converted, self.name, parameters), _require_int8(
            lowered, self.name
        )


def _drop_unused_attributes(gm: torch.fx.GraphModule) -> None:
    """convert_pt2e folds weights into new int8 constants but leaves the fp32 originals
    attached; drop every tensor the graph no longer reads so the size is the int8 model's."""
    used = {n.target for n in gm.graph.nodes if n.op == "get_attr"}
    for name in [k for k in gm.state_dict() if k not in used]:
        owner, _, leaf = name.rpartition(".")
        module = gm.get_submodule(owner) if owner else gm
        if leaf in module._parameters:
            del module._parameters[leaf]
        elif leaf in module._buffers:
            del module._buffers[leaf]
        elif hasattr(module, leaf):
            delattr(module, leaf)


def _lower_to_x86(converted: torch.fx.GraphModule) -> nn.Module:
    """Replace q/dq patterns with oneDNN int8 kernels, keeping the batch dimension dynamic.

    torchao's ``lower_pt2e_quantized_to_x86`` does the same passes but re-exports with
    static shapes, which would tie the int8 model to one batch size.
    """
    from torch._inductor.constant_folding import constant_fold
    from torch._inductor.fx_passes.freezing_patterns import freezing_passes

    decompositions = {
        op: fn
        for op, fn in torch.export.default_decompositions().items()
        if torch._export.utils._is_cia_op(op)
    }
    with torch.no_grad():
        exported = torch.export.export(
            converted, _example(), strict=True, dynamic_shapes=({0: torch.export.Dim.DYNAMIC},)
        )
        lowered = exported.run_decompositions(decompositions).module()
        _transpose_as_permute(lowered)
        freezing_passes(lowered, _example())
        constant_fold(lowered)
    return lowered


def _transpose_as_permute(gm: torch.fx.GraphModule) -> None:
    # The freezing patterns match permute, not aten.t (as torchao's lowering does).
    for node in list(gm.graph.nodes):
        if node.target == torch.ops.aten.t.default:
            with gm.graph.inserting_before(node):
                perm = gm.graph.call_function(
                    torch.ops.aten.permute.default, (node.args[0], [1, 0])
                )
            node.replace_all_uses_with(perm)
            gm.graph.erase_node(node)
    gm.graph.lint()
    gm.recompile()


# ---------------------------------------------------------------- FX (legacy)


class FXFlow:
    name = "fx-x86"

    def __init__(self) -> None:
        torch.backends.quantized.engine = "x86"

    @staticmethod
    def _quietly(fn: Callable, *args):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return fn(*args)

    def ptq(
        self, fp32: nn.Module, calibration: Sequence[torch.Tensor]
    ) -> tuple[Int8Model, ConversionStats]:
        from torch.ao.quantization import get_default_qconfig_mapping
        from torch.ao.quantization.quantize_fx import prepare_fx

        def prepare(model: nn.Module) -> nn.Module:
            return self._quietly(prepare_fx, model, get_default_qconfig_mapping("x86"), _example())

        return _calibrate_and_convert(self, prepare, fp32, calibration)

    def prepare_qat(self, fp32: nn.Module, device: torch.device) -> nn.Module:
        from torch.ao.quantization import get_default_qat_qconfig_mapping
        from torch.ao.quantization.quantize_fx import prepare_qat_fx

        model = copy.deepcopy(fp32).cpu().train()
        prepared = self._quietly(
            prepare_qat_fx, model, get_default_qat_qconfig_mapping("x86"), _example()
        )
        return prepared.to(device)

    def convert_qat(self, qat: nn.Module, parameters: int) -> tuple[Int8Model, ConversionStats]:
        t0 = time.perf_counter()
        int8, ops = self._convert(qat.cpu().eval(), parameters)
        return int8, ConversionStats(
            flow=self.name, device="cpu", conversion_s=time.perf_counter() - t0, quantized_ops=ops
        )

    def _convert(self, prepared: nn.Module, parameters: int) -> tuple[Int8Model, list[str]]:
        from torch.ao.quantization.quantize_fx import convert_fx

        converted = self._quietly(convert_fx, prepared)
        return Int8Model(converted, converted, self.name, parameters), _require_int8(
            converted, self.name
        )


FLOWS = {"pt2e": PT2EFlow, "fx": FXFlow}
