"""Attention maps: scaled dot-product attention step by step, per-head maps, rollout, attention distance.

`attention_weights` reads the softmax weights of every layer with hooks, from our `vit_tiny` (a
forward hook on each `Attention.softmax`) or from torchvision's `VisionTransformer` (its encoder
calls `nn.MultiheadAttention` with `need_weights=False`; a forward pre-hook with `with_kwargs=True`
turns the weights back on, per head). Everything else works on those weights.

References:
    Vaswani et al. 2017, "Attention Is All You Need", arXiv 1706.03762.
    Abnar & Zuidema 2020, "Quantifying Attention Flow in Transformers", arXiv 2005.00928 (rollout).
    Dosovitskiy et al. 2021, arXiv 2010.11929, fig. 7 (mean attention distance).
    J. Gildenblat, vit-explain (head fusion, discard ratio), https://github.com/jacobgil/vit-explain
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from engine.device import generator
from engine.errors import UserInputError
from engine.models.blocks import evaluating
from engine.models.vit import Attention, PatchEmbed, Tokens, sinusoidal_encoding

HEAD_FUSIONS = ("mean", "max", "min")


# ---- attention, one step at a time -------------------------------------------------------------
@dataclass
class AttentionSteps:
    """Every intermediate of multi-head self-attention on one sequence (N tokens, width D, h heads)."""

    x: Tensor  # (N, D) the input tokens
    q: Tensor  # (N, D) queries X W_Q (all heads side by side)
    k: Tensor  # (N, D) keys
    v: Tensor  # (N, D) values
    scores: Tensor  # (h, N, N) Q_i K_iᵀ / √d per head
    weights: Tensor  # (h, N, N) softmax over each row: who each token listens to
    heads: Tensor  # (h, N, d) weights @ V_i
    concat: Tensor  # (N, D) the heads side by side
    out: Tensor  # (N, D) concat W_O


def toy_tokens(words: list[str], width: int, *, seed: int = 0, positional: bool = False) -> Tensor:
    """(N, D): one random embedding per distinct word (a lookup table), plus the sinusoidal encoding.

    Without the encoding, repeated words are identical vectors, so attention cannot tell them apart.
    """
    if not words:
        raise UserInputError("the sequence needs at least one token")
    vocabulary = sorted(set(words))
    table = torch.randn(len(vocabulary), width, generator=generator(seed + 1))  # (V, D)
    x = table[[vocabulary.index(w) for w in words]]  # (N, D)
    return x + sinusoidal_encoding(len(words), width) if positional else x


def toy_weights(width: int, *, seed: int = 0, scale: float = 1.0) -> dict[str, Tensor]:
    """Random W_Q, W_K, W_V, W_O (D, D) with N(0, scale²/D) entries, from their own generator."""
    g = generator(seed)
    return {name: torch.randn(width, width, generator=g) * scale / math.sqrt(width)
            for name in ("w_q", "w_k", "w_v", "w_o")}


def attention_steps(x: Tensor, *, w_q: Tensor, w_k: Tensor, w_v: Tensor, w_o: Tensor,
                    num_heads: int = 1) -> AttentionSteps:
    """Multi-head attention of tokens `x` (N, D) with weights (D, D), keeping every intermediate.

    Head i uses columns i·d … (i+1)·d of Q, K and V, d = D / h (Vaswani §3.2.2).
    """
    n, width = x.shape
    if num_heads < 1 or width % num_heads:
        raise UserInputError(f"heads ({num_heads}) must divide the width ({width})")
    d = width // num_heads
    q, k, v = x @ w_q, x @ w_k, x @ w_v  # (N, D) each
    split = lambda t: t.reshape(n, num_heads, d).transpose(0, 1)  # (N, D) -> (h, N, d)  # noqa: E731
    scores = split(q) @ split(k).transpose(1, 2) / math.sqrt(d)  # (h, N, N)
    weights = scores.softmax(dim=-1)
    heads = weights @ split(v)  # (h, N, d)
    concat = heads.transpose(0, 1).reshape(n, width)  # (h, N, d) -> (N, D)
    return AttentionSteps(x, q, k, v, scores, weights, heads, concat, concat @ w_o)


# ---- reading a ViT's attention -----------------------------------------------------------------
@dataclass
class AttentionMaps:
    """The attention weights of every layer for a batch, and how tokens map onto the image."""

    weights: list[Tensor]  # one (B, h, N, N) per layer; row = query token, column = key token
    grid: int  # patches per side
    patch_size: int  # pixels per patch side
    class_token: bool  # token 0 is the class token

    @property
    def num_layers(self) -> int:
        return len(self.weights)

    @property
    def num_heads(self) -> int:
        return self.weights[0].shape[1]


def _layout(model: nn.Module) -> tuple[int, int, bool]:
    """(patch_size, grid side, class token?) for vit_tiny or torchvision's VisionTransformer."""
    tokens = next((m for m in model.modules() if isinstance(m, Tokens)), None)
    if tokens is not None:
        embed = next(m for m in model.modules() if isinstance(m, PatchEmbed))
        return embed.proj.stride[0], math.isqrt(tokens.num_patches), tokens.class_token
    if hasattr(model, "class_token") and hasattr(model, "patch_size") and hasattr(model, "image_size"):
        return model.patch_size, model.image_size // model.patch_size, True  # torchvision
    raise UserInputError(f"{type(model).__name__} is not a vision transformer: it has no attention maps")


def _force_weights(module, args, kwargs):
    """nn.MultiheadAttention pre-hook: return the weights of every head, not None or their mean."""
    return args, {**kwargs, "need_weights": True, "average_attn_weights": False}


def attention_weights(model: nn.Module, images: Tensor) -> AttentionMaps:
    """Run `images` (B, C, H, W) in [0, 1] through `model` and collect every layer's attention weights."""
    patch_size, grid, class_token = _layout(model)
    captured: list[Tensor] = []
    handles = []
    for module in model.modules():
        if isinstance(module, Attention):
            handles.append(module.softmax.register_forward_hook(
                lambda m, inputs, output: captured.append(output.detach())))
        elif isinstance(module, nn.MultiheadAttention):
            handles.append(module.register_forward_pre_hook(_force_weights, with_kwargs=True))
            handles.append(module.register_forward_hook(
                lambda m, inputs, output: captured.append(output[1].detach())))
    try:
        device = next(model.parameters()).device
        with evaluating(model), torch.no_grad():
            model(images.to(device))
    finally:
        for handle in handles:
            handle.remove()
    if not captured:
        raise RuntimeError("no attention layer ran: the hooks never fired")
    return AttentionMaps([w.cpu() for w in captured], grid, patch_size, class_token)


def class_token_attention(maps: AttentionMaps) -> Tensor:
    """(B, L, h, g, g): how much the class token attends to each patch, per layer and head.

    Without a class token (mean pooling) every token feeds the output equally, so we show the
    attention each patch receives, averaged over all queries.
    """
    stacked = torch.stack(maps.weights, dim=1)  # (B, L, h, N, N)
    if maps.class_token:
        received = stacked[..., 0, 1:]  # the class token's row, patch columns -> (B, L, h, P)
    else:
        received = stacked.mean(dim=-2)  # (B, L, h, P)
    return received.reshape(*received.shape[:3], maps.grid, maps.grid)  # (B, L, h, P) -> (B, L, h, g, g)


def rollout_matrices(weights: list[Tensor], *, head_fusion: str = "mean", discard_ratio: float = 0.0) -> Tensor:
    """Attention rollout (Abnar & Zuidema 2020): (B, N, N), how much each output token draws on each input.

    Per layer: fuse the heads (mean, max or min), zero the weakest `discard_ratio` of the entries
    (never the class token's own), add the identity for the residual connection, renormalize the
    rows to 1, and multiply the layers together from the first to the last.
    """
    if head_fusion not in HEAD_FUSIONS:
        raise UserInputError(f"head fusion must be one of {', '.join(HEAD_FUSIONS)}; got {head_fusion!r}")
    if not 0.0 <= discard_ratio < 1.0:
        raise UserInputError(f"discard ratio must be in [0, 1); got {discard_ratio}")
    b, _, n, _ = weights[0].shape
    eye = torch.eye(n)
    result = eye.expand(b, n, n)
    for layer in weights:
        fused = getattr(layer.float(), head_fusion)(dim=1)  # (B, h, N, N) -> (B, N, N)
        fused = fused.values if head_fusion != "mean" else fused
        if discard_ratio > 0:
            flat = fused.reshape(b, -1).clone()  # (B, N·N)
            drop = flat.topk(int(flat.shape[1] * discard_ratio), dim=1, largest=False).indices
            keep_cls = flat.gather(1, torch.zeros_like(drop[:, :1]))  # entry (0, 0)
            flat.scatter_(1, drop, 0.0)
            flat[:, :1] = keep_cls
            fused = flat.reshape(b, n, n)
        mixed = (fused + eye) / 2  # half attention, half the residual path
        mixed = mixed / mixed.sum(dim=-1, keepdim=True)
        result = mixed @ result
    return result


def rollout(maps: AttentionMaps, *, head_fusion: str = "mean", discard_ratio: float = 0.0) -> Tensor:
    """(B, g, g): the rolled-out attention of the class token (or of the mean token) on the patches."""
    joint = rollout_matrices(maps.weights, head_fusion=head_fusion, discard_ratio=discard_ratio)
    row = joint[:, 0, 1:] if maps.class_token else joint.mean(dim=1)  # (B, P)
    row = row / row.amax(dim=1, keepdim=True).clamp_min(1e-12)  # the strongest patch = 1
    return row.reshape(-1, maps.grid, maps.grid)


def mean_attention_distance(maps: AttentionMaps) -> Tensor:
    """(L, h): the average image distance, in pixels, between a patch and the patches it attends to.

    Dosovitskiy et al. fig. 7: like a receptive field size. Small = local, like a convolution;
    large = global. The class token is left out and each query's patch weights renormalized.
    """
    g, p = maps.grid, maps.patch_size
    rows, cols = torch.meshgrid(torch.arange(g), torch.arange(g), indexing="ij")
    centres = torch.stack([rows.flatten(), cols.flatten()], dim=1).float() * p  # (P, 2) in pixels
    distance = torch.cdist(centres, centres)  # (P, P)
    start = int(maps.class_token)
    out = []
    for layer in maps.weights:
        patch = layer[..., start:, start:].float()  # (B, h, P, P)
        patch = patch / patch.sum(dim=-1, keepdim=True).clamp_min(1e-12)
        out.append((patch * distance).sum(dim=-1).mean(dim=(0, 2)))  # (B, h, P) -> (h,)
    return torch.stack(out)


def position_similarity(model: nn.Module) -> Tensor:
    """(P, g, g): cosine similarity of each patch's position embedding with every other patch's.

    Learned embeddings that come out 2-D-looking (high near the patch, along its row and column)
    show the model has learned the image layout it was never told about (Dosovitskiy et al. fig. 7).
    """
    tokens = next((m for m in model.modules() if isinstance(m, Tokens)), None)
    if tokens is None or tokens.pos is None:
        raise UserInputError("this model has no position embeddings (pos_embedding = none)")
    pos = tokens.pos.detach()[0, int(tokens.class_token):].float()  # (1, N, D) -> (P, D)
    pos = nn.functional.normalize(pos, dim=1)
    g = math.isqrt(tokens.num_patches)
    return (pos @ pos.T).reshape(-1, g, g)  # (P, P) -> (P, g, g)
