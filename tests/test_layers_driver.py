"""Issue 17, per-layer items 7, 8, 9 and 11 on the shared driver (numpy, no framework):
own error split into weight and output rounding, the ranking that chooses the what-if's
float layers (weight rounding or measured sensitivity, the whole ranking), the k = 0 row
timed inside the what-if window, block outputs as measuring points, and QAT measured
against its own fine-tuned float model with the drift apart."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from pydantic import ValidationError

from harness_contract.data.cifar import Cifar10
from harness_contract.layers.analysis import Analysis, Int8Outputs, LayerProbe, RequantizeInputs
from harness_contract.layers.error import (
    LayerAnalysis,
    LayerError,
    WhatIf,
    canonical_layers,
    measuring_points,
    rank,
)
from harness_contract.metrics.figures import SizeStats
from harness_contract.model.architecture import resnet18
from harness_contract.spec import ModelSpec, build_spec
from harness_contract.spec.analysis import AnalysisSpec
from harness_contract.study.framework import Saved

# ResNet18 (the smoke preset runs a ResNet10): these tests count its 21 layers and 8 blocks.
RESNET18 = "model.blocks_per_stage=2"
NET = resnet18(build_spec("smoke", overrides=[RESNET18]).model)
WEIGHTED = [x.name for x in canonical_layers(NET)]


class _Fw:
    """What the driver calls on a framework; a model is a number m, its logits
    (mean, -mean) * m, and every model timed is recorded in order."""

    name = "numpy"

    def __init__(self) -> None:
        self.timed: list[float] = []

    def predict(self, model, images):
        mean = images.mean((1, 2, 3))
        return np.stack([mean * model, -mean * model + 40.0], 1)

    def device_of(self, model):
        return "cpu"

    def save(self, model, directory, stem):
        path = directory / f"{stem}.bin"
        path.write_bytes(b"x" * 100)
        return Saved(SizeStats(bytes=100, format="bin", file=path.name, parameters=1), (path,))

    def latency_call(self, model, images):
        self.timed.append(model)
        return (lambda: None), "cpu"


class _Probe(LayerProbe):
    """Every canonical layer; layer i's int8 output carries noise growing with i, its
    weight-rounding part decreasing with i, so the two rankings differ. A block output
    carries the most noise of all (it must still never be ranked)."""

    def __init__(self) -> None:
        self.requantized: list[list[str]] = []
        self.references: list[object] = []

    @staticmethod
    def _x(images):
        return images[:, :2, :2, 0].astype(np.float64) + 1.0

    def fp32_layer_outputs(self, fp32, images):
        x = self._x(images) * fp32
        return {p.name: x for p in measuring_points(NET)}

    def int8_layer_outputs(self, qmodel, fp32, images):
        self.references.append(fp32)
        ref = self._x(images) * fp32
        outputs, own, weight, output = {}, {}, {}, {}
        for i, name in enumerate(WEIGHTED):
            w_noise, o_noise = 0.01 * (len(WEIGHTED) - i), 0.001 * (i + 1)
            outputs[name] = ref + w_noise + o_noise
            own[name] = (ref, ref + w_noise + o_noise)
            weight[name] = (ref, ref + w_noise)
            output[name] = (ref + w_noise, ref + w_noise + o_noise)
        for p in measuring_points(NET):
            if p.kind == "block":
                outputs[p.name] = ref + 100.0
        return Int8Outputs(outputs=outputs, own=own, weight=weight, output=output, method="fake")

    def requantize_keeping_float(self, variant, fp32, float_layers, inputs):
        self.requantized.append(list(float_layers))
        return 10.0 + len(float_layers)


def _data() -> Cifar10:
    rng = np.random.default_rng(0)
    images = rng.integers(1, 256, (40, 32, 32, 3), dtype=np.uint8)
    return Cifar10(
        train_images=images,
        train_labels=np.zeros(40, np.int64),
        test_images=images,
        test_labels=np.zeros(40, np.int64),
        label_names=tuple("0123456789"),
        root=Path("."),
        kind="synthetic",
        digest="0" * 16,
    )


def _spec():
    return build_spec(
        "smoke",
        overrides=[
            RESNET18,
            "measure.latency.min_seconds=0",
            "measure.latency.min_count=3",
            "measure.latency.warmup_count=0",
            "measure.latency.warmup_seconds=0",
            "ptq.calibration_samples=8",
        ],
    )


def _analysis(probe: LayerProbe, fw: _Fw | None = None, **spec) -> Analysis:
    return Analysis(fw or _Fw(), probe, _spec(), AnalysisSpec(images=16, **spec), _data(), 1)  # type: ignore[arg-type]


def _inputs() -> RequantizeInputs:
    return RequantizeInputs([], lambda m: (m, None))


# ---------------------------------------------------------------- schema and spec


def test_old_metrics_without_the_new_fields_still_load() -> None:
    old = {
        "status": "ok",
        "layers": [{"layer": "stem", "kind": "conv", "sqnr_db": 30.0, "own_sqnr_db": 35.0}],
        "ranked_by": "own_sqnr_db",
        "worst": ["stem"],
        "what_if": [{"k": 1, "float_layers": ["stem"], "status": "ok"}],
    }
    a = LayerAnalysis.model_validate(old)
    assert a.layers[0].weight_sqnr_db is None and a.layers[0].output_sqnr_db is None
    assert a.ranking == [] and a.reference is None


def test_new_fields_round_trip() -> None:
    row = LayerError(
        layer="stages.0.0.out",
        kind="block",
        sqnr_db=20.0,
        weight_sqnr_db=None,
        output_sqnr_db=None,
        sensitivity_sqnr_db=None,
        drift_sqnr_db=31.0,
    )
    a = LayerAnalysis(
        status="ok",
        layers=[row],
        ranked_by="weight_sqnr_db",
        ranking=["stem"],
        reference="qat_float",
        what_if=[WhatIf(k=0, float_layers=[], status="ok")],
    )
    assert LayerAnalysis.model_validate_json(a.model_dump_json()) == a


def test_ranking_is_a_spec_choice_with_weight_as_default() -> None:
    assert AnalysisSpec().ranking == "weight"
    assert AnalysisSpec(ranking="sensitivity").ranking == "sensitivity"
    with pytest.raises(ValidationError):
        AnalysisSpec(ranking="propagated")


# ---------------------------------------------------------------- measuring points (item 9)


def test_block_outputs_follow_each_blocks_last_layer_in_network_order() -> None:
    points = measuring_points(resnet18(ModelSpec()))
    names = [p.name for p in points]
    assert len(names) == 21 + 8
    assert [p.name for p in points if p.kind != "block"] == WEIGHTED
    assert names[names.index("stages.1.0.shortcut") + 1] == "stages.1.0.out"
    assert names[names.index("stages.0.0.conv2") + 1] == "stages.0.0.out"
    assert names[-2:] == ["stages.3.1.out", "fc"]
    assert {p.output for p in points if p.kind == "block"} == {"relu"}


def test_block_outputs_are_measured_but_never_ranked() -> None:
    result = _analysis(_Probe(), keep_float=[]).analyse("ptq", 0.5, 1.0, _inputs())
    assert result.status == "ok", result.reason
    blocks = [x for x in result.layers if x.kind == "block"]
    assert len(blocks) == 8 and all(x.sqnr_db is not None for x in blocks)
    assert not any(name.endswith(".out") for name in result.ranking)
    assert len(result.ranking) == 21


# ---------------------------------------------------------------- weight / output (item 7)


def test_own_error_is_split_into_weight_and_output_rounding() -> None:
    result = _analysis(_Probe(), keep_float=[]).analyse("ptq", 0.5, 1.0, _inputs())
    by = {x.layer: x for x in result.layers}
    stem, fc = by["stem"], by["fc"]
    for row in (stem, fc):
        assert row.weight_sqnr_db is not None and row.output_sqnr_db is not None
        assert row.own_sqnr_db is not None
        assert row.own_sqnr_db < min(row.weight_sqnr_db, row.output_sqnr_db)
    # the probe's stem: large weight noise, small output noise; fc the other way round
    assert stem.weight_sqnr_db < stem.output_sqnr_db
    assert fc.weight_mse == pytest.approx(0.01**2)
    assert fc.output_mse == pytest.approx(0.021**2)


# ---------------------------------------------------------------- ranking (item 8)


def _row(name, sqnr, own=None, weight=None, sens=None, kind="conv") -> LayerError:
    return LayerError(
        layer=name,
        kind=kind,
        sqnr_db=sqnr,
        own_sqnr_db=own,
        weight_sqnr_db=weight,
        sensitivity_sqnr_db=sens,
    )


def test_rank_by_weight_rounding_falls_back_to_own_then_propagated() -> None:
    rows = [_row("a", 10, 40, 50), _row("b", 30, 5, 60), _row("c", 20, 30, 20)]
    assert rank(rows) == (["c", "a", "b"], "weight_sqnr_db")
    assert rank(rows, "weight") == (["c", "a", "b"], "weight_sqnr_db")
    no_weight = [_row("a", 10, 40), _row("b", 30, 5), _row("c", 20, 30)]
    assert rank(no_weight) == (["b", "c", "a"], "own_sqnr_db")
    assert rank([_row("a", 10), _row("b", 5)]) == (["b", "a"], "sqnr_db")


def test_rank_by_sensitivity_puts_the_most_recoverable_layer_first() -> None:
    # sensitivity_sqnr_db: logits SQNR against fp32 with that layer alone in float
    rows = [_row("a", 10, 40, 50, sens=22), _row("b", 30, 5, 60, sens=35), _row("c", 20, sens=25)]
    assert rank(rows, "sensitivity") == (["b", "c", "a"], "sensitivity_sqnr_db")
    # a layer without a figure: the next ranking that every layer has
    rows[0] = _row("a", 10, 40, 50)
    assert rank(rows, "sensitivity")[1] == "sqnr_db"


def test_block_rows_are_never_ranked() -> None:
    rows = [_row("a", 10, weight=50), _row("a.out", 1, kind="block")]
    assert rank(rows) == (["a"], "weight_sqnr_db")


def test_keep_float_above_five_uses_the_whole_ranking() -> None:
    probe = _Probe()
    result = _analysis(probe, keep_float=[8, 30]).analyse("ptq", 0.5, 1.0, _inputs())
    assert result.ranked_by == "weight_sqnr_db"
    assert len(result.worst) == 5 and result.ranking[:5] == result.worst
    # weight noise falls with depth in this probe: the stem is the worst weight rounding
    assert result.ranking[0] == "stem" and result.ranking[-1] == "fc"
    rows = [w for w in result.what_if if w.k > 0]
    assert [w.k for w in rows] == [8, 21]  # k above the layer count keeps every ranked layer
    assert rows[0].float_layers == result.ranking[:8]
    assert probe.requantized == [result.ranking[:8], result.ranking]


def test_sensitivity_requantizes_once_per_layer_and_ranks_by_it() -> None:
    class Sensitive(_Probe):
        def requantize_keeping_float(self, variant, fp32, float_layers, inputs):
            self.requantized.append(list(float_layers))
            if len(float_layers) == 1:  # fc alone in float brings the model closest to fp32
                return (
                    0.99
                    if float_layers == ["fc"]
                    else 0.5 + 0.001 * WEIGHTED.index(float_layers[0])
                )
            return 1.0

    probe = Sensitive()
    result = _analysis(probe, keep_float=[1], ranking="sensitivity").analyse(
        "ptq", 0.5, 1.0, _inputs()
    )
    assert result.ranked_by == "sensitivity_sqnr_db"
    assert probe.requantized[:21] == [[name] for name in WEIGHTED]
    assert result.ranking[0] == "fc" and result.ranking[-1] == "stem"
    fc = next(x for x in result.layers if x.layer == "fc")
    assert fc.sensitivity_sqnr_db is not None and fc.sensitivity_agreement == 1.0
    assert result.sensitivity_seconds is not None
    (k1,) = [w for w in result.what_if if w.k == 1]
    assert k1.float_layers == ["fc"]


def test_sensitivity_is_measured_only_where_a_what_if_uses_it() -> None:
    probe = _Probe()
    analysis = _analysis(probe, keep_float=[1], ranking="sensitivity", what_if_variants=["ptq"])
    result = analysis.analyse("qat", 0.5, 1.0, _inputs())
    assert probe.requantized == [] and result.ranked_by == "weight_sqnr_db"
    assert any("sensitivity not measured" in n for n in result.notes)


def test_k0_is_timed_again_interleaved_with_the_k_rows() -> None:
    fw = _Fw()
    result = _analysis(_Probe(), fw, keep_float=[1, 2]).analyse("ptq", 0.5, 1.0, _inputs())
    assert [w.k for w in result.what_if] == [0, 1, 2]
    k0 = result.what_if[0]
    assert k0.float_layers == [] and k0.status == "ok"
    assert k0.latency_b1_p50_ms is not None and k0.agreement_with_fp32 is not None
    assert k0.size_bytes == 100
    # int8, k=1, int8, k=2, int8: the plain model is timed beside every k row
    assert fw.timed == [0.5, 11.0, 0.5, 12.0, 0.5]


# ---------------------------------------------------------------- QAT reference (item 11)


def test_qat_is_measured_against_its_fine_tuned_float_model_with_drift_apart() -> None:
    from harness_contract.layers.analysis import layer_analysis

    class QatProbe(_Probe):
        def qat_float_model(self, trained, fp32):
            assert trained == "fine-tuned fake-quant model"
            return 2.0  # the fine-tuned float weights, as a float model

    probe = QatProbe()
    fw = _Fw()
    fw.layer_probe = lambda: probe  # type: ignore[attr-defined]
    analysis = _analysis(probe, fw)
    phases = SimpleNamespace(
        data=analysis.data,
        fp32_predictions=None,
        fine_tune=lambda m: (m, None),
        qat_trained="fine-tuned fake-quant model",
    )
    result = layer_analysis(
        fw,  # type: ignore[arg-type]
        analysis.spec,
        AnalysisSpec(images=8, keep_float=[]),
        phases,
        "qat",
        0.5,
        1.0,
        threads=1,
    )
    assert result.status == "ok", result.reason
    assert result.reference == "qat_float"
    assert set(probe.references) == {2.0}  # own/weight/output against the tuned weights
    stem = next(x for x in result.layers if x.layer == "stem")
    # drift: the fine-tuned float model (2x) against the baseline (1x) at every point
    assert stem.drift_sqnr_db == pytest.approx(0.0, abs=1e-9)
    assert stem.weight_sqnr_db is not None

    # PTQ keeps the baseline as its reference and has no drift
    probe.references.clear()
    ptq = layer_analysis(
        fw,  # type: ignore[arg-type]
        analysis.spec,
        AnalysisSpec(images=8, keep_float=[]),
        phases,
        "ptq",
        0.5,
        1.0,
        threads=1,
    )
    assert ptq.reference == "fp32" and set(probe.references) == {1.0}
    assert all(x.drift_sqnr_db is None for x in ptq.layers)
