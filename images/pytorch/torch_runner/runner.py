"""PyTorch behind the shared Framework surface: the pipeline calls these, nothing else."""

from __future__ import annotations

import contextlib
import copy
import importlib.metadata
import os
import random
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

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
    Quantized,
    RungInputs,
    RungUnavailable,
    Saved,
    ThreadsUnsupported,
    Trainer,
)

from . import census, executorch, inductor
from .executorch import EdgeModel
from .inductor import CompiledModel
from .model import build_model
from .profile import run_profile
from .quantize import FLOWS, Int8Model, PT2EFlow
from .tensors import Normalizer
from .train import SGDTrainer

CPU = torch.device("cpu")
# cuBLAS picks reduction orders per call unless its workspace is fixed (NVIDIA's advice
# for reproducible GEMMs); read when cuBLAS starts, before the first matmul.
CUBLAS_WORKSPACE = ":4096:8"


def _bundled_versions() -> dict[str, str]:
    """The math libraries torch was built with (they decide the bits of fp32 and int8
    kernels), as torch reports them."""
    config = torch.__config__.show()
    found = {
        "onednn": re.search(r"MKL-DNN v([\w.]+)", config),
        "mkl": re.search(r"Math Kernel Library Version ([\w.]+)", config),
    }
    return {name: m.group(1) for name, m in found.items() if m}


def _reproducible(program: torch.export.ExportedProgram) -> torch.export.ExportedProgram:
    """Drop each node's ``from_node`` provenance before saving: it names the graphs the
    node passed through by their ids in this process (memory addresses), so the .pt2 of a
    converted int8 graph would differ from run to run with identical weights and ops."""
    for node in program.graph.nodes:
        node.meta.pop("from_node", None)
    return program


@contextlib.contextmanager
def _release_version_recorded() -> Iterator[None]:
    """torch.export.save writes ``torch.__version__`` into the archive (and the archive's
    serialization id follows from its bytes). With the wheel's build label in it, the CPU
    and CUDA wheels of one release (2.13.0+cpu, 2.13.0+cu130) save the same program as
    different files. The archive records the release; provenance keeps the full label."""
    full = torch.__version__
    torch.__version__ = torch.torch_version.TorchVersion(str(full).split("+")[0])
    try:
        yield
    finally:
        torch.__version__ = full


class TorchFramework(Framework):
    name = "pytorch"
    probes_module = "torch_runner.probes"

    def versions(self) -> dict[str, str]:
        out = {"torch": torch.__version__, "numpy": np.__version__}
        for package in ("torchao", "executorch"):
            with contextlib.suppress(importlib.metadata.PackageNotFoundError):
                out[package] = importlib.metadata.version(package)
        return out | _bundled_versions()

    def setup(self, spec: ExperimentSpec, threads: int) -> DeviceInfo:
        torch.set_num_threads(threads)
        self.threads = threads
        inductor.cold_cache()  # this process's own Inductor cache: compiles are cold
        # Every generator anything in this process might draw from (augmentation and
        # the shared weights draw from their own seeded numpy generators).
        random.seed(spec.seed)
        np.random.seed(spec.seed)
        torch.manual_seed(spec.seed)  # CPU and every CUDA device
        self.spec = spec
        self.net = network(spec.model)
        self.normalize = Normalizer(spec.data.mean, spec.data.std)
        self.flow = FLOWS[spec.pytorch.quant_flow]()
        self.device = self._pick_device(spec.device)
        if self.device.type != "cuda":
            return DeviceInfo(train_device="cpu")
        props = torch.cuda.get_device_properties(self.device)
        return DeviceInfo(
            train_device=str(self.device),
            gpu=props.name,
            cuda=torch.version.cuda,
            cudnn=str(torch.backends.cudnn.version()),
        )

    def determinism(self, enabled: bool) -> dict[str, str]:
        cuda = self.device.type == "cuda"
        if enabled and cuda:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
        # warn_only: an op without a deterministic kernel (some CUDA backward passes) warns
        # in runner.log instead of failing its phase; on CPU our ops have one.
        torch.use_deterministic_algorithms(enabled, warn_only=True)
        # Filling every torch.empty with NaN guards against reading uninitialized memory,
        # which no kernel here does; it would only slow the timed forward passes.
        torch.utils.deterministic.fill_uninitialized_memory = False
        torch.backends.cudnn.deterministic = enabled
        if enabled:
            torch.backends.cudnn.benchmark = False  # autotuning may pick another algorithm
        return {
            "seed": f"{self.spec.seed} (random, numpy.random, torch.manual_seed)",
            "torch.use_deterministic_algorithms": str(torch.are_deterministic_algorithms_enabled()),
            "warn_only": str(torch.is_deterministic_algorithms_warn_only_enabled()),
            "torch.utils.deterministic.fill_uninitialized_memory": str(
                torch.utils.deterministic.fill_uninitialized_memory
            ),
            "torch.backends.cudnn.deterministic": str(torch.backends.cudnn.deterministic),
            "torch.backends.cudnn.benchmark": str(torch.backends.cudnn.benchmark),
            "CUBLAS_WORKSPACE_CONFIG": os.environ.get("CUBLAS_WORKSPACE_CONFIG", "unset"),
            # The ISA torch's CPU kernels were dispatched for (ATEN_CPU_CAPABILITY can
            # force one): another ISA, other vector widths, other rounding.
            "torch.backends.cpu.get_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        }

    @staticmethod
    def _pick_device(requested: str) -> torch.device:
        has_cuda = torch.cuda.is_available()
        if requested == "cuda" and not has_cuda:
            raise HarnessError(
                "the spec asks for device 'cuda' but PyTorch sees no CUDA GPU",
                "use --device cpu (or auto), or run on a machine with CUDA",
            )
        return torch.device("cuda:0") if requested != "cpu" and has_cuda else CPU

    # ------------------------------------------------------------ fp32
    def build(self, weights: dict[str, np.ndarray] | None) -> nn.Module:
        return build_model(self.net, weights).to(self.device)

    def trainer(self, model: nn.Module, optim: OptimSpec) -> Trainer:
        return SGDTrainer(model, optim, self.normalize, self.device)

    def layer_probe(self) -> Any:
        """Per-layer quantization error (harness_contract.layers.analysis) for this runner."""
        from .layers import TorchLayerProbe

        return TorchLayerProbe(self)

    def weights_of(self, model: nn.Module) -> dict[str, np.ndarray]:
        # Module names mirror the canonical tensor names (model.py); PyTorch keeps OIHW.
        state = model.state_dict()
        return {
            name: state[name].detach().cpu().numpy().copy() for name in self.net.tensor_shapes()
        }

    def device_of(self, model: Any) -> str:
        if isinstance(model, (Int8Model, CompiledModel, EdgeModel)):
            return "cpu"
        return str(next(model.parameters()).device)

    def _runnable(self, model: Any) -> tuple[Callable[[torch.Tensor], Any], torch.device]:
        if isinstance(model, Int8Model):
            return model.runnable, CPU
        if isinstance(model, (CompiledModel, EdgeModel)):
            return model, CPU
        model.eval()
        return model, next(model.parameters()).device

    def predict(self, model: Any, images: np.ndarray) -> np.ndarray:
        net, device = self._runnable(model)
        with torch.no_grad():
            return net(self.normalize(images, device)).float().cpu().numpy()

    # ------------------------------------------------------------ int8
    def quantize_ptq(self, model: nn.Module, calibration: Sequence[np.ndarray]) -> Quantized:
        batches = [self.normalize(b, CPU) for b in calibration]
        int8, stats = self.flow.ptq(model, batches)
        return Quantized(int8, stats)

    def prepare_qat(self, model: nn.Module) -> nn.Module:
        return self.flow.prepare_qat(model, self.device)

    def convert_qat(self, model: nn.Module) -> Quantized:
        int8, stats = self.flow.convert_qat(model, self.net.parameter_count())
        return Quantized(int8, stats)

    def op_census(self, model: Any) -> OpCensus | None:
        """PT2E int8: its converted q/dq graph; FX int8: its quantized modules, run once;
        fp32: its exported graph (all float)."""
        if isinstance(model, Int8Model):
            if model.flow == PT2EFlow.name:
                return census.pt2e_census(model.serializable)
            return census.fx_census(model.runnable, torch.zeros(2, 3, 32, 32))
        if isinstance(model, nn.Module):
            fp32 = copy.deepcopy(model).cpu().eval()
            return census.exported_census(fp32, (torch.randn(2, 3, 32, 32),))
        return None

    # ------------------------------------------------------------ runtime ladder
    def lower(self, runtime: str, inputs: RungInputs) -> Lowered:
        int8 = inputs.variant != "baseline"
        if runtime == "inductor":
            if not int8:
                return inductor.compile_fp32(inputs.fp32, inputs.max_batch)
            lowered = inductor.compile_int8(inputs.model, inputs.max_batch)
            graph = self.op_census(inputs.model)  # the q/dq graph Inductor compiles
            if graph is not None:
                lowered.ops = graph.model_copy(
                    update={"source": f"{graph.source}, as compiled by Inductor"}
                )
            return lowered
        if runtime != "executorch":
            return super().lower(runtime, inputs)
        executorch.require_executorch()
        executorch.set_threads(self.threads)  # the run's thread count, as LiteRT's num_threads
        if inputs.variant == "baseline":
            lowered = executorch.lower_fp32(inputs.fp32, inputs.max_batch)
        elif inputs.variant == "ptq":
            batches = [self.normalize(b, CPU) for b in inputs.calibration]
            lowered = executorch.lower_ptq(inputs.fp32, batches, inputs.max_batch)
        elif inputs.variant == "qat":
            lowered = executorch.lower_qat(
                inputs.fp32, inputs.fine_tune, self.device, inputs.max_batch
            )
        else:
            raise RungUnavailable(f"no ExecuTorch rung for the {inputs.variant} variant")
        lowered.notes.append(executorch.lowering_note(lowered.model))
        return lowered

    # ------------------------------------------------------------ measurement
    def save(self, model: Any, directory: Path, stem: str) -> Saved:
        """The paper's measure: the serialized state_dict (int8 tensors for int8 models);
        a lowered model: what its runtime loads (.pt2 exported program, .pte program)."""
        if isinstance(model, (CompiledModel, EdgeModel)):
            return self._save_lowered(model, directory, stem)
        module = model.serializable if isinstance(model, Int8Model) else model
        path = directory / f"{stem}.pt"
        # Packed int8 modules keep non-tensor entries (e.g. `_packed_params.dtype`).
        state = {
            k: v.detach().cpu() if isinstance(v, torch.Tensor) else v
            for k, v in module.state_dict().items()
        }
        write_via_temp(path, lambda tmp: torch.save(state, tmp))  # whole or not at all
        size = SizeStats(
            bytes=path.stat().st_size,
            format="state_dict",
            file=path.name,
            parameters=self.net.parameter_count(),
        )
        return Saved(size, (path,))

    def _save_lowered(self, model: CompiledModel | EdgeModel, directory: Path, stem: str) -> Saved:
        if isinstance(model, EdgeModel):
            path, kind = directory / f"{stem}.pte", "pte"
            write_bytes_atomic(path, model.program)
        else:  # what torch.compile starts from, and a deployment could ship cheaply
            path, kind = directory / f"{stem}.pt2", "pt2 (torch.export program)"
            program = _reproducible(model.export())
            with _release_version_recorded():
                write_via_temp(path, lambda tmp: torch.export.save(program, tmp))
        size = SizeStats(
            bytes=path.stat().st_size,
            format=kind,
            file=path.name,
            parameters=self.net.parameter_count(),
        )
        return Saved(size, (path,))

    def latency_call(self, model: Any, images: np.ndarray) -> tuple[Callable[[], object], str]:
        net, device = self._runnable(model)
        x = self.normalize(images, device)  # prepared once: only the forward pass is timed
        sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

        @torch.no_grad()
        def call() -> None:
            net(x)
            sync()

        return call, str(device)

    @contextlib.contextmanager
    def threads_for(self, model: Any, threads: int) -> Iterator[None]:
        if isinstance(model, CompiledModel):
            raise ThreadsUnsupported(inductor.THREADS_REASON)
        if isinstance(model, EdgeModel):  # XNNPACK's own threadpool, not torch's
            previous = executorch.thread_count()
            executorch.set_threads(threads)
            try:
                yield
            finally:
                executorch.set_threads(previous)
            return
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            yield
        finally:
            torch.set_num_threads(previous)

    # ------------------------------------------------------------ profiling
    def region(self, name: str) -> contextlib.AbstractContextManager[None]:
        return torch.profiler.record_function(name)

    def profile(
        self,
        model: Any,
        work: Callable[[int], object],
        schedule: ProfileSpec,
        trace_dir: Path,
        name: str,
    ) -> ProfileCapture:
        # int8 models run on the CPU, whatever device the study trains on.
        return run_profile(work, schedule, trace_dir, name, self.device_of(model))

    def reset_peak_gpu(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)

    def peak_gpu_bytes(self) -> int | None:
        if self.device.type != "cuda":
            return None
        return int(torch.cuda.max_memory_allocated(self.device))

    def variant_notes(self, variant: str, device: DeviceInfo) -> list[str]:
        if variant == "baseline" or device.train_device == "cpu":
            return []
        return [
            f"int8 inference is CPU-only in PyTorch (x86 int8 kernels): this variant's "
            f"accuracy and latency were taken on cpu, while training ran on "
            f"{device.train_device}"
        ]
