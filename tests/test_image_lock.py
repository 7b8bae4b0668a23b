"""``harness images lock``: recording base digests in copies of the real lock file and
Dockerfiles, comparing with resolved digests, and the CLI without a Docker engine.

The registry lookup itself needs an engine that reaches a registry (none here); the
rewrite and the comparison take the resolved digests as input and are tested for real.
"""

from __future__ import annotations

import difflib
import shutil
from pathlib import Path

import pytest

from harness import doctor
from harness.cli.main import main
from harness.images import build as images
from harness.images.base_lock import compare_digests, write_digests
from harness_contract.errors import HarnessError
from tests.test_cli_e2e import _cli_error
from tests.test_images import ROOT, _dockerfile_arg, assert_dockerfile_agrees_with_lock

DIGEST_A = "sha256:" + "a1" * 32
DIGEST_B = "sha256:" + "b2" * 32
TODAY = "2026-11-27"
RESOLVED_LINE = f"# Digest resolved from the registry by `harness images lock` on {TODAY}."


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A copy of the repository's lock file and Dockerfiles, laid out as in the repo."""
    for relative in ["images/lock.toml"] + [f"images/{fw}/Dockerfile" for fw in images.FRAMEWORKS]:
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / relative, tmp_path / relative)
    return tmp_path


def _lock(root: Path) -> images.Lock:
    return images.load_lock(root / "images" / "lock.toml")


def _snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def _without_digest(root: Path, framework: str) -> None:
    """Make ``framework`` unpinned in the copy, as tensorflow was before a lookup."""
    entry = _lock(root).frameworks[framework]
    if not entry.base_digest:
        return
    lock = root / "images" / "lock.toml"
    lock.write_text(lock.read_text().replace(f'"{entry.base_digest}"', '""'))
    dockerfile = root / "images" / framework / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace(entry.base_ref, entry.base_image))


def test_recording_a_digest_pins_lock_and_dockerfile_and_keeps_everything_else(
    repo: Path,
) -> None:
    _without_digest(repo, "tensorflow")
    before = _snapshot(repo)
    old_lines = before["images/lock.toml"].decode().splitlines()
    pytorch_before = _lock(repo).frameworks["pytorch"]

    (change,) = write_digests({"tensorflow": DIGEST_A}, root=repo, today=TODAY)

    assert (change.framework, change.old, change.new) == ("tensorflow", "", DIGEST_A)
    assert "(no digest) -> " + DIGEST_A in change.describe()
    lock = _lock(repo)
    assert lock.frameworks["tensorflow"].base_digest == DIGEST_A
    tag = lock.frameworks["tensorflow"].base_image
    assert _dockerfile_arg("tensorflow", "BASE_IMAGE", repo) == f"{tag}@{DIGEST_A}"
    for framework in images.FRAMEWORKS:
        assert_dockerfile_agrees_with_lock(framework, repo)
    # The other framework's Dockerfile is untouched; the lock differs only in the
    # tensorflow digest line and the comment right above it.
    after = _snapshot(repo)
    assert after["images/pytorch/Dockerfile"] == before["images/pytorch/Dockerfile"]
    assert _lock(repo).frameworks["pytorch"] == pytorch_before
    new_lines = after["images/lock.toml"].decode().splitlines()
    added = [line[2:] for line in difflib.ndiff(old_lines, new_lines) if line.startswith("+ ")]
    removed = [line[2:] for line in difflib.ndiff(old_lines, new_lines) if line.startswith("- ")]
    assert [line.strip() for line in added] == [RESOLVED_LINE, f'base_digest = "{DIGEST_A}"']
    assert removed[-1].strip() == 'base_digest = ""'
    assert all(line.strip().startswith("#") for line in removed[:-1])
    # Every other comment (the header's included) is still there, in order.
    kept_comments = [line for line in old_lines if line.startswith("#") and line not in removed]
    assert [line for line in new_lines if line in kept_comments] == kept_comments
    assert new_lines.index(RESOLVED_LINE) + 1 == new_lines.index(f'base_digest = "{DIGEST_A}"')


def test_a_new_digest_replaces_the_recorded_one_in_both_files(repo: Path) -> None:
    old = {name: entry.base_digest for name, entry in _lock(repo).frameworks.items()}
    changes = write_digests({"pytorch": DIGEST_A, "tensorflow": DIGEST_B}, root=repo, today=TODAY)
    assert [(c.framework, c.old, c.new) for c in changes] == [
        ("pytorch", old["pytorch"], DIGEST_A),
        ("tensorflow", old["tensorflow"], DIGEST_B),
    ]
    assert all(f" -> {c.new}" in c.describe() for c in changes)
    lock = _lock(repo)
    assert {name: entry.base_digest for name, entry in lock.frameworks.items()} == {
        "pytorch": DIGEST_A,
        "tensorflow": DIGEST_B,
    }
    text = (repo / "images" / "lock.toml").read_text()
    assert text.count(RESOLVED_LINE) == 2
    assert "found through code search" not in text  # the unverified note is replaced
    for framework in images.FRAMEWORKS:
        assert_dockerfile_agrees_with_lock(framework, repo)


def test_a_digest_already_resolved_leaves_the_files_byte_for_byte(repo: Path) -> None:
    write_digests({"pytorch": DIGEST_A}, root=repo, today="2026-01-01")
    before = _snapshot(repo)
    (change,) = write_digests({"pytorch": DIGEST_A}, root=repo, today=TODAY)
    assert not change.changed and "unchanged" in change.describe()
    assert _snapshot(repo) == before  # the earlier date stays: no churn


def test_confirming_an_unverified_digest_dates_it_without_changing_it(repo: Path) -> None:
    recorded = _lock(repo).frameworks["pytorch"].base_digest
    assert recorded, "the repository's lock records a pytorch digest"
    (change,) = write_digests({"pytorch": recorded}, root=repo, today=TODAY)
    assert not change.changed
    text = (repo / "images" / "lock.toml").read_text()
    assert RESOLVED_LINE in text and "found through code search" not in text
    assert_dockerfile_agrees_with_lock("pytorch", repo)


@pytest.mark.parametrize(
    "digest",
    ["sha256:xyz", "sha256:" + "A1" * 32, "md5:" + "a" * 32, "sha256:" + "a" * 63, ""],
)
def test_an_invalid_digest_is_refused_and_no_file_is_written(repo: Path, digest: str) -> None:
    before = _snapshot(repo)
    with pytest.raises(HarnessError, match="not of the form sha256") as caught:
        # The valid pytorch digest comes first: it must not be written half-way.
        write_digests({"pytorch": DIGEST_A, "tensorflow": digest}, root=repo, today=TODAY)
    assert "left unchanged" in caught.value.one_line()
    assert _snapshot(repo) == before


def test_a_lock_table_without_a_base_digest_line_gets_one(repo: Path) -> None:
    lock = repo / "images" / "lock.toml"
    text = lock.read_text()
    line = next(x for x in text.splitlines() if x.startswith('base_digest = ""'))
    lock.write_text(text.replace(line + "\n", "", 1))
    write_digests({"tensorflow": DIGEST_B}, root=repo, today=TODAY)
    assert _lock(repo).frameworks["tensorflow"].base_digest == DIGEST_B
    assert_dockerfile_agrees_with_lock("tensorflow", repo)


def test_check_names_each_framework_whose_digest_differs_or_is_missing(repo: Path) -> None:
    _without_digest(repo, "tensorflow")
    recorded = _lock(repo).frameworks["pytorch"].base_digest
    assert compare_digests({"pytorch": recorded}, root=repo) == []
    problems = compare_digests({"pytorch": DIGEST_A, "tensorflow": DIGEST_B}, root=repo)
    assert len(problems) == 2
    pytorch, tensorflow = problems
    assert pytorch.startswith("pytorch:") and recorded in pytorch and DIGEST_A in pytorch
    assert tensorflow.startswith("tensorflow:") and "no digest" in tensorflow
    assert DIGEST_B in tensorflow
    write_digests({"tensorflow": DIGEST_B}, root=repo, today=TODAY)
    assert compare_digests({"pytorch": recorded, "tensorflow": DIGEST_B}, root=repo) == []


def test_check_refuses_an_invalid_resolved_digest(repo: Path) -> None:
    with pytest.raises(HarnessError, match="not of the form sha256"):
        compare_digests({"pytorch": "sha256:nope"}, root=repo)


@pytest.mark.parametrize("extra", [[], ["--check"], ["--framework", "tensorflow"]])
def test_cli_without_a_docker_engine_names_the_problem_and_fix(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], extra: list[str]
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent.sock")
    before = _snapshot(ROOT / "images")
    line = _cli_error(capsys, "images", "lock", *extra)
    assert "no Docker engine answers at unix:///nonexistent.sock" in line
    assert "start the Docker engine" in line and "left unchanged" in line
    assert _snapshot(ROOT / "images") == before


def test_cli_refuses_an_unknown_framework(capsys: pytest.CaptureFixture[str]) -> None:
    line = _cli_error(capsys, "images", "lock", "--framework", "jax")
    assert "jax" in line


def test_doctor_warns_about_an_unpinned_base_with_the_fix(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _without_digest(repo, "tensorflow")
    copy = repo / "images" / "lock.toml"
    real_load_lock = images.load_lock
    monkeypatch.setattr(images, "load_lock", lambda path=copy: real_load_lock(path))
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent.sock")
    found = {check.name: check for check in doctor.checks()}
    unpinned, pinned = found["tensorflow base image"], found["pytorch base image"]
    assert unpinned.ok is None and "no digest" in unpinned.detail
    assert "harness images lock" in unpinned.fix
    assert pinned.ok is True and "@sha256:" in pinned.detail
    main(["doctor"])
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if "tensorflow base image" in x)
    assert line.startswith("warn") and "-> harness images lock" in line
