"""The CIFAR ResNet18 both runners build, as a framework-neutral table of tensors.

3x3 stem with stride 1 and no max-pool, four stages of two basic blocks (the spec's
``model.blocks_per_stage``; 1 makes the ResNet10 the smoke preset runs)
(64/128/256/512 channels times the width multiplier), global average pool, a
10-way linear layer. The "nobn" variant (the paper's) puts a bias on every conv
instead of BatchNorm; the "bn" variant has BatchNorm after every conv.

Tensor names and layouts here are the canonical ones: conv kernels OIHW, dense
kernels (out, in). Runners map them onto their own layers (Keras wants HWIO and
(in, out)), which is what makes identical initial weights possible.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness_contract.spec import ModelSpec

STAGE_CHANNELS = (64, 128, 256, 512)
STAGE_STRIDES = (1, 2, 2, 2)
NUM_CLASSES = 10


@dataclass(frozen=True)
class ConvDef:
    name: str  # e.g. "stages.1.0.conv1"; the BatchNorm that follows it is "<name>_bn"
    in_ch: int
    out_ch: int
    kernel: int
    stride: int
    bias: bool
    bn: bool
    # Last conv of a residual branch: zeroed at init when model.zero_init_residual.
    closes_branch: bool = False


@dataclass(frozen=True)
class BlockDef:
    name: str
    conv1: ConvDef
    conv2: ConvDef
    shortcut: ConvDef | None  # 1x1 projection when shape changes, else identity


@dataclass(frozen=True)
class ResNetDef:
    stem: ConvDef
    blocks: tuple[BlockDef, ...]
    fc_in: int
    num_classes: int = NUM_CLASSES

    def convs(self) -> list[ConvDef]:
        out = [self.stem]
        for b in self.blocks:
            out += [b.conv1, b.conv2] + ([b.shortcut] if b.shortcut else [])
        return out

    def tensor_shapes(self) -> dict[str, tuple[int, ...]]:
        """Every trainable tensor and BatchNorm statistic, canonical name -> canonical shape."""
        shapes: dict[str, tuple[int, ...]] = {}
        for c in self.convs():
            shapes[f"{c.name}.weight"] = (c.out_ch, c.in_ch, c.kernel, c.kernel)
            if c.bias:
                shapes[f"{c.name}.bias"] = (c.out_ch,)
            if c.bn:
                for stat in ("weight", "bias", "running_mean", "running_var"):
                    shapes[f"{c.name}_bn.{stat}"] = (c.out_ch,)
        shapes["fc.weight"] = (self.num_classes, self.fc_in)
        shapes["fc.bias"] = (self.num_classes,)
        return shapes

    def parameter_count(self) -> int:
        """Trainable parameters (BatchNorm running statistics are not parameters)."""
        return sum(
            _prod(shape)
            for name, shape in self.tensor_shapes().items()
            if not name.endswith(("running_mean", "running_var"))
        )


def _prod(shape: tuple[int, ...]) -> int:
    out = 1
    for d in shape:
        out *= d
    return out


def stage_widths(width_multiplier: float) -> tuple[int, ...]:
    return tuple(max(1, round(c * width_multiplier)) for c in STAGE_CHANNELS)


def resnet18(model: ModelSpec) -> ResNetDef:
    bn = model.variant == "bn"

    def conv(name: str, cin: int, cout: int, k: int, s: int, closes: bool = False) -> ConvDef:
        return ConvDef(name, cin, cout, k, s, bias=not bn, bn=bn, closes_branch=closes)

    widths = stage_widths(model.width_multiplier)
    stem = conv("stem", 3, widths[0], 3, 1)
    blocks: list[BlockDef] = []
    cin = widths[0]
    for si, (cout, stride) in enumerate(zip(widths, STAGE_STRIDES, strict=True)):
        for bi in range(model.blocks_per_stage):
            s = stride if bi == 0 else 1
            name = f"stages.{si}.{bi}"
            shortcut = (
                conv(f"{name}.shortcut", cin, cout, 1, s) if (s != 1 or cin != cout) else None
            )
            blocks.append(
                BlockDef(
                    name,
                    conv(f"{name}.conv1", cin, cout, 3, s),
                    conv(f"{name}.conv2", cout, cout, 3, 1, closes=True),
                    shortcut,
                )
            )
            cin = cout
    return ResNetDef(stem=stem, blocks=tuple(blocks), fc_in=cin)
