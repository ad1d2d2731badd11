"""What a CNN computes inside: activation maps, learned filters, top-activating images, feature visualization.

Forward hooks capture every conv, activation and pooling output for one image (hooks are removed
in ``finally``). Feature visualization is activation maximization: start from gray noise and
follow the gradient of one unit's activation with respect to the pixels, with the simple
regularizers that make the result readable (random jitter, occasional blur, decay towards gray).

References:
    Zeiler & Fergus 2013, "Visualizing and Understanding Convolutional Networks", arXiv 1311.2901.
    Erhan et al. 2009, "Visualizing Higher-Layer Features of a Deep Network" (activation maximization).
    Olah, Mordvintsev & Schubert 2017, "Feature Visualization", https://distill.pub/2017/feature-visualization/
    Wang et al. 2020, "CNN Explainer", https://poloclub.github.io/cnn-explainer/
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from engine import limits
from engine.device import generator
from engine.errors import UserInputError
from engine.models.blocks import evaluating, named_activations

Progress = Callable[[float, str], None]
POOL_TYPES = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)
OBJECTIVES = ("channel", "neuron", "layer", "logit")
CHUNK = 256  # images per forward pass when scanning a data set
INIT_NOISE = 0.2  # std of the gray starting image: enough to wake up ReLU channels that are silent on flat gray


@dataclass
class LayerMaps:
    """One layer's output for one image."""

    name: str  # module name, e.g. "block1.2"
    kind: str  # "conv" | "activation" | "pool"
    maps: Tensor  # (C, H, W)

    def __repr__(self) -> str:
        return f"LayerMaps({self.name!r}, {self.kind}, {tuple(self.maps.shape)})"

    def channel_range(self, channel: int) -> tuple[float, float, float]:
        """(min, max, mean) of one channel's map."""
        values = self.maps[channel]
        return float(values.min()), float(values.max()), float(values.mean())


@dataclass
class TopImages:
    """The data-set images that excite each channel of a layer most (mean activation over positions)."""

    layer: str
    indices: Tensor  # (C, k) into the scanned images
    values: Tensor  # (C, k) mean activations, largest first

    def images(self, scanned: Tensor, *, channels: int) -> Tensor:
        """The top images of the first `channels` channels from the `scanned` batch: (channels·k, C, H, W), row by row."""
        return scanned[self.indices[:channels].flatten()]  # (channels, k) -> (channels·k,)


@dataclass(frozen=True)
class Objective:
    """What activation maximization maximizes."""

    kind: str = "channel"  # "channel" | "neuron" | "layer" | "logit"
    layer: str | None = None  # module name; unused for "logit"
    index: int = 0  # channel (channel, neuron) or class (logit)


@dataclass(frozen=True)
class VisConfig:
    image_size: int = 64  # pixels, square
    steps: int = 64
    lr: float = 0.05  # Adam step on pixels in [0, 1]
    jitter: int = 2  # pixels of random shift per step (translation robustness)
    blur_every: int = 4  # steps between Gaussian blurs; 0 = never
    blur_sigma: float = 0.5  # pixels
    decay: float = 0.01  # fraction of the distance to mid-gray removed each step
    seed: int = 0


def canvas_size(objective: str, image_size: int) -> int:
    """Side of the image feature visualization optimizes: a logit needs the model's own input size; a conv
    layer takes any size, and a larger canvas (32…128 px) shows more of what the channel likes."""
    return image_size if objective == "logit" else min(128, max(32, image_size))


def mapped_layers(model: nn.Module) -> list[tuple[str, str]]:
    """(name, kind) of every conv, activation and pooling module, in registration order.

    The activations are the ones `engine.models.blocks.named_activations` finds: a Maxout is one
    activation layer, and the ReLU it uses inside is not shown as another.
    """
    activations = {name for name, _ in named_activations(model)}
    layers = []
    for name, module in model.named_modules():
        kind = ("activation" if name in activations else "conv" if isinstance(module, nn.Conv2d)
                else "pool" if isinstance(module, POOL_TYPES) else None)
        if name and kind:
            layers.append((name, kind))
    return layers


def _module(model: nn.Module, name: str) -> nn.Module:
    modules = dict(model.named_modules())
    if name not in modules or not name:
        raise UserInputError(f"layer must be one of the model's modules; got {name!r}")
    return modules[name]


@contextmanager
def capturing(model: nn.Module, layer_names: Sequence[str]) -> Iterator[dict[str, Tensor]]:
    """Record the outputs of `layer_names` (last call wins for a module used twice) into a dict.

    The hooks are removed when the block ends, even if it raised.
    """
    outputs: dict[str, Tensor] = {}
    handles = []
    try:
        for name in layer_names:
            def hook(module, inputs, output, name=name):
                outputs[name] = output
            handles.append(_module(model, name).register_forward_hook(hook))
        yield outputs
    finally:
        for handle in handles:
            handle.remove()


def activation_maps(model: nn.Module, x: Tensor, *, layers: Sequence[str] | None = None) -> list[LayerMaps]:
    """Every (or the named) conv/activation/pool output for one image `x` (1, C, H, W), in execution order."""
    if x.dim() != 4 or x.shape[0] != 1:
        raise UserInputError(f"activation maps need one image of shape (1, C, H, W); got {tuple(x.shape)}")
    kinds = dict(mapped_layers(model))
    names = list(layers) if layers is not None else list(kinds)
    with capturing(model, names) as outputs, evaluating(model), torch.no_grad():
        model(x.to(model_device(model)))
    missing = [n for n in names if n not in outputs]
    if layers is not None and missing:
        raise RuntimeError(f"the hooks on {missing} never fired: these layers are not used by forward")
    # The dict fills as hooks fire, so it is in execution order (not always registration order).
    return [LayerMaps(n, kinds.get(n, "layer"), out[0].detach().cpu())
            for n, out in outputs.items() if out.dim() == 4]


def model_device(model: nn.Module) -> torch.device:
    """Where the model's parameters live (CPU for a model without any)."""
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def conv_filters(model: nn.Module, layer: str | None = None) -> tuple[str, Tensor]:
    """The weights (O, I, k, k) of conv `layer`, or of the model's first conv, with its name."""
    convs = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise UserInputError("this model has no convolutional layer, so it has no filters to show")
    if layer is None:
        name, conv = convs[0]
    else:
        name, conv = layer, _module(model, layer)
        if not isinstance(conv, nn.Conv2d):
            raise UserInputError(f"layer {layer!r} is a {type(conv).__name__}, not a Conv2d")
    return name, conv.weight.detach().cpu().clone()


def channel_means(model: nn.Module, images: Tensor, layer: str, *, progress: Progress | None = None) -> Tensor:
    """Mean activation of every channel of `layer` for every image: (N, C)."""
    rows = []
    with capturing(model, [layer]) as outputs, evaluating(model), torch.no_grad():
        for start in range(0, len(images), CHUNK):
            model(images[start:start + CHUNK].to(model_device(model)))
            out = outputs[layer]
            rows.append((out.flatten(2).mean(2) if out.dim() > 2 else out).float().cpu())  # (B, C, H, W) -> (B, C)
            if progress is not None:
                progress(min(1.0, (start + CHUNK) / len(images)), f"Scanned {min(start + CHUNK, len(images))} images")
    return torch.cat(rows)


def top_activating(model: nn.Module, images: Tensor, layer: str, *, k: int = 6,
                   progress: Progress | None = None) -> TopImages:
    """The `k` images (of `images`, (N, C, H, W)) with the largest mean activation, per channel of `layer`."""
    if len(images) == 0:
        raise UserInputError("top-activating images need at least one image to scan")
    means = channel_means(model, images, layer, progress=progress)  # (N, C)
    k = max(1, min(int(k), len(images)))
    values, indices = means.topk(k, dim=0)  # (k, C)
    return TopImages(layer, indices.T.contiguous(), values.T.contiguous())


def gaussian_blur(x: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur of (B, C, H, W) with reflect padding; `sigma` in pixels.

    Reflecting needs fewer padded pixels than the side has: a kernel wider than a small image
    (σ = 4 px on 8×8 digits) repeats the edge pixels instead.
    """
    radius = max(1, math.ceil(2 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-t**2 / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    c = x.shape[1]
    mode = "reflect" if radius < min(x.shape[-2:]) else "replicate"
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode=mode), kernel.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(F.pad(x, (0, 0, radius, radius), mode=mode), kernel.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


class _Reached(Exception):
    """Raised by a hook to end the forward pass at the objective's layer (later layers may need another size)."""


def _stop_at(module, inputs, output):
    raise _Reached


def _score(model: nn.Module, x: Tensor, objective: Objective, outputs: dict[str, Tensor]) -> Tensor:
    if objective.kind == "logit":
        return model(x)[0, objective.index]
    try:
        model(x)
    except _Reached:
        pass
    out = outputs[objective.layer][0]  # (C, H, W) or (D,)
    if objective.kind == "layer":
        return out.pow(2).mean()  # DeepDream: excite everything the layer sees
    channel = out[objective.index]
    if objective.kind == "neuron" and channel.dim() == 2:
        return channel[channel.shape[0] // 2, channel.shape[1] // 2]  # the unit at the centre
    return channel.mean()


def _check(model: nn.Module, objective: Objective, config: VisConfig, channels: int) -> None:
    if objective.kind not in OBJECTIVES:
        raise UserInputError(f"objective must be one of {', '.join(OBJECTIVES)}; got {objective.kind!r}")
    if objective.kind != "logit":
        _module(model, objective.layer or "")
    if not 4 <= config.image_size <= limits.MAX_FEATURE_VIS_SIZE:
        raise UserInputError(f"image size must be in 4…{limits.MAX_FEATURE_VIS_SIZE} pixels; got {config.image_size}")
    if not 1 <= config.steps <= limits.MAX_FEATURE_VIS_STEPS:
        raise UserInputError(f"steps must be in 1…{limits.MAX_FEATURE_VIS_STEPS}; got {config.steps}")
    if config.lr <= 0 or not 0 <= config.decay < 1 or config.jitter < 0 or config.blur_sigma <= 0:
        raise UserInputError("learning rate and blur sigma must be > 0, decay in [0, 1), jitter ≥ 0; got "
                             f"lr={config.lr}, blur_sigma={config.blur_sigma}, decay={config.decay}, jitter={config.jitter}")
    if channels not in (1, 3):
        raise UserInputError(f"channels must be 1 or 3; got {channels}")


def visualize(model: nn.Module, objective: Objective, *, channels: int, config: VisConfig = VisConfig(),
              progress: Progress | None = None, should_stop: Callable[[], bool] | None = None) -> Tensor:
    """An image (C, S, S) in [0, 1] that excites `objective`, by gradient ascent on the pixels.

    For a layer objective the forward pass ends at that layer, so any image size works. Only the
    image is optimized (``torch.autograd.grad`` with respect to it), so the model's
    parameters get no ``.grad`` and keep their ``requires_grad``. Stops early when `should_stop()`.
    """
    _check(model, objective, config, channels)
    device = model_device(model)
    gen = generator(config.seed)
    size = config.image_size
    image = (0.5 + INIT_NOISE * torch.randn(1, channels, size, size, generator=gen)).clamp(0, 1)
    image = image.to(device).requires_grad_(True)
    layers = [objective.layer] if objective.kind != "logit" else []
    with capturing(model, layers) as outputs, evaluating(model), torch.enable_grad():
        stop = _module(model, objective.layer).register_forward_hook(_stop_at) if layers else None
        try:
            _ascend(model, image, objective, config, outputs, gen, progress, should_stop)
        finally:
            if stop is not None:
                stop.remove()
    return image.detach()[0].cpu()


def _ascend(model: nn.Module, image: Tensor, objective: Objective, config: VisConfig, outputs: dict[str, Tensor],
            gen: torch.Generator, progress: Progress | None, should_stop: Callable[[], bool] | None) -> None:
    j = config.jitter
    optimizer = torch.optim.Adam([image], lr=config.lr)
    for step in range(config.steps):
        if should_stop is not None and should_stop():
            break
        dy, dx = (torch.randint(-j, j + 1, (2,), generator=gen).tolist() if j else (0, 0))
        shifted = torch.roll(image, shifts=(dy, dx), dims=(2, 3))
        score = _score(model, shifted, objective, outputs)
        (grad,) = torch.autograd.grad(score, image)
        image.grad = -grad  # ascent
        optimizer.step()
        with torch.no_grad():
            image.sub_(0.5).mul_(1 - config.decay).add_(0.5)
            if config.blur_every and (step + 1) % config.blur_every == 0:
                image.copy_(gaussian_blur(image, config.blur_sigma))
            image.clamp_(0.0, 1.0)
        if progress is not None:
            progress((step + 1) / config.steps, f"Step {step + 1} of {config.steps}: activation {float(score.detach()):.3g}")
