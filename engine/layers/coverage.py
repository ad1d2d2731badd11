"""Which input rows a convolution's windows read, and why some are never read.

Rows go unread for two different reasons, and the explanation must name the right one:
- at the end, when (N + 2P − D(K−1) − 1) is not a multiple of S: PyTorch rounds the output size
  down, so no window starts late enough to reach the last rows;
- between taps, when the windows step over rows: a stride larger than the window's span
  D(K−1) + 1, or a stride and dilation with a common factor (S = D = 2 reads only every other row).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from engine.layers.conv import output_size, padding_amounts

SHOWN_ROWS = 12  # rows listed by number in an explanation; more are counted


def coverage(n: int, kernel: int, stride: int = 1, padding: int | str = 0, dilation: int = 1,
             ceil_mode: bool = False) -> np.ndarray:
    """How many windows read each position of the padded axis (length N + P_before + P_after)."""
    before, after = padding_amounts(kernel, padding, dilation)
    out = output_size(n, kernel, stride, padding, dilation, ceil_mode=ceil_mode)
    counts = np.zeros(n + before + after, dtype=np.int64)
    for o in range(out):
        taps = [o * stride + a * dilation for a in range(kernel)]
        counts[[t for t in taps if t < len(counts)]] += 1  # a ceil_mode window may hang over the end
    return counts


def _rows(rows: list[int]) -> str:
    shown = ", ".join(map(str, rows[:SHOWN_ROWS]))
    return shown + (f", … ({len(rows)} rows)" if len(rows) > SHOWN_ROWS else "")


@dataclass(frozen=True)
class Unread:
    """The input rows (0-based, without padding) that no window reads, split by the reason."""

    trailing: list[int]  # after the last tap of the last window: what rounding down drops
    between: list[int]  # between taps: the windows step over them

    def __bool__(self) -> bool:
        return bool(self.trailing or self.between)

    @property
    def rows(self) -> list[int]:
        return sorted(self.trailing + self.between)


def unread_rows(n: int, kernel: int, stride: int = 1, padding: int | str = 0, dilation: int = 1) -> Unread:
    before, _ = padding_amounts(kernel, padding, dilation)
    counts = coverage(n, kernel, stride, padding, dilation)
    read = np.flatnonzero(counts)
    last = int(read.max()) - before if len(read) else -1  # the last input row any tap reaches
    unread = [int(p) - before for p in np.flatnonzero(counts == 0) if 0 <= int(p) - before < n]
    return Unread([r for r in unread if r > last], [r for r in unread if r < last])


def explain_unread(n: int, kernel: int, stride: int = 1, padding: int | str = 0, dilation: int = 1) -> str:
    """One or two sentences naming the unread rows and the rule that leaves each group unread."""
    unread = unread_rows(n, kernel, stride, padding, dilation)
    parts = []
    if unread.between:
        span = dilation * (kernel - 1) + 1
        common = math.gcd(stride, dilation) if kernel > 1 else 1
        why = (f"the stride S = {stride} is larger than the window's span D(K−1)+1 = {span}, so each step "
               f"jumps over rows" if stride > span else
               f"S = {stride} and D = {dilation} share the factor {common}, so the taps land on only one "
               f"row in {common}" if common > 1 else "the windows' taps step over them")
        parts.append(f"Rows {_rows(unread.between)} fall between the taps: {why}.")
    if unread.trailing:
        before, after = padding_amounts(kernel, padding, dilation)
        top = n + before + after - dilation * (kernel - 1) - 1
        parts.append(f"The last row(s) {_rows(unread.trailing)} are never reached: N + 2P − D(K−1) − 1 = {top} "
                     f"is not a multiple of S = {stride}, and PyTorch rounds the output size down.")
    return " ".join(parts)
