"""The map of the app: every topic the lectures teach, its page when built, and its lesson."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Topic:
    group: str
    title: str
    summary: str
    page: str | None = None  # file under pages/ once the page exists; None = coming
    icon: str = ":material/school:"

    @property
    def url_path(self) -> str | None:
        return self.page.removeprefix("pages/").removesuffix(".py") if self.page else None


TOPICS: tuple[Topic, ...] = (
    Topic("Start", "Train Lab", "Train a linear model, an MLP or a CNN on real images in seconds; "
          "watch the learning curves, inspect mistakes, try your own picture.",
          "pages/train_lab.py", ":material/model_training:"),
    Topic("Start", "Lessons", "Guided lessons in lecture order, each with a quiz and links into the labs.",
          "pages/lessons.py", ":material/menu_book:"),
    Topic("Convolution", "Convolution & pooling", "Kernel, stride, padding modes, dilation, groups, "
          "1×1 and transposed convolution, pooling, output-size arithmetic, receptive fields."),
    Topic("Building blocks", "Activations, initialization & normalization", "Sigmoid to GELU and "
          "Maxout, vanishing gradients, dead ReLUs, Kaiming/Xavier, BatchNorm and its friends."),
    Topic("Training", "Losses, optimizers & loss landscapes", "Cross-entropy, hinge, MSE, L1; SGD, "
          "momentum, AdaGrad, RMSProp, Adam on surfaces and on a real network's landscape."),
    Topic("Training", "Overfitting & regularization", "L1/L2/elastic penalties, dropout, early "
          "stopping and augmentation, measured on train and validation curves."),
    Topic("Architectures", "Architectures & residual learning", "LeNet, AlexNet, VGG, Inception, "
          "ResNet, DenseNet and SE blocks; plain vs residual networks; transfer learning."),
    Topic("Inside the CNN", "Feature maps, saliency & robustness", "Activation maps, filters, "
          "feature visualization, saliency and Grad-CAM, adversarial examples."),
    Topic("Transformers", "Attention & Vision Transformers", "Queries, keys and values, multi-head "
          "attention, the ViT, attention rollout, and CNN vs ViT on the same data."),
)


def built() -> list[Topic]:
    return [t for t in TOPICS if t.page]
