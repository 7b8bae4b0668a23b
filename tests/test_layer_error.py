"""The shared per-layer error formulas, the canonical layer list, the ranking, the spec
section and the analysis driver's failure handling (no framework needed)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from harness_contract.data.cifar import Cifar10
from harness_contract.layers.analysis import (
    Analysis,
    AnalysisUnavailable,
    Int8Outputs,
    LayerProbe,
    RequantizeInputs,
    _Sums,
)
from harness_contract.layers.error import (
    LayerAnalysis,
    LayerError,
    canonical_layers,
    mse,
    rank,
    sqnr_db,
)
from harness_contract.model.architecture import resnet18
from harness_contract.spec import ModelSpec, build_spec
from harness_contract.spec.analysis import AnalysisSpec


def test_sqnr_of_a_known_noise_is_ten_log_ratio() -> None:
    ref = np.array([3.0, 4.0])  # signal energy 25
    q = ref + np.array([0.3, -0.4])  # noise energy 0.25
    assert sqnr_db(ref, q) == pytest.approx(20.0)
    assert mse(ref, q) == pytest.approx(0.125)


def test_sqnr_matches_torch_ns_compute_sqnr_definition() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal(1000)
    y = x + 0.01 * rng.standard_normal(1000)
    expected = 20 * math.log10(np.linalg.norm(x) / np.linalg.norm(x - y))
    assert sqnr_db(x, y) == pytest.approx(expected, rel=1e-9)


def test_sqnr_is_undefined_for_identical_or_silent_outputs() -> None:
    assert sqnr_db(np.ones(4), np.ones(4)) is None
    assert sqnr_db(np.zeros(4), np.ones(4)) is None
    assert mse(np.ones(4), np.ones(4)) == 0.0


def test_shapes_must_agree() -> None:
    with pytest.raises(ValueError, match="shapes differ"):
        sqnr_db(np.ones(4), np.ones(5))


def test_running_sums_pool_batches_like_one_array() -> None:
    rng = np.random.default_rng(1)
    ref, q = rng.standard_normal((3, 50)), rng.standard_normal((3, 50))
    sums = _Sums()
    for r, x in zip(ref, q, strict=True):
        sums.add(r, x)
    got_sqnr, got_mse = sums.figures()
    assert got_sqnr == pytest.approx(sqnr_db(ref, q))
    assert got_mse == pytest.approx(mse(ref, q))


def test_canonical_layers_are_every_conv_and_fc_in_network_order() -> None:
    net = resnet18(ModelSpec())
    layers = canonical_layers(net)
    assert [x.name for x in layers] == [c.name for c in net.convs()] + ["fc"]
    assert len(layers) == 21
    by_name = {x.name: x for x in layers}
    assert by_name["stem"].output == "relu"
    assert by_name["stages.1.0.conv1"].output == "relu"
    assert by_name["stages.1.0.conv2"].output == "raw"
    assert by_name["stages.1.0.shortcut"].output == "raw"
    assert by_name["fc"].kind == "dense"
    bn = {x.name: x for x in canonical_layers(resnet18(ModelSpec(variant="bn")))}
    assert bn["stages.1.0.conv2"].output == "bn"


def _row(name: str, sqnr: float | None, own: float | None = None) -> LayerError:
    return LayerError(layer=name, kind="conv", sqnr_db=sqnr, mse=0.0, own_sqnr_db=own)


def test_rank_uses_own_sqnr_when_every_layer_has_one() -> None:
    rows = [_row("a", 10, 40), _row("b", 30, 5), _row("c", 20, 30)]
    assert rank(rows) == (["b", "c", "a"], "own_sqnr_db")


def test_rank_falls_back_to_propagated_and_skips_undefined() -> None:
    rows = [_row("a", 10, 40), _row("b", 30, None), _row("c", None)]
    assert rank(rows) == (["a", "b"], "sqnr_db")
    assert rank([_row("c", None)]) == ([], None)


def test_analysis_spec_defaults_and_bounds() -> None:
    spec = AnalysisSpec()
    assert (spec.enabled, spec.images, spec.keep_float) == (True, 256, [1, 2, 4])
    assert spec.what_if_variants == ["ptq", "qat"]
    assert AnalysisSpec(keep_float=[4, 1]).keep_float == [1, 4]
    bad_values = [
        {"images": 0},
        {"keep_float": [0]},
        {"keep_float": [1, 1]},
        {"imgs": 3},
        {"what_if_variants": ["baseline"]},
    ]
    for bad in bad_values:
        with pytest.raises(ValidationError):
            AnalysisSpec(**bad)


def test_layer_analysis_is_strict_and_round_trips() -> None:
    a = LayerAnalysis(status="ok", layers=[_row("stem", 30.0, 35.0)], worst=["stem"])
    assert LayerAnalysis.model_validate_json(a.model_dump_json()) == a
    with pytest.raises(ValidationError):
        LayerAnalysis(status="ok", extra_field=1)


# ---------------------------------------------------------------- the driver, on numpy


class _Fw:
    """The part of a Framework the driver calls: predict, save, latency, device."""

    name = "numpy"

    def predict(self, model, images):
        return np.stack([images.mean((1, 2, 3)) * model, -images.mean((1, 2, 3))], 1)

    def device_of(self, model):
        return "cpu"

    def save(self, model, directory, stem):
        from harness_contract.metrics.figures import SizeStats
        from harness_contract.study.framework import Saved

        path = directory / f"{stem}.bin"
        path.write_bytes(b"x" * 100)
        return Saved(SizeStats(bytes=100, format="bin", file=path.name, parameters=1), (path,))

    def latency_call(self, model, images):
        return (lambda: None), "cpu"


class _Probe(LayerProbe):
    """Two fake layers: 'stem' int8 = fp32 + small noise, 'fc' + large noise."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.fail = fail
        self.requantized: list[list[str]] = []

    def fp32_layer_outputs(self, fp32, images):
        x = images.astype(np.float64)
        return {"stem": x, "fc": x[:, :1]}

    def int8_layer_outputs(self, qmodel, fp32, images):
        if self.fail:
            raise self.fail
        x = images.astype(np.float64)
        return Int8Outputs(
            outputs={"stem": x + 0.01, "fc": x[:, :1] + 10.0},
            own={"stem": (x, x + 0.01), "fc": (x[:, :1], x[:, :1] + 10.0)},
            unmapped=["weird_node"],
            method="fake",
        )

    def requantize_keeping_float(self, variant, fp32, float_layers, inputs):
        self.requantized.append(list(float_layers))
        return 1.0


def _analysis(probe: LayerProbe, keep_float: list[int]) -> Analysis:
    rng = np.random.default_rng(0)
    images = rng.integers(1, 256, (40, 32, 32, 3), dtype=np.uint8)
    data = Cifar10(
        train_images=images,
        train_labels=np.zeros(40, np.int64),
        test_images=images,
        test_labels=np.zeros(40, np.int64),
        label_names=tuple("0123456789"),
        root=Path("."),
        kind="synthetic",
        digest="0" * 16,
    )
    spec = build_spec(
        "smoke",
        overrides=[
            "measure.latency.min_seconds=0",
            "measure.latency.min_count=3",
            "measure.latency.warmup_count=0",
            "measure.latency.warmup_seconds=0",
        ],
    )
    return Analysis(_Fw(), probe, spec, AnalysisSpec(images=16, keep_float=keep_float), data, 1)  # type: ignore[arg-type]


def _inputs() -> RequantizeInputs:
    return RequantizeInputs([], lambda m: (m, None))


def test_driver_ranks_measures_and_runs_each_k_once(tmp_path) -> None:
    probe = _Probe()
    result = _analysis(probe, [1, 2, 4]).analyse("ptq", 0.5, 1.0, _inputs())
    assert result.status == "ok" and result.images == 16
    assert result.worst == ["fc", "stem"] and result.ranked_by == "own_sqnr_db"
    assert result.unmapped == ["weird_node"]
    fc = next(x for x in result.layers if x.layer == "fc")
    assert fc.mse == pytest.approx(100.0)
    # k=4 is capped at the two ranked layers, which k=2 already measured; k=0 is the
    # int8 variant itself, measured again in the same window.
    assert [w.k for w in result.what_if] == [0, 1, 2]
    assert probe.requantized == [["fc"], ["fc", "stem"]]
    assert all(w.status == "ok" and w.size_bytes == 100 for w in result.what_if)
    assert result.what_if[1].agreement_with_fp32 == 1.0


@pytest.mark.parametrize(
    ("error", "status", "reason"),
    [
        (
            AnalysisUnavailable("the debugger is missing", "install it"),
            "unavailable",
            "the debugger is missing; install it",
        ),
        (
            RuntimeError("NumericVerify rejected op CONV_2D"),
            "failed",
            "RuntimeError: NumericVerify rejected op CONV_2D",
        ),
    ],
)
def test_a_probe_failure_is_recorded_never_raised(error, status, reason) -> None:
    result = _analysis(_Probe(fail=error), [1]).analyse("ptq", 0.5, 1.0, _inputs())
    assert (result.status, result.reason) == (status, reason)
    assert result.layers == [] and result.what_if == []
    assert result.seconds is not None


def test_a_failing_what_if_is_recorded_and_the_next_k_still_runs() -> None:
    class Flaky(_Probe):
        def requantize_keeping_float(self, variant, fp32, float_layers, inputs):
            if len(float_layers) == 1:
                raise ValueError("denylisted node not found")
            return super().requantize_keeping_float(variant, fp32, float_layers, inputs)

    result = _analysis(Flaky(), [1, 2]).analyse("ptq", 0.5, 1.0, _inputs())
    assert [(w.k, w.status) for w in result.what_if] == [(0, "ok"), (1, "failed"), (2, "ok")]
    assert result.what_if[1].reason == "ValueError: denylisted node not found"


def test_a_runner_without_a_probe_is_recorded_unavailable() -> None:
    from types import SimpleNamespace

    from harness_contract.layers.analysis import layer_analysis

    analysis = _analysis(_Probe(), [1])
    phases = SimpleNamespace(
        data=analysis.data, fp32_predictions=None, fine_tune=lambda m: (m, None)
    )
    result = layer_analysis(
        _Fw(),
        analysis.spec,
        AnalysisSpec(),
        phases,
        "ptq",
        0.5,
        1.0,
        threads=1,  # type: ignore[arg-type]
    )
    assert result.status == "unavailable"
    assert (
        result.reason == "the numpy runner has no per-layer probe; analysis.enabled=false skips it"
    )


def test_the_study_call_site_uses_the_runners_probe_and_the_shared_calibration() -> None:
    from types import SimpleNamespace

    from harness_contract.layers.analysis import layer_analysis

    probe = _Probe()
    fw = _Fw()
    fw.layer_probe = lambda: probe  # type: ignore[attr-defined]
    analysis = _analysis(probe, [1])
    seen: list[object] = []

    def requantize(variant, fp32, float_layers, inputs):
        seen.append(inputs)
        return 1.0

    probe.requantize_keeping_float = requantize  # type: ignore[method-assign]
    spec = analysis.spec.model_copy(
        update={"ptq": analysis.spec.ptq.model_copy(update={"calibration_samples": 8})}
    )
    phases = SimpleNamespace(
        data=analysis.data, fp32_predictions=None, fine_tune=lambda m: (m, None)
    )
    result = layer_analysis(
        fw,
        spec,
        AnalysisSpec(images=8, keep_float=[1]),
        phases,
        "ptq",
        0.5,
        1.0,
        threads=1,  # type: ignore[arg-type]
    )
    assert result.status == "ok" and result.images == 8
    (inputs,) = seen
    assert sum(len(b) for b in inputs.calibration) == 8  # type: ignore[attr-defined]


def test_a_variant_left_out_of_what_if_variants_gets_its_layers_but_no_what_if() -> None:
    probe = _Probe()
    analysis = _analysis(probe, [1])
    analysis.analysis = AnalysisSpec(images=16, keep_float=[1], what_if_variants=["ptq"])
    result = analysis.analyse("qat", 0.5, 1.0, _inputs())
    assert result.status == "ok" and result.worst == ["fc", "stem"]
    assert result.what_if == [] and probe.requantized == []
