"""Losses equal their textbook definitions and PyTorch's own implementations."""

import pytest
import torch
import torch.nn.functional as F

from engine.training import losses
from engine.errors import UserInputError

LOGITS = torch.tensor([[2.0, 1.0, -1.0], [0.5, 0.5, 3.0], [-1.0, 2.0, 0.0]])
LABELS = torch.tensor([0, 1, 2])


def test_cross_entropy_with_label_smoothing_matches_torch():
    for eps in (0.0, 0.1):
        expected = F.cross_entropy(LOGITS, LABELS, label_smoothing=eps)
        torch.testing.assert_close(losses.build("cross_entropy", label_smoothing=eps)(LOGITS, LABELS), expected)


def test_multiclass_hinge_matches_hand_computation_and_torch():
    # example 0: max(0, 1-2+1) + max(0, -1-2+1) = 0; example 1: (0.5-0.5+1) + (3-0.5+1) = 4.5;
    # example 2: (-1-0+1) + (2-0+1) = 3
    expected = torch.tensor((0 + 4.5 + 3) / 3)
    torch.testing.assert_close(losses.build("multiclass_hinge")(LOGITS, LABELS), expected)
    # nn.MultiMarginLoss divides by the number of classes
    torch.testing.assert_close(losses.build("multiclass_hinge")(LOGITS, LABELS) / 3,
                               F.multi_margin_loss(LOGITS, LABELS))


@pytest.mark.parametrize("name,reference", [
    ("mse", F.mse_loss), ("l1", F.l1_loss), ("huber", lambda p, t: F.huber_loss(p, t, delta=1.0))])
def test_regression_losses_compare_softmax_with_one_hot(name, reference):
    target = F.one_hot(LABELS, 3).float()
    torch.testing.assert_close(losses.build(name)(LOGITS, LABELS), reference(LOGITS.softmax(1), target))


def test_every_loss_is_differentiable_and_zero_gradient_free():
    for name in losses.names():
        logits = LOGITS.clone().requires_grad_()
        losses.build(name)(logits, LABELS).backward()
        assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0, name


def test_unknown_loss_and_option_raise():
    with pytest.raises(UserInputError, match="unknown loss 'focal'; choose one of: cross_entropy"):
        losses.build("focal")
    with pytest.raises(UserInputError, match="no option"):
        losses.build("mse", delta=2.0)
    with pytest.raises(UserInputError, match="label_smoothing"):
        losses.build("cross_entropy", label_smoothing=1.5)


@pytest.mark.parametrize("name", losses.names())
def test_every_loss_pickles_for_the_job_workers(name):
    import pickle

    loss = losses.build(name)
    logits, y = torch.randn(4, 3, generator=torch.Generator().manual_seed(0)), torch.tensor([0, 2, 1, 2])
    torch.testing.assert_close(pickle.loads(pickle.dumps(loss))(logits, y), loss(logits, y))
