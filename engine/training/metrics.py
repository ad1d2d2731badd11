"""What a trained classifier gets right and wrong: confusion matrix, per-class accuracy, mistakes, top-k.

References:
    scikit-learn, "Confusion matrix", https://scikit-learn.org/stable/modules/model_evaluation.html
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from engine.data.sets import Split
from engine.errors import UserInputError
from engine.training.trainer import predict


@dataclass
class Evaluation:
    """Predictions of a model on one split, and what follows from them."""

    probabilities: Tensor  # (N, K)
    labels: Tensor  # (N,)

    @property
    def predictions(self) -> Tensor:
        return self.probabilities.argmax(1)

    @property
    def accuracy(self) -> float:
        return float((self.predictions == self.labels).float().mean()) if len(self.labels) else 0.0

    def confusion_matrix(self) -> Tensor:
        """(K, K) counts; row = true class, column = predicted class."""
        k = self.probabilities.shape[1]
        flat = self.labels * k + self.predictions
        return torch.bincount(flat, minlength=k * k).view(k, k)

    def per_class_accuracy(self) -> Tensor:
        """(K,) recall per class; NaN for a class with no example in the split."""
        matrix = self.confusion_matrix().float()
        totals = matrix.sum(1)
        return torch.where(totals > 0, matrix.diag() / totals.clamp(min=1), torch.nan)

    def mistakes(self, limit: int = 32) -> Tensor:
        """Indices of misclassified examples, the most confidently wrong first."""
        wrong = (self.predictions != self.labels).nonzero().flatten()
        confidence = self.probabilities[wrong].max(1).values
        return wrong[confidence.argsort(descending=True)][:limit]


def evaluate_split(model: nn.Module, split: Split) -> Evaluation:
    return Evaluation(predict(model, split.x), split.y.cpu())


def top_k(probabilities: Tensor, k: int = 5) -> list[tuple[int, float]]:
    """(class index, probability) of the k most likely classes for ONE example's (K,) probabilities."""
    values, indices = probabilities.topk(min(k, probabilities.numel()))
    return list(zip(indices.tolist(), values.tolist()))


@dataclass
class Prediction:
    """A model's class probabilities for one image, and what pages read off them."""

    probabilities: Tensor  # (K,)

    @property
    def best(self) -> int:
        return int(self.probabilities.argmax())

    @property
    def confidence(self) -> float:
        return float(self.probabilities.max())

    def top(self, k: int = 5) -> list[tuple[int, float]]:
        return top_k(self.probabilities, k)


def predict_one(model: nn.Module, image: Tensor) -> Prediction:
    """The prediction for one image, (C, H, W) or (1, C, H, W), in [0, 1]."""
    batch = image if image.dim() == 4 else image[None]  # (C, H, W) -> (1, C, H, W)
    if len(batch) != 1:
        raise UserInputError(f"predict_one takes one image; got a batch of {len(batch)}")
    return Prediction(predict(model, batch)[0])


def linear_templates(model: nn.Module, *, channels: int, image_size: int) -> Tensor:
    """The linear classifier's weight rows as images (K, C, H, W): what each class 'looks for'.

    The weights act on standardized pixels, so each row is shown as it is; positive = this
    pixel being bright raises the class score.
    """
    fc = model.fc
    return fc.weight.detach().cpu().view(fc.out_features, channels, image_size, image_size)
