"""The map of the app: every topic the lectures teach, its pages, and which of them exist yet.

A page is listed in the navigation as soon as its file exists under app_pages/<group>/; a topic with
no page file yet shows on the home page as "coming". Adding a page = creating its file (listed here
with the URL path it keeps forever).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class PageSpec:
    file: str  # relative to the repo root, e.g. "app_pages/start/train_lab.py"
    url_path: str  # flat and fixed forever: lessons and shared links use it (Streamlit refuses nested paths)
    title: str
    icon: str = ":material/school:"

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
          (PageSpec("app_pages/start/train_lab.py", "train_lab", "Train Lab", ":material/model_training:"),)),
    Topic("Start", "Decision boundaries", "Two-dimensional data no line can separate; a small MLP trained live "
          "cuts the plane with its hidden units, TensorFlow-Playground style.",
          (PageSpec("app_pages/start/decision_boundaries.py", "decision_boundaries", "Decision boundaries",
                    ":material/scatter_plot:"),)),
    Topic("Start", "Lessons", "Guided lessons in lecture order, each with a quiz and links into the labs.",
          (PageSpec("app_pages/start/lessons.py", "lessons", "Lessons", ":material/menu_book:"),)),
    Topic("Convolution", "Convolution & pooling", "Kernel, stride, padding modes, dilation, groups, 1×1 and "
          "transposed convolution, pooling, output-size arithmetic, receptive fields.",
          (PageSpec("app_pages/convolution/conv_playground.py", "conv_playground", "Convolution", ":material/grid_on:"),
           PageSpec("app_pages/convolution/pooling.py", "pooling", "Pooling & 1×1 conv", ":material/filter_center_focus:"),
           PageSpec("app_pages/convolution/receptive_field.py", "receptive_field", "Receptive field & output size", ":material/zoom_out_map:"))),
    Topic("Building blocks", "Activations, initialization & normalization", "Sigmoid to GELU and Maxout, "
          "vanishing gradients, dead ReLUs, Kaiming/Xavier, BatchNorm and its friends, preprocessing.",
          (PageSpec("app_pages/building_blocks/activations.py", "activations", "Activation functions", ":material/show_chart:"),
           PageSpec("app_pages/building_blocks/gradient_flow.py", "gradient_flow", "Gradients & initialization", ":material/trending_down:"),
           PageSpec("app_pages/building_blocks/normalization.py", "normalization", "Normalization", ":material/tune:"),
           PageSpec("app_pages/building_blocks/preprocessing.py", "preprocessing", "Preprocessing", ":material/photo_filter:"))),
    Topic("Training", "Losses, optimizers & loss landscapes", "Cross-entropy, hinge, MSE, L1; SGD, momentum, "
          "AdaGrad, RMSProp, Adam on surfaces and on a real network's landscape.",
          (PageSpec("app_pages/training/optimizers.py", "optimizers", "Optimizers on surfaces", ":material/route:"),
           PageSpec("app_pages/training/landscape.py", "landscape", "Loss landscape", ":material/landscape:"),
           PageSpec("app_pages/training/losses.py", "losses", "Losses", ":material/functions:"),
           PageSpec("app_pages/training/minibatch.py", "minibatch", "Mini-batches & learning rate", ":material/speed:"),
           PageSpec("app_pages/training/backprop.py", "backprop", "Backpropagation step by step", ":material/account_tree:"))),
    Topic("Overfitting & regularization", "Overfitting & regularization", "Train vs validation curves, "
          "L1/L2/elastic penalties, weight decay, dropout, early stopping, augmentation, data pitfalls and "
          "hyperparameter search.",
          (PageSpec("app_pages/regularization/overfitting.py", "overfitting", "Overfitting", ":material/ssid_chart:"),
           PageSpec("app_pages/regularization/regularization.py", "regularization", "Regularization", ":material/compress:"),
           PageSpec("app_pages/regularization/augmentation.py", "augmentation", "Data augmentation", ":material/auto_awesome:"),
           PageSpec("app_pages/regularization/data_pitfalls.py", "data_pitfalls", "Data pitfalls", ":material/report:"),
           PageSpec("app_pages/regularization/tuning.py", "tuning", "Hyperparameter search", ":material/manage_search:"))),
    Topic("Architectures", "Architectures & residual learning", "LeNet, AlexNet, VGG, Inception, ResNet, "
          "DenseNet and SE blocks; plain vs residual networks and the ensemble of paths.",
          (PageSpec("app_pages/architectures/gallery.py", "architecture_gallery", "Architecture gallery", ":material/view_module:"),
           PageSpec("app_pages/architectures/residual.py", "residual_learning", "Residual learning", ":material/alt_route:"),
           PageSpec("app_pages/architectures/classic_nets.py", "classic_nets", "Classic nets, trained here", ":material/history_edu:"))),
    Topic("Architectures", "Transfer learning, ensembles & multi-task", "Features of a trained network, linear "
          "probes, fine-tuning, the few-shot curve, ensembles and several heads on one base.",
          (PageSpec("app_pages/architectures/transfer.py", "transfer_learning", "Transfer learning", ":material/move_up:"),
           PageSpec("app_pages/architectures/fine_tuning.py", "fine_tuning", "Fine-tuning & the few-shot curve",
                    ":material/model_training:"),
           PageSpec("app_pages/architectures/ensembles.py", "ensembles", "Ensembles", ":material/groups:"),
           PageSpec("app_pages/architectures/multitask.py", "multitask", "Multi-task learning", ":material/call_split:"))),
    Topic("Inside the CNN", "Feature maps, saliency & robustness", "Activation maps, filters, feature "
          "visualization, saliency and Grad-CAM, adversarial examples.",
          (PageSpec("app_pages/inside_cnn/feature_maps.py", "feature_maps", "Activation maps & filters", ":material/layers:"),
           PageSpec("app_pages/inside_cnn/saliency.py", "saliency", "Saliency & Grad-CAM", ":material/visibility:"),
           PageSpec("app_pages/inside_cnn/robustness.py", "robustness", "Robustness & adversarial", ":material/shield:"))),
    Topic("Transformers", "Attention & Vision Transformers", "Queries, keys and values, multi-head attention, "
          "the ViT, attention rollout, and CNN vs ViT on the same data.",
          (PageSpec("app_pages/transformers/attention.py", "attention", "Attention step by step", ":material/hub:"),
           PageSpec("app_pages/transformers/vit_inside.py", "vit_inside", "Inside a ViT", ":material/grid_view:"),
           PageSpec("app_pages/transformers/cnn_vs_vit.py", "cnn_vs_vit", "CNN vs ViT", ":material/compare:"))),
)


def built_pages() -> list[tuple[str, PageSpec]]:
    """(navigation group, page) for every page file that exists, in topic order."""
    return [(t.group, p) for t in TOPICS for p in t.built_pages]


def page_file_for(url_path: str) -> str | None:
    """The page file behind a URL path (`conv_playground` → app_pages/convolution/conv_playground.py)."""
    return next((p.file for t in TOPICS for p in t.pages if p.url_path == url_path), None)
