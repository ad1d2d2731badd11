"""`resnet_small`: the CIFAR ResNet of He et al. (depth 6n+2, or 9n+2 with bottlenecks), with its variants.

One block class covers every variant: y = σ(F(x) + S(x)) with F the residual branch (two 3×3
convolutions, or the 1×1 → 3×3 → 1×1 bottleneck) and S the shortcut (identity, or a 1×1 projection
where the shape changes). `preact` moves normalization and activation in front of each convolution
and drops σ after the sum; `se` rescales F's channels by a squeeze-and-excitation gate. Turning
`skip` off gives the "plain" network of the same depth: the identical branches F with no shortcut
at all (no projections either), so plain and residual nets differ only in S. The shortcuts are
built after everything else, so at the same seed the two nets start with identical branch weights.

References:
    He et al. 2016, "Deep Residual Learning for Image Recognition", arXiv 1512.03385, §3.3, §4.2.
    He et al. 2016b, "Identity Mappings in Deep Residual Networks", arXiv 1603.05027 (pre-activation).
    Hu, Shen & Sun 2018, "Squeeze-and-Excitation Networks", arXiv 1709.01507, fig. 3.
    Li et al. 2018, "Visualizing the Loss Landscape of Neural Nets", arXiv 1712.09913.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import Tensor, nn

from engine.errors import UserInputError
from engine.models.blocks import make_activation, norm2d
from engine.models.registry import register

BLOCKS = {"basic": (2, 6, 1), "bottleneck": (3, 9, 4)}  # block -> (convolutions, layers per n, expansion)


class SqueezeExcite(nn.Module):
    """Channel gate s = sigmoid(W₂ δ(W₁ · mean_hw(x))), output x · s (Hu et al. 2018)."""

    def __init__(self, *, reduce: nn.Module, act: nn.Module, expand: nn.Module, gate: nn.Module):
        super().__init__()
        self.reduce, self.act, self.expand, self.gate = reduce, act, expand, gate

    def forward(self, x: Tensor) -> Tensor:
        s = self.gate(self.expand(self.act(self.reduce(x.mean((2, 3))))))  # (B, C, H, W) -> (B, C)
        return x * s[:, :, None, None]

    def export_kwargs(self) -> dict:
        """Constructor arguments besides the child modules (used by engine.models.export)."""
        return {}


class ResidualBlock(nn.Module):
    """y = act(F(x) + S(x)); pre-activation: y = F(x) + S(x) with norm → act before each conv.

    F is conv1…conv2 (basic) or conv1…conv3 (bottleneck), then the optional SE gate; S is
    `shortcut`, absent in a plain net.
    """

    def __init__(self, *, conv1: nn.Module, norm1: nn.Module, act1: nn.Module, conv2: nn.Module,
                 norm2: nn.Module, act2: nn.Module, conv3: nn.Module | None = None, norm3: nn.Module | None = None,
                 act3: nn.Module | None = None, se: nn.Module | None = None, shortcut: nn.Module | None = None,
                 preact: bool = False):
        super().__init__()
        self.conv1, self.norm1, self.act1 = conv1, norm1, act1
        self.conv2, self.norm2, self.act2 = conv2, norm2, act2
        self.conv3, self.norm3, self.act3 = conv3, norm3, act3
        self.se, self.shortcut, self.preact = se, shortcut, preact
        self.units = 2 if conv3 is None else 3

    def residual(self, x: Tensor) -> Tensor:
        """F(x), the residual branch."""
        for i in range(1, self.units + 1):
            conv, norm, act = getattr(self, f"conv{i}"), getattr(self, f"norm{i}"), getattr(self, f"act{i}")
            if self.preact:
                x = conv(act(norm(x)))
            else:
                x = norm(conv(x))
                x = act(x) if i < self.units else x  # the last activation comes after the sum
        return x if self.se is None else self.se(x)

    def forward(self, x: Tensor) -> Tensor:
        out = self.residual(x)
        if self.shortcut is not None:
            out = out + self.shortcut(x)  # F(x) + x: the block learns a residual
        return out if self.preact else getattr(self, f"act{self.units}")(out)

    def without_residual(self, x: Tensor) -> Tensor:
        """The block with F deleted and the shortcut kept (Veit et al. 2016's lesion)."""
        if self.shortcut is None:
            raise ValueError("a block without a shortcut has no path left when F is removed")
        out = self.shortcut(x)
        return out if self.preact else getattr(self, f"act{self.units}")(out)

    def export_kwargs(self) -> dict:
        """Constructor arguments besides the child modules (used by engine.models.export)."""
        return {"preact": self.preact}

    def extra_repr(self) -> str:
        kind = "bottleneck" if self.units == 3 else "basic"
        return f"{kind}, preact={self.preact}, skip={self.shortcut is not None}, se={self.se is not None}"


def _branch(c_in: int, c_out: int, stride: int, *, block: str, expansion: int, act: str, norm: str,
            preact: bool, se_reduction: int | None) -> dict[str, nn.Module]:
    """The modules of F for one block, keyed by ResidualBlock's argument names."""
    mid = c_out // expansion
    if block == "basic":
        shapes = [(c_in, c_out, 3, stride), (c_out, c_out, 3, 1)]
    else:  # 1×1 reduce → 3×3 (strided, as in torchvision's ResNet v1.5) → 1×1 expand ×4
        shapes = [(c_in, mid, 1, 1), (mid, mid, 3, stride), (mid, c_out, 1, 1)]
    parts: dict[str, nn.Module] = {}
    for i, (a, b, k, s) in enumerate(shapes, start=1):
        parts[f"conv{i}"] = nn.Conv2d(a, b, k, stride=s, padding=k // 2, bias=False)
        parts[f"norm{i}"] = norm2d(norm, a if preact else b)  # pre-activation normalizes the conv's input
        parts[f"act{i}"] = make_activation(act)
    if se_reduction is not None:
        hidden = max(1, c_out // se_reduction)
        parts["se"] = SqueezeExcite(reduce=nn.Linear(c_out, hidden), act=nn.ReLU(), expand=nn.Linear(hidden, c_out),
                                    gate=nn.Sigmoid())
    return parts


def _shortcut(c_in: int, c_out: int, stride: int, *, norm: str, preact: bool) -> nn.Module:
    if stride == 1 and c_in == c_out:
        return nn.Identity()
    # Projection shortcut (the paper's option B) where the shape changes; pre-activation keeps it a bare conv.
    conv = nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False)
    return conv if preact else nn.Sequential(conv, norm2d(norm, c_out))


def _check(depth: int, width: int, dropout: float, block: str, se_reduction: int) -> int:
    """n, the blocks per stage; or UserInputError naming the rule."""
    if block not in BLOCKS:
        raise UserInputError(f"resnet_small block must be one of {', '.join(BLOCKS)}; got {block!r}")
    _, per_n, _ = BLOCKS[block]
    if depth < per_n + 2 or (depth - 2) % per_n:
        examples = ", ".join(str(per_n * n + 2) for n in range(1, 6))
        raise UserInputError(f"resnet_small depth with {block} blocks must be {per_n}n+2 with n ≥ 1 "
                             f"({examples}, …); got {depth}")
    if not 1 <= width <= 128:
        raise UserInputError(f"resnet_small width must be in 1…128; got {width}")
    if not 0.0 <= dropout < 1.0:
        raise UserInputError(f"dropout must be in [0, 1); got {dropout}")
    if not 1 <= se_reduction <= 64:
        raise UserInputError(f"se_reduction r must be in 1…64; got {se_reduction}")
    return (depth - 2) // per_n


@register("resnet_small", title="Small ResNet", family="cnn", gradcam_layer="stage3",
          description="CIFAR-style ResNet, depth 6n+2 (basic) or 9n+2 (bottleneck); skip connections on or off, "
                      "pre-activation, squeeze-and-excitation.")
def resnet_small(*, in_channels: int, num_classes: int, image_size: int, depth: int = 8, width: int = 16,
                 skip: bool = True, activation: str = "relu", norm: str = "batch", dropout: float = 0.0,
                 block: str = "basic", preact: bool = False, se: bool = False, se_reduction: int = 4) -> nn.Sequential:
    n = _check(depth, width, dropout, block, se_reduction)
    expansion = BLOCKS[block][2]
    stem: list[nn.Module] = [nn.Conv2d(in_channels, width, 3, padding=1, bias=False)]
    if not preact:  # pre-activation: the first block normalizes and activates the stem's output itself
        stem += [norm2d(norm, width), make_activation(activation)]
    shapes = []  # (stage, c_in, c_out, stride) of every block
    c_in = width
    for stage, (c_out, stride) in enumerate([(width, 1), (2 * width, 2), (4 * width, 2)], start=1):
        c_out *= expansion
        shapes += [(stage, c_in if i == 0 else c_out, c_out, stride if i == 0 else 1) for i in range(n)]
        c_in = c_out
    branches = [_branch(a, b, s, block=block, expansion=expansion, act=activation, norm=norm, preact=preact,
                        se_reduction=se_reduction if se else None) for _, a, b, s in shapes]
    head: list[tuple[str, nn.Module]] = []
    if preact:  # the last block's sum is not normalized yet
        head.append(("final", nn.Sequential(norm2d(norm, c_in), make_activation(activation))))
    head += [("pool", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten()),  # (B, C, 1, 1) -> (B, C)
             ("dropout", nn.Dropout(dropout)), ("fc", nn.Linear(c_in, num_classes))]
    # Shortcuts last: with skip on or off, every other weight is drawn from the generator in the same order.
    shortcuts = [_shortcut(a, b, s, norm=norm, preact=preact) if skip else None for _, a, b, s in shapes]
    stages = [nn.Sequential(*[ResidualBlock(**branch, shortcut=shortcut, preact=preact)
                              for (st, *_), branch, shortcut in zip(shapes, branches, shortcuts) if st == stage])
              for stage in (1, 2, 3)]
    layers = [("stem", nn.Sequential(*stem)), *((f"stage{i}", s) for i, s in enumerate(stages, start=1)), *head]
    return nn.Sequential(OrderedDict(layers))
