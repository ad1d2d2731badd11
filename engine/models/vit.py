"""`vit_tiny`: a Vision Transformer small enough to train on a CPU in a minute.

Read it top to bottom as the paper's figure 1: cut the image into patches and project each to a
vector (`PatchEmbed`), prepend a class token and add position embeddings (`Tokens`), run a stack of
pre-norm transformer encoder blocks (`EncoderBlock` = multi-head self-`Attention` + MLP, each with
a residual connection), then classify from the class token or the mean token (`Pool`, `head`).

The attention weights pass through a named `nn.Softmax` child of every `Attention`, so a forward
hook on it (engine.explain.attention) reads them without changing the forward pass.

References:
    Vaswani et al. 2017, "Attention Is All You Need", arXiv 1706.03762 (§3.2 attention, §3.5 sinusoids).
    Dosovitskiy et al. 2021, "An Image is Worth 16x16 Words", arXiv 2010.11929.
    torchvision `models/vision_transformer.py`; timm `layers/patch_embed.py`; nanoGPT `model.py`.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import Tensor, nn

from engine.errors import UserInputError
from engine.models.registry import register

POOLS = ("cls", "mean")
POS_EMBEDDINGS = ("learned", "sinusoidal", "none")
MAX_GRID_SIDE = 8  # automatic patch size: the smallest patch giving at most 8×8 = 64 patch tokens


def auto_patch_size(image_size: int) -> int:
    """The smallest divisor p ≥ 2 of `image_size` with image_size / p ≤ 8 (8 → 2, 25 → 5, 28 → 4, 32 → 4).

    Attention cost grows with the square of the token count, so we keep at most 64 patch tokens; a
    size with no such divisor (a prime, say) falls back to one patch covering the whole image.
    """
    for p in range(2, image_size + 1):
        if image_size % p == 0 and image_size // p <= MAX_GRID_SIDE:
            return p
    return image_size


def patches(image: Tensor, patch_size: int) -> Tensor:
    """Cut one image (C, H, W) into its patches (N, C, p, p), row by row, as PatchEmbed sees them."""
    c, h, w = image.shape
    if h % patch_size or w % patch_size:
        raise UserInputError(f"image size ({h}×{w}) must be divisible by patch_size ({patch_size})")
    grid = image.unfold(1, patch_size, patch_size).unfold(2, patch_size, patch_size)  # (C, gh, gw, p, p)
    return grid.permute(1, 2, 0, 3, 4).reshape(-1, c, patch_size, patch_size)  # -> (N, C, p, p)


class PatchEmbed(nn.Module):
    """Cut the image into p×p patches and project each linearly to D numbers (a stride-p conv does both)."""

    def __init__(self, *, proj: nn.Conv2d):
        super().__init__()
        self.proj = proj

    def forward(self, x: Tensor) -> Tensor:
        x = self.proj(x)  # (B, C, H, W) -> (B, D, H/p, W/p)
        return x.flatten(2).transpose(1, 2)  # -> (B, N, D), patches row by row

    def export_kwargs(self) -> dict:
        return {}


class Tokens(nn.Module):
    """Prepend the learnable class token (pool "cls") and add position embeddings to the patch tokens."""

    # Self-contained (no module constants) so engine.models.export can copy the class into a standalone file.
    init_std = 0.02  # std of the class token and learned position embeddings, as in ViT and BERT

    @staticmethod
    def sinusoidal(num_positions: int, width: int) -> Tensor:
        """(N, D): PE[pos, 2i] = sin(pos / 10000^(2i/D)), PE[pos, 2i+1] = cos(…) (Vaswani §3.5)."""
        position = torch.arange(num_positions, dtype=torch.float32)[:, None]  # (N, 1)
        frequency = 10000.0 ** (-torch.arange(0, width, 2, dtype=torch.float32) / width)  # (⌈D/2⌉,)
        angles = position * frequency  # (N, ⌈D/2⌉)
        encoding = torch.zeros(num_positions, width)
        encoding[:, 0::2] = torch.sin(angles)
        encoding[:, 1::2] = torch.cos(angles[:, : width // 2])
        return encoding

    def __init__(self, *, dropout: nn.Dropout, num_patches: int, width: int, class_token: bool = True,
                 pos_embedding: str = "learned"):
        super().__init__()
        self.dropout = dropout
        self.num_patches, self.width = num_patches, width
        self.class_token, self.pos_embedding = class_token, pos_embedding
        num_tokens = num_patches + int(class_token)
        self.cls = nn.Parameter(torch.randn(1, 1, width) * self.init_std) if class_token else None
        if pos_embedding == "learned":
            self.pos = nn.Parameter(torch.randn(1, num_tokens, width) * self.init_std)
        elif pos_embedding == "sinusoidal":  # fixed, so a buffer: saved with the weights, never trained
            self.register_buffer("pos", self.sinusoidal(num_tokens, width)[None])
        else:
            self.pos = None

    def forward(self, x: Tensor) -> Tensor:
        if self.cls is not None:
            x = torch.cat([self.cls.expand(len(x), -1, -1), x], dim=1)  # (B, N, D) -> (B, 1 + N, D)
        if self.pos is not None:
            x = x + self.pos
        return self.dropout(x)

    def export_kwargs(self) -> dict:
        return {"num_patches": self.num_patches, "width": self.width, "class_token": self.class_token,
                "pos_embedding": self.pos_embedding}

    def extra_repr(self) -> str:
        return f"num_patches={self.num_patches}, width={self.width}, class_token={self.class_token}, " \
               f"pos_embedding={self.pos_embedding!r}"


sinusoidal_encoding = Tokens.sinusoidal


class Attention(nn.Module):
    """Multi-head self-attention: softmax(QKᵀ/√d) V per head, heads concatenated and projected."""

    def __init__(self, *, qkv: nn.Linear, softmax: nn.Softmax, attn_drop: nn.Dropout, proj: nn.Linear,
                 num_heads: int):
        super().__init__()
        self.qkv, self.softmax, self.attn_drop, self.proj = qkv, softmax, attn_drop, proj
        self.num_heads = num_heads

    def forward(self, x: Tensor) -> Tensor:
        b, n, d = x.shape
        head_dim = d // self.num_heads
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, head_dim)  # (B, N, 3D) -> (B, N, 3, h, d)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # -> 3 × (B, h, N, d)
        weights = self.softmax(q @ k.transpose(-2, -1) * head_dim**-0.5)  # (B, h, N, N), rows sum to 1
        out = self.attn_drop(weights) @ v  # (B, h, N, d): each token a weighted mean of the values
        return self.proj(out.transpose(1, 2).reshape(b, n, d))  # heads concatenated -> (B, N, D)

    def export_kwargs(self) -> dict:
        return {"num_heads": self.num_heads}

    def extra_repr(self) -> str:
        return f"num_heads={self.num_heads}"


class EncoderBlock(nn.Module):
    """Pre-norm transformer block: x + Attention(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, *, norm1: nn.LayerNorm, attn: Attention, norm2: nn.LayerNorm, mlp: nn.Sequential):
        super().__init__()
        self.norm1, self.attn, self.norm2, self.mlp = norm1, attn, norm2, mlp

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))  # tokens exchange information
        return x + self.mlp(self.norm2(x))  # each token is transformed on its own

    def export_kwargs(self) -> dict:
        return {}


class Pool(nn.Module):
    """(B, N, D) -> (B, D): the class token's output ("cls") or the mean of all tokens ("mean")."""

    def __init__(self, *, pool: str = "cls"):
        super().__init__()
        self.pool = pool

    def forward(self, x: Tensor) -> Tensor:
        return x[:, 0] if self.pool == "cls" else x.mean(dim=1)

    def export_kwargs(self) -> dict:
        return {"pool": self.pool}

    def extra_repr(self) -> str:
        return f"pool={self.pool!r}"


def encoder_block(width: int, heads: int, mlp_ratio: float, dropout: float) -> EncoderBlock:
    hidden = max(1, round(width * mlp_ratio))
    return EncoderBlock(
        norm1=nn.LayerNorm(width),
        attn=Attention(qkv=nn.Linear(width, 3 * width), softmax=nn.Softmax(dim=-1), attn_drop=nn.Dropout(dropout),
                       proj=nn.Linear(width, width), num_heads=heads),
        norm2=nn.LayerNorm(width),
        mlp=nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, width),
                          nn.Dropout(dropout)))


def _check(image_size: int, patch_size: int, width: int, depth: int, heads: int, mlp_ratio: float,
           pool: str, pos_embedding: str, dropout: float) -> None:
    if not 1 <= patch_size <= image_size or image_size % patch_size:
        divisors = ", ".join(str(p) for p in range(1, image_size + 1) if image_size % p == 0)
        raise UserInputError(f"vit_tiny image_size ({image_size}) must be divisible by patch_size ({patch_size}); "
                             f"divisors of {image_size}: {divisors}")
    if not 1 <= width <= 512:
        raise UserInputError(f"vit_tiny width must be in 1…512; got {width}")
    if not 1 <= heads <= width or width % heads:
        raise UserInputError(f"vit_tiny heads ({heads}) must divide width ({width}) so each head gets width/heads dims")
    if not 1 <= depth <= 24:
        raise UserInputError(f"vit_tiny depth must be in 1…24; got {depth}")
    if not 0.25 <= mlp_ratio <= 8:
        raise UserInputError(f"vit_tiny mlp_ratio must be in 0.25…8; got {mlp_ratio}")
    if pool not in POOLS:
        raise UserInputError(f"vit_tiny pool must be one of {', '.join(POOLS)}; got {pool!r}")
    if pos_embedding not in POS_EMBEDDINGS:
        raise UserInputError(f"vit_tiny pos_embedding must be one of {', '.join(POS_EMBEDDINGS)}; "
                             f"got {pos_embedding!r}")
    if not 0.0 <= dropout < 1.0:
        raise UserInputError(f"dropout must be in [0, 1); got {dropout}")


@register("vit_tiny", title="Vision Transformer (tiny)", family="vit",
          description="Patches → linear projection → class token + position embeddings → transformer "
                      "encoder blocks → head. Patch size 0 = automatic (at most 8×8 patches).")
def vit_tiny(*, in_channels: int, num_classes: int, image_size: int, patch_size: int = 0, width: int = 64,
             depth: int = 4, heads: int = 4, mlp_ratio: float = 2.0, pool: str = "cls",
             pos_embedding: str = "learned", dropout: float = 0.0) -> nn.Sequential:
    """patch_size 0 picks `auto_patch_size(image_size)`: 2 for 8×8 digits, 5 for 25×25 faces, 4 for 28 and 32."""
    patch_size = int(patch_size) or auto_patch_size(image_size)
    width, depth, heads = int(width), int(depth), int(heads)
    _check(image_size, patch_size, width, depth, heads, mlp_ratio, pool, pos_embedding, dropout)
    num_patches = (image_size // patch_size) ** 2
    return nn.Sequential(OrderedDict([
        ("patch_embed", PatchEmbed(proj=nn.Conv2d(in_channels, width, patch_size, stride=patch_size))),
        ("tokens", Tokens(dropout=nn.Dropout(dropout), num_patches=num_patches, width=width,
                          class_token=pool == "cls", pos_embedding=pos_embedding)),
        ("encoder", nn.Sequential(*[encoder_block(width, heads, mlp_ratio, dropout) for _ in range(depth)])),
        ("norm", nn.LayerNorm(width)),
        ("pool", Pool(pool=pool)),
        ("head", nn.Linear(width, num_classes)),
    ]))


def attention_macs(model: nn.Module) -> int:
    """Multiply-accumulates of QKᵀ and A·V for one image: 2·N²·D per block (summary() counts only the layers)."""
    tokens = next((m for m in model.modules() if isinstance(m, Tokens)), None)
    if tokens is None:
        return 0
    n = tokens.num_patches + int(tokens.class_token)
    return sum(2 * n * n * m.qkv.in_features for m in model.modules() if isinstance(m, Attention))
