"""TensorFlow behind the shared Framework surface: the pipeline calls these, nothing else."""

from __future__ import annotations

import contextlib
import importlib.metadata
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
import tf_keras as keras

from harness_contract.errors import HarnessError
from harness_contract.fs.atomic import write_bytes_atomic, write_via_temp
from harness_contract.metrics.census import OpCensus
from harness_contract.metrics.figures import SizeStats
from harness_contract.model.network import network
from harness_contract.spec import ExperimentSpec, OptimSpec, ProfileSpec
from harness_contract.study.framework import (
    DeviceInfo,
    Framework,
    Lowered,
    ProfileCapture,
    ProfilerUnavailable,
    Quantized,
    RungInputs,
    RungUnavailable,
    Saved,
    ThreadsUnsupported,
    Trainer,
)
from harness_contract.study.ladder import wanted_runtimes

from . import census, litert, quantize
from . import profile as tf_profile
from .litert import TFLiteModel, interpreter_class
from .model import build_model, keras_to_canonical
from .tensors import Normalizer
from .train import SGDTrainer

log = logging.getLogger("harness.tf_runner")

CPU, GPU = "/CPU:0", "/GPU:0"
# Ops run one at a time, each on up to `threads` cores: the same budget PyTorch eager gets
# from torch.set_num_threads, rather than TensorFlow's default of threads x concurrent ops.
INTER_OP_THREADS = 1
_FORWARD_SIGNATURE = (tf.TensorSpec([None, 32, 32, 3], tf.float32),)


class TFFramework(Framework):
    name = "tensorflow"
    probes_module = "tf_runner.probes"

    def __init__(self) -> None:
        # One traced inference function per Keras model run (in a study, the fp32 baseline),
        # keyed by id and holding the model so the id cannot be reused.
        self._forwards: dict[int, tuple[keras.Model, Callable[[tf.Tensor], tf.Tensor]]] = {}
        # The fp32 .tflite of a Keras model and its conversion seconds, converted once:
        # the baseline's size figure and its LiteRT rung share it.
        self._fp32_tflite: dict[int, tuple[keras.Model, TFLiteModel, float]] = {}

    def versions(self) -> dict[str, str]:
        import h5py
        import tensorflow_model_optimization as tfmot

        try:
            litert = importlib.metadata.version("ai-edge-litert")
        except importlib.metadata.PackageNotFoundError:
            litert = "not installed"
        return {
            "tensorflow": tf.__version__,
            "tf_keras": keras.__version__,
            "tensorflow_model_optimization": tfmot.__version__,
            "ai_edge_litert": litert,
            "tflite_interpreter": interpreter_class()[1],
            "numpy": np.__version__,
            # Writes the Keras .h5 weights file, byte for byte.
            "h5py": f"{h5py.__version__} (HDF5 {h5py.version.hdf5_version})",
        }

    def setup(self, spec: ExperimentSpec, threads: int) -> DeviceInfo:
        self.spec, self.threads = spec, threads
        self.thread_note = self._fix_threads(threads)
        keras.utils.set_random_seed(spec.seed)  # Python's random, numpy's and TensorFlow's
        self.net = network(spec.model)
        self.normalize = Normalizer(spec.data.mean, spec.data.std)
        self.device = self._pick_device(spec.device)
        if self.device == CPU:
            return DeviceInfo(train_device="cpu")
        gpu = tf.config.list_physical_devices("GPU")[0]
        build = tf.sysconfig.get_build_info()
        return DeviceInfo(
            train_device="cuda:0",
            gpu=tf.config.experimental.get_device_details(gpu).get("device_name"),
            cuda=build.get("cuda_version"),
            cudnn=build.get("cudnn_version"),
        )

    def determinism(self, enabled: bool) -> dict[str, str]:
        # Op determinism is a process-wide flag with no public way to read or clear it.
        from tensorflow.python.framework import config as tf_config

        if enabled:
            os.environ["TF_DETERMINISTIC_OPS"] = "1"  # what older kernels still read
            tf.config.experimental.enable_op_determinism()
        elif tf_config.is_op_determinism_enabled():  # an earlier study in this process
            tf_config.disable_op_determinism()
        return {
            "seed": f"{self.spec.seed} (tf_keras.utils.set_random_seed: random, numpy, tf)",
            "tf.config.experimental.enable_op_determinism": str(
                tf_config.is_op_determinism_enabled()
            ),
            "TF_DETERMINISTIC_OPS": os.environ.get("TF_DETERMINISTIC_OPS", "unset"),
            # oneDNN's fused CPU kernels round differently from the Eigen ones; read when
            # TensorFlow loads (unset: on, on x86 Linux).
            "TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "unset"),
            "inter_op_threads": str(INTER_OP_THREADS),
        }

    @staticmethod
    def _fix_threads(threads: int) -> str | None:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(INTER_OP_THREADS)
        except RuntimeError:  # the runtime already started in this process (in-process tests)
            intra = tf.config.threading.get_intra_op_parallelism_threads()
            if intra != threads:
                log.warning(
                    "TensorFlow was already initialized with %s intra-op threads; "
                    "cannot change it to %s",
                    intra or "default",
                    threads,
                )
                return (
                    f"TensorFlow's runtime was already initialized: intra-op threads stayed "
                    f"at {intra or 'the default'}, not {threads}"
                )
        return None

    @staticmethod
    def _pick_device(requested: str) -> str:
        gpus = tf.config.list_physical_devices("GPU")
        if requested == "cuda" and not gpus:
            raise HarnessError(
                "the spec asks for device 'cuda' but TensorFlow sees no GPU",
                "use --device cpu (or auto), or run on a machine with a GPU and "
                "TensorFlow's CUDA build (tensorflow-cpu has none)",
            )
        if not gpus or requested == "cpu":
            return CPU
        # Allocate as needed, so the peak-memory figure means something. (Refused once the
        # runtime has started, as in tests that already ran TensorFlow.)
        with contextlib.suppress(RuntimeError):
            tf.config.experimental.set_memory_growth(gpus[0], True)
        return GPU

    # ------------------------------------------------------------ fp32
    def build(self, weights: dict[str, np.ndarray] | None) -> keras.Model:
        with tf.device(self.device):
            return build_model(self.net, weights)

    def layer_probe(self) -> Any:
        """Per-layer quantization error (harness_contract.layers.analysis) for this runner."""
        from .layers import TFLayerProbe

        return TFLayerProbe(self)

    def weights_of(self, model: keras.Model) -> dict[str, np.ndarray]:
        return keras_to_canonical(model, self.net)

    def trainer(self, model: keras.Model, optim: OptimSpec) -> Trainer:
        return SGDTrainer(model, optim, self.normalize, self.device)

    def device_of(self, model: Any) -> str:
        if isinstance(model, TFLiteModel):
            return "cpu"
        return "cuda:0" if self.device == GPU else "cpu"

    def _forward(self, model: keras.Model) -> Callable[[tf.Tensor], tf.Tensor]:
        if id(model) not in self._forwards:
            device = self.device

            def forward(x: tf.Tensor) -> tf.Tensor:
                with tf.device(device):  # traced in, so a call needs no device scope
                    return model(x, training=False)

            fn = tf.function(forward, input_signature=_FORWARD_SIGNATURE)
            self._forwards[id(model)] = (model, fn)
        return self._forwards[id(model)][1]

    def _prepared(self, images: np.ndarray) -> tf.Tensor:
        return self.normalize(images, self.device)

    def predict(self, model: Any, images: np.ndarray) -> np.ndarray:
        if isinstance(model, TFLiteModel):
            return model.run(self.normalize.numpy(images))
        return self._forward(model)(self._prepared(images)).numpy()

    # ------------------------------------------------------------ int8
    def quantize_ptq(self, model: keras.Model, calibration: Sequence[np.ndarray]) -> Quantized:
        batches = [self.normalize.numpy(b) for b in calibration]
        int8, stats = quantize.ptq(model, batches, self.threads)
        return Quantized(int8, stats)

    def prepare_qat(self, model: keras.Model) -> keras.Model:
        return quantize.prepare_qat(model, self.device, self.spec.tensorflow.qat_flow)

    def convert_qat(self, model: keras.Model) -> Quantized:
        int8, stats = quantize.convert_qat(
            model, self.net.parameter_count(), self.threads, self.spec.tensorflow.qat_flow
        )
        return Quantized(int8, stats)

    def op_census(self, model: Any) -> OpCensus | None:
        if isinstance(model, TFLiteModel):
            return census.tflite_census(model.tflite, self.net)
        return census.keras_census(model)

    # ------------------------------------------------------------ runtime ladder
    def lower(self, runtime: str, inputs: RungInputs) -> Lowered:
        """The baseline as an fp32 .tflite on LiteRT: the runtime TensorFlow's int8 models
        run on, so LiteRT int8 over LiteRT fp32 is a like-for-like speed-up."""
        if runtime != "litert" or inputs.variant != "baseline":
            raise RungUnavailable(
                f"the TensorFlow runner has no {runtime} rung for {inputs.variant}",
                "ask for tensorflow.runtimes = ['litert'] (the baseline's fp32 rung only)",
            )
        model, seconds = self._litert(inputs.model)
        return Lowered(
            model,
            compile_s=seconds,
            ops=census.tflite_census(model.tflite, self.net),
            notes=[
                f"the fp32 Keras model converted to a .tflite (float input and output, "
                f"{seconds:.2f} s) and run by the LiteRT interpreter ({interpreter_class()[1]}) "
                f"on cpu with num_threads={self.threads}; one interpreter per batch size, its "
                f"input resized to that batch and its tensors allocated before timing (what a "
                f"user serving that batch runs: benchmarks/bench_ladder.py compares it with a "
                f".tflite converted for that batch alone)",
            ],
        )

    def _litert(self, model: keras.Model) -> tuple[TFLiteModel, float]:
        if id(model) not in self._fp32_tflite:
            self._fp32_tflite[id(model)] = (model, *litert.fp32_tflite(model, self.threads))
        _, lowered, seconds = self._fp32_tflite[id(model)]
        return lowered, seconds

    def _litert_rung_saves_fp32_tflite(self) -> bool:
        return "litert" in self.rungs("baseline") and "litert" in wanted_runtimes(
            self.spec, self.name
        )

    # ------------------------------------------------------------ measurement
    def save(self, model: Any, directory: Path, stem: str) -> Saved:
        """A .tflite model (int8, or fp32 on LiteRT): its file. Keras fp32: the weights file,
        plus the fp32 .tflite's size, and the .tflite itself unless the LiteRT rung (which
        saves that same model) runs."""
        if isinstance(model, TFLiteModel):
            path = directory / f"{stem}.tflite"
            write_bytes_atomic(path, model.tflite)
            size = SizeStats(
                bytes=path.stat().st_size,
                format="tflite",
                file=path.name,
                parameters=model.parameters,
            )
            return Saved(size, (path,))
        path = directory / f"{stem}.weights.h5"
        write_via_temp(path, lambda tmp: model.save_weights(str(tmp)))  # whole or not at all
        files = [path]
        tflite = self._litert(model)[0].tflite
        if not self._litert_rung_saves_fp32_tflite():
            files.append(directory / f"{stem}.tflite")
            write_bytes_atomic(files[-1], tflite)
        size = SizeStats(
            bytes=path.stat().st_size,
            format="keras_weights_h5",
            file=path.name,
            parameters=self.net.parameter_count(),
            other_formats={"tflite_fp32": len(tflite)},
        )
        return Saved(size, tuple(files))

    def latency_call(self, model: Any, images: np.ndarray) -> tuple[Callable[[], object], str]:
        if isinstance(model, TFLiteModel):
            # Input quantized and set beforehand: the timed call is only invoke().
            return model.prepared(self.normalize.numpy(images)).invoke, "cpu"
        forward, x = self._forward(model), self._prepared(images)

        def call() -> None:
            # Reading the (batch, 10) logits waits for the device; the copy is negligible.
            forward(x).numpy()

        return call, self.device_of(model)

    @contextlib.contextmanager
    def threads_for(self, model: Any, threads: int) -> Iterator[None]:
        if not isinstance(model, TFLiteModel):
            raise ThreadsUnsupported(
                f"TensorFlow fixes its intra-op thread pool ({self.threads} threads here) when "
                f"its runtime starts; it cannot be changed in this process"
            )
        with model.using_threads(threads):  # a LiteRT interpreter with num_threads=threads
            yield

    def region(self, name: str) -> contextlib.AbstractContextManager[None]:
        return tf.profiler.experimental.Trace(name)

    def profile(
        self,
        model: Any,
        work: Callable[[int], object],
        schedule: ProfileSpec,
        trace_dir: Path,
        name: str,
    ) -> ProfileCapture:
        if isinstance(model, TFLiteModel):
            raise ProfilerUnavailable(tf_profile.LITERT_NO_OP_PROFILER)
        return tf_profile.run_profile(work, schedule, trace_dir, name, self.device_of(model))

    def reset_peak_gpu(self) -> None:
        if self.device == GPU:
            tf.config.experimental.reset_memory_stats("GPU:0")

    def peak_gpu_bytes(self) -> int | None:
        if self.device != GPU:
            return None
        return int(tf.config.experimental.get_memory_info("GPU:0")["peak"])

    def variant_notes(self, variant: str, device: DeviceInfo) -> list[str]:
        notes = [
            f"TensorFlow intra-op threads {self.threads}, inter-op threads "
            f"{INTER_OP_THREADS}: ops run one at a time, each on up to {self.threads} cores"
        ]
        if self.thread_note:
            notes.append(self.thread_note)
        if variant == "baseline":
            where = (
                "saved by its LiteRT rung"
                if self._litert_rung_saves_fp32_tflite()
                else "saved beside the weights"
            )
            notes.append(
                f"size is the Keras weights file (HDF5); the same fp32 model as a .tflite "
                f"({where}) is in size.other_formats['tflite_fp32']"
            )
            return notes
        notes.append(
            f"int8 inference ran through the LiteRT interpreter "
            f"({interpreter_class()[1]}) on cpu with num_threads={self.threads}: "
            f"TensorFlow cannot run an int8 .tflite natively"
        )
        if variant == "qat":
            notes.append(quantize.QAT_FLOW_NOTES[self.spec.tensorflow.qat_flow])
            notes.append(
                "tfmot starts each activation range at [-6, 6] and moves it 0.1% of the way to "
                "the observed range per training step (EMA decay 0.999; PyTorch's observers "
                "start from the first batch): a short QAT run keeps ranges near [-6, 6]"
            )
        if variant == "ptq":
            notes.append(
                "TFLite calibrates inside convert(): calibration_s runs from the start "
                "of convert() until the representative dataset is exhausted, "
                "conversion_s is the quantization after it"
            )
        notes.append(
            "converted with experimental_lower_to_saved_model=False (skips a SavedModel "
            "round trip that only adds signature metadata; same kernels and outputs)"
        )
        if device.train_device != "cpu":
            notes.append(
                f"training ran on {device.train_device}; this variant's accuracy and "
                f"latency were taken on cpu"
            )
        return notes
