"""The runtime ladder: every deployable runtime a framework's models are measured on.

Each variant has one *primary* runtime, where its own figures (accuracy, size, latency)
are taken, and may have *rungs*: the same variant run on another runtime, measured the
same way. Speed-ups are only ever computed between two rows of one runtime (int8 on
LiteRT over fp32 on LiteRT, PT2E int8 through Inductor over fp32 through Inductor);
a change of runtime is never presented as a quantization speed-up.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Runtime:
    slug: str  # as in metrics.json and the spec's `<framework>.runtimes`
    framework: str
    label: str
    # A flatbuffer program run by XNNPACK (ExecuTorch .pte, LiteRT .tflite): the paper's
    # resource-constrained setting, where both frameworks land on the same kernels.
    edge: bool = False


RUNTIMES: dict[str, tuple[Runtime, ...]] = {
    "pytorch": (
        Runtime("eager", "pytorch", "PyTorch eager"),
        Runtime("inductor", "pytorch", "torch.compile (Inductor, freezing)"),
        Runtime("executorch", "pytorch", "ExecuTorch (XNNPACK .pte)", edge=True),
    ),
    "tensorflow": (
        Runtime("keras", "tensorflow", "Keras (tf.function)"),
        Runtime("litert", "tensorflow", "LiteRT (XNNPACK .tflite)", edge=True),
    ),
}

# Where each variant's own figures are taken. TensorFlow cannot run an int8 .tflite
# natively, so its int8 variants live on LiteRT; PyTorch's run eagerly (the converted
# PT2E graph lowered onto oneDNN int8 kernels, or the FX flow's quantized modules).
PRIMARY: dict[str, dict[str, str]] = {
    "pytorch": {"baseline": "eager", "ptq": "eager", "qat": "eager"},
    "tensorflow": {"baseline": "keras", "ptq": "litert", "qat": "litert"},
}

# The rungs beyond the primary one, per variant, in ladder order; the spec's
# `<framework>.runtimes` chooses among them.
RUNGS: dict[str, dict[str, tuple[str, ...]]] = {
    "pytorch": {
        "baseline": ("inductor", "executorch"),
        "ptq": ("inductor", "executorch"),
        "qat": ("inductor", "executorch"),
    },
    "tensorflow": {"baseline": ("litert",), "ptq": (), "qat": ()},
}


def runtime(framework: str, slug: str) -> Runtime:
    """The runtime named ``slug``; an unknown one (a newer metrics file) gets a plain label."""
    for r in RUNTIMES.get(framework, ()):
        if r.slug == slug:
            return r
    return Runtime(slug, framework, slug)


def optional_runtimes(framework: str) -> tuple[str, ...]:
    """The runtimes a spec may switch on or off for ``framework`` (every rung slug)."""
    seen = dict.fromkeys(s for rungs in RUNGS.get(framework, {}).values() for s in rungs)
    return tuple(seen)


def label(framework: str, slug: str | None) -> str:
    return "—" if slug is None else runtime(framework, slug).label
