"""The map of the app: every topic the lectures teach, its pages, and which of them exist yet.

A page is listed in the navigation as soon as its file exists under app_pages/; a topic with no page
file yet shows on the home page as "coming". Adding a page = creating its file (listed here).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class PageSpec:
    file: str  # relative to the repo root, e.g. "app_pages/train_lab.py"
    title: str
    icon: str = ":material/school:"

    @property
    def url_path(self) -> str:
        return self.file.removeprefix("app_pages/").removesuffix(".py")

    @property
    def exists(self) -> bool:
        return (ROOT / self.file).is_file()


@dataclass(frozen=True)
class Topic:
    group: str
    title: str
    summary: str
    pages: tuple[PageSpec, ...] = ()

    @property
    def built_pages(self) -> list[PageSpec]:
        return [p for p in self.pages if p.exists]


TOPICS: tuple[Topic, ...] = (
    Topic("Start", "Train Lab", "Train a linear model, an MLP or a CNN on real images in seconds; watch the "
          "learning curves, inspect mistakes, try your own picture.",
          (PageSpec("app_pages/train_lab.py", "Train Lab", ":material/model_training:"),)),
    Topic("Start", "Lessons", "Guided lessons in lecture order, each with a quiz and links into the labs.",
          (PageSpec("app_pages/lessons.py", "Lessons", ":material/menu_book:"),)),
    Topic("Convolution", "Convolution & pooling", "Kernel, stride, padding modes, dilation, groups, 1×1 and "
          "transposed convolution, pooling, output-size arithmetic, receptive fields.",
          (PageSpec("app_pages/conv_playground.py", "Convolution", ":material/grid_on:"),
           PageSpec("app_pages/pooling.py", "Pooling & 1×1 conv", ":material/filter_center_focus:"),
           PageSpec("app_pages/receptive_field.py", "Receptive field & output size", ":material/zoom_out_map:"))),
    Topic("Building blocks", "Activations, initialization & normalization", "Sigmoid to GELU and Maxout, "
          "vanishing gradients, dead ReLUs, Kaiming/Xavier, BatchNorm and its friends, preprocessing.",
          (PageSpec("app_pages/activations.py", "Activation functions", ":material/show_chart:"),
           PageSpec("app_pages/gradient_flow.py", "Gradients & initialization", ":material/trending_down:"),
           PageSpec("app_pages/normalization.py", "Normalization", ":material/tune:"),
           PageSpec("app_pages/preprocessing.py", "Preprocessing", ":material/photo_filter:"))),
    Topic("Training", "Losses, optimizers & loss landscapes", "Cross-entropy, hinge, MSE, L1; SGD, momentum, "
          "AdaGrad, RMSProp, Adam on surfaces and on a real network's landscape.",
          (PageSpec("app_pages/optimizers.py", "Optimizers on surfaces", ":material/route:"),
           PageSpec("app_pages/landscape.py", "Loss landscape", ":material/landscape:"),
           PageSpec("app_pages/losses.py", "Losses", ":material/functions:"),
           PageSpec("app_pages/minibatch.py", "Mini-batches & learning rate", ":material/speed:"))),
    Topic("Training", "Overfitting & regularization", "L1/L2/elastic penalties, dropout, early stopping and "
          "augmentation, measured on train and validation curves."),
    Topic("Architectures", "Architectures & residual learning", "LeNet, AlexNet, VGG, Inception, ResNet, "
          "DenseNet and SE blocks; plain vs residual networks; transfer learning."),
    Topic("Inside the CNN", "Feature maps, saliency & robustness", "Activation maps, filters, feature "
          "visualization, saliency and Grad-CAM, adversarial examples.",
          (PageSpec("app_pages/feature_maps.py", "Activation maps & filters", ":material/layers:"),
           PageSpec("app_pages/saliency.py", "Saliency & Grad-CAM", ":material/visibility:"),
           PageSpec("app_pages/robustness.py", "Robustness & adversarial", ":material/shield:"))),
    Topic("Transformers", "Attention & Vision Transformers", "Queries, keys and values, multi-head attention, "
          "the ViT, attention rollout, and CNN vs ViT on the same data.",
          (PageSpec("app_pages/attention.py", "Attention step by step", ":material/hub:"),
           PageSpec("app_pages/vit_inside.py", "Inside a ViT", ":material/grid_view:"),
           PageSpec("app_pages/cnn_vs_vit.py", "CNN vs ViT", ":material/compare:"))),
)


def built_pages() -> list[tuple[str, PageSpec]]:
    """(navigation group, page) for every page file that exists, in topic order."""
    return [(t.group, p) for t in TOPICS for p in t.built_pages]
