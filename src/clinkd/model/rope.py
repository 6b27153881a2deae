"""Med-CLIP Guided RoPE (MCG-RoPE) position ids as a pure, vectorised function.

See ``docs/method.md`` §1. Qwen2-VL's M-RoPE gives every token three position ids (temporal, height,
width). MCG-RoPE keeps that layout and changes only the *intervals*: the jump from text into an image
(``text_to_image_gap``), the jump from an image back to text (``image_to_text_gap``) and the step between
neighbouring visual rows / columns (``stride_h``, ``stride_w``). With gaps 1 and strides 1 the result is
exactly the stock ``get_rope_index`` of transformers.

The function works on whole batches with tensor operations only (no Python loop over tokens or samples),
so it is correct and fast for any batch size, left or right padding, several images per sample,
text-only samples and images of different grid sizes.
"""

from __future__ import annotations

import torch

from clinkd.errors import ClinkdError

__all__ = ["RopeError", "mcg_position_ids"]

TEXT, IMAGE, VIDEO = 0, 1, 2


class RopeError(ClinkdError, ValueError):
    """Token types and vision grids that do not describe a valid sequence."""


def _vision_blocks(
    types: torch.Tensor,
    grid_thw: torch.Tensor | None,
    modality: int,
    spatial_merge_size: int,
    time_interval: torch.Tensor | None,
) -> dict[str, torch.Tensor] | None:
    """Locate the tokens of one modality and their (t, h, w) index inside their image or video.

    Vision tokens of the batch, read in row-major order, belong to the grids of ``grid_thw`` in order
    (the processor's order). Tokens are split into images by the grid sizes, not by runs of equal type,
    so two images placed back to back are still two images.

    Returns ``None`` when the batch has neither tokens nor grids of this modality, else per-token tensors
    ``rows``, ``cols``, ``block``, ``t``, ``h``, ``w`` (n,) and per-image tensors ``first``, ``last``
    (column), ``row``, ``extent_h``, ``extent_w``, ``size`` (N,).
    """
    name = "image" if modality == IMAGE else "video"
    rows, cols = (types == modality).nonzero(as_tuple=True)  # (n,) each, row-major order
    n = rows.numel()
    if n == 0 and (grid_thw is None or grid_thw.shape[0] == 0):
        return None
    if grid_thw is None or grid_thw.ndim != 2 or grid_thw.shape[-1] != 3:
        raise RopeError(
            f"{n} {name} tokens in mm_token_type_ids but {name}_grid_thw is missing or not (N, 3)"
        )
    grid = grid_thw.to(device=types.device, dtype=torch.long)  # (N, 3)
    gt, gh, gw = grid[:, 0], grid[:, 1] // spatial_merge_size, grid[:, 2] // spatial_merge_size
    size = gt * gh * gw  # (N,) tokens per image after the spatial merge
    if bool((size <= 0).any()) or bool(((grid[:, 1:] % spatial_merge_size) != 0).any()):
        raise RopeError(
            f"{name}_grid_thw {grid.tolist()} has a grid that is empty or not a multiple of "
            f"spatial_merge_size={spatial_merge_size}"
        )
    total = int(size.sum())
    if total != n:
        raise RopeError(
            f"the {name} grids describe {total} {name} tokens ({name}_grid_thw={grid.tolist()}, merge "
            f"{spatial_merge_size}) but mm_token_type_ids marks {n} non-padding {name} tokens; the "
            f"{name} placeholders in the text must match the {name}s passed with it"
        )
    end = size.cumsum(0)  # (N,)
    first, last = end - size, end - 1  # rank of each image's first / last token
    block = torch.repeat_interleave(torch.arange(len(size), device=types.device), size)  # (n,)
    off = torch.arange(n, device=types.device) - first[block]  # (n,) offset in (t, h, w) raster order
    w_b = gw[block]
    t_idx = off // (gh[block] * w_b)
    if time_interval is not None:  # Qwen2.5-VL videos: temporal ids spaced by seconds per grid
        scale = time_interval.to(types.device)[block]
        t_idx = (t_idx.to(scale.dtype) * scale).long()
    return {
        "rows": rows,
        "cols": cols,
        "block": block,
        "t": t_idx,
        "h": (off // w_b) % gh[block],
        "w": off % w_b,
        "row": rows[first],
        "row_last": rows[last],
        "first": cols[first],
        "last": cols[last],
        "extent_h": gh - 1,
        "extent_w": gw - 1,
        "size": size,
        "grid": grid,
    }


def mcg_position_ids(
    mm_token_type_ids: torch.Tensor,
    image_grid_thw: torch.Tensor | None,
    attention_mask: torch.Tensor | None = None,
    *,
    spatial_merge_size: int,
    text_to_image_gap: int = 2,
    image_to_text_gap: int = 2,
    stride_h: int = 1,
    stride_w: int = 1,
    video_grid_thw: torch.Tensor | None = None,
    video_time_interval: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """3D (temporal, height, width) position ids with MCG-RoPE intervals (docs/method.md §1).

    Args:
        mm_token_type_ids: (B, L) int, 0 text, 1 image, 2 video, as the processor returns it.
        image_grid_thw: (N, 3) patch grid (t, h, w) of each image, in the order the images occur in the
            batch (sample by sample, left to right), or ``None`` when there is no image token.
        attention_mask: (B, L), 1 for real tokens, 0 for padding (left or right, or anywhere). Padding is
            skipped: it gets position 0 and does not advance the positions.
        spatial_merge_size: patches merged per side into one LLM token (2 in the Qwen2-VL family).
        text_to_image_gap: first visual position − last text position (stock 1, ClinKD release 2).
        image_to_text_gap: first text position after a visual block − its largest height/width position
            (stock 1, ClinKD release 2).
        stride_h, stride_w: step between neighbouring visual rows / columns (stock and release 1).
        video_grid_thw: (V, 3) grids of videos, handled like images (type 2 tokens).
        video_time_interval: (V,) float spacing of the temporal ids of each video (Qwen2.5-VL:
            ``tokens_per_second * second_per_grid_ts``); ``None`` means 1.

    Returns:
        position_ids: (3, B, L) long; text tokens carry the same value in the three rows.
        rope_deltas: (B, 1) long, ``max(position) + 1 − number of real tokens`` per sample, so that a
        decode step at cache position ``k`` (counting real tokens only) sits at ``k + rope_deltas``.

    A visual block starts at ``last text position + text_to_image_gap`` (at 0 when it opens the sequence,
    right after the previous block's text cursor when it directly follows another block) and its token
    ``(ti, hi, wi)`` gets ``(s + ti, s + hi·stride_h, s + wi·stride_w)``. Text after it continues at
    ``s + max((h−1)·stride_h, (w−1)·stride_w) + image_to_text_gap`` (the stock rule ignores the temporal
    row here, and so do we). The worked example of method.md — 5 text tokens, one image of merged grid
    1×2×2 (patch grid 1×4×4, merge 2), then 3 text tokens:

    >>> types = torch.tensor([[0] * 5 + [1] * 4 + [0] * 3])
    >>> grid = torch.tensor([[1, 4, 4]])
    >>> pos, delta = mcg_position_ids(types, grid, spatial_merge_size=2)  # ClinKD: gaps 2, strides 1
    >>> for row in pos[:, 0].tolist(): print(row)  # rows t, h, w of sample 0
    [0, 1, 2, 3, 4, 6, 6, 6, 6, 9, 10, 11]
    [0, 1, 2, 3, 4, 6, 6, 7, 7, 9, 10, 11]
    [0, 1, 2, 3, 4, 6, 7, 6, 7, 9, 10, 11]
    >>> delta.tolist()
    [[0]]
    >>> pos, _ = mcg_position_ids(types, grid, spatial_merge_size=2, text_to_image_gap=1, image_to_text_gap=1)
    >>> for row in pos[:, 0].tolist(): print(row)  # stock M-RoPE
    [0, 1, 2, 3, 4, 5, 5, 5, 5, 7, 8, 9]
    [0, 1, 2, 3, 4, 5, 5, 6, 6, 7, 8, 9]
    [0, 1, 2, 3, 4, 5, 6, 5, 6, 7, 8, 9]

    Raises:
        RopeError: unknown token types, or vision tokens that do not match the grids.
    """
    if mm_token_type_ids.ndim != 2:
        raise RopeError(
            f"mm_token_type_ids must be (batch, length), got shape {tuple(mm_token_type_ids.shape)}"
        )
    if min(text_to_image_gap, image_to_text_gap, stride_h, stride_w) < 1:
        raise RopeError("MCG-RoPE gaps and strides must be positive integers")
    device = mm_token_type_ids.device
    B, L = mm_token_type_ids.shape
    if attention_mask is None:
        valid = torch.ones(B, L, dtype=torch.bool, device=device)
    else:
        valid = attention_mask.to(device).bool()  # (B, L)
    types = mm_token_type_ids.masked_fill(~valid, -1)  # (B, L), padding → -1
    if B * L and (int(types.max()) > VIDEO or int(types.min()) < -1):
        raise RopeError("mm_token_type_ids may only hold 0 (text), 1 (image) and 2 (video)")
    compact = valid.cumsum(1) - 1  # (B, L) index among the real tokens of the row
    n_valid = compact[:, -1] + 1 if L else torch.zeros(B, dtype=torch.long, device=device)  # (B,)

    blocks = [
        (name, b)
        for name, b in (
            ("image", _vision_blocks(types, image_grid_thw, IMAGE, spatial_merge_size, None)),
            ("video", _vision_blocks(types, video_grid_thw, VIDEO, spatial_merge_size, video_time_interval)),
        )
        if b is not None
    ]
    if not blocks:  # text only: plain 1D positions
        return compact.masked_fill(~valid, 0).unsqueeze(0).repeat(3, 1, 1), torch.zeros_like(n_valid)[:, None]

    prev_col = None  # (B, L) column of the last real token before each column, built only if needed
    # A block starts at cursor + gap_in, where the cursor is the next text position (last text + 1) and
    # gap_in = text_to_image_gap - 1 after text, 0 at the very start or right after another block. The
    # cursor after it is start + extent + image_to_text_gap; its `size` tokens advanced the compact index
    # by `size`, and the remainder is added to every token after the block (scattered at its last token).
    advance = torch.zeros(B, L, dtype=torch.long, device=device)
    for name, blk in blocks:
        c_first = compact[blk["row"], blk["first"]]  # (N,)
        span = compact[blk["row_last"], blk["last"]] - c_first + 1
        broken = (blk["row"] != blk["row_last"]) | (span != blk["size"])
        if bool(broken.any()):
            bad = int(broken.nonzero()[0])
            raise RopeError(
                f"{name} {bad} (grid {blk['grid'][bad].tolist()}, {int(blk['size'][bad])} tokens) is not one "
                f"contiguous run of {name} tokens in one sample; the {name} placeholders do not match "
                f"{name}_grid_thw"
            )
        has_prev = c_first > 0  # (N,) a real token precedes the block
        p_col = torch.where(has_prev, blk["first"] - 1, -1)  # (N,) its column, unless padding sits between
        if bool((has_prev & ~valid[blk["row"], p_col.clamp(min=0)]).any()):
            if prev_col is None:
                cols = torch.arange(L, device=device).expand(B, L)
                prev_col = torch.where(valid, cols, -1).cummax(1).values.roll(1, 1)
                prev_col[:, 0] = -1
            p_col = prev_col[blk["row"], blk["first"]]
        after_text = (p_col >= 0) & (types[blk["row"], p_col.clamp(min=0)] == TEXT)
        blk["gap_in"] = after_text.long() * (text_to_image_gap - 1)
        extent = torch.maximum(blk["extent_h"] * stride_h, blk["extent_w"] * stride_w)
        advance.index_put_(
            (blk["row"], blk["last"]),
            blk["gap_in"] + extent + image_to_text_gap - blk["size"],
            accumulate=True,
        )
    cursor = compact + advance.cumsum(1) - advance  # (B, L) text position; for a block's tokens, its cursor
    position_ids = cursor.masked_fill_(~valid, 0).unsqueeze(0).repeat(3, 1, 1)  # (3, B, L)
    for _name, blk in blocks:
        start = cursor[blk["row"], blk["first"]] + blk["gap_in"]  # (N,) first visual position
        s = start[blk["block"]]  # (n,)
        vision = torch.stack([s + blk["t"], s + blk["h"] * stride_h, s + blk["w"] * stride_w])  # (3, n)
        position_ids[:, blk["rows"], blk["cols"]] = vision
    highest = position_ids.amax(dim=(0, 2))  # (B,) padding is 0 and every position is ≥ 0
    rope_deltas = torch.where(n_valid > 0, highest + 1 - n_valid, 0)
    return position_ids, rope_deltas.unsqueeze(1)  # (3, B, L), (B, 1)
