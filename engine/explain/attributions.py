"""Attribution maps for one image and one class: which pixels (or regions) drove the score.

Every method is computed by captum on the user's own model. The slow ones (Integrated Gradients,
SmoothGrad, Occlusion) evaluate many images; they are fed to the model in chunks, and every chunk
reports progress and may cancel. Guided Backprop and Guided Grad-CAM change the backward pass of
``nn.ReLU`` modules only, so they are unavailable (with the reason) for other activations.
The sanity check re-runs a method on a copy of the model with re-initialized weights: a map that
barely changes explains the image, not the model.

References:
    Simonyan et al. 2013, "Deep Inside Convolutional Networks", arXiv 1312.6034 (saliency).
    Sundararajan et al. 2017, "Axiomatic Attribution for Deep Networks", arXiv 1703.01365 (IG).
    Smilkov et al. 2017, "SmoothGrad", arXiv 1706.03825.
    Springenberg et al. 2014, "Striving for Simplicity", arXiv 1412.6806 (guided backprop).
    Selvaraju et al. 2016, "Grad-CAM", arXiv 1610.02391 (Grad-CAM, Guided Grad-CAM).
    Zeiler & Fergus 2013, arXiv 1311.2901 (occlusion).
    Adebayo et al. 2018, "Sanity Checks for Saliency Maps", arXiv 1810.03292.
    Kokhlikyan et al. 2020, "Captum", arXiv 2009.07896; https://captum.ai
"""

from __future__ import annotations

import copy
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from captum.attr import (GuidedBackprop, GuidedGradCam, IntegratedGradients, LayerAttribution, LayerGradCam,
                         NoiseTunnel, Occlusion, Saliency)
from torch import Tensor, nn

from engine import limits
from engine.device import seeded
from engine.errors import UserInputError
from engine.explain.features import capturing, mapped_layers, model_device
from engine.explain.robustness import check_occlusion, fitting_stride
from engine.models.blocks import evaluating, named_activations, relu_only
from engine.registry import Registry

Progress = Callable[[float, str], None]
CHUNK_PIXELS = 2_000_000  # C·H·W summed over one chunk: about 0.3 s of resnet18 on 2 CPU threads


class Cancelled(Exception):
    """Raised inside a slow attribution when `should_stop()` says so."""


@dataclass(frozen=True)
class Method:
    name: str
    title: str
    formula: str  # LaTeX
    description: str
    needs_relu: bool = False
    needs_layer: bool = False
    slow: bool = False
    signed: bool = False  # the map has meaningful sign (shown on a diverging colormap)


METHODS: Registry[Method] = Registry("attribution method")
for _method in (
    Method("saliency", "Saliency", r"M_{ij} = \max_c \left|\frac{\partial S_y}{\partial x_{cij}}\right|",
           "The gradient of the class score: which pixels would change the score most if nudged."),
    Method("integrated_gradients", "Integrated Gradients",
           r"\mathrm{IG}_i = (x_i - x'_i)\cdot\frac1m\sum_{k=1}^{m}\frac{\partial S_y(x' + \tfrac{k}{m}(x - x'))}{\partial x_i}",
           "Average gradient along the straight path from a black image x′ to x, times x − x′: the "
           "attributions add up to S(x) − S(x′).", slow=True, signed=True),
    Method("smoothgrad", "SmoothGrad",
           r"\hat M(x) = \frac1n\sum_{k=1}^{n} \left|\nabla_x S_y(x + \varepsilon_k)\right|,"
           r"\ \varepsilon_k\sim\mathcal N(0,\sigma^2)",
           "Saliency averaged over noisy copies of the image, which removes much of its speckle.", slow=True),
    Method("guided_backprop", "Guided Backprop",
           r"R^{(l)} = \mathbb 1[a^{(l)} > 0]\cdot \mathbb 1[R^{(l+1)} > 0]\cdot R^{(l+1)}",
           "Backpropagate only positive gradients through every ReLU: sharp, but largely class-independent.",
           needs_relu=True),
    Method("grad_cam", "Grad-CAM",
           r"L = \mathrm{ReLU}\Big(\sum_k \alpha_k A^k\Big),"
           r"\quad \alpha_k = \frac1{Z}\sum_{i,j}\frac{\partial S_y}{\partial A^k_{ij}}",
           "Weight the last conv layer's maps A^k by their average gradient, sum, keep the positive part, upsample.",
           needs_layer=True),
    Method("guided_grad_cam", "Guided Grad-CAM", r"\text{Guided Backprop} \odot \text{upsample}(L_{\text{Grad-CAM}})",
           "Guided Backprop's detail, kept only where Grad-CAM finds the class.", needs_relu=True, needs_layer=True,
           signed=True),
    Method("occlusion", "Occlusion", r"O_{ij} = S_y(x) - S_y(x \text{ with a gray patch over } (i, j))",
           "Slide a patch over the image; how much the score drops when each region is hidden.", slow=True, signed=True),
):
    METHODS.add(_method.name, _method)


@dataclass(frozen=True)
class AttributionConfig:
    steps: int = 16  # Integrated Gradients: points on the path
    samples: int = 8  # SmoothGrad: noisy copies
    noise: float = 0.15  # SmoothGrad: σ in pixel units ([0, 1])
    window: int = 0  # Occlusion: patch side in pixels; 0 = a quarter of the image side
    stride: int = 0  # Occlusion: step in pixels; 0 = half the window (coarse and cheap)
    seed: int = 0  # SmoothGrad noise


@dataclass
class Attribution:
    method: str
    target: int
    raw: Tensor  # (C, H, W) or (1, H, W) as captum returns it for the image
    heat: Tensor  # (H, W) the map to show
    signed: bool
    seconds: float
    note: str | None = None  # why the map shows nothing, when it is empty


MIN_CAM_SIDE = 4  # a Grad-CAM map smaller than this on a side is a blob, not a location


def grad_cam_layers(model: nn.Module, x: Tensor, preferred: str | None) -> tuple[list[str], str | None]:
    """The layers Grad-CAM can explain `x` at, with their map sides, and the one to start from.

    Candidates are the conv, activation and pooling outputs with a spatial map (forward order).
    The default is `preferred` (the architecture's usual last conv block) when its map is at least
    MIN_CAM_SIDE wide, else the deepest layer that is: at 8×8 input a tinyvgg's last block is 2×2,
    and its map is often empty.
    """
    names = [name for name, _ in mapped_layers(model)]
    if preferred and preferred not in names:
        names.append(preferred)
    with capturing(model, names) as outputs, evaluating(model), torch.no_grad():
        model(x.to(model_device(model)))
    sides = {name: min(out.shape[-2:]) for name, out in outputs.items() if out.dim() == 4 and min(out.shape[-2:]) >= 2}
    choices = [name for name in names if name in sides]
    if not choices:
        return [], None
    if preferred in sides and sides[preferred] >= MIN_CAM_SIDE:
        return choices, preferred
    wide = [name for name in choices if sides[name] >= MIN_CAM_SIDE]
    return choices, (wide[-1] if wide else max(choices, key=sides.get))


def _empty_cam_note(layer: str | None) -> str:
    return (f"The map is empty: at every position of {layer}, the channels weighted by how much they raise "
            "this class's score add up to zero or less, and Grad-CAM keeps only the positive part (ReLU). "
            "Try an earlier layer (a larger map) or another class.")


def names() -> list[str]:
    return METHODS.names()


def method(name: str) -> Method:
    return METHODS.get(name)


def unavailable(name: str, model: nn.Module, *, layer: str | None) -> str | None:
    """Why method `name` cannot run on `model`, or None when it can."""
    entry = method(name)
    if entry.needs_relu and not relu_only(model):
        others = sorted({type(module).__name__ for _, module in named_activations(model)} - {"ReLU"})
        return (f"{entry.title} changes the backward pass of ReLU units only; this model also uses "
                f"{', '.join(others)}, where the rule is undefined.")
    if entry.needs_layer and layer is None:
        return f"{entry.title} needs a convolutional layer with a spatial map; this model has none marked."
    return None


class _Metered(nn.Module):
    """Wraps the model: counts the images it sees, reports progress, and cancels between chunks."""

    def __init__(self, model: nn.Module, total: int, progress: Progress | None,
                 should_stop: Callable[[], bool] | None, label: str):
        super().__init__()
        self.model, self.total, self.seen, self.label = model, max(1, total), 0, label
        self.progress, self.should_stop = progress, should_stop

    def forward(self, x: Tensor) -> Tensor:
        if self.should_stop is not None and self.should_stop():
            raise Cancelled(self.label)
        out = self.model(x)
        self.seen += len(x)
        if self.progress is not None:
            self.progress(min(1.0, self.seen / self.total), f"{self.label}: {min(self.seen, self.total)} of {self.total} images")
        return out


def _chunk(x: Tensor) -> int:
    return max(1, CHUNK_PIXELS // x[0].numel())


def _layer(model: nn.Module, name: str | None) -> nn.Module:
    modules = dict(model.named_modules())
    if not name or name not in modules:
        raise UserInputError(f"Grad-CAM layer must be one of the model's modules; got {name!r}")
    return modules[name]


def grad_cam_tokens(model: nn.Module, x: Tensor, target: int, layer: str,
                    reshape: Callable[[Tensor], Tensor]) -> Tensor:
    """Grad-CAM where the layer's output needs `reshape` to become (B, K, h, w), e.g. ViT tokens."""
    x = x.detach().clone().requires_grad_(True)  # a graph even when every parameter is frozen
    with capturing(model, [layer]) as outputs, torch.enable_grad():
        score = model(x)[0, target]
        activation = outputs[layer]
        (grad,) = torch.autograd.grad(score, activation)
    maps, grads = reshape(activation.detach()), reshape(grad)  # (1, K, h, w)
    weights = grads.mean(dim=(2, 3), keepdim=True)  # α_k, (1, K, 1, 1)
    return F.relu((weights * maps).sum(dim=1, keepdim=True))  # (1, 1, h, w)


def _occlusion_sizes(x: Tensor, config: AttributionConfig) -> tuple[int, int]:
    height, width = x.shape[-2:]
    window = config.window or max(1, min(height, width) // 4)
    stride = config.stride or fitting_stride(height, width, patch=window)
    check_occlusion(height, width, patch=window, stride=stride)
    return window, stride


def _check(x: Tensor, target: int, num_classes: int, config: AttributionConfig) -> None:
    if x.dim() != 4 or x.shape[0] != 1:
        raise UserInputError(f"attributions need one image of shape (1, C, H, W); got {tuple(x.shape)}")
    if not 0 <= target < num_classes:
        raise UserInputError(f"target class must be in 0…{num_classes - 1}; got {target}")
    steps, samples = limits.MAX_IG_STEPS, limits.MAX_SMOOTHGRAD_SAMPLES
    if not 1 <= config.steps <= steps or not 1 <= config.samples <= samples or not 0 < config.noise <= 1:
        raise UserInputError(f"IG steps must be in 1…{steps}, SmoothGrad samples in 1…{samples} and noise in (0, 1]; "
                             f"got {config.steps}, {config.samples}, {config.noise}")


def attribute(model: nn.Module, x: Tensor, name: str, *, target: int, layer: str | None = None,
              reshape: Callable[[Tensor], Tensor] | None = None, config: AttributionConfig = AttributionConfig(),
              progress: Progress | None = None, should_stop: Callable[[], bool] | None = None) -> Attribution:
    """Method `name`'s map for image `x` (1, C, H, W) in [0, 1] and class `target`.

    Runs in eval mode on a detached copy of `x`; the model's ``training``, ``requires_grad`` and
    ``.grad`` are left as found (captum differentiates with ``torch.autograd.grad``).
    """
    entry = method(name)
    reason = unavailable(name, model, layer=layer)
    if reason:
        raise UserInputError(reason)
    x = x.detach().clone().to(model_device(model))
    with evaluating(model), torch.no_grad():
        num_classes = model(x).shape[1]
    _check(x, target, num_classes, config)
    start = time.perf_counter()
    chunk = _chunk(x)
    size = tuple(x.shape[-2:])
    with evaluating(model), warnings.catch_warnings(), torch.enable_grad():
        # captum warns that it sets requires_grad on its own copy of the input and hooks ReLUs; both expected.
        warnings.filterwarnings("ignore", message=".*(require gradients|backward hooks).*")
        if name == "saliency":
            raw = Saliency(model).attribute(x, target=target, abs=True)
        elif name == "integrated_gradients":
            metered = _Metered(model, config.steps, progress, should_stop, "Integrated Gradients")
            raw = IntegratedGradients(metered).attribute(x, baselines=torch.zeros_like(x), target=target,
                                                         n_steps=config.steps, method="riemann_trapezoid",
                                                         internal_batch_size=chunk)
        elif name == "smoothgrad":
            metered = _Metered(model, config.samples, progress, should_stop, "SmoothGrad")
            with seeded(config.seed, x.device):  # captum draws the noise from torch's global generator
                raw = NoiseTunnel(Saliency(metered)).attribute(x, nt_type="smoothgrad", nt_samples=config.samples,
                                                               nt_samples_batch_size=chunk, stdevs=config.noise,
                                                               target=target, abs=True)
        elif name == "guided_backprop":
            raw = GuidedBackprop(model).attribute(x, target=target)
        elif name == "grad_cam":
            if reshape is not None:
                cam = grad_cam_tokens(model, x, target, layer, reshape)
            else:
                cam = LayerGradCam(model, _layer(model, layer)).attribute(x, target=target, relu_attributions=True)
            raw = LayerAttribution.interpolate(cam, size, interpolate_mode="bilinear")
        elif name == "guided_grad_cam":
            raw = GuidedGradCam(model, _layer(model, layer)).attribute(x, target=target, interpolate_mode="bilinear")
        else:  # occlusion
            window, stride = _occlusion_sizes(x, config)
            c = x.shape[1]
            positions = ((size[0] - window) // stride + 1) * ((size[1] - window) // stride + 1)
            metered = _Metered(model, positions + 1, progress, should_stop, "Occlusion")
            raw = Occlusion(metered).attribute(x, sliding_window_shapes=(c, window, window), strides=(c, stride, stride),
                                               baselines=0.5, target=target, perturbations_per_eval=chunk)
    raw = raw.detach()[0].cpu()  # (1, C, H, W) -> (C, H, W)
    heat = raw.sum(0) if entry.signed else raw.abs().amax(0)  # (C, H, W) -> (H, W)
    note = _empty_cam_note(layer) if entry.needs_layer and not heat.any() else None
    return Attribution(name, target, raw, heat, entry.signed, time.perf_counter() - start, note)


def randomized_copy(model: nn.Module, *, seed: int = 0) -> nn.Module:
    """A copy of `model` with every learnable layer re-initialized (the Adebayo et al. model randomization)."""
    clone = copy.deepcopy(model)
    with seeded(seed, model_device(clone)):  # reset_parameters draws from torch's global generator
        for module in clone.modules():
            if module is not clone and hasattr(module, "reset_parameters") and any(
                    True for _ in module.parameters(recurse=False)):
                module.reset_parameters()
    return clone


def rank_correlation(a: Tensor, b: Tensor) -> float:
    """Spearman rank correlation between two maps of the same shape (|values|, as Adebayo et al. compare)."""
    ra = a.abs().flatten().argsort().argsort().double()
    rb = b.abs().flatten().argsort().argsort().double()
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denominator = float(ra.norm() * rb.norm())
    return float((ra * rb).sum()) / denominator if denominator > 0 else 0.0
