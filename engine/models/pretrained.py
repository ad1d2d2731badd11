"""Pretrained ImageNet models from torchvision: registry, cache lookup, download, offline message.

Every model is wrapped as ``Sequential(normalize, net)`` so that, like the app's own models, it
takes pixels in [0, 1]; per-model glue (the Grad-CAM layer, how ViT tokens become a grid) lives
in the registry entry. Weights are looked up in the torch hub cache under the file name of the
weights' URL, downloaded when missing, and an offline machine gets a message saying which file to
put where.

References:
    torchvision's model registry and weights API, https://pytorch.org/vision/stable/models.html
    He et al. 2015, "Deep Residual Learning", arXiv 1512.03385 (ResNet-18/50).
    Howard et al. 2019, "Searching for MobileNetV3", arXiv 1905.02244.
    Tan & Le 2019, "EfficientNet", arXiv 1905.11946.
    Dosovitskiy et al. 2020, "An Image is Worth 16x16 Words", arXiv 2010.11929 (ViT-B/16).
    jacobgil/pytorch-grad-cam ``utils/reshape_transforms.py`` (ViT token reshape).
"""

from __future__ import annotations

import math
import os
import tempfile
import urllib.error
import urllib.request
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import torch
import torchvision
from torch import Tensor, nn

from engine.errors import UserInputError
from engine.data.images import to_model_input
from engine.models.blocks import Normalize
from engine.registry import Registry

Progress = Callable[[float, str], None]
DEFAULT = "resnet18"
CHUNK_BYTES = 1 << 20  # download read size


def vit_tokens_to_grid(tokens: Tensor) -> Tensor:
    """ViT block output (B, 1 + N, D) → (B, D, √N, √N): drop the class token, lay patches on their grid."""
    patches = tokens[:, 1:, :]  # (B, 1 + N, D) -> (B, N, D)
    side = math.isqrt(patches.shape[1])
    if side * side != patches.shape[1]:
        raise ValueError(f"{patches.shape[1]} patch tokens do not form a square grid")
    return patches.transpose(1, 2).reshape(patches.shape[0], patches.shape[2], side, side)  # -> (B, D, h, w)


@dataclass(frozen=True)
class PretrainedInfo:
    name: str
    title: str
    family: str  # "cnn" | "vit"
    weights: str  # torchvision weights enum entry, e.g. "ResNet18_Weights.IMAGENET1K_V1"
    gradcam_layer: str  # module name inside the wrapped model
    description: str
    reshape: Callable[[Tensor], Tensor] | None = field(default=None, repr=False)  # layer output → (B, C, h, w)
    backbone: str = "net"  # the module whose children are the stages (transfer learning's feature layers)

    def weights_entry(self):
        return torchvision.models.get_weight(self.weights)

    @property
    def file_name(self) -> str:
        return os.path.basename(urlparse(self.weights_entry().url).path)

    @property
    def num_params(self) -> int:
        return int(self.weights_entry().meta["num_params"])


@dataclass
class Pretrained:
    """A loaded model with what the pages need around it."""

    info: PretrainedInfo
    model: nn.Sequential  # takes (B, 3, crop, crop) pixels in [0, 1]
    class_names: list[str]
    resize_size: int
    crop_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def preprocess(self, image: Tensor) -> Tensor:
        """One (C, H, W) image in [0, 1] → (1, 3, crop, crop): the weights' resize then centre crop."""
        x = to_model_input(image, channels=3, image_size=self.resize_size)  # (1, 3, R, R)
        top = (self.resize_size - self.crop_size) // 2
        return x[..., top:top + self.crop_size, top:top + self.crop_size].contiguous()

    def __repr__(self) -> str:
        return f"Pretrained({self.info.name!r}, {len(self.class_names)} classes, input 3×{self.crop_size}×{self.crop_size})"


# In the order the lectures meet them: ResNets, the mobile nets, then the transformer.
PRETRAINED: Registry[PretrainedInfo] = Registry("pretrained model")
for _entry in (
    PretrainedInfo("resnet18", "ResNet-18", "cnn", "ResNet18_Weights.IMAGENET1K_V1", "net.layer4",
                   "18 layers with skip connections; the classic small ImageNet baseline."),
    PretrainedInfo("resnet50", "ResNet-50", "cnn", "ResNet50_Weights.IMAGENET1K_V2", "net.layer4",
                   "50 layers of bottleneck blocks; the lectures' top-3 prediction example."),
    PretrainedInfo("mobilenet_v3_small", "MobileNetV3-Small", "cnn", "MobileNet_V3_Small_Weights.IMAGENET1K_V1",
                   "net.features", "Depthwise-separable convs with squeeze-excitation, built for phones.",
                   backbone="net.features"),
    PretrainedInfo("efficientnet_b0", "EfficientNet-B0", "cnn", "EfficientNet_B0_Weights.IMAGENET1K_V1",
                   "net.features", "Width, depth and resolution scaled together; MBConv blocks with SiLU.",
                   backbone="net.features"),
    PretrainedInfo("vit_b_16", "ViT-B/16", "vit", "ViT_B_16_Weights.IMAGENET1K_V1",
                   "net.encoder.layers.encoder_layer_11.ln_1",
                   "A Vision Transformer: 16×16 patches, 12 attention blocks, 86 M parameters.",
                   reshape=vit_tokens_to_grid, backbone="net.encoder.layers"),
):
    PRETRAINED.add(_entry.name, _entry)


def names() -> list[str]:
    return PRETRAINED.names()


def info(name: str) -> PretrainedInfo:
    return PRETRAINED.get(name)


def cache_dir() -> Path:
    """Where torch keeps downloaded weights: ``$TORCH_HOME/hub/checkpoints`` (read at call time)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def weights_path(name: str) -> Path:
    return cache_dir() / info(name).file_name


def is_cached(name: str) -> bool:
    return weights_path(name).is_file()


def _where_to_put(entry: PretrainedInfo) -> str:
    return (f"put the file {entry.file_name} (from {entry.weights_entry().url}) into the folder {cache_dir()}: "
            "the page finds it at its next run, no reload needed (a reload would end this session and its runs)")


def missing_message(name: str) -> str:
    """Before any download attempt: the weights are simply not here yet."""
    entry = info(name)
    return (f"The {entry.title} weights are not on this machine yet. Press Try to download (needs internet), "
            f"or {_where_to_put(entry)}. Meanwhile use a model trained in the app.")


def download_failed_message(name: str, reason: str) -> str:
    """After a failed download: why, and how to get the file here by hand."""
    entry = info(name)
    return (f"Downloading the {entry.title} weights failed ({reason}); this machine may be offline. On a machine "
            f"with internet, {_where_to_put(entry)}. Meanwhile use a model trained in the app.")


def download(name: str, *, progress: Progress | None = None) -> Path:
    """Fetch the weights into the hub cache (atomically, via a temporary file); return the path."""
    entry, target = info(name), weights_path(name)
    url = entry.weights_entry().url
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with urllib.request.urlopen(url, timeout=15) as response:
            total = int(response.headers.get("Content-Length") or 0)
            with tempfile.NamedTemporaryFile(dir=target.parent, delete=False, suffix=".part") as out:
                done = 0
                while chunk := response.read(CHUNK_BYTES):
                    out.write(chunk)
                    done += len(chunk)
                    if progress is not None and total:
                        progress(min(1.0, done / total), f"Downloading {entry.file_name}: "
                                 f"{done / 1e6:.0f} of {total / 1e6:.0f} MB")
        os.replace(out.name, target)
    except (urllib.error.URLError, OSError, TimeoutError) as error:
        if "out" in locals():
            Path(out.name).unlink(missing_ok=True)
        raise UserInputError(download_failed_message(name, type(error).__name__)) from error
    return target


def _relu_out_of_place(net: nn.Module) -> None:
    """torchvision's ReLUs work in place, which breaks forward hooks and captum's gradient rules."""
    for module in net.modules():
        if isinstance(module, (nn.ReLU, nn.ReLU6, nn.Hardswish, nn.SiLU)) and getattr(module, "inplace", False):
            module.inplace = False


def load(name: str = DEFAULT, *, download_missing: bool = True, progress: Progress | None = None) -> Pretrained:
    """Build `name` with its ImageNet weights from the hub cache, downloading them if allowed."""
    entry = info(name)
    path = weights_path(name)
    if not path.is_file():
        if not download_missing:
            raise UserInputError(missing_message(name))
        path = download(name, progress=progress)
    weights = entry.weights_entry()
    # On the meta device the constructor allocates nothing and draws no initial weights from torch's
    # global generator (it would race other sessions' seeded draws); the file's tensors replace them.
    with torch.device("meta"):
        net = torchvision.models.get_model(name, weights=None)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        net.load_state_dict(state, assign=True)
    except Exception as error:  # a truncated or foreign file: torch raises many types
        raise UserInputError(f"the weights file {path} could not be loaded ({type(error).__name__}); "
                             f"delete it and download it again") from error
    _relu_out_of_place(net)
    net.eval()
    transform = weights.transforms()
    mean, std = tuple(transform.mean), tuple(transform.std)
    model = nn.Sequential(OrderedDict([("normalize", Normalize(mean, std)), ("net", net)])).eval()
    return Pretrained(entry, model, list(weights.meta["categories"]), int(transform.resize_size[0]),
                      int(transform.crop_size[0]), mean, std)
