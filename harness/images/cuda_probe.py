"""Runs INSIDE a CUDA runner image: ``python3 -c "$(cat cuda_probe.py)" <framework>``.

The host never imports this module (it imports the framework); harness/images/cuda.py
reads it as text and runs it in a container. It prints one JSON object: the CUDA build the
framework reports, the nvidia-* wheels installed, and the CUDA runtime libraries that load
with ctypes. None of it needs a GPU or a driver: this is how the images are checked on
machines without one.
"""

from __future__ import annotations

import ctypes
import glob
import importlib.metadata
import json
import os
import re
import sys
import sysconfig

# One library per part the runners rely on: the CUDA runtime, cuDNN and cuBLAS.
LIBRARIES = ("libcudart.so", "libcudnn.so", "libcublas.so")


def wheels() -> dict[str, str]:
    """Installed NVIDIA runtime wheels (nvidia-*, cuda-toolkit), name -> version."""
    found = {}
    for dist in importlib.metadata.distributions():
        name = re.sub(r"[-_.]+", "-", dist.metadata["Name"] or "").lower()  # PEP 503
        if name.startswith("nvidia-") or name == "cuda-toolkit":
            found[name] = dist.version
    return dict(sorted(found.items()))


def load_libraries() -> dict[str, str]:
    """stem -> the wheel's library file that ctypes loaded, or "error: ..." when none did."""
    roots = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    loaded = {}
    for stem in LIBRARIES:
        # The wheels keep their libraries under site-packages/nvidia/<part>/lib (CUDA 12)
        # or nvidia/cu13/lib (CUDA 13): versioned names only (libcudart.so.12), no dev link.
        paths = sorted(
            p
            for root in roots
            for p in glob.glob(os.path.join(root, "nvidia", "**", f"{stem}.*"), recursive=True)
            if p.rsplit(".so.", 1)[-1].split(".")[0].isdigit()
        )
        if not paths:
            loaded[stem] = "error: not found under site-packages/nvidia"
            continue
        try:
            ctypes.CDLL(paths[0])
            loaded[stem] = paths[0]
        except OSError as exc:
            loaded[stem] = f"error: {paths[0]}: {exc}"
    return loaded


def torch_facts() -> dict[str, object]:
    import torch

    version = torch.backends.cudnn.version()  # e.g. 92000 for 9.20.0; None: no cuDNN
    return {
        "framework_version": torch.__version__,
        "built_with_cuda": torch.version.cuda is not None,
        "cuda_build": torch.version.cuda,
        "cudnn_build": (
            f"{version // 10000}.{version % 10000 // 100}.{version % 100}" if version else None
        ),
        "gpu_visible": torch.cuda.is_available(),
    }


def tensorflow_facts() -> dict[str, object]:
    import tensorflow as tf

    info = tf.sysconfig.get_build_info()
    return {
        "framework_version": tf.__version__,
        "built_with_cuda": bool(tf.test.is_built_with_cuda()),
        "cuda_build": info.get("cuda_version"),
        "cudnn_build": info.get("cudnn_version"),
        "gpu_visible": bool(tf.config.list_physical_devices("GPU")),
    }


def main(framework: str) -> None:
    facts = {"framework": framework, "wheels": wheels(), "libraries": load_libraries()}
    facts.update(torch_facts() if framework == "pytorch" else tensorflow_facts())
    print(json.dumps(facts, sort_keys=True))


if __name__ == "__main__":
    main(sys.argv[1])
