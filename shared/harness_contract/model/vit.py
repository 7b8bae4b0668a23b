"""The small Vision Transformer both runners build (``model.arch = "vit"``), as a
framework-neutral table of tensors, like the ResNet in ``architecture``.

A patchify conv (kernel = stride = patch) turns a 32x32 image into tokens, a learned
position embedding is added, then ``depth`` pre-norm encoder blocks::

    x = x + proj(attention(qkv(norm1(x))))      # multi-head self-attention
    x = x + fc2(gelu(fc1(norm2(x))))            # MLP, exact (erf) GELU

a final LayerNorm, the mean over tokens and a 10-way linear head. Attention is written
out as two matmuls and a softmax (not a fused kernel) in both runners, so the int8 tool
chains meet the same ops: that is where their support differs.

Canonical layouts: the patch conv OIHW, dense kernels (out, in); ``qkv``'s output rows
are q, then k, then v, each split into heads of ``dim / heads`` consecutive rows (timm's
layout). ``pos_embed`` is (tokens, dim). Runners convert layouts, never values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from harness_contract.model.architecture import NUM_CLASSES
from harness_contract.spec import ModelSpec

IMAGE_SIDE = 32
# Both frameworks' LayerNorm epsilon (PyTorch's default is 1e-5, Keras' 1e-3: the
# canonical value is passed to each explicitly).
LAYER_NORM_EPS = 1e-6


@dataclass(frozen=True)
class ViTDef:
    patch: int
    dim: int
    depth: int
    heads: int
    mlp_dim: int
    num_classes: int = NUM_CLASSES

    @property
    def tokens(self) -> int:
        return (IMAGE_SIDE // self.patch) ** 2

    @property
    def head_dim(self) -> int:
        return self.dim // self.heads

    @property
    def title(self) -> str:
        return (
            f"ViT ({self.depth} blocks, width {self.dim}, {self.heads} heads, patch {self.patch})"
        )

    def linears(self) -> list[tuple[str, int, int]]:
        """Every dense layer, in forward order: (canonical name, in features, out features).
        The patch embedding is a conv and the head comes last (see ``tensor_shapes``)."""
        out: list[tuple[str, int, int]] = []
        for i in range(self.depth):
            b = f"blocks.{i}"
            out += [
                (f"{b}.attn.qkv", self.dim, 3 * self.dim),
                (f"{b}.attn.proj", self.dim, self.dim),
                (f"{b}.mlp.fc1", self.dim, self.mlp_dim),
                (f"{b}.mlp.fc2", self.mlp_dim, self.dim),
            ]
        return out + [("head", self.dim, self.num_classes)]

    def norms(self) -> list[str]:
        return [f"blocks.{i}.norm{j}" for i in range(self.depth) for j in (1, 2)] + ["norm"]

    def tensor_shapes(self) -> dict[str, tuple[int, ...]]:
        """Every trainable tensor, canonical name -> canonical shape."""
        shapes: dict[str, tuple[int, ...]] = {
            "patch_embed.weight": (self.dim, 3, self.patch, self.patch),
            "patch_embed.bias": (self.dim,),
            "pos_embed": (self.tokens, self.dim),
        }
        for name in self.norms():
            shapes[f"{name}.weight"] = (self.dim,)
            shapes[f"{name}.bias"] = (self.dim,)
        for name, fan_in, fan_out in self.linears():
            shapes[f"{name}.weight"] = (fan_out, fan_in)
            shapes[f"{name}.bias"] = (fan_out,)
        return shapes

    def parameter_count(self) -> int:
        return sum(math.prod(shape) for shape in self.tensor_shapes().values())


def vit(model: ModelSpec) -> ViTDef:
    v = model.vit
    return ViTDef(
        patch=v.patch,
        dim=v.dim,
        depth=v.depth,
        heads=v.heads,
        mlp_dim=max(1, round(v.dim * v.mlp_ratio)),
    )
