"""Transfer-learning sources: a trained network offered as a feature extractor, stage by stage.

A source is a network trained on one data set — a Run of this app, or an ImageNet network from
torchvision — whose layers are reused for another. It says which layers it offers as features:
the last output at each resolution of its stages (where a CNN's maps shrink), a transformer's
token grids, and the classifier's input where layers with weights lie between the last stage and
the classifier. It also lists its units (modules with weights, input to output, the head last),
which fine-tuning freezes or unfreezes from the top. Target images are resized to the source's
input size and converted to its channels.

References:
    Yosinski et al. 2014, "How transferable are features in deep neural networks?", arXiv 1411.1792.
    Razavian et al. 2014, "CNN Features off-the-shelf: an astounding baseline for recognition",
        arXiv 1403.6382.
    Kornblith et al. 2019, "Do Better ImageNet Models Transfer Better?", arXiv 1805.08974.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torchvision
from torch import Tensor, nn

from engine import models
from engine.data.images import _convert_channels, resize_batch
from engine.data.sets import STD_FLOOR, Dataset
from engine.data.subsample import class_counts, subsample
from engine.device import seeded
from engine.errors import UserInputError
from engine.models import pretrained
from engine.models.blocks import Normalize
from engine.models.heads import MultiHead
from engine.training.runs import Run

ALL = 0  # images per class meaning "every training image"
HEAD_INPUT = "head_input"  # the feature layer "what the classifier reads"
PRETRAINED_SIZES = (32, 48, 64, 96, 128, 160, 192, 224)  # px; from 32 down, ImageNet CNNs' five halvings leave 1×1
PROBE_BATCH = 8  # images per timed forward pass of the time estimate


@dataclass(frozen=True)
class FeatureLayer:
    name: str  # module name inside the source's model, or HEAD_INPUT
    shape: tuple[int, ...]  # its output for one image: (C, h, w) maps (a ViT's tokens as a grid) or (D,)

    @property
    def spatial(self) -> bool:
        return len(self.shape) == 3

    @property
    def title(self) -> str:
        what = "classifier input" if self.name == HEAD_INPUT else self.name
        return f"{what} ({'×'.join(map(str, self.shape))})"


@dataclass
class Source:
    """A trained network, what it offers as features, and how its parts can be frozen."""

    key: str  # names the weights (for caches): the run's weight fingerprint, or the pretrained name and size
    title: str
    kind: str  # "run" | "pretrained"
    model: nn.Module = field(repr=False)  # takes (B, channels, S, S) pixels in [0, 1]
    channels: int
    image_size: int
    trained_on: str  # the source data set's title
    layers: tuple[FeatureLayer, ...]
    units: tuple[str, ...]  # modules (or parameters) with weights, input to output; the head last
    architecture: dict  # how to rebuild it from random weights: {"model": name, "options": {…}} or {"pretrained": name}
    reshape: Callable[[Tensor], Tensor] | None = field(default=None, repr=False)  # tokens -> (B, D, h, w)

    @property
    def head(self) -> str:
        return self.units[-1]

    @property
    def blocks(self) -> tuple[str, ...]:
        """The units below the head, input to output: fine-tuning unfreezes them from the top."""
        return self.units[:-1]

    def layer(self, name: str) -> FeatureLayer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise UserInputError(f"{self.title} offers no feature layer {name!r}; "
                             f"its layers are {', '.join(l.name for l in self.layers)}")


def _has_weights(module: nn.Module) -> bool:
    return any(True for _ in module.parameters())


def _inside(path: str, other: str) -> bool:
    """`other` is `path` or lies inside it ("" holds everything)."""
    return not path or other == path or other.startswith(path + ".")


def _units(model: nn.Module, backbone: str, head: str) -> tuple[str, ...]:
    """The modules with weights, in order: the backbone's children one by one, whatever else whole,
    containers on the way to the backbone or the head opened (their own parameters listed by name)."""
    units: list[str] = []

    def visit(path: str, module: nn.Module) -> None:
        opened = path != head and (_inside(path, backbone) and path != backbone or _inside(path, head))
        if path == backbone or opened:
            units.extend(f"{path}.{p}" if path else p for p, _ in module.named_parameters(recurse=False))
            for name, child in module.named_children():
                if _has_weights(child):
                    child_path = f"{path}.{name}" if path else name
                    if path == backbone and not _inside(child_path, head):
                        units.append(child_path)
                    else:
                        visit(child_path, child)
        else:
            units.append(path)

    visit("", model)
    if units[-1] != head:
        raise UserInputError(f"this network's classifier ({head}) is not its last layer with weights "
                             f"({units[-1]}), so it cannot be a transfer source")
    return tuple(units)


@dataclass
class _Trace:
    """What one eval-mode forward pass of a zero image showed."""

    seen: dict[str, tuple[int, tuple[int, ...]]]  # module -> (when its forward pass ended, output shape for one image)
    head: str  # the last Linear layer that ran: the classifier
    head_in: tuple[int, ...]  # its input shape for one image


def _trace(model: nn.Module, channels: int, image_size: int) -> _Trace:
    seen: dict[str, tuple[int, tuple[int, ...]]] = {}
    linears: list[tuple[str, tuple[int, ...]]] = []
    ended = iter(range(10**9))

    def record(name: str):
        def hook(module, inputs, out):
            if isinstance(out, Tensor):
                seen[name] = (next(ended), tuple(out.shape[1:]))
            if isinstance(module, nn.Linear):
                linears.append((name, tuple(inputs[0].shape[1:])))
        return hook

    handles = [m.register_forward_hook(record(n)) for n, m in model.named_modules() if n]
    try:
        with models.evaluating(model), torch.no_grad():
            model(torch.zeros(1, channels, image_size, image_size))
    finally:
        for handle in handles:
            handle.remove()
    if not linears:
        raise UserInputError("this network has no Linear classifier to replace, so it cannot be a transfer source")
    return _Trace(seen, *linears[-1])


def _children(model: nn.Module, container: str) -> list[str]:
    return [f"{container}.{n}" if container else n for n, _ in model.get_submodule(container).named_children()]


def _stages(model: nn.Module, children: list[str], trace: _Trace, reshape: Callable | None) -> list[FeatureLayer]:
    """The last output at each resolution among `children` (a 1×1 map counts as pooled, not a stage);
    for token outputs, four grids evenly spaced."""
    shape = {name: trace.seen[name][1] for name in children if name in trace.seen}
    layers: list[FeatureLayer] = []
    if reshape is not None:
        tokens = [n for n in children if len(shape.get(n, ())) == 2]  # (1 + N, D) each
        for index in sorted({round(i * (len(tokens) - 1) / 3) for i in range(4)}) if tokens else []:
            grid = reshape(torch.zeros(1, *shape[tokens[index]]))  # (1, 1 + N, D) -> (1, D, h, w)
            layers.append(FeatureLayer(tokens[index], tuple(grid.shape[1:])))
        return layers
    maps = [n for n in children if len(shape.get(n, ())) == 3 and shape[n][1] > 1
            and not isinstance(model.get_submodule(n), Normalize)]  # normalized pixels are no feature
    for i, name in enumerate(maps):
        if i + 1 == len(maps) or shape[maps[i + 1]][1:] != shape[name][1:]:
            layers.append(FeatureLayer(name, shape[name]))
    return layers


def _backbone(model: nn.Module, trace: _Trace) -> str:
    """For the app's own models: the module whose children give the most stages — the model itself, or a
    container two levels down at most (vgg_mini's `features`); the first of equals."""
    candidates = [n for n, m in model.named_modules() if n.count(".") < 2 and len(list(m.children())) > 1]
    return max(candidates, key=lambda n: len(_stages(model, _children(model, n), trace, None)))


def _feature_layers(model: nn.Module, backbone: str, units: tuple[str, ...], trace: _Trace,
                    reshape: Callable | None) -> tuple[FeatureLayer, ...]:
    """The stages, then the classifier's input when layers with weights run between the last stage and
    the classifier, or there is no stage."""
    layers = _stages(model, _children(model, backbone), trace, reshape)
    last = trace.seen[layers[-1].name][0] if layers else -1
    if not layers or any(trace.seen[u][0] > last for u in units[:-1] if u in trace.seen):
        layers.append(FeatureLayer(HEAD_INPUT, trace.head_in))
    return tuple(layers)


def _fingerprint(model: nn.Module) -> str:
    digest = hashlib.sha1()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def from_run(run: Run) -> Source:
    """A Run of this app as a source; its extra heads (if any) are dropped."""
    mc = run.model_config
    if models.info(mc.name).family == "linear":
        raise UserInputError(f"“{run.name}” is a linear classifier: it has no layers before its classifier "
                             "whose features could be reused; pick a run of an MLP or CNN")
    model = run.model
    if isinstance(model, MultiHead):
        model = nn.Sequential(OrderedDict((n, c) for n, c in model.named_children() if n not in model.heads))
    model = copy.deepcopy(model).cpu().eval()
    trace = _trace(model, mc.in_channels, mc.image_size)
    backbone = _backbone(model, trace)
    units = _units(model, backbone, trace.head)
    layers = _feature_layers(model, backbone, units, trace, None)
    return Source(f"run:{_fingerprint(model)}", run.name, "run", model, mc.in_channels, mc.image_size,
                  run.dataset_title, layers, units, {"model": mc.name, "options": dict(mc.options)})


def pretrained_sizes(name: str) -> list[int]:
    """Input sides a pretrained source can take: ViTs only their own (learned position embeddings)."""
    entry = pretrained.info(name)
    crop = int(entry.weights_entry().transforms().crop_size[0])
    if entry.family == "vit":
        return [crop]
    return [s for s in PRETRAINED_SIZES if s <= crop]


def from_pretrained(name: str, *, image_size: int = 224, download_missing: bool = False) -> Source:
    """An ImageNet network from the hub cache (offline: the registry's message), read at `image_size`.

    Smaller inputs cost quadratically less (resnet50: ~4 GMACs per image at 224, ~0.33 at 64) and
    make every map smaller; the network was trained at 224, so its features fit small images less well.
    """
    sizes = pretrained_sizes(name)
    if image_size not in sizes:
        raise UserInputError(f"{pretrained.info(name).title} takes input sizes {', '.join(map(str, sizes))}; "
                             f"got {image_size}")
    loaded = pretrained.load(name, download_missing=download_missing)
    entry, model = loaded.info, loaded.model
    trace = _trace(model, 3, image_size)
    units = _units(model, entry.backbone, trace.head)
    layers = _feature_layers(model, entry.backbone, units, trace, entry.reshape)
    return Source(f"pretrained:{name}@{image_size}", f"{entry.title} (ImageNet, {image_size}×{image_size})",
                  "pretrained", model, 3, image_size, "ImageNet", layers, units, {"pretrained": name},
                  entry.reshape)


# ---------------------------------------------------------------------------- the target, fitted to the source
def fit_to_source(dataset: Dataset, source: Source) -> tuple[Dataset, list[str]]:
    """`dataset` resized to the source's input size and converted to its channels; and what was done, in words."""
    notes = []
    if dataset.channels != source.channels:
        notes.append("gray repeated into 3 channels: the source reads colour images" if source.channels == 3
                     else "colour turned into gray (luma weights): the source reads gray images")
    if dataset.image_size != source.image_size:
        notes.append(f"resized from {dataset.image_size}×{dataset.image_size} to {source.image_size}×"
                     f"{source.image_size}, the source's input size")
    if not notes:
        return dataset, notes

    def fit(split):
        x = resize_batch(_convert_channels(split.x, source.channels), source.image_size)
        return dataclasses.replace(split, x=x)

    train = fit(dataset.train)
    var, mean = torch.var_mean(train.x, dim=(0, 2, 3), correction=0)
    fitted = dataclasses.replace(dataset, train=train, val=fit(dataset.val), test=fit(dataset.test),
                                 channels=source.channels, image_size=source.image_size,
                                 mean=tuple(mean.tolist()), std=tuple(var.sqrt().clamp_min(STD_FLOOR).tolist()))
    return fitted, [f"{dataset.title}: {note}." for note in notes]


def shots_for(dataset: Dataset, wanted: Sequence[int]) -> tuple[list[int], list[str]]:
    """The per-class sizes that exist (ALL kept), smallest first; and a note per size cut to the largest valid."""
    smallest = min(class_counts(dataset.train.y, dataset.num_classes))
    out, notes = [], []
    for k in wanted:
        if k < 0:
            raise UserInputError(f"images per class must be ≥ 1 (or all); got {k}")
        if k > smallest:
            notes.append(f"{dataset.title} has only {smallest} training images in its smallest class; "
                         f"using {smallest} per class instead of {k}")
            k = smallest
        if k not in out:
            out.append(k)
    return sorted(out, key=lambda k: (k == ALL, k)), notes


def subset(dataset: Dataset, per_class: int, seed: int) -> Dataset:
    """`per_class` training images of each class (ALL: the whole split); the same seed picks the same images."""
    return dataset if per_class == ALL else subsample(dataset, per_class=per_class, seed=seed)


# ---------------------------------------------------------------------------- new heads and fresh copies
def with_new_head(source: Source, num_classes: int, *, seed: int = 0) -> nn.Module:
    """A copy of the source's network with a fresh final Linear layer for `num_classes` classes."""
    model = copy.deepcopy(source.model)
    parent_name, _, child = source.head.rpartition(".")
    parent = model.get_submodule(parent_name)
    old = getattr(parent, child)
    with seeded(seed + 1):  # the head's initial weights follow the run's seed, whoever else is drawing
        setattr(parent, child, nn.Linear(old.in_features, num_classes))
    return model


def from_scratch(source: Source, dataset: Dataset, *, seed: int = 0) -> nn.Module:
    """The source's architecture with random weights, for `dataset` (fitted to the source)."""
    arch = source.architecture
    if "pretrained" in arch:
        with seeded(seed):  # torchvision's constructors draw their initial weights from the global generator
            net = torchvision.models.get_model(arch["pretrained"], weights=None, num_classes=dataset.num_classes)
        return nn.Sequential(OrderedDict([("normalize", Normalize(dataset.mean, dataset.std)), ("net", net)]))
    return models.build(arch["model"], in_channels=dataset.channels, num_classes=dataset.num_classes,
                        image_size=dataset.image_size, mean=dataset.mean, std=dataset.std, seed=seed,
                        **arch["options"])


# ---------------------------------------------------------------------------- cost
def macs_per_image(source: Source) -> int:
    """Multiply-accumulates of one forward pass at the source's input size."""
    return sum(row.macs for row in models.summary(source.model, (source.channels, source.image_size,
                                                                 source.image_size)))


def forward_seconds(source: Source, images: int) -> float:
    """Seconds a forward pass over `images` images should take, from timing a small batch."""
    x = torch.rand(PROBE_BATCH, source.channels, source.image_size, source.image_size)
    timings = []
    with models.evaluating(source.model), torch.no_grad():
        for _ in range(2):  # the first pass warms up kernels and is not counted
            start = time.perf_counter()
            source.model(x)
            timings.append(time.perf_counter() - start)
    return timings[-1] / PROBE_BATCH * images
