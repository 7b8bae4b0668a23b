"""``harness images lock``: record each framework's CUDA base by tag and digest.

The digest comes from the registry through the Docker engine's distribution API (the
docker SDK's ``images.get_registry_data``): a manifest lookup, nothing is pulled. For a
multi-platform tag it is the digest of the image index, which is what ``FROM tag@digest``
pins. Looking up and rewriting are separate steps: every framework is resolved first,
then ``images/lock.toml`` and the Dockerfiles are rewritten together (each file
atomically), so a failed lookup leaves every file as it was.

The rewrite is a targeted text edit, not a TOML re-dump: comments and layout stay.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.images.build import REPO_ROOT, _check_framework, docker_client, load_lock, lock_file
from harness_contract.errors import HarnessError
from harness_contract.fs.atomic import write_text_atomic

DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
RESOLVED_COMMENT = "# Digest resolved from the registry by `harness images lock` on {date}."
RESOLVED_MARK = "by `harness images lock` on"
LOOKUP_TIMEOUT_S = 120
UNCHANGED = "images/lock.toml and the Dockerfiles were left unchanged"
ENGINE_FIX = (
    "start the Docker engine (or set DOCKER_HOST) on a machine that reaches the registry; "
    + UNCHANGED
)

_ARG_LINE = re.compile(r"^ARG BASE_IMAGE=.*$", re.MULTILINE)


@dataclass(frozen=True)
class DigestChange:
    """One framework's base digest before and after ``harness images lock``."""

    framework: str
    base_image: str
    old: str
    new: str

    @property
    def changed(self) -> bool:
        return self.old != self.new

    def describe(self) -> str:
        if not self.changed:
            return f"{self.framework}: {self.base_image} unchanged ({self.new})"
        return f"{self.framework}: {self.base_image} {self.old or '(no digest)'} -> {self.new}"


def dockerfile_path(framework: str, root: Path | None = None) -> Path:
    return (root or REPO_ROOT) / "images" / framework / "Dockerfile"


# -- lookup ----------------------------------------------------------------------------------


def resolve_digests(frameworks: Iterable[str], root: Path | None = None) -> dict[str, str]:
    """Each framework's base tag resolved to the registry's current manifest digest.

    Every framework is looked up before anything is written; the first failure is a
    one-line error naming the tag, and no file has been touched.
    """
    frameworks = [_check_framework(name) for name in frameworks]
    lock = load_lock(lock_file(root))
    client = docker_client(fix=ENGINE_FIX)
    client.api.timeout = LOOKUP_TIMEOUT_S  # the ping was short; a registry round trip is not
    return {name: _registry_digest(client, lock.frameworks[name].base_image) for name in frameworks}


def _registry_digest(client: Any, tag: str) -> str:
    import requests
    from docker.auth import resolve_repository_name
    from docker.errors import APIError, DockerException

    try:
        registry = resolve_repository_name(tag)[0]
    except DockerException as exc:
        raise HarnessError(f"{tag} is not a valid image reference ({exc})", UNCHANGED) from exc
    login = (
        "docker login"
        if registry in ("docker.io", "index.docker.io")
        else "docker login " + registry
    )
    try:
        digest = client.images.get_registry_data(tag).id
    except APIError as exc:
        detail = str(exc.explanation or exc).strip()
        lowered = detail.lower()
        if exc.status_code in (401, 403) or "denied" in lowered or "unauthorized" in lowered:
            problem = f"the registry {registry} refused access to {tag} ({detail})"
            fix = f"log in with `{login}` and rerun `harness images lock`; {UNCHANGED}"
        elif exc.status_code == 404 or "manifest unknown" in lowered or "not found" in lowered:
            problem = f"tag {tag} was not found in the registry {registry} ({detail})"
            fix = (
                f"check base_image in images/lock.toml (or `{login}` if it is private); "
                + UNCHANGED
            )
        else:
            problem = f"could not look up {tag} in the registry {registry} ({detail})"
            fix = (
                f"run `harness images lock` where {registry} is reachable "
                f"(or `{login}` first); {UNCHANGED}"
            )
        raise HarnessError(problem, fix) from exc
    except (requests.exceptions.RequestException, DockerException) as exc:
        raise HarnessError(
            f"the Docker engine did not answer the registry lookup for {tag} ({exc})",
            f"run `harness images lock` where {registry} is reachable; {UNCHANGED}",
        ) from exc
    return check_digest(digest, tag)


def check_digest(digest: str, tag: str) -> str:
    """The digest itself, or a one-line error if it is not ``sha256:`` + 64 hex digits."""
    if not isinstance(digest, str) or not DIGEST.fullmatch(digest):
        raise HarnessError(
            f"digest {digest!r} for {tag} is not of the form sha256:<64 hex digits>",
            f"resolve it again with `harness images lock`; {UNCHANGED}",
        )
    return digest


# -- compare ---------------------------------------------------------------------------------


def compare_digests(resolved: dict[str, str], root: Path | None = None) -> list[str]:
    """One line per framework whose recorded base digest differs from ``resolved``."""
    lock = load_lock(lock_file(root))
    problems = []
    for framework, digest in resolved.items():
        entry = lock.frameworks[_check_framework(framework)]
        check_digest(digest, entry.base_image)
        if not entry.base_digest:
            problems.append(
                f"{framework}: images/lock.toml records no digest for {entry.base_image}; "
                f"the registry has {digest}"
            )
        elif entry.base_digest != digest:
            problems.append(
                f"{framework}: images/lock.toml records {entry.base_digest} for "
                f"{entry.base_image}; the registry has {digest}"
            )
    return problems


# -- rewrite ---------------------------------------------------------------------------------


def write_digests(
    resolved: dict[str, str], root: Path | None = None, today: str | None = None
) -> list[DigestChange]:
    """Record ``resolved`` digests in the lock file and the Dockerfiles' BASE_IMAGE defaults.

    Every new text is computed (and the new lock parsed back) before the first write, so
    a bad digest or an unexpected file leaves all of them as they were; each file is then
    replaced atomically. A framework whose digest is already recorded as resolved by this
    command keeps its files byte for byte.
    """
    today = today or datetime.now(UTC).date().isoformat()
    lock_path = lock_file(root)
    lock = load_lock(lock_path)
    lock_text = lock_path.read_text(encoding="utf-8")
    new_lock_text = lock_text
    dockerfiles: dict[Path, str] = {}
    changes = []
    for framework, digest in resolved.items():
        entry = lock.frameworks[_check_framework(framework)]
        check_digest(digest, entry.base_image)
        new_lock_text = rewrite_lock_text(new_lock_text, framework, digest, today)
        path = dockerfile_path(framework, root)
        old_dockerfile = path.read_text(encoding="utf-8")
        new_dockerfile = rewrite_dockerfile_text(old_dockerfile, f"{entry.base_image}@{digest}")
        if new_dockerfile != old_dockerfile:
            dockerfiles[path] = new_dockerfile
        changes.append(DigestChange(framework, entry.base_image, entry.base_digest, digest))
    _check_only_digests_changed(lock_text, new_lock_text, resolved, lock_path)
    for path, text in dockerfiles.items():
        write_text_atomic(path, text)
    if new_lock_text != lock_text:
        write_text_atomic(lock_path, new_lock_text)
    return changes


def rewrite_lock_text(text: str, framework: str, digest: str, today: str) -> str:
    """``text`` with ``[framework]``'s base_digest set to ``digest`` and its comment dated.

    Only the ``base_digest`` line and the comment lines directly above it change (they
    become one line saying when and how the digest was resolved); every other line stays.
    """
    lines = text.splitlines(keepends=True)
    start, end = _table_span(lines, framework)
    digest_at = _find_key(lines, start, end, "base_digest")
    if digest_at is None:  # no base_digest yet: it goes right after base_image
        image_at = _find_key(lines, start, end, "base_image")
        if image_at is None:
            raise HarnessError(
                f"images/lock.toml has no base_image in [{framework}]", "restore the file"
            )
        lines.insert(image_at + 1, 'base_digest = ""\n')
        digest_at = image_at + 1
    comment_from = digest_at
    while comment_from > start + 1 and lines[comment_from - 1].lstrip().startswith("#"):
        comment_from -= 1
    old_comment = lines[comment_from:digest_at]
    old_value = tomllib.loads(lines[digest_at])["base_digest"]
    if old_value == digest and any(RESOLVED_MARK in line for line in old_comment):
        return text  # already resolved to this digest: keep its date, no churn
    newline = "\r\n" if lines[digest_at].endswith("\r\n") else "\n"
    replacement = [
        RESOLVED_COMMENT.format(date=today) + newline,
        f'base_digest = "{digest}"{newline}',
    ]
    return "".join(lines[:comment_from] + replacement + lines[digest_at + 1 :])


def rewrite_dockerfile_text(text: str, base_ref: str) -> str:
    """``text`` with its one ``ARG BASE_IMAGE=`` default set to ``base_ref``."""
    found = _ARG_LINE.findall(text)
    if len(found) != 1:
        raise HarnessError(
            f"expected one `ARG BASE_IMAGE=` line in the Dockerfile, found {len(found)}",
            f"restore it; {UNCHANGED}",
        )
    return _ARG_LINE.sub(lambda _: f"ARG BASE_IMAGE={base_ref}", text, count=1)


def _table_span(lines: list[str], framework: str) -> tuple[int, int]:
    """Index of the ``[framework]`` header and of the next table header (or the end)."""
    header = f"[{framework}]"
    starts = [i for i, line in enumerate(lines) if line.split("#")[0].strip() == header]
    if len(starts) != 1:
        raise HarnessError(
            f"images/lock.toml has {len(starts)} [{framework}] tables, expected one",
            "restore the file",
        )
    start = starts[0]
    end = next(
        (i for i in range(start + 1, len(lines)) if lines[i].lstrip().startswith("[")),
        len(lines),
    )
    # Comments just above the next header belong to it, not to this table.
    while end > start + 1 and lines[end - 1].lstrip().startswith("#"):
        end -= 1
    return start, end


def _find_key(lines: list[str], start: int, end: int, key: str) -> int | None:
    pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
    return next((i for i in range(start + 1, end) if pattern.match(lines[i])), None)


def _check_only_digests_changed(
    old_text: str, new_text: str, resolved: dict[str, str], path: Path
) -> None:
    """The rewritten lock parses, and differs from the old one in the digests alone."""
    try:
        old, new = tomllib.loads(old_text), tomllib.loads(new_text)
    except tomllib.TOMLDecodeError as exc:
        raise HarnessError(f"rewriting {path} would break it ({exc})", UNCHANGED) from exc
    for framework, digest in resolved.items():
        old[framework]["base_digest"] = digest
    if old != new:
        raise HarnessError(
            f"rewriting {path} would change more than the base digests",
            f"restore its layout (one base_digest line per framework table); {UNCHANGED}",
        )
