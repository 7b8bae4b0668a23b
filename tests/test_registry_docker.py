"""Push to and pull from a real registry: Debian's docker-registry (CNCF distribution) on
a free loopback port, with a config of our own (filesystem storage in a temp folder, no
auth), and a tiny FROM-scratch image standing in for a runner image.

The test image gets its own local repository (not quant-harness/...), and the lock is a
copy named by $HARNESS_IMAGE_LOCK, so real images and the tracked lock are never touched.
Skips with the reason where no engine answers or the registry binary is absent.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
import tomllib
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.images import build as images
from harness.images import identity as image_identity
from harness.images import publish as registry
from harness_contract.errors import HarnessError
from tests.test_images import ROOT

pytestmark = pytest.mark.docker
docker = pytest.importorskip("docker", reason="docker SDK not installed")

TEST_REPOSITORY = "harness-test/registry"


@pytest.fixture(scope="module")
def client():
    try:
        return images.docker_client(timeout=5)
    except HarnessError as exc:
        pytest.skip(f"no Docker engine: {exc.one_line()}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def _registry(root: Path, auth: bool = False) -> Iterator[str]:
    """A registry on a free loopback port; with ``auth``, htpasswd that nobody logs in to."""
    binary = shutil.which("docker-registry")
    if binary is None:
        pytest.skip("docker-registry not installed (apt-get install docker-registry)")
    host = f"127.0.0.1:{_free_port()}"
    config = (
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
        f"    rootdirectory: {root / 'storage'}\nhttp:\n  addr: {host}\n"
    )
    if auth:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import crypt  # bcrypt through libc: the registry's htpasswd wants bcrypt

            hashed = crypt.crypt("secret", crypt.mksalt(crypt.METHOD_BLOWFISH))
        (root / "htpasswd").write_text(f"someone:{hashed}\n")
        config += f"auth:\n  htpasswd:\n    realm: test\n    path: {root / 'htpasswd'}\n"
    (root / "config.yml").write_text(config)
    with open(root / "registry.log", "w") as log:
        process = subprocess.Popen(
            [binary, "serve", str(root / "config.yml")], stdout=log, stderr=log
        )
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://{host}/v2/", timeout=1)
                break
            except urllib.error.HTTPError:
                break  # 401: it is up and wants credentials
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail(f"the registry did not come up: {(root / 'registry.log').read_text()}")
        yield host
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def registry_host(tmp_path_factory: pytest.TempPathFactory, client) -> Iterator[str]:
    with _registry(tmp_path_factory.mktemp("registry")) as host:
        yield host


def _build(client, tmp_path: Path, framework: str, content: str, versions: str | None = None):
    context = tmp_path / f"ctx-{content}"
    context.mkdir()
    (context / "marker").write_text(content)
    lock = images.load_lock(ROOT / "images" / "lock.toml")
    versions = versions or lock.frameworks[framework].versions_label
    (context / "Dockerfile").write_text(
        "FROM scratch\nCOPY marker /marker\n"
        f'LABEL {images.VERSIONS_LABEL}="{versions}" {registry.BASE_LABEL}="{lock.cpu_base}"\n'
    )
    image, _ = client.images.build(path=str(context), tag=images.image_ref(framework), rm=True)
    return image


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, registry_host: str, client):
    """A lock copy, the test registry from the environment, and a test-only local repo."""
    copy = tmp_path / "lock.toml"
    shutil.copy2(ROOT / "images" / "lock.toml", copy)
    monkeypatch.setenv(images.LOCK_ENV, str(copy))
    monkeypatch.setenv(registry.REGISTRY_ENV, registry_host)
    monkeypatch.setattr(images, "LOCAL_REPOSITORY", TEST_REPOSITORY)
    yield copy
    for image in client.images.list(name=f"{TEST_REPOSITORY}/*"):
        client.images.remove(image.id, force=True)
    prefix = images.load_lock(copy).repository_prefix
    for image in client.images.list(name=f"{registry_host}/{prefix}-*"):
        client.images.remove(image.id, force=True)


def test_push_remove_pull_by_digest_round_trip(client, isolated: Path, tmp_path: Path) -> None:
    built = _build(client, tmp_path, "pytorch", f"round-trip {time.time()}")
    lines: list[str] = []
    (pushed,) = registry.push(["pytorch"], progress=lines.append)
    recorded = tomllib.loads(isolated.read_text())["pytorch"]
    assert recorded["published_digest"] == pushed.digest
    assert recorded["published_ref"] == pushed.reference
    assert any(line.endswith(": Pushed") for line in lines)

    client.images.remove(built.id, force=True)
    with pytest.raises(docker.errors.ImageNotFound):
        client.images.get(built.id)
    registry.pull(["pytorch"], progress=lines.append)
    pulled = client.images.get(images.image_ref("pytorch"))
    assert pulled.id == built.id  # the same image came back, by digest
    run = image_identity.resolve(pulled, "pytorch", images.image_ref("pytorch"))
    assert run.ref == pushed.reference and run.identity.digest == pushed.reference
    assert run.identity.id == built.id


def test_a_retagged_local_image_is_not_the_locked_one(
    client, isolated: Path, tmp_path: Path
) -> None:
    _build(client, tmp_path, "pytorch", f"locked {time.time()}")
    registry.push(["pytorch"], progress=lambda line: None)
    other = _build(client, tmp_path, "pytorch", f"other {time.time()}")  # takes over the tag
    with pytest.raises(HarnessError, match="is not the pytorch image locked") as caught:
        image_identity.resolve(other, "pytorch", images.image_ref("pytorch"))
    assert "harness images pull" in caught.value.one_line()


def test_pull_of_a_digest_the_registry_lacks_is_one_line(isolated: Path) -> None:
    from harness.images.publish_lock import record_published

    digest = "sha256:" + "e5" * 32
    record_published(isolated, "pytorch", digest, f"somewhere/x@{digest}")
    with pytest.raises(HarnessError, match="does not have that image") as caught:
        registry.pull(["pytorch"], progress=lambda line: None)
    assert "\n" not in caught.value.one_line()


def test_push_to_a_registry_that_is_down_is_one_line(
    client, isolated: Path, tmp_path: Path
) -> None:
    _build(client, tmp_path, "pytorch", f"down {time.time()}")
    down = f"127.0.0.1:{_free_port()}"
    with pytest.raises(HarnessError, match="does not answer") as caught:
        registry.push(["pytorch"], registry=down, progress=lambda line: None)
    assert down in caught.value.one_line() and "--registry" in caught.value.one_line()
    assert not tomllib.loads(isolated.read_text())["pytorch"]["published_digest"]


def test_pull_of_a_framework_versions_mismatch_is_refused(
    client, isolated: Path, tmp_path: Path
) -> None:
    _build(client, tmp_path, "pytorch", f"versions {time.time()}", versions="torch==0.0.1")
    registry.push(["pytorch"], progress=lambda line: None)
    with pytest.raises(HarnessError, match="torch==0.0.1"):
        registry.pull(["pytorch"], progress=lambda line: None)


def test_a_registry_asking_for_credentials_is_one_line_naming_docker_login(
    client, isolated: Path, tmp_path: Path
) -> None:
    _build(client, tmp_path, "pytorch", f"auth {time.time()}")
    (tmp_path / "auth-registry").mkdir()
    with (
        _registry(tmp_path / "auth-registry", auth=True) as host,
        pytest.raises(HarnessError, match="asks for credentials") as caught,
    ):
        registry.push(["pytorch"], registry=host, progress=lambda line: None)
    assert f"docker login {host}" in caught.value.one_line()
