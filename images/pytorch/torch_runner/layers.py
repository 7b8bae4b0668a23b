"""Per-layer quantization error of the PyTorch int8 models (harness_contract.layers.analysis).

fp32: forward hooks on the eager model's modules (named like the canonical layers).
PT2E int8: torchao's numeric debugger logs no node of the runner's model (it needs
``generate_numeric_debug_handle`` on the ExportedProgram before ``.module()``, which the
flow's export does not call), so the converted q/dq graph (``Int8Model.serializable``)
is run node by node through an FX Interpreter: each measuring point's last compute node
(found by its ``nn_module_stack``; a ViT block's is its second residual add, the last
node of module ``blocks.<i>``) and the dequantize after it give its int8 output. A
layer's conv/linear node already computes with its dequantized int8 weights in float:
that result is the weight-only figure's int8 side and the output-only figure's float
side; the node run again with the reference weights on the same input is the float
side of the own and weight-only figures. The lowered oneDNN model computes the same
graph with fused kernels.
FX int8: forward hooks on the converted quantized modules (their output dequantized).
Keep-float: the quantizer's per-module config of None, then PTQ (or QAT) again, with the
float layer's input still annotated as int8 (as TFLite keeps it: _keep_int8_input).
QAT reference: the fine-tuned weights of the prepared model, loaded into an eager model.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from harness_contract.layers.analysis import (
    AnalysisUnavailable,
    Int8Outputs,
    LayerProbe,
    RequantizeInputs,
)
from harness_contract.layers.error import CanonicalLayer, measuring_points
from harness_contract.model.network import Network
from harness_contract.model.vit import ViTDef

from .quantize import FXFlow, Int8Model, PT2EFlow

# By name: torchao registers the quantized_decomposed ops when it is imported.
_QUANTIZE = "quantized_decomposed.quantize_per_"
_DEQUANTIZE = "quantized_decomposed.dequantize_per_"
_WEIGHTED = (torch.ops.aten.conv2d.default, torch.ops.aten.linear.default)


def output_point(layer: CanonicalLayer) -> str:
    """The eager module whose output is the layer's compared output (torch_runner.model)."""
    if layer.kind == "block":  # a ResNet block: after its add and last ReLU
        block = layer.name.removesuffix(".out")
        # A ViT encoder block ends on its second residual add: the block's own output.
        return block if layer.output == "raw" else block + ".relu2"
    if layer.output == "relu":
        return "relu" if layer.name == "stem" else layer.name.rsplit(".", 1)[0] + ".relu1"
    if layer.output == "bn":
        return f"{layer.name}_bn"
    return layer.name


def _owner_modules(layer: CanonicalLayer) -> set[str]:
    if layer.kind == "block":
        return {output_point(layer)}
    return {layer.name, f"{layer.name}_bn", output_point(layer)}


def _module_of(node: torch.fx.Node) -> str | None:
    stack = node.meta.get("nn_module_stack")
    return list(stack.values())[-1][0] if stack else None


class TorchLayerProbe(LayerProbe):
    def __init__(self, fw: Any) -> None:  # a set-up TorchFramework
        self.fw = fw
        self.layers = measuring_points(fw.net)

    # ------------------------------------------------------------ fp32
    def fp32_layer_outputs(self, fp32: nn.Module, images: np.ndarray) -> dict[str, np.ndarray]:
        fp32.eval()
        device = next(fp32.parameters()).device
        out: dict[str, np.ndarray] = {}
        handles = []
        try:  # a hook left behind would fire in every later forward (QAT's export)
            for layer in self.layers:
                module = fp32.get_submodule(output_point(layer))

                def keep(_m: nn.Module, _i: Any, y: torch.Tensor, name: str = layer.name) -> None:
                    out[name] = y.detach().float().cpu().numpy()

                handles.append(module.register_forward_hook(keep))
            with torch.no_grad():
                fp32(self.fw.normalize(images, device))
        finally:
            for h in handles:
                h.remove()
        return out

    # ------------------------------------------------------------ int8
    def int8_layer_outputs(
        self, qmodel: Int8Model, fp32: nn.Module, images: np.ndarray
    ) -> Int8Outputs:
        x = self.fw.normalize(images, torch.device("cpu"))
        if qmodel.flow == PT2EFlow.name:
            return self._pt2e(qmodel.serializable, fp32, x)
        if qmodel.flow == FXFlow.name:
            return self._fx(qmodel.runnable, x)
        raise AnalysisUnavailable(f"no per-layer probe for the {qmodel.flow} flow")

    def _pt2e(self, gm: torch.fx.GraphModule, fp32: nn.Module, x: torch.Tensor) -> Int8Outputs:
        points, weighted, unmapped = self._pt2e_nodes(gm)
        # Own error needs the layer's fp32 weights as the int8 graph uses them: with
        # BatchNorm, PT2E folds it into the conv, so the eager weights are not those.
        own_ok = not _folds_batch_norm(self.fw.net)
        fp32_weights = {
            name: fp32.get_submodule(name).weight.detach().cpu() for name in weighted.values()
        }
        wanted = {node: name for name, node in points.items()}
        outputs: dict[str, np.ndarray] = {}
        floats: dict[str, torch.Tensor] = {}  # the op with the reference weights
        rounded_weights: dict[str, torch.Tensor] = {}  # the op with int8 weights, float out

        class Capture(torch.fx.Interpreter):
            def run_node(self, n: torch.fx.Node) -> Any:
                result = super().run_node(n)
                name = weighted.get(n)
                if name is not None:
                    rounded_weights[name] = result
                if own_ok and name is not None:
                    args, kwargs = self.fetch_args_kwargs_from_env(n)
                    args = (args[0], fp32_weights[name], *args[2:])
                    floats[name] = n.target(*args, **kwargs)
                if n in wanted:
                    outputs[wanted[n]] = result.detach().float().numpy()
                return result

        with torch.no_grad():
            Capture(gm).run(x)
        own, weight, output = {}, {}, {}
        for layer in self.layers:
            if layer.name not in outputs or layer.name not in rounded_weights:
                continue
            w = _at_point(layer, rounded_weights[layer.name])
            output[layer.name] = (w, outputs[layer.name])
            if own_ok:
                f = _at_point(layer, floats[layer.name])
                own[layer.name] = (f, outputs[layer.name])
                weight[layer.name] = (f, w)
        return Int8Outputs(
            outputs=outputs,
            own=own,
            weight=weight,
            output=output,
            tool_names={name: node.name for name, node in points.items()},
            # the layer's output point is a dequantize only where PT2E rounds it to int8
            output_quantized={
                name: str(node.target).startswith(_DEQUANTIZE) for name, node in points.items()
            },
            unmapped=unmapped,
            method="FX Interpreter over the PT2E converted q/dq graph (dequantized node outputs)",
            own_method=(
                "the layer's conv/linear node rerun with its reference weights on the same "
                "input; its weight/output split from the node's own result (int8 weights, "
                "float output)"
                if own_ok
                else None
            ),
        )

    def _pt2e_nodes(
        self, gm: torch.fx.GraphModule
    ) -> tuple[dict[str, torch.fx.Node], dict[torch.fx.Node, str], list[str]]:
        """Per canonical layer: the node holding its int8 output (the dequantize after its
        last compute node, if its output is quantized), and its conv/linear node."""
        owner = {m: layer.name for layer in self.layers for m in _owner_modules(layer)}
        last: dict[str, torch.fx.Node] = {}
        weighted: dict[torch.fx.Node, str] = {}
        unmapped: list[str] = []
        for node in gm.graph.nodes:
            if node.op != "call_function" or str(node.target).startswith((_QUANTIZE, _DEQUANTIZE)):
                continue
            name = owner.get(_module_of(node) or "")
            if name is None:
                if node.target in _WEIGHTED:
                    unmapped.append(f"{node.name} ({_module_of(node)})")
                continue
            last[name] = node
            if node.target in _WEIGHTED:
                weighted[node] = name
        return {name: _dequantized(node) for name, node in last.items()}, weighted, unmapped

    def _fx(self, gm: torch.fx.GraphModule, x: torch.Tensor) -> Int8Outputs:
        modules = dict(gm.named_modules())
        outputs: dict[str, np.ndarray] = {}
        quantized: dict[str, bool] = {}
        tool_names: dict[str, str] = {}

        def keep(name: str, y: torch.Tensor, tool: str) -> None:
            quantized[name], tool_names[name] = y.is_quantized, tool
            y = y.dequantize() if y.is_quantized else y
            outputs[name] = y.detach().float().numpy()

        handles = []
        for layer in self.layers:
            module = modules.get(layer.name)
            if module is not None:
                tool = type(module).__name__
                handles.append(
                    module.register_forward_hook(
                        lambda _m, _i, y, name=layer.name, tool=tool: keep(name, y, tool)
                    )
                )
        block_of = _fx_block_outputs(gm, [x.name for x in self.layers if x.kind == "block"])

        class Capture(torch.fx.Interpreter):  # runs call_module through the hooks above
            def run_node(self, n: torch.fx.Node) -> Any:
                result = super().run_node(n)
                if n in block_of:
                    keep(block_of[n], result, n.name)
                return result

        try:
            with torch.no_grad():
                Capture(gm).run(x)
        finally:
            for h in handles:
                h.remove()
        return Int8Outputs(
            outputs=outputs,
            tool_names=tool_names,
            output_quantized=quantized,
            method="forward hooks on the FX-converted quantized modules (outputs dequantized)",
        )

    # ------------------------------------------------------------ QAT reference
    def qat_float_model(self, trained: nn.Module, fp32: nn.Module) -> nn.Module | None:
        """The fine-tuned weights (and BatchNorm statistics) of the prepared QAT model in
        an eager fp32 model. The prepared graph keeps every tensor under its canonical
        name (PT2E, before and after conversion); None where it does not (FX fuses
        modules and renames them)."""
        state = trained.state_dict()
        names = list(self.fw.net.tensor_shapes())
        if any(name not in state for name in names):
            return None
        weights = {name: state[name].detach().cpu().numpy().copy() for name in names}
        return self.fw.build(weights).eval()

    # ------------------------------------------------------------ keep float
    def requantize_keeping_float(
        self,
        variant: str,
        fp32: nn.Module,
        float_layers: Sequence[str],
        inputs: RequantizeInputs,
    ) -> Int8Model:
        flow = _keeping_float(type(self.fw.flow), float_layers)
        if variant == "ptq":
            cpu = torch.device("cpu")
            model, _ = flow.ptq(fp32, [self.fw.normalize(b, cpu) for b in inputs.calibration])
            return model
        prepared = flow.prepare_qat(copy.deepcopy(fp32), self.fw.device)
        tuned, _ = inputs.fine_tune(prepared)
        model, _ = flow.convert_qat(tuned, self.fw.net.parameter_count())
        return model


def _fx_block_outputs(gm: torch.fx.GraphModule, blocks: list[str]) -> dict[torch.fx.Node, str]:
    """The FX graph's node holding each block's output (none has a module to hook, nor a
    module stack): ResNet's fused add+ReLU calls (quantized.add_relu), one a block; the
    ViT's adds are the position embedding's, then two residual adds a block, the second
    its output. In network order; none where the count does not fit."""
    relu_adds = [n for n in gm.graph.nodes if str(n.target) == "quantized.add_relu"]
    if len(relu_adds) == len(blocks):
        return dict(zip(relu_adds, blocks, strict=True))
    adds = [n for n in gm.graph.nodes if str(n.target) == "quantized.add"]
    if blocks and len(adds) == 1 + 2 * len(blocks):
        return dict(zip(adds[2::2], blocks, strict=True))
    return {}


def _folds_batch_norm(net: Network) -> bool:
    return not isinstance(net, ViTDef) and any(c.bn for c in net.convs())


def _at_point(layer: CanonicalLayer, y: torch.Tensor) -> np.ndarray:
    """A conv/linear node's result at the layer's compared output (after its ReLU)."""
    y = torch.relu(y) if layer.output == "relu" else y
    return y.detach().float().numpy()


def _dequantized(node: torch.fx.Node) -> torch.fx.Node:
    """The dequantize that reads ``node``'s quantized output, else ``node`` itself."""
    for user in node.users:
        if str(user.target).startswith(_QUANTIZE):
            for dq in user.users:
                if str(dq.target).startswith(_DEQUANTIZE):
                    return dq
    return node


def _keep_int8_input(xiq: Any, is_qat: bool, names: Sequence[str]) -> Any:
    """X86InductorQuantizer with ``names`` in float that still read the int8 activation.

    A module config of None leaves the layer's node unannotated, so nothing quantizes its
    input edge and the float layer reads the float tensor its producer made before any
    rounding (on an identity-shortcut block, the unrounded ReLU output). TFLite's float
    op reads the dequantized int8 tensor. Annotating the input edge alone (no weight, no
    output spec) gives PT2E the same: a quantize/dequantize pair on the input, fp32
    weights, float output (rounded again where an int8 consumer reads it).
    """
    from torchao.quantization.pt2e.quantizer import get_input_act_qspec

    config = xiq.get_default_x86_inductor_quantization_config(is_qat=is_qat)
    floats = set(names)

    class KeepInt8Input(xiq.X86InductorQuantizer):
        def annotate(self, model: torch.fx.GraphModule) -> torch.fx.GraphModule:
            model = super().annotate(model)
            for node in model.graph.nodes:
                if node.target in _WEIGHTED and _module_of(node) in floats:
                    node.meta[xiq.QUANT_ANNOTATION_KEY] = xiq._X86InductorQuantizationAnnotation(
                        input_qspec_map={node.args[0]: get_input_act_qspec(config)},
                        _annotated=True,
                    )
            return model

    q = KeepInt8Input().set_global(config)
    for name in names:
        q.set_module_name_qconfig(name, None)
    return q


def _keeping_float(flow_cls: type, float_layers: Sequence[str]) -> PT2EFlow | FXFlow:
    """The runner's flow with these modules left in float (their input still int8)."""
    names = list(float_layers)
    if flow_cls is PT2EFlow:

        class KeepFloatPT2E(PT2EFlow):
            def _quantizer(self, is_qat: bool):
                return _keep_int8_input(self._xiq, is_qat, names)

        return KeepFloatPT2E()

    class KeepFloatFX(FXFlow):
        @staticmethod
        def _quietly(fn: Any, *args: Any) -> Any:
            if fn.__name__ in ("prepare_fx", "prepare_qat_fx"):
                mapping = args[1]
                for name in names:
                    mapping = mapping.set_module_name(name, None)
                args = (args[0], mapping, *args[2:])
            return FXFlow._quietly(fn, *args)

    return KeepFloatFX()
