"""Pushing, pulling and image identity against a fake Docker client (no engine needed).

The fake answers as the docker SDK does: ``api.push``/``api.pull`` stream decoded
chunks (status per layer, ``aux`` with the pushed digest, an ``error`` chunk on
failure) and raise ``docker.errors`` exceptions for refused calls. Each test works on a
copy of the real lock file named by ``$HARNESS_IMAGE_LOCK``; the tracked file is never
written.
"""

from __future__ import annotations

import shutil
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness import doctor
from harness.images import build as images
from harness.images import identity as image_identity
from harness.images import publish as registry
from harness.images.publish_lock import record_published
from harness.launch.docker import DockerBackend
from harness_contract import __version__
from harness_contract.errors import HarnessError
from tests.test_images import ROOT

docker = pytest.importorskip("docker", reason="docker SDK not installed")

DIGEST_PT = "sha256:" + "a1" * 32
DIGEST_TF = "sha256:" + "b2" * 32
IMAGE_ID = "sha256:" + "c3" * 32
MIRROR = "127.0.0.1:5000"
RELEASE = images.load_lock(ROOT / "images" / "lock.toml").registry


class FakeImage:
    def __init__(self, framework: str, base: str, repo_digests: list[str] | None = None) -> None:
        lock = images.load_lock(ROOT / "images" / "lock.toml")
        self.id = IMAGE_ID
        self.labels = {
            images.VERSIONS_LABEL: lock.frameworks[framework].versions_label,
            registry.BASE_LABEL: base,
        }
        self.attrs: dict[str, Any] = {"RepoDigests": list(repo_digests or [])}
        self.tags: list[str] = []

    def tag(self, repository: str, tag: str) -> bool:
        self.tags.append(f"{repository}:{tag}")
        return True

    def reload(self) -> None:
        pass


class FakeImages:
    def __init__(self, by_ref: dict[str, FakeImage]) -> None:
        self.by_ref = by_ref

    def get(self, ref: str) -> FakeImage:
        if ref not in self.by_ref:
            raise docker.errors.ImageNotFound(f"No such image: {ref}")
        return self.by_ref[ref]


class FakeApi:
    def __init__(self, push_chunks=None, pull_chunks=None, pull_raises=None) -> None:
        self.timeout = 10
        self.push_chunks, self.pull_chunks, self.pull_raises = push_chunks, pull_chunks, pull_raises
        self.pushed: list[tuple[str, str]] = []
        self.pulled: list[tuple[str, str]] = []

    def push(self, repository: str, tag: str, stream: bool, decode: bool) -> Iterator[dict]:
        self.pushed.append((repository, tag))
        return iter(self.push_chunks(repository, tag))

    def pull(self, repository: str, tag: str, stream: bool, decode: bool) -> Iterator[dict]:
        self.pulled.append((repository, tag))
        if self.pull_raises:
            raise self.pull_raises
        return iter(self.pull_chunks(repository, tag))


class FakeClient:
    def __init__(self, api: FakeApi, by_ref: dict[str, FakeImage]) -> None:
        self.api, self.images = api, FakeImages(by_ref)


def _push_ok(digests: dict[str, str]):
    def chunks(repository: str, tag: str) -> list[dict]:
        digest = digests[repository.rsplit("-", 1)[1]]
        return [
            {"status": f"The push refers to repository [{repository}]"},
            {"status": "Preparing", "id": "layer1"},
            {"status": "Pushing", "id": "layer1", "progressDetail": {"current": 1}},
            {"status": "Pushing", "id": "layer1", "progressDetail": {"current": 2}},
            {"status": "Pushing", "id": "layer1", "progressDetail": {"current": 3}},
            {"status": "Pushed", "id": "layer1"},
            {"status": f"{tag}: digest: {digest} size: 1234"},
            {"progressDetail": {}, "aux": {"Tag": tag, "Digest": digest, "Size": 1234}},
        ]

    return chunks


@pytest.fixture
def lock_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    copy = tmp_path / "lock.toml"
    shutil.copy2(ROOT / "images" / "lock.toml", copy)
    monkeypatch.setenv(images.LOCK_ENV, str(copy))
    monkeypatch.delenv(registry.REGISTRY_ENV, raising=False)
    return copy


def _use(monkeypatch: pytest.MonkeyPatch, client: FakeClient) -> None:
    monkeypatch.setattr(registry, "docker_client", lambda *a, **k: client)


def _local_images(base: str, **repo_digests: list[str]) -> dict[str, FakeImage]:
    return {
        images.image_ref(fw): FakeImage(fw, base, repo_digests.get(fw)) for fw in images.FRAMEWORKS
    }


# -- push ----------------------------------------------------------------------------------


def test_push_records_both_digests_and_references_keeping_comments(
    lock_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = lock_copy.read_text()
    api = FakeApi(push_chunks=_push_ok({"pytorch": DIGEST_PT, "tensorflow": DIGEST_TF}))
    lock = images.load_lock()
    _use(monkeypatch, FakeClient(api, _local_images(lock.cpu_base)))
    lines: list[str] = []
    pushed = registry.push(images.FRAMEWORKS, registry=MIRROR, progress=lines.append)
    prefix = f"{MIRROR}/{lock.repository_prefix}"
    assert [p.reference for p in pushed] == [
        f"{prefix}-pytorch@{DIGEST_PT}",
        f"{prefix}-tensorflow@{DIGEST_TF}",
    ]
    data = tomllib.loads(lock_copy.read_text())
    assert data["pytorch"]["published_digest"] == DIGEST_PT
    assert data["tensorflow"]["published_ref"] == f"{prefix}-tensorflow@{DIGEST_TF}"
    # Every comment line of the original is still there; the tracked file is untouched.
    comments = [line for line in before.splitlines() if line.lstrip().startswith("#")]
    after = lock_copy.read_text().splitlines()
    assert all(line in after for line in comments)
    assert (ROOT / "images" / "lock.toml").read_text() == before
    assert sorted(api.pushed) == [
        (f"{prefix}-pytorch", __version__),
        (f"{prefix}-tensorflow", __version__),
    ]
    # One line per layer and status change (three "Pushing" updates make one line), each
    # naming its image: the two pushes run at the same time.
    assert (
        lines.count("pytorch: layer1: Pushing") == lines.count("tensorflow: layer1: Pushing") == 1
    )


def test_push_of_a_cpu_base_build_to_the_release_registry_is_refused_before_any_push(
    lock_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = FakeApi(push_chunks=_push_ok({"pytorch": DIGEST_PT, "tensorflow": DIGEST_TF}))
    lock = images.load_lock()
    _use(monkeypatch, FakeClient(api, _local_images(lock.cpu_base)))
    with pytest.raises(HarnessError, match="not the release base") as caught:
        registry.push(images.FRAMEWORKS, progress=lambda line: None)
    assert "--allow-cpu-base" in caught.value.one_line() and RELEASE in caught.value.one_line()
    assert api.pushed == []
    assert lock_copy.read_text() == (ROOT / "images" / "lock.toml").read_text()


def test_push_of_a_cpu_base_build_to_the_release_registry_goes_when_asked(
    lock_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = FakeApi(push_chunks=_push_ok({"pytorch": DIGEST_PT, "tensorflow": DIGEST_TF}))
    _use(monkeypatch, FakeClient(api, _local_images(images.load_lock().cpu_base)))
    registry.push(["pytorch"], allow_cpu_base=True, progress=lambda line: None)
    assert api.pushed[0][0].startswith(f"{RELEASE}/")


def test_push_of_a_release_base_build_goes_to_the_release_registry(
    lock_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = FakeApi(push_chunks=_push_ok({"pytorch": DIGEST_PT, "tensorflow": DIGEST_TF}))
    base = images.load_lock().frameworks["pytorch"].base_ref
    _use(monkeypatch, FakeClient(api, _local_images(base)))
    (pushed,) = registry.push(["pytorch"], progress=lambda line: None)
    assert pushed.reference.startswith(f"{RELEASE}/") and pushed.digest == DIGEST_PT


def test_registry_comes_from_the_environment_when_not_named(
    lock_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(registry.REGISTRY_ENV, "mirror.lab:5000")
    api = FakeApi(push_chunks=_push_ok({"pytorch": DIGEST_PT, "tensorflow": DIGEST_TF}))
    _use(monkeypatch, FakeClient(api, _local_images(images.load_lock().cpu_base)))
    registry.push(["pytorch"], progress=lambda line: None)  # not the release registry: allowed
    assert api.pushed[0][0].startswith("mirror.lab:5000/")


@pytest.mark.parametrize(
    ("error", "expected", "fix"),
    [
        (
            'Get "http://127.0.0.1:5000/v2/": dial tcp 127.0.0.1:5000: connect: connection refused',
            "does not answer",
            "--registry",
        ),
        ("unauthorized: authentication required", "asks for credentials", "docker login"),
        ("denied: requested access to the resource is denied", "asks for credentials", "login"),
    ],
)
def test_push_errors_are_one_line_with_the_fix_and_record_nothing(
    lock_copy: Path, monkeypatch: pytest.MonkeyPatch, error: str, expected: str, fix: str
) -> None:
    api = FakeApi(
        push_chunks=lambda r, t: [
            {"status": "Preparing", "id": "l1"},
            {"errorDetail": {"message": error}, "error": error},
        ]
    )
    _use(monkeypatch, FakeClient(api, _local_images(images.load_lock().cpu_base)))
    with pytest.raises(HarnessError, match=expected) as caught:
        registry.push(images.FRAMEWORKS, registry=MIRROR, progress=lambda line: None)
    line = caught.value.one_line()
    assert fix in line and "\n" not in line and MIRROR in line
    assert len(api.pushed) == 2  # each image's push ran to its own failure
    assert lock_copy.read_text() == (ROOT / "images" / "lock.toml").read_text()


def test_both_images_push_at_the_same_time_and_one_failing_keeps_the_others_digest(
    lock_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PyTorch's push waits until TensorFlow's has started: one after the other, it would
    time out. TensorFlow's then fails; PyTorch's digest is recorded all the same."""
    tensorflow_started = threading.Event()
    ok = _push_ok({"pytorch": DIGEST_PT, "tensorflow": DIGEST_TF})

    def chunks(repository: str, tag: str) -> Iterator[dict]:
        if repository.endswith("-tensorflow"):
            tensorflow_started.set()
            yield {"status": "Preparing", "id": "l1"}
            yield {
                "errorDetail": {"message": "blob upload unknown"},
                "error": "blob upload unknown",
            }
            return
        assert tensorflow_started.wait(timeout=10), "the pushes ran one after the other"
        yield from ok(repository, tag)

    api = FakeApi(push_chunks=chunks)
    _use(monkeypatch, FakeClient(api, _local_images(images.load_lock().cpu_base)))
    with pytest.raises(HarnessError, match="blob upload unknown"):
        registry.push(images.FRAMEWORKS, registry=MIRROR, progress=lambda line: None)
    data = tomllib.loads(lock_copy.read_text())
    assert data["pytorch"]["published_digest"] == DIGEST_PT
    assert not data["tensorflow"].get("published_digest")


def test_push_of_a_missing_local_image_names_the_build_command(
    lock_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use(monkeypatch, FakeClient(FakeApi(), {}))
    with pytest.raises(HarnessError, match="not found") as caught:
        registry.push(["pytorch"], registry=MIRROR, progress=lambda line: None)
    assert "harness images build pytorch" in caught.value.one_line()


# -- pull ----------------------------------------------------------------------------------


def _locked(lock_copy: Path, registry_host: str = MIRROR) -> dict[str, str]:
    prefix = images.load_lock().repository_prefix
    refs = {}
    for fw, digest in (("pytorch", DIGEST_PT), ("tensorflow", DIGEST_TF)):
        refs[fw] = f"{registry_host}/{prefix}-{fw}@{digest}"
        record_published(lock_copy, fw, digest, refs[fw])
    return refs


def _pull_ok(repository: str, tag: str) -> list[dict]:
    return [
        {"status": f"Pulling from {repository}", "id": tag},
        {"status": "Pulling fs layer", "id": "l1"},
        {"status": "Downloading", "id": "l1", "progressDetail": {"current": 1}},
        {"status": "Downloading", "id": "l1", "progressDetail": {"current": 2}},
        {"status": "Pull complete", "id": "l1"},
        {"status": f"Digest: {tag}"},
    ]


def test_pull_fetches_the_locked_digest_checks_it_and_tags_it_for_the_backend(
    lock_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    refs = _locked(lock_copy)
    base = images.load_lock().cpu_base
    pulled = {ref: FakeImage(fw, base, [ref]) for fw, ref in refs.items()}
    api = FakeApi(pull_chunks=_pull_ok)
    _use(monkeypatch, FakeClient(api, pulled))
    monkeypatch.setenv(registry.REGISTRY_ENV, MIRROR)
    lines: list[str] = []
    registry.pull(images.FRAMEWORKS, progress=lines.append)
    assert sorted(api.pulled) == sorted(tuple(ref.split("@")) for ref in refs.values())
    assert pulled[refs["pytorch"]].tags == [images.image_ref("pytorch")]
    # Once per image, not per update, each line naming its image.
    assert (
        lines.count("pytorch: l1: Downloading") == lines.count("tensorflow: l1: Downloading") == 1
    )


def test_pull_of_an_image_with_other_framework_versions_is_refused_and_not_tagged(
    lock_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    refs = _locked(lock_copy)
    image = FakeImage("pytorch", "x", [refs["pytorch"]])
    image.labels[images.VERSIONS_LABEL] = "torch==2.0.0"
    _use(monkeypatch, FakeClient(FakeApi(pull_chunks=_pull_ok), {refs["pytorch"]: image}))
    with pytest.raises(HarnessError, match="torch==2.0.0") as caught:
        registry.pull(["pytorch"], registry=MIRROR, progress=lambda line: None)
    assert "does not match" in caught.value.one_line()
    assert image.tags == []


def test_pull_of_an_unknown_digest_is_one_line(
    lock_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _locked(lock_copy)
    missing = docker.errors.NotFound(
        "manifest unknown", explanation="manifest for x@sha256:... not found: manifest unknown"
    )
    _use(monkeypatch, FakeClient(FakeApi(pull_raises=missing), {}))
    with pytest.raises(HarnessError, match="does not have that image") as caught:
        registry.pull(["pytorch"], registry=MIRROR, progress=lambda line: None)
    assert "published_digest" in caught.value.one_line() and MIRROR in caught.value.one_line()


def test_pull_from_a_registry_that_is_down_is_one_line(
    lock_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _locked(lock_copy)
    down = docker.errors.APIError(
        "500 Server Error",
        explanation='Get "http://127.0.0.1:5000/v2/": dial tcp 127.0.0.1:5000: connect: '
        "connection refused",
    )
    _use(monkeypatch, FakeClient(FakeApi(pull_raises=down), {}))
    with pytest.raises(HarnessError, match="does not answer") as caught:
        registry.pull(["pytorch"], registry=MIRROR, progress=lambda line: None)
    assert "HARNESS_REGISTRY" in caught.value.one_line()


def test_pull_without_recorded_digests_names_the_lock(lock_copy: Path) -> None:
    with pytest.raises(HarnessError, match="no published image digest") as caught:
        registry.pull(["tensorflow"], progress=lambda line: None)
    assert str(lock_copy) in caught.value.one_line()


# -- identity ------------------------------------------------------------------------------


def test_a_locked_image_runs_by_digest_with_a_structured_identity(lock_copy: Path) -> None:
    refs = _locked(lock_copy)
    image = FakeImage("pytorch", "x", [refs["pytorch"]])
    run = image_identity.resolve(image, "pytorch", images.image_ref("pytorch"))
    assert run.ref == refs["pytorch"]
    assert run.identity.digest == refs["pytorch"]
    assert run.identity.repository == refs["pytorch"].split("@")[0]
    assert run.identity.tag == __version__ and run.identity.id == IMAGE_ID


def test_a_retagged_image_that_is_not_the_locked_one_is_refused(lock_copy: Path) -> None:
    _locked(lock_copy)
    other = FakeImage("pytorch", "x", [f"{MIRROR}/elsewhere@{'sha256:' + 'd4' * 32}"])
    with pytest.raises(HarnessError, match="is not the pytorch image locked") as caught:
        image_identity.resolve(other, "pytorch", images.image_ref("pytorch"))
    assert "harness images pull" in caught.value.one_line()


def test_a_local_build_without_a_locked_digest_runs_by_tag(lock_copy: Path) -> None:
    run = image_identity.resolve(FakeImage("pytorch", "x"), "pytorch", images.image_ref("pytorch"))
    assert run.ref == images.image_ref("pytorch")
    assert run.identity.digest is None and run.identity.repository == "quant-harness/pytorch"


def test_docker_backend_refuses_an_unlocked_image_before_creating_a_container(
    lock_copy: Path, tmp_path: Path
) -> None:
    from harness.launch.base import LaunchRequest
    from harness_contract.frameworks import FRAMEWORKS

    _locked(lock_copy)
    ref = images.image_ref("pytorch")

    class NoContainers:
        def create(self, **kwargs: Any) -> None:
            raise AssertionError("a container was created for an image that is not locked")

    client = FakeClient(FakeApi(), {ref: FakeImage("pytorch", "x")})
    client.containers = NoContainers()  # type: ignore[attr-defined]
    data = tmp_path / "data"
    data.mkdir()
    request = LaunchRequest(
        FRAMEWORKS["pytorch"], tmp_path / "spec.json", data, tmp_path / "run" / "pytorch", "r", 30
    )
    outcome = DockerBackend(image_for=images.image_ref, client=client).launch(
        request, lambda event: None
    )
    assert outcome.outcome == "user_error"
    assert "is not the pytorch image locked" in outcome.message
    assert "harness images pull" in outcome.message


def test_doctor_says_when_the_local_image_is_not_the_locked_one(lock_copy: Path) -> None:
    refs = _locked(lock_copy)
    client = FakeClient(
        FakeApi(),
        {
            images.image_ref("pytorch"): FakeImage("pytorch", "x", [refs["pytorch"]]),
            images.image_ref("tensorflow"): FakeImage("tensorflow", "x"),
        },
    )
    check = doctor._harness_images(client)
    assert check.ok is False and check.fix == "harness images pull"
    assert "tensorflow image locked" in check.detail and "pytorch image" not in check.detail


# -- the lock file -------------------------------------------------------------------------


def test_recording_twice_replaces_the_lines_instead_of_adding_more(lock_copy: Path) -> None:
    _locked(lock_copy)
    ref = f"{MIRROR}/x-pytorch@{DIGEST_TF}"
    record_published(lock_copy, "pytorch", DIGEST_TF, ref)
    text = lock_copy.read_text()
    keys = [line.split("=")[0].strip() for line in text.splitlines() if "=" in line]
    assert keys.count("published_ref") == 2 and keys.count("published_digest") == 2
    assert images.load_lock().frameworks["pytorch"].published_ref == ref


def test_a_malformed_digest_is_not_recorded(lock_copy: Path) -> None:
    before = lock_copy.read_text()
    with pytest.raises(HarnessError, match="refusing to record"):
        record_published(lock_copy, "pytorch", "sha256:abc", "x@sha256:abc")
    assert lock_copy.read_text() == before


@pytest.mark.parametrize(
    ("ref", "repository", "tag"),
    [
        ("quant-harness/pytorch:0.1.0", "quant-harness/pytorch", "0.1.0"),
        ("127.0.0.1:5000/x/pytorch", "127.0.0.1:5000/x/pytorch", None),
        (f"127.0.0.1:5000/x/pytorch@{DIGEST_PT}", "127.0.0.1:5000/x/pytorch", None),
    ],
)
def test_the_identity_splits_any_local_reference(
    lock_copy: Path, ref: str, repository: str, tag: str | None
) -> None:
    run = image_identity.resolve(FakeImage("pytorch", "x"), "pytorch", ref)
    assert (run.identity.repository, run.identity.tag) == (repository, tag)


# -- the CLI -------------------------------------------------------------------------------


def test_cli_push_prints_each_reference_and_refusals_exit_2_in_one_line(
    lock_copy: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from harness.cli.main import main
    from tests.test_cli_e2e import _cli_error

    api = FakeApi(push_chunks=_push_ok({"pytorch": DIGEST_PT, "tensorflow": DIGEST_TF}))
    _use(monkeypatch, FakeClient(api, _local_images(images.load_lock().cpu_base)))
    assert main(["images", "push", "--registry", MIRROR]) == 0
    out = capsys.readouterr().out
    assert f"pushed {MIRROR}/" in out and f"@{DIGEST_TF}" in out
    line = _cli_error(capsys, "images", "push")  # the release registry, a CPU-base build
    assert "not the release base" in line and "--allow-cpu-base" in line
