"""The seeded, framework-neutral input stream (harness_contract.data.stream)."""

from __future__ import annotations

import numpy as np
import pytest

from harness_contract.data.stream import (
    TrainStream,
    calibration_indices,
    eval_batches,
    normalize_nhwc,
)
from harness_contract.spec import AugmentSpec

N_IMAGES = 50
BATCH = 8


def _images(n: int = N_IMAGES, seed: int = 123) -> np.ndarray:
    # Random pixels: every image differs from its mirror and from every shifted window.
    return np.random.default_rng(seed).integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)


def _stream(
    images: np.ndarray | None = None,
    *,
    seed: int = 0,
    purpose: str = "baseline",
    pad: int = 4,
    hflip: bool = True,
    batch_size: int = BATCH,
) -> TrainStream:
    images = _images() if images is None else images
    # Labels are the image indexes, so every output names its source image.
    return TrainStream(
        images,
        np.arange(len(images)),
        batch_size=batch_size,
        seed=seed,
        augment=AugmentSpec(crop_padding=pad, hflip=hflip),
        purpose=purpose,
    )


def _epoch(stream: TrainStream, e: int = 0) -> tuple[np.ndarray, np.ndarray]:
    batches = list(stream.epoch(e))
    return np.stack([b.images for b in batches]), np.stack([b.labels for b in batches])


def test_same_seed_gives_identical_batches_from_independent_streams() -> None:
    a, b = _stream(_images()), _stream(_images())
    for e in (0, 1, 5):
        images_a, labels_a = _epoch(a, e)
        images_b, labels_b = _epoch(b, e)
        np.testing.assert_array_equal(images_a, images_b)
        np.testing.assert_array_equal(labels_a, labels_b)


def test_epoch_is_a_pure_function_of_its_index() -> None:
    stream = _stream()
    later_first = _epoch(stream, 3)
    _epoch(stream, 0)
    again = _epoch(stream, 3)
    np.testing.assert_array_equal(later_first[0], again[0])
    np.testing.assert_array_equal(later_first[1], again[1])


def test_another_seed_gives_another_order_and_augmentation() -> None:
    images_0, labels_0 = _epoch(_stream(seed=0))
    images_1, labels_1 = _epoch(_stream(seed=1))
    assert not np.array_equal(labels_0, labels_1)
    assert not np.array_equal(images_0, images_1)


def test_qat_purpose_draws_a_different_stream_than_baseline() -> None:
    images_b, labels_b = _epoch(_stream(purpose="baseline"))
    images_q, labels_q = _epoch(_stream(purpose="qat"))
    assert not np.array_equal(labels_b, labels_q)
    assert not np.array_equal(images_b, images_q)


def test_successive_epochs_are_shuffled_differently() -> None:
    stream = _stream()
    assert not np.array_equal(_epoch(stream, 0)[1], _epoch(stream, 1)[1])


def test_unknown_purpose_is_rejected() -> None:
    with pytest.raises(KeyError):
        _stream(purpose="finetune")


def test_non_uint8_or_non_nhwc_images_are_rejected() -> None:
    with pytest.raises(ValueError):
        _stream(_images().astype(np.float32))
    with pytest.raises(ValueError):
        _stream(np.zeros((4, 3, 32, 32), np.uint8))


def test_batches_are_uint8_nhwc_with_int64_labels() -> None:
    for batch in _stream().epoch(0):
        assert batch.images.dtype == np.uint8
        assert batch.images.shape == (BATCH, 32, 32, 3)
        assert batch.labels.dtype == np.int64
        assert batch.labels.shape == (BATCH,)


@pytest.mark.parametrize("epoch", [0, 1, 2])
def test_each_epoch_uses_every_image_at_most_once_and_drops_the_partial_batch(epoch: int) -> None:
    stream = _stream()
    assert len(stream) == N_IMAGES // BATCH == 6
    batches = list(stream.epoch(epoch))
    assert len(batches) == len(stream)
    assert all(len(b.labels) == BATCH for b in batches)
    seen = np.concatenate([b.labels for b in batches])
    assert len(seen) == len(stream) * BATCH
    assert len(np.unique(seen)) == len(seen)
    assert seen.min() >= 0 and seen.max() < N_IMAGES


def test_exact_multiple_of_the_batch_size_is_a_full_permutation() -> None:
    stream = _stream(_images(48))
    seen = np.sort(_epoch(stream)[1].ravel())
    np.testing.assert_array_equal(seen, np.arange(48))


def test_without_augmentation_batches_are_the_raw_images_in_shuffled_order() -> None:
    images = _images()
    out, ids = _epoch(_stream(images, pad=0, hflip=False))
    out, ids = out.reshape(-1, 32, 32, 3), ids.ravel()
    np.testing.assert_array_equal(out, images[ids])
    assert not np.array_equal(ids, np.arange(len(ids)))  # shuffled, not file order


def test_hflip_only_yields_each_image_or_its_mirror_and_both_occur() -> None:
    images = _images()
    flipped = 0
    for e in range(3):
        out, ids = _epoch(_stream(images, pad=0, hflip=True), e)
        for img, j in zip(out.reshape(-1, 32, 32, 3), ids.ravel(), strict=True):
            src = images[j]
            if np.array_equal(img, src):
                continue
            np.testing.assert_array_equal(img, src[:, ::-1])
            flipped += 1
    total = 3 * (N_IMAGES // BATCH) * BATCH
    assert 0 < flipped < total


def test_crop_only_yields_32x32_windows_of_the_zero_padded_image() -> None:
    images = _images()
    pad = 4
    padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)), constant_values=0)
    offsets = set()
    for e in range(2):
        out, ids = _epoch(_stream(images, pad=pad, hflip=False), e)
        for img, j in zip(out.reshape(-1, 32, 32, 3), ids.ravel(), strict=True):
            found = [
                (dy, dx)
                for dy in range(2 * pad + 1)
                for dx in range(2 * pad + 1)
                if np.array_equal(img, padded[j, dy : dy + 32, dx : dx + 32])
            ]
            assert len(found) == 1, f"image {j} is no window of its padded source"
            offsets.add(found[0])
    # The crops really move, including to the zero border at both extremes.
    assert len(offsets) > 10
    assert any(dy == 0 or dx == 0 for dy, dx in offsets)
    assert any(dy == 2 * pad or dx == 2 * pad for dy, dx in offsets)


def test_eval_batches_cover_the_test_split_in_order_with_a_short_last_batch() -> None:
    images = _images(50)
    labels = np.arange(50) % 10
    batches = list(eval_batches(images, labels, 16))
    assert [len(b.labels) for b in batches] == [16, 16, 16, 2]
    assert [b.images.shape[0] for b in batches] == [16, 16, 16, 2]
    np.testing.assert_array_equal(np.concatenate([b.images for b in batches]), images)
    np.testing.assert_array_equal(np.concatenate([b.labels for b in batches]), labels)


def test_eval_batches_of_an_exact_multiple_have_no_empty_tail() -> None:
    batches = list(eval_batches(_images(32), np.zeros(32, np.int64), 16))
    assert [len(b.labels) for b in batches] == [16, 16]


def test_calibration_indices_are_deterministic_sorted_unique_and_in_range() -> None:
    a = calibration_indices(1000, 64, seed=3)
    b = calibration_indices(1000, 64, seed=3)
    np.testing.assert_array_equal(a, b)
    assert len(a) == 64
    assert np.all(np.diff(a) > 0)  # sorted and unique
    assert a.min() >= 0 and a.max() < 1000


def test_calibration_indices_depend_on_the_seed() -> None:
    assert not np.array_equal(calibration_indices(1000, 64, 0), calibration_indices(1000, 64, 1))


def test_calibration_indices_for_the_whole_split_are_every_index() -> None:
    np.testing.assert_array_equal(calibration_indices(100, 100, 0), np.arange(100))


def test_calibration_indices_reject_more_samples_than_images() -> None:
    with pytest.raises(ValueError, match="101.*100"):
        calibration_indices(100, 101, 0)


def test_normalize_nhwc_matches_a_hand_computation() -> None:
    mean, std = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
    images = np.zeros((2, 32, 32, 3), np.uint8)
    images[0, 0, 0] = (255, 0, 128)
    images[1, 5, 7] = (10, 20, 30)
    out = normalize_nhwc(images, mean, std)
    assert out.dtype == np.float32
    assert out.shape == images.shape
    expected_000 = [(1.0 - 0.4914) / 0.2470, (0.0 - 0.4822) / 0.2435, (128 / 255 - 0.4465) / 0.2616]
    np.testing.assert_allclose(out[0, 0, 0], expected_000, rtol=1e-6)
    expected_157 = [
        (10 / 255 - 0.4914) / 0.2470,
        (20 / 255 - 0.4822) / 0.2435,
        (30 / 255 - 0.4465) / 0.2616,
    ]
    np.testing.assert_allclose(out[1, 5, 7], expected_157, rtol=1e-6)
    # An all-zero pixel maps to -mean/std in every channel.
    np.testing.assert_allclose(out[1, 0, 0], [-m / s for m, s in zip(mean, std, strict=True)])
