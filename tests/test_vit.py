"""vit_tiny and the attention maths: hooks read the real weights, rollout and distances are right."""

import math

import pytest
import torch
from torch import nn

from engine import models
from engine.errors import UserInputError
from engine.explain import attention as att
from engine.models import ModelConfig
from engine.models.export import model_source
from engine.models.vit import auto_patch_size, patches, sinusoidal_encoding
from engine.training.config import TrainConfig
from engine.training.trainer import Trainer


def _vit(**options):
    return models.build("vit_tiny", in_channels=3, num_classes=5, image_size=16, seed=1, **options)


def test_hooked_weights_equal_manual_softmax_of_qk():
    model = _vit(width=32, depth=2, heads=4, patch_size=4)
    x = torch.rand(3, 3, 16, 16)
    maps = att.attention_weights(model, x)
    assert len(maps.weights) == 2 and maps.weights[0].shape == (3, 4, 17, 17)
    # Recompute layer 0 by hand from the block's own weights.
    with torch.no_grad():
        tokens = model.tokens(model.patch_embed(model.normalize(x)))  # (B, N, D)
        block = model.encoder[0]
        h = block.norm1(tokens)
        w_q, w_k, _ = block.attn.qkv.weight.chunk(3)
        b_q, b_k, _ = block.attn.qkv.bias.chunk(3)
        q = (h @ w_q.T + b_q).reshape(3, 17, 4, 8).transpose(1, 2)  # (B, N, D) -> (B, h, N, d)
        k = (h @ w_k.T + b_k).reshape(3, 17, 4, 8).transpose(1, 2)
        manual = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(8), dim=-1)
    torch.testing.assert_close(maps.weights[0], manual)
    for w in maps.weights:
        torch.testing.assert_close(w.sum(-1), torch.ones(w.shape[:-1]))


def test_attention_weights_leave_model_mode_and_hooks_as_found():
    model = _vit(depth=1).train()
    att.attention_weights(model, torch.rand(1, 3, 16, 16))
    assert model.training
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_attention_steps_match_torch_multihead_attention():
    width, heads = 8, 2
    w = att.toy_weights(width, seed=3)
    x = torch.randn(5, width)
    steps = att.attention_steps(x, num_heads=heads, **w)
    mha = nn.MultiheadAttention(width, heads, bias=False, batch_first=True)
    with torch.no_grad():
        mha.in_proj_weight.copy_(torch.cat([w["w_q"].T, w["w_k"].T, w["w_v"].T]))
        mha.out_proj.weight.copy_(w["w_o"].T)
        out, weights = mha(x[None], x[None], x[None], average_attn_weights=False)
    torch.testing.assert_close(steps.out, out[0])
    torch.testing.assert_close(steps.weights, weights[0])
    torch.testing.assert_close(steps.weights.sum(-1), torch.ones(heads, 5))


def test_rollout_of_identity_attention_is_identity_and_rows_sum_to_one():
    eye = torch.eye(6).expand(2, 3, 6, 6)
    for fusion in att.HEAD_FUSIONS:
        torch.testing.assert_close(att.rollout_matrices([eye, eye], head_fusion=fusion), torch.eye(6).expand(2, 6, 6))
    random = [torch.rand(2, 3, 6, 6).softmax(-1) for _ in range(3)]
    for fusion in att.HEAD_FUSIONS:
        for discard in (0.0, 0.5, 0.9):
            joint = att.rollout_matrices(random, head_fusion=fusion, discard_ratio=discard)
            torch.testing.assert_close(joint.sum(-1), torch.ones(2, 6))


def test_rollout_of_one_layer_is_half_attention_half_residual():
    weights = torch.rand(1, 2, 4, 4).softmax(-1)
    joint = att.rollout_matrices([weights], head_fusion="mean")
    torch.testing.assert_close(joint[0], (weights[0].mean(0) + torch.eye(4)) / 2)


def test_mean_attention_distance_of_uniform_and_self_attention():
    g, p = 3, 4
    n = g * g + 1
    self_only = torch.eye(n).expand(1, 2, n, n)
    maps = att.AttentionMaps([self_only], g, p, True)
    torch.testing.assert_close(att.mean_attention_distance(maps), torch.zeros(1, 2))
    uniform = torch.full((1, 1, n, n), 1 / n)
    centres = torch.tensor([[r * p, c * p] for r in range(g) for c in range(g)], dtype=torch.float32)
    expected = torch.cdist(centres, centres).mean()
    distance = att.mean_attention_distance(att.AttentionMaps([uniform], g, p, True))
    torch.testing.assert_close(distance, expected.reshape(1, 1))


def test_class_token_and_rollout_maps_have_the_patch_grid():
    model = _vit(width=16, depth=2, heads=2, patch_size=4, pool="mean", pos_embedding="sinusoidal")
    maps = att.attention_weights(model, torch.rand(2, 3, 16, 16))
    assert not maps.class_token and maps.weights[0].shape == (2, 2, 16, 16)
    assert att.class_token_attention(maps).shape == (2, 2, 2, 4, 4)
    assert att.rollout(maps, head_fusion="min", discard_ratio=0.3).shape == (2, 4, 4)
    assert att.position_similarity(model).shape == (16, 4, 4)


def test_rollout_on_torchvision_vit_b_16_gives_14x14():
    from torchvision.models import vit_b_16

    torch.manual_seed(0)
    model = vit_b_16(weights=None).eval()
    maps = att.attention_weights(model, torch.rand(1, 3, 224, 224))
    assert len(maps.weights) == 12 and maps.weights[0].shape == (1, 12, 197, 197)
    torch.testing.assert_close(maps.weights[5].sum(-1), torch.ones(1, 12, 197))
    assert att.rollout(maps, head_fusion="max", discard_ratio=0.9).shape == (1, 14, 14)
    assert att.mean_attention_distance(maps).shape == (12, 12)
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_sinusoidal_encoding_matches_formula():
    pe = sinusoidal_encoding(10, 6)
    pos, i = 7, 1
    assert pe[pos, 2 * i].item() == pytest.approx(math.sin(pos / 10000 ** (2 * i / 6)), abs=1e-6)
    assert pe[pos, 2 * i + 1].item() == pytest.approx(math.cos(pos / 10000 ** (2 * i / 6)), abs=1e-6)


def test_patches_are_the_patch_embedding_inputs():
    model = _vit(width=8, depth=1, heads=2, patch_size=4)
    image = torch.rand(3, 16, 16)
    cut = patches(image, 4)  # (16, 3, 4, 4)
    conv = model.patch_embed.proj
    by_hand = cut.flatten(1) @ conv.weight.flatten(1).T + conv.bias  # (N, D)
    torch.testing.assert_close(model.patch_embed(image[None])[0], by_hand, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("size,patch", [(8, 2), (25, 5), (28, 4), (32, 4), (16, 2), (13, 13)])
def test_auto_patch_size_divides_and_keeps_at_most_64_patches(size, patch):
    assert auto_patch_size(size) == patch


@pytest.mark.parametrize("pos,pool", [("learned", "cls"), ("sinusoidal", "mean"), ("none", "cls")])
def test_export_round_trips_vit_tiny(pos, pool):
    model = _vit(width=16, depth=2, heads=4, pos_embedding=pos, pool=pool).eval()
    namespace: dict = {}
    exec(model_source(model, ModelConfig("vit_tiny", 3, 5, 16)), namespace)
    rebuilt = namespace["build_model"]()
    rebuilt.load_state_dict(model.state_dict())
    rebuilt.eval()
    x = torch.rand(2, 3, 16, 16)
    torch.testing.assert_close(rebuilt(x), model(x))


def test_attention_macs_count_qk_and_av():
    model = _vit(width=16, depth=3, heads=4, patch_size=4)
    assert models.vit.attention_macs(model) == 3 * 2 * 17 * 17 * 16


@pytest.mark.parametrize("options,fragment", [
    (dict(patch_size=3), r"image_size \(16\) must be divisible by patch_size \(3\)"),
    (dict(width=30, heads=4), r"heads \(4\) must divide width \(30\)"),
    (dict(pool="max"), "pool must be one of"),
    (dict(pos_embedding="rope"), "pos_embedding must be one of"),
    (dict(depth=0), "depth"),
])
def test_bad_vit_options_raise_user_input_error(options, fragment):
    with pytest.raises(UserInputError, match=fragment):
        _vit(**options)


def test_vit_tiny_learns_digits(digits):
    """A quick learning check (≈6 s); the ≥85 % shapes run is benchmarks/vit_vs_cnn.py (minutes)."""
    config = TrainConfig(data="digits", model="vit_tiny", model_options=dict(width=32, depth=2, heads=2),
                         optimizer="adamw", lr=3e-3, batch_size=32, epochs=8, seed=0)
    run = Trainer(config, digits).fit()
    assert run.history.val_acc[-1] > run.history.val_acc[0] + 0.3
    assert run.history.test_acc > 0.8  # 88.9 % when written; chance is 10 %


def test_vit_tiny_reaches_85_percent_on_shapes():
    """The issue's bar, on the recipe of benchmarks/vit_vs_cnn.py shortened to 20 epochs.

    A ViT has no built-in locality, so it needs more images (24,000 at 16×16) and flip+shift
    augmentation; measured here: 91.7 % test accuracy in 69 s on one CPU thread.
    """
    from engine import data

    dataset = data.load("shapes", image_size=16, num_images=24000, seed=0)
    config = TrainConfig(data="shapes", image_size=16, model="vit_tiny",
                         model_options=dict(patch_size=4, width=64, depth=3, heads=4),
                         optimizer="adamw", lr=2e-3, weight_decay=0.05, batch_size=64, epochs=20,
                         schedule="cosine", augmentation="flip_shift", seed=0)
    run = Trainer(config, dataset).fit()
    print(f"vit_tiny on shapes: {run.history.test_acc:.1%} in {run.history.total_seconds:.0f} s")
    assert run.history.test_acc >= 0.85
