"""The harness's runtime rungs, one per ladder_reference slug, built as a study builds
them: the runner's model (``lower`` for a lowered rung, and the model it makes for each
batch size, ``Lowered.for_batch``, as the study's ladder does) beside a bare call of the
same runtime. bench_ladder measures them all in one process; ladder_reference builds one
of them in its fresh process, beside its own static build, so the two are timed in
turns under the same conditions.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness_contract.model.weights import initial_weights
from harness_contract.spec import ExperimentSpec
from harness_contract.study.framework import Lowered, RungInputs, RungUnavailable
from harness_contract.study.ladder import per_batch_models

CALIBRATION_BATCH = 32
Bare = Callable[[Any, np.ndarray], Callable[[], object]]  # model, images -> the plain call

# The study's order within each framework: each rung is measured before the next is made.
SLUGS = {
    "pytorch": [
        "eager-fp32",
        "inductor-fp32",
        "executorch-fp32",
        "onednn-int8",
        "inductor-int8",
        "executorch-int8",
    ],
    "tensorflow": ["keras-fp32", "litert-fp32", "litert-int8"],
}
NAMES = {
    "eager-fp32": "eager fp32",
    "inductor-fp32": "Inductor fp32",
    "executorch-fp32": "ExecuTorch fp32",
    "onednn-int8": "PT2E int8 on oneDNN",
    "inductor-int8": "PT2E int8 through Inductor",
    "executorch-int8": "ExecuTorch int8",
    "keras-fp32": "Keras fp32",
    "litert-fp32": "LiteRT fp32",
    "litert-int8": "LiteRT int8 (PTQ)",
}


def calibration_images() -> list[np.ndarray]:
    """The bench's calibration: four batches of 32 random images, seed 0."""
    rng = np.random.default_rng(0)
    shape = (CALIBRATION_BATCH, 32, 32, 3)
    return [rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(4)]


def timed_images(batch: int) -> np.ndarray:
    """The bench's images at this batch size."""
    return np.random.default_rng(batch).integers(0, 256, (batch, 32, 32, 3), dtype=np.uint8)


@dataclass
class Rung:
    framework: str
    runtime: str  # a slug of harness_contract.runtimes: the family speed-ups stay within
    precision: str
    slug: str  # its ladder_reference.py rung
    model: Any  # what the runner measures
    bare: Bare  # the same runtime, called directly
    compile_s: float | None = None
    # The model the runner makes for one batch size (Lowered.for_batch) and its seconds.
    per_batch: dict[int, Any] = field(default_factory=dict)
    per_batch_s: dict[int, float] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return NAMES[self.slug]

    def at(self, batch: int) -> Any:
        """What the study times at this batch size."""
        return self.per_batch.get(batch, self.model)


def set_up_runner(framework: str, spec: ExperimentSpec, threads: int) -> Any:
    """The framework's runner, set up (threads, seeds) as a study sets it up."""
    if framework == "pytorch":
        from torch_runner.runner import TorchFramework

        fw: Any = TorchFramework()
    else:
        import tf_runner  # noqa: F401 - TF_USE_LEGACY_KERAS before TensorFlow loads
        from tf_runner.runner import TFFramework

        fw = TFFramework()
    fw.setup(spec, threads)
    return fw


class RungMaker:
    """Builds the harness's rung for a slug with a set-up runner (``fw``), from the bench's
    initial weights; the float and PTQ models are made once and shared by their rungs."""

    def __init__(self, framework: str, fw: Any, spec: ExperimentSpec, batches: Sequence[int]):
        self.framework, self.fw, self.spec, self.batches = framework, fw, spec, list(batches)
        self.calibration = calibration_images()
        self._float: Any = None
        self._int8: Any = None
        self.bares = _pytorch_bares(fw) if framework == "pytorch" else _tensorflow_bares(fw)

    @property
    def float_model(self) -> Any:
        if self._float is None:
            built = self.fw.build(initial_weights(self.spec.model, self.spec.seed))
            self._float = built.eval() if self.framework == "pytorch" else built
        return self._float

    @property
    def int8_model(self) -> Any:
        if self._int8 is None:
            self._int8 = self.fw.quantize_ptq(self.float_model, self.calibration).model
        return self._int8

    def make(self, slug: str) -> Rung:
        """The rung, lowered by the runner when its runtime lowers; raises RungUnavailable
        where the runner cannot make it here."""
        runtime, precision = slug.rsplit("-", 1)
        model = self.float_model if precision == "fp32" else self.int8_model
        labels = {"framework": self.framework, "precision": precision, "slug": slug}
        if runtime in ("eager", "keras", "onednn"):  # the runner's own model, not lowered
            # oneDNN int8 is PyTorch's eager runtime running the PT2E int8 model.
            family = "eager" if runtime == "onednn" else runtime
            return Rung(runtime=family, model=model, bare=self.bares["module"], **labels)
        if runtime == "litert" and precision == "int8":  # PTQ converts straight to .tflite
            return Rung(runtime=runtime, model=model, bare=self.bares["litert"], **labels)
        inputs = RungInputs(
            variant="baseline" if precision == "fp32" else "ptq",
            model=model,
            fp32=self.float_model,
            calibration=self.calibration if precision == "int8" else [],
            fine_tune=lambda m: (m, None),
            # Calibration batches (32 images) pass through the exported program too.
            max_batch=max([*self.batches, CALIBRATION_BATCH]),
        )
        lowered: Lowered = self.fw.lower(runtime, inputs)
        models, seconds = per_batch_models(lowered, self.batches)
        return Rung(
            runtime=runtime,
            model=lowered.model,
            bare=self.bares[runtime],
            compile_s=lowered.compile_s,
            per_batch=models,
            per_batch_s=seconds,
            **labels,
        )


def _tensorflow_bares(fw: Any) -> dict[str, Bare]:
    import tensorflow as tf

    def keras(model: Any, images: np.ndarray) -> Callable[[], object]:
        forward = tf.function(lambda t: model(t, training=False))
        x = tf.constant(fw.normalize.numpy(images))
        return lambda: forward(x).numpy()

    def litert(model: Any, images: np.ndarray) -> Callable[[], object]:
        from ai_edge_litert.interpreter import Interpreter

        interp = Interpreter(model_content=model.tflite, num_threads=fw.threads)
        detail = interp.get_input_details()[0]
        interp.resize_tensor_input(detail["index"], [len(images), 32, 32, 3])
        interp.allocate_tensors()
        x = fw.normalize.numpy(images)
        if detail["dtype"] == np.int8:
            scale, zero = detail["quantization"]
            x = np.clip(np.round(x / scale + zero), -128, 127).astype(np.int8)
        interp.set_tensor(detail["index"], x)
        return interp.invoke

    return {"module": keras, "litert": litert}


def _pytorch_bares(fw: Any) -> dict[str, Bare]:
    import torch

    def module(model: Any, images: np.ndarray) -> Callable[[], object]:
        x = fw.normalize(images, torch.device("cpu"))
        net = model.runnable if hasattr(model, "runnable") else model  # an Int8Model
        return torch.no_grad()(lambda: net(x))

    def inductor(model: Any, images: np.ndarray) -> Callable[[], object]:
        """The static compile the runner made for this batch, called directly: no
        recompile stance, no chunking."""
        x = fw.normalize(images, torch.device("cpu"))
        return torch.no_grad()(lambda: model.compiled(x))

    methods: dict[int, Any] = {}

    def executorch(model: Any, images: np.ndarray) -> Callable[[], object]:
        """The .pte the runner saves, loaded by the ExecuTorch runtime, executed directly."""
        from executorch.runtime import Runtime

        if id(model) not in methods:
            saved = fw.save(model, Path(tempfile.mkdtemp(prefix="bench-ladder-")), "bare")
            pte = next(p for p in saved.files if p.suffix == ".pte")
            methods[id(model)] = Runtime.get().load_program(pte).load_method("forward")
        x = fw.normalize(images, torch.device("cpu")).contiguous()
        return lambda: methods[id(model)].execute([x])

    return {"module": module, "inductor": inductor, "executorch": executorch}


__all__ = ["RungMaker", "RungUnavailable", "Rung", "SLUGS", "set_up_runner", "timed_images"]
