"""The architecture gallery: full-size torchvision networks beside the app's own, described layer by layer.

Every network is built without weights on the `meta` device (shapes, no numbers: even VGG-19's
144 M parameters cost no memory) at its own input size, and run once under
`torch.utils.flop_counter.FlopCounterMode`, which counts every matrix product, attention's included
(MACs = FLOPs ÷ 2), and the receptive-field tracer of `engine.layers.network_field`. ImageNet
accuracy, parameter count and MACs of the DEFAULT weights come from torchvision's weights metadata,
which ships with torchvision (its `_ops` is labelled GFLOPS but counts multiply-accumulates).

References:
    LeCun et al. 1998 (LeNet-5); Krizhevsky, Sutskever & Hinton 2012 (AlexNet); Simonyan & Zisserman
    2014, arXiv 1409.1556 (VGG); Szegedy et al. 2014, arXiv 1409.4842 (GoogLeNet) and 2015, arXiv
    1512.00567 (Inception-v3); He et al. 2015, arXiv 1512.03385 (ResNet); Huang et al. 2016, arXiv
    1608.06993 (DenseNet); Iandola et al. 2016, arXiv 1602.07360 (SqueezeNet); Sandler et al. 2018,
    arXiv 1801.04381 (MobileNetV2); Howard et al. 2019, arXiv 1905.02244 (MobileNetV3); Tan & Le 2019,
    arXiv 1905.11946 (EfficientNet); Liu et al. 2022, arXiv 2201.03545 (ConvNeXt); Dosovitskiy et al.
    2020, arXiv 2010.11929 (ViT); Hu et al. 2017, arXiv 1709.01507 (SENet).
    Russakovsky et al. 2015, "ImageNet Large Scale Visual Recognition Challenge", arXiv 1409.0575.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
import torchvision
from torch import nn
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import FlopCounterMode

from engine.errors import UserInputError
from engine.layers.network_field import FieldTracer, network_field
from engine.models import registry as models
from engine.registry import Registry

# name, title, year of the paper: in the order the lectures meet them
TORCHVISION = [
    ("alexnet", "AlexNet", 2012), ("vgg11", "VGG-11", 2014), ("vgg16", "VGG-16", 2014), ("vgg19", "VGG-19", 2014),
    ("googlenet", "GoogLeNet", 2014), ("inception_v3", "Inception-v3", 2015), ("resnet18", "ResNet-18", 2015),
    ("resnet34", "ResNet-34", 2015), ("resnet50", "ResNet-50", 2015), ("resnet101", "ResNet-101", 2015),
    ("resnet152", "ResNet-152", 2015), ("densenet121", "DenseNet-121", 2016), ("squeezenet1_1", "SqueezeNet 1.1", 2016),
    ("mobilenet_v2", "MobileNetV2", 2018), ("mobilenet_v3_small", "MobileNetV3-Small", 2019),
    ("efficientnet_b0", "EfficientNet-B0", 2019), ("convnext_tiny", "ConvNeXt-Tiny", 2022), ("vit_b_16", "ViT-B/16", 2020),
]
# As used for inference: no auxiliary classifiers; init_weights=False skips scipy's slow truncated-normal init.
TORCHVISION_OPTIONS = {"googlenet": {"aux_logits": False, "init_weights": False},
                       "inception_v3": {"aux_logits": False, "init_weights": False}}
TORCHVISION_INPUT = {"inception_v3": 299}  # the rest read 224×224
OWN_INPUT = {"lenet5": 1}  # in_channels: LeNet-5 read 32×32 grey digits; the rest 3×32×32 like CIFAR-10
OWN_OPTIONS = {"inception_mini": {"aux": False}}  # as used for inference, like GoogLeNet above
OWN_SIZE, OWN_CLASSES = 32, 10

# ILSVRC classification, top-5 error (%) of the winning entry by year, as reported (Russakovsky et al.
# 2015 and the winners' papers); human ≈ 5.1 % (Karpathy's own test, reported in Russakovsky et al.).
ILSVRC_TOP5 = [(2010, 28.2, "NEC (SIFT + SVM)"), (2011, 25.8, "XRCE (Fisher vectors)"), (2012, 16.4, "AlexNet"),
               (2013, 11.7, "ZFNet"), (2014, 7.3, "VGG (2nd)"), (2014, 6.7, "GoogLeNet"), (2015, 3.57, "ResNet"),
               (2016, 2.99, "Trimps-Soushen (ensemble)"), (2017, 2.25, "SENet")]
HUMAN_TOP5 = 5.1

_BUILD_LOCK = threading.Lock()  # FlopCounterMode's module tracker hooks every module globally


@dataclass(frozen=True)
class GalleryEntry:
    name: str
    title: str
    source: str  # "torchvision" | "app"
    family: str  # "cnn" | "vit"
    in_channels: int
    input_size: int
    year: int | None
    factory: Callable[[], nn.Module] = field(repr=False)  # builds on the current device

    def weights_meta(self) -> dict | None:
        """torchvision's metadata of the DEFAULT weights (no download), or None for the app's models."""
        if self.source != "torchvision":
            return None
        return torchvision.models.get_model_weights(self.name).DEFAULT.meta

    @property
    def weights_name(self) -> str | None:
        """Which weights DEFAULT is: IMAGENET1K_V2 marks torchvision's newer training recipe, above the paper's."""
        return torchvision.models.get_model_weights(self.name).DEFAULT.name if self.source == "torchvision" else None

    @property
    def acc1(self) -> float | None:
        meta = self.weights_meta()
        return meta["_metrics"]["ImageNet-1K"]["acc@1"] if meta else None

    @property
    def reference_params(self) -> int | None:
        meta = self.weights_meta()
        return int(meta["num_params"]) if meta else None

    @property
    def reference_macs(self) -> int | None:
        meta = self.weights_meta()
        return round(meta["_ops"] * 1e9) if meta else None  # "_ops" counts MACs despite its GFLOPS label


GALLERY: Registry[GalleryEntry] = Registry("gallery network")
for _name, _title, _year in TORCHVISION:
    GALLERY.add(_name, GalleryEntry(
        _name, _title, "torchvision", "vit" if _name.startswith("vit") else "cnn", 3, TORCHVISION_INPUT.get(_name, 224),
        _year, functools.partial(torchvision.models.get_model, _name, weights=None, **TORCHVISION_OPTIONS.get(_name, {}))))
for _name in models.names():
    _info = models.info(_name)
    if _info.family in ("cnn", "vit"):
        _channels = OWN_INPUT.get(_name, 3)
        GALLERY.add(_name, GalleryEntry(
            _name, _info.title, "app", _info.family, _channels, OWN_SIZE, 1998 if _name == "lenet5" else None,
            functools.partial(models.build, _name, in_channels=_channels, num_classes=OWN_CLASSES, image_size=OWN_SIZE,
                              **OWN_OPTIONS.get(_name, {}))))


def names() -> list[str]:
    return GALLERY.names()


def entry(name: str) -> GalleryEntry:
    return GALLERY.get(name)


# ---- the description ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class GalleryLayer:
    """A layer (or a block of the diagram): `receptive_field` is the side in input pixels, unclipped;
    `whole_image` where its units see the whole input (after global pooling, flattening, attention)."""

    name: str
    kind: str
    output_shape: tuple[int, ...]  # without the batch dimension
    params: int
    macs: int
    receptive_field: int
    whole_image: bool = False
    repeat: int = 1  # diagram blocks: how many identical blocks in a row this stands for


@dataclass(frozen=True)
class GallerySummary:
    name: str
    title: str
    source: str
    family: str
    input_size: int
    in_channels: int
    params: int
    macs: int  # per image at input_size
    receptive_field: int  # side in pixels of the input square one unit of the last spatial map sees
    receptive_field_note: str
    last_map: tuple[int, int]  # (H, W) of the last spatial feature map
    jump: int  # input pixels between neighbouring units of that map
    global_context: bool
    acc1: float | None
    layers: tuple[GalleryLayer, ...]
    blocks: tuple[GalleryLayer, ...]  # the block diagram, identical neighbours collapsed

    @property
    def weights_mb(self) -> float:
        """What the float32 weights would take in memory (on the meta device they take none)."""
        return self.params * 4 / 1e6

    def to_dict(self) -> dict:
        data = asdict(self)
        data.pop("blocks")
        return data


@dataclass
class _Record:
    shape: tuple[int, ...]
    field: object  # Field | None


def _forward(model: nn.Module, spec: GalleryEntry):
    """One meta forward pass: per module its output (shape, field); FLOPs per module; the last map."""
    records: dict[str, _Record] = {}
    tracer, counter = FieldTracer(), FlopCounterMode(display=False)

    def hook_for(name: str):
        def hook(module, inputs, output):
            tensor = next(t for t in tree_flatten(output)[0] if isinstance(t, torch.Tensor))
            records.setdefault(name, _Record(tuple(tensor.shape[1:]), tracer.field(tensor)))
        return hook

    handles = [module.register_forward_hook(hook_for(name)) for name, module in model.named_modules()]
    try:
        x = torch.zeros(1, spec.in_channels, spec.input_size, spec.input_size, device="meta")
        with torch.no_grad(), counter, tracer:
            out = model(tracer.watch(x))
    finally:
        for handle in handles:
            handle.remove()
    root = type(model).__name__  # the counter names modules "ResNet.layer1.0.conv1"
    flops = {name: sum(counter.get_flop_counts().get(f"{root}.{name}" if name else root, {}).values())
             for name, _ in model.named_modules()}
    out = next(t for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor))
    return records, flops, counter.get_total_flops(), tracer.last_map(out)


def _rows(model: nn.Module, records: dict[str, _Record], flops: dict[str, int], input_size: int) -> list[GalleryLayer]:
    """A row per module that ran and computes: a leaf, or one with parameters or products of its own.

    A parameter belongs to the nearest row above it (nn.MultiheadAttention uses its out_proj's weight
    without calling it), so the rows' parameters and MACs add up to the network's.
    """
    modules = dict(model.named_modules())
    own_flops = {name: flops[name] - sum(flops[f"{name}.{c}" if name else c] for c, _ in m.named_children())
                 for name, m in modules.items()}
    chosen = [name for name, m in modules.items() if name in records and not isinstance(m, nn.Identity)
              and (not list(m.children()) or any(True for _ in m.parameters(recurse=False)) or own_flops[name] > 0)]
    params = dict.fromkeys(chosen, 0)
    for pname, p in model.named_parameters():
        owner = pname.rsplit(".", 1)[0] if "." in pname else ""
        while owner not in params and owner:
            owner = owner.rsplit(".", 1)[0] if "." in owner else ""
        if owner not in params:  # only the root is left: it gets a row of its own
            params[""] = 0
            chosen.insert(0, "")
        params[owner] += p.numel()
    return [_layer(name, type(modules[name]).__name__, records[name], params[name], own_flops[name] // 2, input_size)
            for name in chosen]


def _layer(name: str, kind: str, record: _Record, params: int, macs: int, input_size: int, repeat: int = 1):
    rf = record.field
    return GalleryLayer(name, kind.lstrip("_"), record.shape, int(params), int(macs),
                        rf.side if rf is not None else input_size, rf is None, repeat)


_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


def _block_names(model: nn.Module) -> list[str]:
    """The modules of the diagram: the root's children with containers opened, and a child of the root
    opened that holds a stack of ≥ 4 blocks (ViT's encoder) or is the root's only child with weights (the
    app's `Sequential(normalize, net)`); everything else is one block (a ResNet block, an Inception module)."""
    found = []

    def walk(prefix: str, module: nn.Module, top: bool) -> None:
        weighted = [c for c in module.children() if any(True for _ in c.parameters())]
        for child_name, child in module.named_children():
            opened = type(child) in _CONTAINERS or top and (weighted == [child] or any(
                type(c) in _CONTAINERS and len(c) >= 4 for c in child.children()))
            if opened:
                walk(f"{prefix}{child_name}.", child, False)
            else:
                found.append(f"{prefix}{child_name}")
    walk("", model, True)
    return found


def _blocks(model: nn.Module, records: dict[str, _Record], flops: dict[str, int], input_size: int):
    """Diagram blocks: a block that computes no products and keeps the shape (a norm) or has no weights
    and pools nothing (an activation, dropout, flatten) joins the block before it; identical neighbours
    (kind and output shape) collapse into one ×n."""
    modules = dict(model.named_modules())
    blocks: list[GalleryLayer] = []
    for name in _block_names(model):
        if name not in records:
            continue  # never ran (e.g. a classifier replaced in forward)
        module, record = modules[name], records[name]
        params = sum(p.numel() for p in module.parameters())
        block = _layer(name, type(module).__name__, record, params, flops[name] // 2, input_size)
        if blocks and block.macs == 0 and (block.output_shape == blocks[-1].output_shape
                                           or params == 0 and "Pool" not in block.kind):
            last = blocks[-1]
            blocks[-1] = GalleryLayer(**{**asdict(last), "params": last.params + params})
        elif blocks and (block.kind, block.output_shape) == (blocks[-1].kind, blocks[-1].output_shape):
            last = blocks[-1]
            blocks[-1] = GalleryLayer(**{**asdict(block), "name": f"{last.name.split(' … ')[0]} … {name}",
                                         "params": last.params + params, "macs": last.macs + block.macs,
                                         "repeat": last.repeat + 1})
        else:
            blocks.append(block)
    return tuple(blocks)


def _note(spec: GalleryEntry, side: int, global_context: bool) -> str:
    if spec.family == "vit":
        return ("the whole image: self-attention lets every patch token attend to every other patch "
                f"(a patch token alone sees its {side}×{side} patch)")
    text = f"{side}×{side} pixels" + (f", larger than the {spec.input_size}×{spec.input_size} input: "
                                      "the outer part falls on zero padding" if side > spec.input_size else "")
    if global_context:
        text += "; the squeeze-and-excitation gates also give every unit a summary of the whole image"
    return text


@functools.lru_cache(maxsize=None)
def describe(name: str) -> GallerySummary:
    """Per layer: output shape, parameters, MACs and receptive field; totals; ImageNet top-1 (DEFAULT weights)."""
    spec = entry(name)
    with _BUILD_LOCK:
        with torch.device("meta"):  # only around the build: as a function mode it would slow every op of the pass
            model = spec.factory().eval()
        records, flops, total_flops, last_map = _forward(model, spec)
    last = last_map.field
    rf = spec.input_size if spec.family == "vit" else last.side
    return GallerySummary(
        name, spec.title, spec.source, spec.family, spec.input_size, spec.in_channels,
        sum(p.numel() for p in model.parameters()), int(total_flops) // 2, rf, _note(spec, last.side, last.global_context),
        tuple(int(n) for n in last_map.size), last.jump[0], last.global_context, spec.acc1,
        tuple(_rows(model, records, flops, spec.input_size)), _blocks(model, records, flops, spec.input_size))


def describe_all() -> list[GallerySummary]:
    return [describe(name) for name in names()]


# ---- why two 3×3 beat one 5×5 -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class StackComparison:
    """n stacked 3×3 convolutions against one (2n+1)×(2n+1), C channels in and out, no biases
    (Simonyan & Zisserman 2014, §2.3): the same receptive field, fewer weights, more non-linearities."""

    channels: int
    stacked: int
    kernel: int  # of the single convolution: 2n + 1
    stacked_params: int  # n · 9C²
    single_params: int  # (2n+1)² C²
    stacked_field: int
    single_field: int

    @property
    def saving(self) -> float:
        return 1 - self.stacked_params / self.single_params


def stacked_vs_single(channels: int, *, stacked: int = 2) -> StackComparison:
    """Build both on the meta device; count their parameters and trace their receptive fields."""
    if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
        raise UserInputError(f"channels must be a whole number ≥ 1; got {channels!r}")
    if isinstance(stacked, bool) or not isinstance(stacked, int) or stacked < 2:
        raise UserInputError(f"stacked must be a whole number ≥ 2 (two or more 3×3 convolutions); got {stacked!r}")
    kernel = 2 * stacked + 1
    with torch.device("meta"):
        stack = nn.Sequential(*[nn.Conv2d(channels, channels, 3, padding=1, bias=False) for _ in range(stacked)])
        single = nn.Conv2d(channels, channels, kernel, padding=stacked, bias=False)
    shape = (channels, 4 * kernel, 4 * kernel)
    return StackComparison(channels, stacked, kernel, sum(p.numel() for p in stack.parameters()),
                           sum(p.numel() for p in single.parameters()), network_field(stack, shape).field.side,
                           network_field(single, shape).field.side)
