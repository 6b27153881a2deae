"""Random seeded batches of token types and image grids, and the stock transformers reference."""

from __future__ import annotations

import functools
from types import SimpleNamespace

import torch


def random_batch(
    gen: torch.Generator,
    batch: int,
    *,
    merge: int = 2,
    max_images: int = 3,
    max_side: int = 5,
    max_text: int = 12,
    side: str | None = None,
    text_only_p: float = 0.25,
):
    """(input_ids, mm_token_type_ids, attention_mask, image_grid_thw, padding side) of a random batch.

    Each sample: text runs (≥ 1 token, as the chat template always puts <|vision_start|> before an image)
    around 0..max_images images of random merged grids up to max_side × max_side.
    """

    def rint(lo, hi):
        return int(torch.randint(lo, hi + 1, (1,), generator=gen))

    side = side or ("left" if rint(0, 1) else "right")
    rows, grids = [], []
    for _ in range(batch):
        n_img = 0 if float(torch.rand(1, generator=gen)) < text_only_p else rint(1, max_images)
        types = [0] * rint(1, max_text)
        for _ in range(n_img):
            h, w = rint(1, max_side), rint(1, max_side)
            grids.append([1, h * merge, w * merge])
            types += [1] * (h * w) + [0] * rint(1, max_text)
        rows.append(types)
    length = max(len(r) for r in rows)
    tt = torch.zeros(batch, length, dtype=torch.long)
    mask = torch.zeros(batch, length, dtype=torch.long)
    for i, r in enumerate(rows):
        sl = slice(length - len(r), length) if side == "left" else slice(0, len(r))
        tt[i, sl] = torch.tensor(r)
        mask[i, sl] = 1
    input_ids = torch.randint(5, 100, (batch, length), generator=gen)
    grid = torch.tensor(grids, dtype=torch.long) if grids else None
    return input_ids, tt, mask, grid, side


def stock_rope_index(merge: int = 2, cls=None):
    """The upstream ``get_rope_index`` bound to a stand-in carrying only what it reads (no weights)."""
    from transformers.models.qwen2_vl.modeling_qwen2_vl import Qwen2VLModel

    cls = cls or Qwen2VLModel
    fake = SimpleNamespace(
        config=SimpleNamespace(vision_config=SimpleNamespace(spatial_merge_size=merge, tokens_per_second=2))
    )
    fake.get_vision_position_ids = functools.partial(cls.get_vision_position_ids, fake)
    return functools.partial(cls.get_rope_index, fake)
