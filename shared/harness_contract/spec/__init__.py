"""The experiment spec: one typed, validated description of a whole study.

A spec is built from a preset (``presets/*.toml``), optionally a user file (TOML
or JSON) and ``section.key=value`` overrides, then validated once here; runners
trust it afterwards. Every field that both frameworks must honour lives here, so
the two runners cannot drift apart.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from harness_contract.errors import SpecError
from harness_contract.spec.analysis import AnalysisSpec
from harness_contract.spec.base import Section, SpecValueError
from harness_contract.spec.explain import bool_for_number, explain, in_file
from harness_contract.spec.frameworks import PyTorchSpec, SupportSpec, TensorFlowSpec, no_repeats
from harness_contract.spec.sources import (
    apply_overrides,
    preset_dict,
    read_spec_file,
    resolve_base,
)
from harness_contract.system import usable_cpus

# Bounds that protect the machine: larger values are typos, or would exhaust memory.
MAX_BATCH = 8192
MAX_LATENCY_BATCH = 4096
MAX_THREADS = 1024
MAX_COUNT = 10_000_000


class ViTSpec(Section):
    """The Vision Transformer ``model.arch = "vit"`` builds (harness_contract.model.vit):
    small defaults that train on a CPU. The ResNet fields of ``model`` do not apply to it."""

    # Patch side in pixels: a 32x32 image becomes (32 / patch)^2 tokens (4: 64 tokens).
    patch: Literal[2, 4, 8] = 4
    # Token width, encoder blocks and attention heads (dim must divide by heads).
    dim: int = Field(64, ge=8, le=1024)
    depth: int = Field(4, ge=1, le=24)
    heads: int = Field(4, ge=1, le=32)
    # The MLP's hidden width is round(dim * mlp_ratio).
    mlp_ratio: float = Field(2.0, ge=0.25, le=8)

    @model_validator(mode="after")
    def _heads_divide_dim(self) -> ViTSpec:
        if self.dim % self.heads:
            raise SpecValueError(
                f"model.vit.dim {self.dim} does not divide into {self.heads} heads",
                "choose a dim that is a multiple of model.vit.heads",
            )
        return self


class ModelSpec(Section):
    # "resnet18": the paper's network (its size set by the fields below); "vit": the
    # Vision Transformer the paper began with (model.vit).
    arch: Literal["resnet18", "vit"] = "resnet18"
    # "nobn": the paper's variant (BatchNorm removed for quantization support);
    # "bn": the usual CIFAR ResNet18 with BatchNorm after every conv.
    variant: Literal["nobn", "bn"] = "nobn"
    # Scales every stage's channels (64/128/256/512 at 1.0); small presets use < 1.
    width_multiplier: float = Field(1.0, gt=0, le=4)
    # Basic blocks in each of the four stages: 2 is ResNet18 (the study's network); the
    # smoke preset's 1 (a ResNet10) halves the graph every compile and export walks.
    blocks_per_stage: int = Field(2, ge=1, le=4)
    # Zero the last conv of each residual branch (as Fixup does) so each block starts
    # as the identity: this is what lets the no-BN network train at lr 0.1.
    zero_init_residual: bool = True
    # "shared": every framework starts from one set of weights made from the seed
    # (harness_contract.model.weights). "framework": each uses its own default initializers,
    # the confound behind the paper's cross-framework accuracy gap.
    init: Literal["shared", "framework"] = "shared"
    vit: ViTSpec = ViTSpec()


class AugmentSpec(Section):
    crop_padding: int = Field(4, ge=0, le=16)
    hflip: bool = True


class DataSpec(Section):
    # Use only the first N images of each split (None: all). Keeps small presets small.
    train_limit: int | None = Field(None, ge=1)
    test_limit: int | None = Field(None, ge=1)
    # Per-channel normalization applied by both runners to the shared uint8 stream.
    mean: tuple[float, float, float] = (0.4914, 0.4822, 0.4465)
    std: tuple[float, float, float] = (0.2470, 0.2435, 0.2616)
    augment: AugmentSpec = AugmentSpec()

    @model_validator(mode="after")
    def _std_positive(self) -> DataSpec:
        if any(s <= 0 for s in self.std):
            raise ValueError("data.std values must be > 0")
        return self


class OptimSpec(Section):
    """SGD with momentum, weight decay, linear warm-up and step decay at milestones."""

    epochs: int = Field(50, ge=0, le=1000)
    batch_size: int = Field(128, ge=1, le=MAX_BATCH)
    lr: float = Field(0.1, gt=0, le=10)
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(5e-4, ge=0, lt=1)
    # Epoch indexes (0-based) at which lr is multiplied by gamma.
    milestones: list[int] = Field(default_factory=lambda: [25, 40])
    gamma: float = Field(0.1, gt=0, le=1)
    # Linear warm-up from ~0 to lr over this many epochs (fractions allowed).
    warmup_epochs: float = Field(0.0, ge=0)
    # Clip the global gradient norm (None: off). Without BatchNorm, a residual net's
    # activations and gradients can grow without bound; clipping keeps lr 0.1 stable.
    grad_clip_norm: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _milestones_sorted(self) -> OptimSpec:
        if any(m < 0 for m in self.milestones):
            raise ValueError("milestones must be >= 0")
        if self.milestones != sorted(set(self.milestones)):
            raise ValueError("milestones must be strictly increasing")
        return self


class PTQSpec(Section):
    enabled: bool = True
    # Calibration images: the first N of one seeded permutation of the training split,
    # un-augmented, identical for every framework.
    calibration_samples: int = Field(512, ge=1)
    calibration_batch_size: int = Field(32, ge=1, le=MAX_BATCH)


class QATSpec(OptimSpec):
    enabled: bool = True
    epochs: int = Field(5, ge=0, le=1000)
    lr: float = Field(0.001, gt=0, le=10)
    milestones: list[int] = Field(default_factory=list)


class LatencySpec(Section):
    """The stop rule of the shared latency method (MLPerf LoadGen / benchmark_model style)."""

    batch_sizes: list[Annotated[int, Field(ge=1, le=MAX_LATENCY_BATCH)]] = Field(
        default_factory=lambda: [1, 8, 32, 128]
    )
    # Also measure every model on one thread when the run uses more (the paper's
    # single-core figure beside the all-cores one). Listed after the run's own rows.
    thread_sweep: bool = True
    warmup_count: int = Field(10, ge=0, le=MAX_COUNT)
    warmup_seconds: float = Field(0.5, ge=0)
    min_count: int = Field(100, ge=1, le=MAX_COUNT)
    min_seconds: float = Field(2.0, ge=0)
    max_count: int = Field(100_000, ge=1, le=MAX_COUNT)
    # A cap so a slow model cannot stall a run; whatever was measured is kept.
    max_seconds: float = Field(60.0, gt=0)

    @model_validator(mode="after")
    def _consistent(self) -> LatencySpec:
        if not self.batch_sizes or any(b < 1 for b in self.batch_sizes):
            raise ValueError("measure.latency.batch_sizes must be a non-empty list of sizes >= 1")
        repeated = sorted({b for b in self.batch_sizes if self.batch_sizes.count(b) > 1})
        if repeated:  # each size's raw samples go to one file: a second row would overwrite it
            raise SpecValueError(
                f"measure.latency.batch_sizes lists {', '.join(map(str, repeated))} more than "
                f"once ({self.batch_sizes})",
                "list each batch size once",
            )
        if self.max_count < self.min_count:
            raise ValueError("measure.latency.max_count must be >= min_count")
        if self.max_seconds < self.min_seconds:
            raise ValueError("measure.latency.max_seconds must be >= min_seconds")
        return self


class ProfileSpec(Section):
    """Short scheduled profiler passes, run apart from every timed measurement.

    Each pass runs ``wait`` steps untraced, ``warmup`` traced but discarded, then
    ``active`` recorded ones (torch.profiler's schedule; TensorFlow starts its
    profiler after the warm-up). Small by default so a trace always opens.
    """

    enabled: bool = True
    train: bool = True  # profile training steps (fresh copies: the study's models are untouched)
    inference: bool = True  # profile the forward pass of every variant
    wait: int = Field(1, ge=0, le=100)
    warmup: int = Field(2, ge=0, le=100)
    active: int = Field(3, ge=1, le=50)
    inference_batch_size: int = Field(32, ge=1, le=MAX_BATCH)
    # torch.profiler extras: each makes traces much larger.
    record_shapes: bool = False
    with_stack: bool = False
    profile_memory: bool = False

    @property
    def steps(self) -> int:
        return self.wait + self.warmup + self.active


class MeasureSpec(Section):
    # None: every core this process may use. Recorded in every result.
    threads: int | None = Field(None, ge=1, le=MAX_THREADS)
    eval_batch_size: int = Field(256, ge=1, le=MAX_BATCH)
    latency: LatencySpec = LatencySpec()
    profile: ProfileSpec = ProfileSpec()
    # The variants whose runtime rungs (<framework>.runtimes) are measured; the others
    # record each rung as skipped with this key named. Every variant by default.
    rung_variants: list[Literal["baseline", "ptq", "qat"]] = Field(
        default_factory=lambda: ["baseline", "ptq", "qat"]
    )
    _unique = field_validator("rung_variants")(no_repeats)


class ExperimentSpec(Section):
    name: str = "custom"
    seed: int = Field(0, ge=0, lt=2**32)
    # "auto": CUDA when the runner sees a GPU, else CPU. Int8 inference is always CPU.
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # The framework's determinism switches (PyTorch deterministic algorithms and cuDNN,
    # TensorFlow op determinism). None: on when training runs on the CPU, where they cost
    # nothing, off on a GPU, where they can slow training; true/false: as asked.
    deterministic: bool | None = None
    model: ModelSpec = ModelSpec()
    data: DataSpec = DataSpec()
    train: OptimSpec = OptimSpec()
    ptq: PTQSpec = PTQSpec()
    qat: QATSpec = QATSpec()
    measure: MeasureSpec = MeasureSpec()
    pytorch: PyTorchSpec = PyTorchSpec()
    tensorflow: TensorFlowSpec = TensorFlowSpec()
    support: SupportSpec = SupportSpec()
    analysis: AnalysisSpec = AnalysisSpec()

    @model_validator(mode="after")
    def _fits_train_limit(self) -> ExperimentSpec:
        limit = self.data.train_limit
        problem = None if limit is None else training_images_problem(self, limit)
        if problem is not None:
            raise SpecValueError(
                f"{problem[0]} exceeds the {limit} training images allowed by data.train_limit",
                f"{problem[1]}, or raise data.train_limit",
            )
        return self

    def digest(self) -> str:
        """A short, stable hash of every field: equal digests mean the same spec."""
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=2) + "\n"


def training_images_problem(spec: ExperimentSpec, available: int) -> tuple[str, str] | None:
    """The first count the study would draw from the training images that exceeds them.

    Returns ("key=value", "lower key to at most N ..."), or None when everything fits.
    Training drops the last partial batch, so a batch larger than the split trains nothing.
    """
    needs = [
        (spec.ptq.enabled, "ptq.calibration_samples", spec.ptq.calibration_samples, "ptq"),
        (spec.train.epochs > 0, "train.batch_size", spec.train.batch_size, ""),
        (spec.qat.enabled and spec.qat.epochs > 0, "qat.batch_size", spec.qat.batch_size, "qat"),
    ]
    for used, key, value, phase in needs:
        if used and value > available:
            off = f" (or set {phase}.enabled=false)" if phase else ""
            return f"{key}={value}", f"lower {key} to at most {available}{off}"
    return None


def check_training_images(spec: ExperimentSpec, available: int, where: str, more: str = "") -> None:
    """Refuse the spec before any work when the dataset has too few training images.

    ``where`` says whose count it is ("in /data/cifar-10-batches-py"); ``more`` adds a
    second way out to the fix ("or point --data at a larger dataset").
    """
    problem = training_images_problem(spec, available)
    if problem is not None:
        fix = f"{problem[1]}, {more}" if more else problem[1]
        raise SpecError(f"{problem[0]} exceeds the {available} training images {where}", fix)


def validate_spec(
    raw: dict[str, Any], source: Path | None = None, from_source: dict[str, Any] | None = None
) -> ExperimentSpec:
    """The spec ``raw`` describes, or a SpecError naming the key; and ``source``, the file
    the key came from, where it is in ``from_source`` (that file's own keys; None: all)."""
    flagged = bool_for_number(ExperimentSpec, raw, ())
    if flagged is not None:
        loc, given = flagged
        where = ".".join(loc)
        raise SpecError(
            f"invalid spec value for '{where}': a boolean is not a number (got "
            f"{json.dumps(given)}){in_file(source, from_source, loc, raw)}",
            "write a number: true and false are not 1 and 0",
        )
    try:
        return ExperimentSpec.model_validate(raw)
    except ValidationError as exc:
        problem, fix = explain(exc)
        loc = tuple(str(p) for p in exc.errors()[0]["loc"])
        raise SpecError(problem + in_file(source, from_source, loc, raw), fix) from None


def build_spec(
    preset: str | None = "smoke",
    spec_file: Path | None = None,
    overrides: list[str] | None = None,
) -> ExperimentSpec:
    """Preset, then the user's file (which may name its own ``base``), then overrides."""
    raw: dict[str, Any] = {}
    own: dict[str, Any] | None = None
    if spec_file is not None:
        user = read_spec_file(Path(spec_file))
        own = copy.deepcopy(user)
        if "base" not in user and preset is not None:
            user["base"] = preset
        raw = resolve_base(user, ())
    elif preset is not None:
        raw = preset_dict(preset)
    merged = apply_overrides(raw, overrides or [])
    return validate_spec(merged, Path(spec_file) if spec_file is not None else None, own)


def load_resolved_spec(path: Path) -> ExperimentSpec:
    """Read a fully resolved spec (as the host hands it to a runner); a bad key is named
    with the file it is in (a run's own spec.json, say)."""
    return validate_spec(read_spec_file(Path(path)), Path(path))


def effective_threads(spec: ExperimentSpec) -> int:
    if spec.measure.threads is not None:
        return spec.measure.threads
    return usable_cpus()


def determinism_wanted(spec: ExperimentSpec, train_device: str) -> bool:
    """Whether the runner turns its determinism switches on, once it knows its device."""
    if spec.deterministic is not None:
        return spec.deterministic
    return train_device == "cpu"
