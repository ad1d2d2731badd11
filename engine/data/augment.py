"""Data augmentation as a pipeline of named steps with parameters, applied to whole batches on the device.

A pipeline is plain data — a list of steps such as ``[{"name": "flip", "p": 0.5}, {"name": "crop",
"scale": 0.6}]`` — so it pickles into jobs, saves with a Run (TrainConfig.augmentation) and travels in
URLs and on the command line as text (``flip;crop:scale=0.6``). A preset name ("flip_shift") stands for
its list; the first presets are the flip/shift/noise of earlier versions, so saved runs keep working.
`build(spec)` makes a `Pipeline` that transforms (B, C, H, W) batches with per-image random parameters
drawn from the run's generator (engine.data.augment_ops). MixUp and CutMix steps mix labels too, so the
Trainer hands them to engine.training.targets (`label_mixing`); they come last.

Chosen over kornia.augmentation after measuring both (benchmarks/augmentation.py: tinyvgg, shapes 32×32,
batch 128, 2 CPU threads, flip + crop + jitter + erasing, on a busy machine): training images/s with ÷
without the pipeline 0.87–0.94 here, 0.68–0.70 with kornia's; the pipeline alone took 6–8 ms a batch
here, 18–35 ms in kornia. Both repeat for a seed and draw per image, but kornia draws from torch's global
generator (its parameters are drawn under engine.device's lock, from a seed the run's generator gives)
and spends its time in per-call checks and bookkeeping on small batches.

References:
    Shorten & Khoshgoftaar 2019, "A survey on Image Data Augmentation", J. Big Data 6:60.
    Cubuk et al. 2019, "AutoAugment" (named operations with magnitudes), arXiv 1805.09501.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import torch
from torch import Tensor

from engine.data import augment_ops as ops
from engine.errors import UserInputError
from engine.limits import MAX_AUGMENT_STEPS
from engine.registry import Registry

FILLS = ("zeros", "border", "reflection")  # what a warp shows where the image moved away (grid_sample's names)
MIRROR_UNSAFE = {"digits", "mnist"}  # a mirrored 2, 3 or 7 is not a digit, and test digits are never mirrored
UPRIGHT = {"digits", "mnist", "fashion_mnist", "faces", "cifar10"}  # upside-down images never occur at test time
TURN_UNSAFE_DEGREES = 45  # digits: beyond this a 6 starts to look like a 9
SUGGESTED = {"digits": "digits_safe", "mnist": "digits_safe", "shapes": "flip_turn"}  # else crop_flip


# ---- steps -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Param:
    """One parameter of a step: a number in [low, high], or one of `choices`."""

    name: str
    default: float | str
    low: float = 0.0
    high: float = 1.0
    help: str = ""
    why: str = ""  # the reason for the bounds, for the error message
    choices: tuple[str, ...] = ()

    def check(self, step: str, value: object) -> float | str:
        if self.choices:
            if value not in self.choices:
                raise UserInputError(f"{step} {self.name} must be one of {', '.join(self.choices)}; got {value!r}")
            return str(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UserInputError(f"{step} {self.name} must be a number; got {value!r}")
        if not self.low <= value <= self.high:  # also refuses NaN
            raise UserInputError(f"{step} {self.name} must be between {self.low:g} and {self.high:g}"
                                 f"{': ' + self.why if self.why else ''}; got {value}")
        return float(value)


@dataclass(frozen=True)
class Step:
    """One kind of augmentation: what it does, its parameters, and its torchvision.transforms.v2 equivalent."""

    title: str
    kind: str  # "geometric" (a matrix, fused with its neighbours), "pixel" or "mixing" (labels too)
    description: str
    params: tuple[Param, ...]
    transform: Callable | None  # (x, generator, **params) -> images (pixel) or (B, 3, 3) matrices (geometric)
    torchvision: Callable[[dict, int, int], str]  # (params, image size, classes) -> a transforms.v2 expression

    def defaults(self) -> dict:
        return {p.name: p.default for p in self.params}


STEPS: Registry[Step] = Registry("augmentation step")
_P = partial(Param, "p", 0.5, 0.0, 1.0, "Probability that an image gets this transform.")
_FILL = partial(Param, "fill", help="What shows where the image moved away: black, the edge pixels, a mirror image.",
                choices=FILLS)
_BILINEAR = "interpolation=v2.InterpolationMode.BILINEAR"


def _fill_note(params: dict) -> str:
    return "" if params["fill"] == "zeros" else f"  # torchvision fills with 0, not {params['fill']}"


def _blur_kernel(sigma: float, image_size: int) -> int:
    return 2 * max(1, min(math.ceil(2 * sigma), image_size - 1)) + 1  # as augment_ops.blur's radius


for _name, _step in (
    ("flip", Step("Horizontal flip", "pixel", "Mirror left–right: a cat facing left is still a cat.", (_P(),),
                  ops.flip, lambda q, s, k: f"v2.RandomHorizontalFlip(p={q['p']:g})")),
    ("vflip", Step("Vertical flip", "pixel", "Mirror top–bottom: only where upside-down images really occur "
                   "(satellite or microscope images), never for digits or faces.", (_P(),),
                   partial(ops.flip, dim=-2), lambda q, s, k: f"v2.RandomVerticalFlip(p={q['p']:g})")),
    ("crop", Step("Random resized crop", "geometric", "Cut out a random box and stretch it to full size: "
                  "zoom and aspect changes.",
                  (Param("scale", 0.6, 0.08, 1.0, "Smallest share of the image's area a crop keeps.",
                         "a crop keeps between 8 % and all of the image"),
                   Param("ratio", 4 / 3, 1.0, 3.0, "Largest aspect change, either way (4/3: from 3:4 to 4:3).")),
                  ops.crop_matrix, lambda q, s, k: f"v2.RandomResizedCrop({s}, scale=({q['scale']:g}, 1.0), "
                  f"ratio=({1 / q['ratio']:.3g}, {q['ratio']:.3g}), antialias=True)")),
    ("rotate", Step("Rotation", "geometric", "Turn by a random angle up to ± degrees.",
                    (Param("degrees", 15.0, 0.0, 180.0, "Largest angle, either way."), _FILL("zeros")),
                    ops.rotation_matrix,
                    lambda q, s, k: f"v2.RandomRotation({q['degrees']:g}, {_BILINEAR}){_fill_note(q)}")),
    ("shear", Step("Shear", "geometric", "Slant sideways, as if seen at an angle.",
                   (Param("degrees", 10.0, 0.0, 45.0, "Largest shear angle, either way.",
                          "beyond 45° a shear flattens the image"), _FILL("zeros")),
                   ops.shear_matrix,
                   lambda q, s, k: f"v2.RandomAffine(0, shear={q['degrees']:g}, {_BILINEAR}){_fill_note(q)}")),
    ("shift", Step("Translation", "geometric", "Move by up to ± a fraction of the image side.",
                   (Param("fraction", 0.125, 0.0, 0.5, "Largest move, as a share of the side.",
                          "half the side moves the object off the image"), _FILL("border")),
                   ops.shift_matrix, lambda q, s, k: f"v2.RandomAffine(0, translate=({q['fraction']:g}, "
                   f"{q['fraction']:g}), {_BILINEAR}){_fill_note(q)}")),
    ("jitter", Step("Colour jitter", "pixel", "Change brightness, contrast, saturation and hue a little.",
                    (Param("brightness", 0.3, 0.0, 1.0, "Brightness factor ∈ [1 − b, 1 + b]."),
                     Param("contrast", 0.3, 0.0, 1.0, "Contrast factor ∈ [1 − c, 1 + c]."),
                     Param("saturation", 0.3, 0.0, 1.0, "Saturation factor ∈ [1 − s, 1 + s] (colour only)."),
                     Param("hue", 0.05, 0.0, 0.5, "Hue shift in turns of the colour wheel (colour only).",
                           "half a turn already reaches the opposite colour")),
                    ops.jitter, lambda q, s, k: f"v2.ColorJitter(brightness={q['brightness']:g}, "
                    f"contrast={q['contrast']:g}, saturation={q['saturation']:g}, hue={q['hue']:g})")),
    ("noise", Step("Gaussian noise", "pixel", "Add random noise to every pixel.",
                   (Param("std", 0.05, 0.0, 0.5, "Standard deviation σ in pixel units (pixels lie in [0, 1])."),),
                   ops.noise, lambda q, s, k: f"v2.GaussianNoise(sigma={q['std']:g})")),
    ("blur", Step("Gaussian blur", "pixel", "Blur with a random σ: out-of-focus or low-resolution images.",
                  (Param("sigma", 1.0, 0.1, 3.0, "Largest blur σ in pixels; each image draws σ ∈ [0.1, sigma]."),
                   _P()),
                  ops.blur, lambda q, s, k: f"v2.RandomApply([v2.GaussianBlur({_blur_kernel(q['sigma'], s)}, "
                  f"sigma=(0.1, {q['sigma']:g}))], p={q['p']:g})")),
    ("erase", Step("Random erasing (cutout)", "pixel", "Blank out a random box: the model must use the rest.",
                   (_P(), Param("scale", 0.2, ops.MIN_ERASE_AREA, 0.75, "Largest share of the area erased.",
                                "at 1 the whole image is erased and nothing is left to learn from"),
                    Param("value", 0.0, 0.0, 1.0, "The grey level the box is filled with.")),
                   ops.erase, lambda q, s, k: f"v2.RandomErasing(p={q['p']:g}, scale=({ops.MIN_ERASE_AREA:g}, "
                   f"{q['scale']:g}), value={q['value']:g})")),
    ("mixup", Step("MixUp", "mixing", "Blend two images and their labels: λ·x₁ + (1 − λ)·x₂.",
                   (Param("alpha", 0.4, 0.01, 10.0, "α of Beta(α, α): small α mostly keeps one image.",
                          "λ ~ Beta(α, α) needs α > 0"),),
                   None, lambda q, s, k: f"v2.MixUp(alpha={q['alpha']:g}, num_classes={k})")),
    ("cutmix", Step("CutMix", "mixing", "Paste a box of another image; labels mix by the box's share of the area.",
                    (Param("alpha", 1.0, 0.01, 10.0, "α of Beta(α, α) for the kept share λ.",
                           "λ ~ Beta(α, α) needs α > 0"),),
                    None, lambda q, s, k: f"v2.CutMix(alpha={q['alpha']:g}, num_classes={k})")),
):
    STEPS.add(_name, _step)


def step_names() -> list[str]:
    return STEPS.names()


def step_info(name: str) -> Step:
    return STEPS.get(name)


# ---- presets -----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Augmentation:
    """A named pipeline: what Train Lab's menu, `--augmentation` and saved runs call it."""

    title: str
    steps: tuple[dict, ...] = ()


AUGMENTATIONS: Registry[Augmentation] = Registry("augmentation")
_FLIP, _SHIFT = {"name": "flip"}, {"name": "shift"}
for _name, _preset in (
    ("none", Augmentation("None")), ("flip", Augmentation("Horizontal flip", (_FLIP,))),
    ("shift", Augmentation("Random shift", (_SHIFT,))), ("flip_shift", Augmentation("Flip + shift", (_FLIP, _SHIFT))),
    ("noise", Augmentation("Gaussian noise", ({"name": "noise"},))),
    ("crop_flip", Augmentation("Crop + flip", ({"name": "crop", "scale": 0.6}, _FLIP))),
    ("digits_safe", Augmentation("Digits: small crops and turns, no flips",
                                 ({"name": "crop", "scale": 0.7}, {"name": "rotate", "degrees": 10.0}))),
    ("flip_turn", Augmentation("Flip + any turn (shapes)", (_FLIP, {"name": "rotate", "degrees": 180.0,
                                                                    "fill": "border"}))),
    ("standard", Augmentation("Flip + crop + jitter + erasing", (_FLIP, {"name": "crop"}, {"name": "jitter"},
                                                                 {"name": "erase"}))),
):
    AUGMENTATIONS.add(_name, _preset)


def names() -> list[str]:
    return AUGMENTATIONS.names()


def info(name: str) -> Augmentation:
    return AUGMENTATIONS.get(name)


# ---- specs: a preset name or a list of steps --------------------------------------------------------------

Spec = str | list | tuple  # a preset name, or steps {"name": …, param: value}


def _complete(step: object) -> dict:
    """A step with every parameter, each checked; refuses unknown names and parameters."""
    if not isinstance(step, dict) or not isinstance(step.get("name"), str):
        raise UserInputError(f"an augmentation step must be a dict with a 'name'; got {step!r}")
    entry = step_info(step["name"])
    known = {p.name: p for p in entry.params}
    unknown = sorted(set(step) - set(known) - {"name"})
    if unknown:
        raise UserInputError(f"{step['name']} has no parameter {unknown[0]!r}; its parameters: "
                             f"{', '.join(known) or '(none)'}")
    return {"name": step["name"], **{p.name: p.check(step["name"], step.get(p.name, p.default))
                                     for p in entry.params}}


def resolve(spec: Spec) -> list[dict]:
    """The steps of `spec` with all their parameters, checked: MixUp/CutMix at most once, and last."""
    steps = list(info(spec).steps) if isinstance(spec, str) else spec
    if not isinstance(steps, (list, tuple)):
        raise UserInputError(f"augmentation must be a preset name or a list of steps; got {spec!r}")
    if len(steps) > MAX_AUGMENT_STEPS:
        raise UserInputError(f"an augmentation pipeline may have at most {MAX_AUGMENT_STEPS} steps; got {len(steps)}")
    steps = [_complete(step) for step in steps]
    mixing = [i for i, step in enumerate(steps) if step_info(step["name"]).kind == "mixing"]
    if len(mixing) > 1 or (mixing and mixing[0] != len(steps) - 1):
        raise UserInputError("MixUp or CutMix may appear once, as the last step: they mix labels as well as images")
    return steps


def label_mixing(spec: Spec) -> tuple[str, float] | None:
    """("mixup" | "cutmix", α) when the pipeline mixes labels, else None (engine.training.targets mixes them)."""
    steps = resolve(spec)
    last = steps[-1] if steps else None
    return (last["name"], last["alpha"]) if last and step_info(last["name"]).kind == "mixing" else None


@dataclass
class Pipeline:
    """Transforms (B, C, H, W) pixels in [0, 1] with per-image draws from `generator`; labels are unchanged."""

    steps: list[dict]
    _stages: list[tuple[str, list[dict]]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._stages = []  # consecutive geometric steps with one fill share one resampling
        for step in self.steps:
            kind = step_info(step["name"]).kind
            if kind == "mixing":
                continue
            last = self._stages[-1] if self._stages else None
            if kind == "geometric" and last and last[0] == "geometric" and _same_fill(last[1], step):
                last[1].append(step)
            else:
                self._stages.append((kind, [step]))

    def __call__(self, x: Tensor, generator: torch.Generator) -> Tensor:
        for kind, steps in self._stages:
            if kind == "geometric":
                matrix = None  # out→in: applying A then B samples the input at M_A · M_B · p
                for step in steps:
                    m = _run(step, x, generator)
                    matrix = m if matrix is None else matrix @ m
                x = ops.warp(x, matrix, fill=_fill(steps) or "zeros")
            else:
                x = _run(steps[0], x, generator)
        return x

    def __repr__(self) -> str:
        return f"Pipeline({to_text(self.steps) or 'nothing'})"


def _fill(steps: list[dict]) -> str | None:
    return next((s["fill"] for s in steps if "fill" in s), None)


def _same_fill(steps: list[dict], step: dict) -> bool:
    """Whether `step` can share the resampling of `steps` (a crop needs no fill: it stays inside the image)."""
    group, own = _fill(steps), step.get("fill")
    return group is None or own is None or group == own


def _run(step: dict, x: Tensor, generator: torch.Generator) -> Tensor:
    params = {k: v for k, v in step.items() if k not in ("name", "fill")}
    return step_info(step["name"]).transform(x, generator, **params)


def build(spec: Spec) -> Pipeline | None:
    """The pipeline of `spec` (a preset name or a list of steps), or None when it changes no image."""
    steps = resolve(spec)
    pipeline = Pipeline(steps)
    return pipeline if pipeline._stages else None


def variants(spec: Spec, image: Tensor, count: int, *, seed: int) -> Tensor:
    """`count` augmented copies (count, C, H, W) of one image (C, H, W) in one batch: each draws its own parameters."""
    pipeline = build(spec)
    batch = image.expand(count, *image.shape).clone()  # (C, H, W) -> (count, C, H, W)
    return batch if pipeline is None else pipeline(batch, torch.Generator().manual_seed(int(seed)))


# ---- text: URLs and the command line -----------------------------------------------------------------------

def parse_step(text: str) -> dict:
    """``crop:scale=0.6,ratio=1.5`` → {"name": "crop", "scale": 0.6, "ratio": 1.5}, checked."""
    name, _, rest = text.strip().partition(":")
    entry = step_info(name.strip())
    known = {p.name: p for p in entry.params}
    step: dict = {"name": name.strip()}
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, equals, value = item.partition("=")
        if not equals:
            raise UserInputError(f"augmentation parameters look like {name}:key=value; got {item!r}")
        param = known.get(key.strip())
        try:
            step[key.strip()] = value.strip() if param is None or param.choices else float(value)
        except ValueError:
            raise UserInputError(f"{name} {key.strip()} must be a number; got {value.strip()!r}") from None
    return _complete(step)


def parse(text: str) -> list[dict]:
    """``flip;crop:scale=0.6`` → the steps, checked (as `resolve` checks them)."""
    return resolve([parse_step(part) for part in text.split(";") if part.strip()])


def to_text(spec: Spec) -> str:
    """The short text of a spec: a preset's name, or its steps with the parameters that differ from defaults."""
    if isinstance(spec, str):
        return spec
    parts = []
    for step in resolve(spec):
        defaults = step_info(step["name"]).defaults()
        changed = [f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                   for k, v in step.items() if k != "name" and v != defaults[k]]
        parts.append(step["name"] + (":" + ",".join(changed) if changed else ""))
    return ";".join(parts)


# ---- torchvision's equivalent, and domain advice ------------------------------------------------------------

def torchvision_code(spec: Spec, *, image_size: int, num_classes: int) -> str:
    """Python source building the equivalent torchvision.transforms.v2 pipeline (`augment`, and `mix` for
    MixUp/CutMix), or "" when `spec` has no steps."""
    steps = resolve(spec)
    if not steps:
        return ""
    mixing = label_mixing(steps)
    lines = [step_info(s["name"]).torchvision(s, image_size, num_classes) for s in steps]
    transforms = lines[:-1] if mixing else lines
    code = ["# Equivalent, not bit-identical: torchvision draws its own random numbers, one set per call",
            "# (so call `augment` image by image for per-image randomness), and a few formulas differ.",
            "augment = v2.Compose([", *(_listed(line) for line in transforms), "])"]
    if mixing:
        code.append(f"mix = {lines[-1]}  # on whole batches of (images, labels): x, y = mix(x, y)")
    return "\n".join(code) + "\n"


def _listed(line: str) -> str:
    expression, hash_, note = line.partition("  # ")
    return f"    {expression},{'  # ' + note if hash_ else ''}"


def warnings(spec: Spec, data: str) -> list[str]:
    """Why a step may hurt on data set `data`: transforms that make images the test set never shows."""
    found = []
    for step in resolve(spec):
        if step["name"] == "flip" and data in MIRROR_UNSAFE and step["p"] > 0:
            found.append("Horizontal flips make mirrored digits, which never occur at test time (a mirrored 3 "
                         "is no digit at all): leave them out for digits.")
        if step["name"] == "vflip" and data in UPRIGHT and step["p"] > 0:
            found.append(f"Vertical flips turn {data} images upside down, which test images never are.")
        if step["name"] == "rotate" and data in MIRROR_UNSAFE and step["degrees"] > TURN_UNSAFE_DEGREES:
            found.append(f"Turns beyond {TURN_UNSAFE_DEGREES}° make a 6 look like a 9: keep rotations small "
                         "for digits.")
    return found


def suggested(data: str) -> str:
    """The preset that suits data set `data`: no flips for digits."""
    return SUGGESTED.get(data, "crop_flip")
