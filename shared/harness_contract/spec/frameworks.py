"""The spec's per-framework sections (quantization flow, which runtime rungs to measure)
and the support probes. Validated like every other section: unknown keys are errors."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from harness_contract.spec.base import Section


def no_repeats(values: list[str]) -> list[str]:
    repeated = sorted({v for v in values if values.count(v) > 1})
    if repeated:
        raise ValueError(f"lists {', '.join(repeated)} more than once")
    return values


class PyTorchSpec(Section):
    # "pt2e": torch.export + torchao prepare/convert_pt2e with X86InductorQuantizer,
    # lowered to oneDNN int8 kernels. "fx": the legacy torch.ao.quantization FX flow
    # (what the paper used).
    quant_flow: Literal["pt2e", "fx"] = "pt2e"
    # Runtimes measured beside eager (where each variant's own figures come from):
    # "inductor" (torch.compile with freezing; int8 from the converted PT2E graph) and
    # "executorch" (XNNPACK .pte, PT2E with XNNPACKQuantizer). [] measures eager only.
    runtimes: list[Literal["inductor", "executorch"]] = ["inductor", "executorch"]

    _unique = field_validator("runtimes")(no_repeats)


QatFlow = Literal["whole_model", "dense_only"]  # tensorflow.qat_flow's values


class TensorFlowSpec(Section):
    # Runtimes measured beside the primary ones: "litert" runs the fp32 model as a
    # .tflite too (int8 models always run on LiteRT: TensorFlow cannot run them natively).
    runtimes: list[Literal["litert"]] = ["litert"]
    # What tfmot fake-quantizes for QAT. "whole_model": quantize_model on every layer
    # (tfmot's own flow; it refuses the ViT, recorded as unsupported). "dense_only": only
    # the Dense and Conv2D layers and the outputs feeding them, so LayerNorm, softmax and
    # the attention matmuls train (and stay) float; converted the same way either way.
    qat_flow: QatFlow = "whole_model"

    _unique = field_validator("runtimes")(no_repeats)


class SupportSpec(Section):
    # Probe each capability of the paper's Table IV at the installed versions (support.md).
    enabled: bool = True
    # Each probe is stopped after this long and recorded as timed out.
    timeout_s: float = Field(60.0, gt=0, le=3600)
