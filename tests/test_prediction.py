"""engine.training.metrics.predict_one: one image's probabilities, best class and top-k, as PyTorch computes them."""

import pytest
import torch

from engine import models
from engine.errors import UserInputError
from engine.training.metrics import predict_one, top_k


def test_predict_one_is_the_softmax_of_the_models_logits():
    model = models.build("mlp", in_channels=1, num_classes=5, image_size=8, seed=0).eval()
    image = torch.rand(1, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = model(image[None]).softmax(1)[0]
    prediction = predict_one(model, image)
    torch.testing.assert_close(prediction.probabilities, expected)
    torch.testing.assert_close(predict_one(model, image[None]).probabilities, expected)  # (1, C, H, W) too
    assert prediction.best == int(expected.argmax())
    assert prediction.confidence == pytest.approx(float(expected.max()))
    assert prediction.top(3) == top_k(expected, 3)
    assert [i for i, _ in prediction.top(5)] == expected.argsort(descending=True).tolist()


def test_predict_one_refuses_a_batch():
    model = models.build("linear", in_channels=1, num_classes=3, image_size=4, seed=0)
    with pytest.raises(UserInputError, match="one image"):
        predict_one(model, torch.rand(2, 1, 4, 4))
