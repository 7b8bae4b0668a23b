"""The frameworks the harness runs, in one table: each one's name, display names, runner
module, the versions its runner was tested with, and its runtime ladder (every deployable
runtime, where each variant's own figures are taken, and its rungs). Every other place
reads this table; adding a framework is one entry here plus its runner and its image.

Import-light on purpose: the host reads it without any framework installed, and a
runner's ``__main__`` checks versions from it before importing its framework.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness_contract.errors import HarnessError


@dataclass(frozen=True)
class Pin:
    package: str
    version: str
    # False: tested and installed by the extra, but the runner works without it (a
    # fallback or an optional feature), so a runner does not refuse to start over it.
    required: bool = True
    # Other distribution names the same import ships under.
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Runtime:
    slug: str  # as in metrics.json and the spec's `<framework>.runtimes`
    framework: str
    label: str
    # A flatbuffer program run by XNNPACK (ExecuTorch .pte, LiteRT .tflite): the paper's
    # resource-constrained setting, where both frameworks land on the same kernels.
    edge: bool = False


@dataclass(frozen=True, eq=False)
class Framework:
    name: str  # as on the command line, in the spec and in run directories
    display: str  # in report titles and tables
    short: str  # in figure legends
    runner_module: str  # run as `python -m <runner_module> --spec --data --out`
    pins: tuple[Pin, ...]  # what the runner was tested with (docs/versions.md)
    runtimes: tuple[Runtime, ...]  # the ladder, in order
    # Where each variant's own figures are taken, and its rungs beyond that runtime in
    # ladder order (the spec's `<framework>.runtimes` chooses among them).
    primary: dict[str, str]
    rungs: dict[str, tuple[str, ...]]

    @property
    def install_hint(self) -> str:
        return f"pip install -e '.[{self.name}]'"


FRAMEWORKS: dict[str, Framework] = {
    "pytorch": Framework(
        name="pytorch",
        display="PyTorch",
        short="PT",
        runner_module="torch_runner",
        pins=(
            Pin("torch", "2.13.0"),
            Pin("torchao", "0.18.0"),
            # The ExecuTorch rung (XNNPACK .pte); without it that rung is recorded unavailable.
            Pin("executorch", "1.5.1", required=False),
        ),
        runtimes=(
            Runtime("eager", "pytorch", "PyTorch eager"),
            Runtime("inductor", "pytorch", "torch.compile (Inductor, freezing)"),
            Runtime("executorch", "pytorch", "ExecuTorch (XNNPACK .pte)", edge=True),
        ),
        # Every variant runs eagerly: the converted PT2E graph lowered onto oneDNN int8
        # kernels, or the FX flow's quantized modules.
        primary={"baseline": "eager", "ptq": "eager", "qat": "eager"},
        rungs={
            "baseline": ("inductor", "executorch"),
            "ptq": ("inductor", "executorch"),
            "qat": ("inductor", "executorch"),
        },
    ),
    "tensorflow": Framework(
        name="tensorflow",
        display="TensorFlow",
        short="TF",
        runner_module="tf_runner",
        pins=(
            Pin(
                "tensorflow",
                "2.21.0",
                aliases=("tensorflow-cpu", "tensorflow-intel", "tensorflow-macos"),
            ),
            Pin("tf-keras", "2.21.0"),
            Pin("tensorflow-model-optimization", "0.8.1"),
            Pin("ai-edge-litert", "2.3.0", required=False),  # falls back to tf.lite.Interpreter
            Pin("tensorboard-plugin-profile", "2.22.1", required=False),  # op tables of traces
            Pin("tensorboard", "2.21.0", required=False),  # opens traces (`harness traces`)
        ),
        runtimes=(
            Runtime("keras", "tensorflow", "Keras (tf.function)"),
            Runtime("litert", "tensorflow", "LiteRT (XNNPACK .tflite)", edge=True),
        ),
        # TensorFlow cannot run an int8 .tflite natively: its int8 variants live on LiteRT.
        primary={"baseline": "keras", "ptq": "litert", "qat": "litert"},
        rungs={"baseline": ("litert",), "ptq": (), "qat": ()},
    ),
}
ALL_FRAMEWORKS = ",".join(FRAMEWORKS)  # the default of --frameworks, in the paper's order


def get_framework(name: str) -> Framework:
    try:
        return FRAMEWORKS[name.lower()]
    except KeyError:
        raise HarnessError(
            f"unknown framework '{name}'", f"use one of: {', '.join(FRAMEWORKS)}"
        ) from None


def parse_frameworks(text: str) -> list[Framework]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise HarnessError("no framework given", f"use one or more of: {', '.join(FRAMEWORKS)}")
    return [get_framework(n) for n in dict.fromkeys(names)]


def display_name(name: str) -> str:
    """ "PyTorch" for "pytorch"; a name not in the table (a newer run's) as it is."""
    return FRAMEWORKS[name].display if name in FRAMEWORKS else name


def short_name(name: str) -> str:
    return FRAMEWORKS[name].short if name in FRAMEWORKS else name
