"""The challenges of image classification as image edits, and adversarial examples (FGSM, PGD).

Each challenge (illumination, occlusion, deformation, viewpoint, scale, noise, blur) is a pure
function of a batch of images in [0, 1]; the pages apply it and watch the prediction. Adversarial
examples live in pixel space too: ε is a change of pixel value in [0, 1] (8/255 ≈ 0.03 is a
classic budget), since every model here normalizes inside its first module.

References:
    Goodfellow, Shlens & Szegedy 2014, "Explaining and Harnessing Adversarial Examples", arXiv 1412.6572 (FGSM, the panda).
    Madry et al. 2017, "Towards Deep Learning Models Resistant to Adversarial Attacks", arXiv 1706.06083 (PGD).
    Simard et al. 2003, "Best Practices for Convolutional Neural Networks" (elastic distortion).
    Hendrycks & Dietterich 2019, "Benchmarking Neural Network Robustness to Common Corruptions", arXiv 1903.12261.
    Zeiler & Fergus 2013, arXiv 1311.2901 (occlusion sensitivity).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF
from torch import Tensor, nn

from engine import limits
from engine.device import generator
from engine.errors import UserInputError
from engine.explain.features import gaussian_blur, model_device
from engine.models.blocks import evaluating

Progress = Callable[[float, str], None]
CHUNK = 256  # occluded images per forward pass


@dataclass(frozen=True)
class Corruption:
    """All the slider-driven edits, neutral by default; applied in the order of the fields."""

    brightness: float = 0.0  # added to every pixel
    contrast: float = 1.0  # factor around the image mean
    gamma: float = 1.0  # x ↦ x^γ
    rotation: float = 0.0  # degrees, counter-clockwise
    scale: float = 1.0  # zoom factor
    shift: float = 0.0  # fraction of the side, to the right and down
    elastic: float = 0.0  # displacement strength in pixels
    noise: float = 0.0  # Gaussian σ in pixel units
    blur: float = 0.0  # Gaussian σ in pixels
    seed: int = 0


def _check_batch(x: Tensor) -> None:
    if x.dim() != 4:
        raise UserInputError(f"images must have shape (B, C, H, W); got {tuple(x.shape)}")


def photometric(x: Tensor, *, brightness: float = 0.0, contrast: float = 1.0, gamma: float = 1.0) -> Tensor:
    """Illumination: brightness shift, contrast around each image's mean, gamma curve; clipped to [0, 1]."""
    if contrast < 0 or gamma <= 0:
        raise UserInputError(f"contrast must be ≥ 0 and gamma > 0; got {contrast} and {gamma}")
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = ((x - mean) * contrast + mean + brightness).clamp(0.0, 1.0)
    return x.pow(gamma)


def geometric(x: Tensor, *, rotation: float = 0.0, scale: float = 1.0, shift: float = 0.0) -> Tensor:
    """Viewpoint and scale: rotate (degrees, counter-clockwise), zoom and translate about the centre.

    Uncovered pixels become mid-gray.
    """
    if not 0.1 <= scale <= 10:
        raise UserInputError(f"scale must be in 0.1…10; got {scale}")
    side = x.shape[-1]
    # TF.affine turns clockwise for positive angles; we follow the maths convention (counter-clockwise).
    return TF.affine(x, angle=-float(rotation), translate=[round(shift * side), round(shift * side)],
                     scale=float(scale), shear=[0.0, 0.0], interpolation=TF.InterpolationMode.BILINEAR, fill=0.5)


def elastic(x: Tensor, *, alpha: float, sigma: float = 0.0, seed: int = 0) -> Tensor:
    """Deformation: a smooth random displacement field of about `alpha` pixels (Simard et al. 2003)."""
    if alpha == 0:
        return x
    b, _, h, w = x.shape
    sigma = sigma or max(1.0, min(h, w) / 8)  # smoothness, pixels
    field = (torch.rand(b, 2, h, w, generator=generator(seed)) * 2 - 1).to(x.device)  # (B, 2, H, W) in [-1, 1]
    field = gaussian_blur(field, sigma)
    field = field / field.abs().amax(dim=(1, 2, 3), keepdim=True).clamp_min(1e-8) * alpha  # peak = alpha pixels
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, h, device=x.device), torch.linspace(-1, 1, w, device=x.device),
                            indexing="ij")
    grid = torch.stack([xs, ys], dim=-1).expand(b, h, w, 2)  # (B, H, W, 2) in grid_sample's (x, y) order
    offset = field.permute(0, 2, 3, 1) * torch.tensor([2 / max(1, w - 1), 2 / max(1, h - 1)], device=x.device)  # px -> grid
    return F.grid_sample(x, (grid + offset).to(x.dtype), mode="bilinear", padding_mode="border", align_corners=True)


def corrupt(x: Tensor, c: Corruption) -> Tensor:
    """Apply every edit of `c` to images `x` (B, C, H, W) in [0, 1]; the result stays in [0, 1]."""
    _check_batch(x)
    if c.noise < 0 or c.blur < 0:
        raise UserInputError(f"noise and blur must be ≥ 0; got {c.noise} and {c.blur}")
    x = photometric(x, brightness=c.brightness, contrast=c.contrast, gamma=c.gamma)
    if (c.rotation, c.scale, c.shift) != (0.0, 1.0, 0.0):
        x = geometric(x, rotation=c.rotation, scale=c.scale, shift=c.shift)
    x = elastic(x, alpha=c.elastic, seed=c.seed)
    if c.blur > 0:
        x = gaussian_blur(x, c.blur)
    if c.noise > 0:
        x = x + c.noise * torch.randn(x.shape, generator=generator(c.seed + 1)).to(x)
    return x.clamp(0.0, 1.0)


def occlusion_positions(height: int, width: int, *, patch: int, stride: int) -> int:
    """Positions of a `patch` × `patch` square moved by `stride` over the image: one forward pass each."""
    return ((height - patch) // stride + 1) * ((width - patch) // stride + 1)


def fitting_stride(height: int, width: int, *, patch: int) -> int:
    """Half the patch, or the smallest larger stride keeping the scan within MAX_OCCLUSION_POSITIONS."""
    stride = max(1, patch // 2)
    while occlusion_positions(height, width, patch=patch, stride=stride) > limits.MAX_OCCLUSION_POSITIONS:
        stride += 1
    return stride


def check_occlusion(height: int, width: int, *, patch: int, stride: int) -> None:
    """Refuse a patch or stride outside the image, and a scan over MAX_OCCLUSION_POSITIONS forward passes."""
    side = min(height, width)
    if not 1 <= patch <= side or not 1 <= stride <= side:
        raise UserInputError(f"the occlusion window (the gray patch) and its stride must be in 1…{side} pixels; "
                             f"got {patch} and {stride}")
    positions = occlusion_positions(height, width, patch=patch, stride=stride)
    if positions > limits.MAX_OCCLUSION_POSITIONS:
        raise UserInputError(f"a {patch}-pixel patch moved {stride} pixels at a time visits {positions:,} positions, "
                             f"one forward pass each; at most {limits.MAX_OCCLUSION_POSITIONS:,} are allowed: "
                             "use a larger patch or stride")


def occlusion_window(side: int, *, fraction: float) -> tuple[int, int]:
    """(patch, stride) in pixels for a patch of `fraction` of the image side; the stride is half the patch
    (larger where that would exceed MAX_OCCLUSION_POSITIONS)."""
    if not 0 < fraction <= 1:
        raise UserInputError(f"occlusion patch must be a fraction of the side in (0, 1]; got {fraction}")
    patch = max(1, round(fraction * side))
    return patch, fitting_stride(side, side, patch=patch)


def occlusion_heatmap(model: nn.Module, x: Tensor, target: int, *, patch: int, stride: int, fill: float = 0.5,
                      progress: Progress | None = None, should_stop: Callable[[], bool] | None = None) -> Tensor:
    """Probability of `target` with a gray `patch` at each position: (rows, cols) for one image (1, C, H, W)."""
    _check_batch(x)
    h, w = x.shape[-2:]
    check_occlusion(h, w, patch=patch, stride=stride)
    x = x.to(model_device(model))
    tops, lefts = range(0, h - patch + 1, stride), range(0, w - patch + 1, stride)
    positions = [(t, l) for t in tops for l in lefts]
    probabilities = []
    with evaluating(model), torch.no_grad():
        for start in range(0, len(positions), CHUNK):
            if should_stop is not None and should_stop():
                break
            batch = x.repeat(len(positions[start:start + CHUNK]), 1, 1, 1)  # (1, C, H, W) -> (B, C, H, W)
            for i, (t, l) in enumerate(positions[start:start + CHUNK]):
                batch[i, :, t:t + patch, l:l + patch] = fill
            probabilities.append(model(batch).softmax(1)[:, target].cpu())
            if progress is not None:
                done = min(len(positions), start + CHUNK)
                progress(done / len(positions), f"Occluded {done} of {len(positions)} positions")
    values = torch.cat(probabilities) if probabilities else torch.empty(0)
    full = torch.full((len(positions),), float("nan"))
    full[:len(values)] = values
    return full.view(len(tops), len(lefts))


def _check_eps(eps: float) -> None:
    if not 0 <= eps <= 1:
        raise UserInputError(f"ε must be in [0, 1] (pixel units); got {eps}")


def _loss_gradient(model: nn.Module, x: Tensor, target: Tensor) -> tuple[Tensor, float]:
    """∂ cross-entropy / ∂x without touching the parameters' .grad."""
    with torch.enable_grad():  # also when the caller is inside torch.no_grad()
        x = x.detach().clone().requires_grad_(True)
        loss = F.cross_entropy(model(x), target)
        (grad,) = torch.autograd.grad(loss, x)
    return grad, float(loss.detach())


def fgsm(model: nn.Module, x: Tensor, label: Tensor | int, *, eps: float) -> Tensor:
    """Fast Gradient Sign Method: x + ε·sign(∇ₓ loss(x, label)), clipped to [0, 1] (Goodfellow et al. 2014)."""
    _check_batch(x)
    _check_eps(eps)
    home, x = x.device, x.to(model_device(model))
    target = torch.as_tensor(label, device=x.device).reshape(-1).expand(len(x))
    with evaluating(model):
        grad, _ = _loss_gradient(model, x, target)
    return (x.detach() + eps * grad.sign()).clamp(0.0, 1.0).to(home)


def fgsm_sweep(model: nn.Module, x: Tensor, label: int, eps_values: list[float], *, chunk: int = 4,
               progress: Progress | None = None) -> Tensor:
    """Class probabilities (E, K) of one image (1, C, H, W) attacked by FGSM at each ε (one gradient for all)."""
    _check_batch(x)
    for eps in eps_values:
        _check_eps(eps)
    rows, x = [], x.to(model_device(model))
    with evaluating(model):
        grad, _ = _loss_gradient(model, x, torch.tensor([label], device=x.device))
        eps = torch.tensor(eps_values, dtype=x.dtype, device=x.device).view(-1, 1, 1, 1)
        batch = (x.detach() + eps * grad.sign()).clamp(0.0, 1.0)  # (1, C, H, W) -> (E, C, H, W)
        with torch.no_grad():
            for start in range(0, len(batch), chunk):
                rows.append(model(batch[start:start + chunk]).softmax(1).cpu())
                if progress is not None:
                    done = min(len(batch), start + chunk)
                    progress(done / len(batch), f"FGSM at {done} of {len(batch)} values of ε")
    return torch.cat(rows)


def pgd(model: nn.Module, x: Tensor, label: Tensor | int, *, eps: float, step: float | None = None, steps: int = 10,
        random_start: bool = True, seed: int = 0, progress: Progress | None = None,
        should_stop: Callable[[], bool] | None = None) -> Tensor:
    """Projected Gradient Descent: repeated FGSM steps of size `step`, projected back into the ε-ball and [0, 1]."""
    _check_batch(x)
    _check_eps(eps)
    if not 1 <= steps <= limits.MAX_ATTACK_STEPS:
        raise UserInputError(f"PGD steps must be in 1…{limits.MAX_ATTACK_STEPS}; got {steps}")
    step = step if step is not None else 2.5 * eps / steps  # Madry et al.'s rule of thumb
    home, x = x.device, x.to(model_device(model))
    target = torch.as_tensor(label, device=x.device).reshape(-1).expand(len(x))
    x0 = x.detach()
    adv = x0.clone()
    if random_start and eps > 0:
        adv = adv + (torch.rand(x.shape, generator=generator(seed)) * 2 - 1).to(x) * eps
        adv = adv.clamp(0.0, 1.0)
    with evaluating(model):
        for i in range(steps):
            if should_stop is not None and should_stop():
                break
            grad, loss = _loss_gradient(model, adv, target)
            adv = adv + step * grad.sign()
            adv = torch.min(torch.max(adv, x0 - eps), x0 + eps).clamp(0.0, 1.0)  # project onto the ε-ball ∩ [0, 1]
            if progress is not None:
                progress((i + 1) / steps, f"PGD step {i + 1} of {steps}: loss {loss:.3f}")
    return adv.detach().to(home)


ATTACKS = ("fgsm", "pgd")


@dataclass
class Attack:
    """An adversarial image and how far it moved from the original."""

    adversarial: Tensor  # (B, C, H, W) in [0, 1]
    delta: Tensor  # adversarial − original, each pixel in [−ε, ε]
    linf: float  # ‖delta‖∞


def attack(model: nn.Module, x: Tensor, label: Tensor | int, *, method: str, eps: float, steps: int = 10,
           seed: int = 0, progress: Progress | None = None) -> Attack:
    """Attack images `x` with FGSM or PGD (`steps` iterations) within an L∞ ball of radius `eps`."""
    if method == "fgsm":
        adversarial = fgsm(model, x, label, eps=eps)
    elif method == "pgd":
        adversarial = pgd(model, x, label, eps=eps, steps=steps, seed=seed, progress=progress)
    else:
        raise UserInputError(f"attack must be one of {', '.join(ATTACKS)}; got {method!r}")
    return Attack(adversarial, adversarial - x, linf(adversarial, x))


@dataclass
class EpsCurve:
    """FGSM at growing ε: the probability of the true class and of its strongest rival."""

    eps: list[float]
    label: int
    label_probability: list[float]
    rival: int  # the most likely other class at the largest ε
    rival_probability: list[float]


def eps_curve(model: nn.Module, x: Tensor, label: int, *, around: float, points: int = 16,
              progress: Progress | None = None) -> EpsCurve:
    """FGSM on one image (1, C, H, W) at `points` values of ε from 0 to twice `around` (at least 0.02)."""
    if points < 2:
        raise UserInputError(f"an ε curve needs at least 2 points; got {points}")
    top = max(0.02, 2 * around)
    grid = [round(i * top / (points - 1), 5) for i in range(points)]
    probabilities = fgsm_sweep(model, x, label, grid, progress=progress)  # (E, K)
    ranked = probabilities[-1].argsort(descending=True).tolist()
    rival = next(k for k in ranked if k != label)
    return EpsCurve(grid, label, probabilities[:, label].tolist(), rival, probabilities[:, rival].tolist())


def linf(a: Tensor, b: Tensor) -> float:
    """Largest pixel change, ‖a − b‖∞."""
    return float((a - b).abs().max()) if a.numel() else 0.0
