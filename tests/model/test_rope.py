"""MCG-RoPE position ids: stock equality, the worked example, the release's numbers, errors."""

from __future__ import annotations

import pytest
import torch

from clinkd.errors import ClinkdError
from clinkd.model.rope import RopeError, mcg_position_ids

from ._batches import random_batch, stock_rope_index

STOCK = dict(text_to_image_gap=1, image_to_text_gap=1)


def test_worked_example_of_method_md():
    types = torch.tensor([[0] * 5 + [1] * 4 + [0] * 3])
    grid = torch.tensor([[1, 4, 4]])  # merged 1×2×2
    pos, delta = mcg_position_ids(types, grid, spatial_merge_size=2)
    assert pos[:, 0].tolist() == [
        [0, 1, 2, 3, 4, 6, 6, 6, 6, 9, 10, 11],
        [0, 1, 2, 3, 4, 6, 6, 7, 7, 9, 10, 11],
        [0, 1, 2, 3, 4, 6, 7, 6, 7, 9, 10, 11],
    ]
    assert delta.tolist() == [[11 + 1 - 12]]
    pos, delta = mcg_position_ids(types, grid, spatial_merge_size=2, **STOCK)
    assert pos[:, 0].tolist() == [
        [0, 1, 2, 3, 4, 5, 5, 5, 5, 7, 8, 9],
        [0, 1, 2, 3, 4, 5, 5, 6, 6, 7, 8, 9],
        [0, 1, 2, 3, 4, 5, 6, 5, 6, 7, 8, 9],
    ]
    assert delta.tolist() == [[-2]]


@pytest.mark.parametrize("seed", range(4))
def test_equals_stock_on_random_batches(seed):
    """Gaps 1, strides 1 equal upstream get_rope_index, positions and deltas, padding included."""
    stock = stock_rope_index(merge=2)
    gen = torch.Generator().manual_seed(seed)
    sides = set()
    for _ in range(60):
        batch = int(torch.randint(1, 9, (1,), generator=gen))
        ids, types, mask, grid, side = random_batch(gen, batch)
        sides.add(side)
        expected = stock(ids, types, image_grid_thw=grid, attention_mask=mask)
        got = mcg_position_ids(types, grid, mask, spatial_merge_size=2, **STOCK)
        assert torch.equal(got[0], expected[0])
        assert torch.equal(got[1], expected[1])
    assert sides == {"left", "right"}


def test_equals_stock_with_padding_inside_samples():
    """Masked text tokens anywhere (e.g. packed or edited prompts): skipped, as upstream skips them."""
    stock = stock_rope_index(merge=2)
    gen = torch.Generator().manual_seed(7)
    holes_before_images = 0
    for _ in range(40):
        ids, types, mask, grid, _ = random_batch(gen, 4)
        # mask text tokens that follow text, so every text run keeps a token (upstream merges two
        # images that touch, so it cannot be compared there) — holes right before images included
        after_text = torch.cat([torch.zeros_like(types[:, :1]), types[:, :-1]], 1) == 0
        after_text[:, 0] = False
        holes = (torch.rand(mask.shape, generator=gen) < 0.3) & (types == 0) & after_text
        mask = mask.masked_fill(holes, 0)
        holes_before_images += int((holes[:, :-1] & (types[:, 1:] == 1)).sum())
        expected = stock(ids, types, image_grid_thw=grid, attention_mask=mask)
        got = mcg_position_ids(types, grid, mask, spatial_merge_size=2, **STOCK)
        assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])
        # release settings: a hole right before an image does not change the gap (a masked token is absent)
        rel = mcg_position_ids(types, grid, mask, spatial_merge_size=2)[0]
        for b in range(types.shape[0]):
            keep = mask[b].bool()
            alone = mcg_position_ids(
                types[b : b + 1, keep], _grids_of_row(types, grid, b), spatial_merge_size=2
            )[0]
            assert torch.equal(rel[:, b, keep], alone[:, 0])
    assert holes_before_images > 0


def _grids_of_row(types, grid, row):
    """The rows of ``grid`` that belong to the images of sample ``row``."""
    if grid is None:
        return None
    sizes = (grid.prod(-1) // 4).tolist()
    before = int((types[:row] == 1).sum())
    out, seen = [], 0
    for g, n in zip(grid.tolist(), sizes):
        if before <= seen < before + int((types[row] == 1).sum()):
            out.append(g)
        seen += n
    return torch.tensor(out) if out else None


def test_equals_stock_without_mask_and_other_merge():
    stock = stock_rope_index(merge=3)
    gen = torch.Generator().manual_seed(11)
    for _ in range(20):
        ids, types, _mask, grid, _ = random_batch(gen, 1, merge=3)
        expected = stock(ids, types, image_grid_thw=grid, attention_mask=None)
        got = mcg_position_ids(types, grid, None, spatial_merge_size=3, **STOCK)
        assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])


def test_videos_equal_stock_qwen2_and_qwen25():
    from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import Qwen2_5_VLModel

    # text 2 | image 1×2×2 | text 1 | video t=3 of 1×2 | text 2
    types = torch.tensor([[0, 0] + [1] * 4 + [0] + [2] * 6 + [0, 0]])
    image, video = torch.tensor([[1, 4, 4]]), torch.tensor([[3, 2, 4]])
    ids = torch.zeros_like(types)
    stock = stock_rope_index()(ids, types, image_grid_thw=image, video_grid_thw=video)
    got = mcg_position_ids(types, image, spatial_merge_size=2, video_grid_thw=video, **STOCK)
    assert torch.equal(got[0], stock[0]) and torch.equal(got[1], stock[1])
    seconds = torch.tensor([0.5])
    stock25 = stock_rope_index(cls=Qwen2_5_VLModel)(
        ids, types, image_grid_thw=image, video_grid_thw=video, second_per_grid_ts=seconds
    )
    got25 = mcg_position_ids(
        types, image, spatial_merge_size=2, video_grid_thw=video, video_time_interval=2 * seconds, **STOCK
    )  # tokens_per_second = 2 in the stand-in
    assert torch.equal(got25[0], stock25[0]) and torch.equal(got25[1], stock25[1])


def test_release_numbers_two_images_left_padding_and_text_only_row():
    # sample 0: text 3 | image merged 2×2 | text 2 | image merged 1×3 | text 1 ; sample 1: text 4
    row0 = [0] * 3 + [1] * 4 + [0] * 2 + [1] * 3 + [0]
    L = len(row0)
    types = torch.tensor([row0, [0] * (L - 4) + [0] * 4])
    mask = torch.tensor([[1] * L, [0] * (L - 4) + [1] * 4])
    grid = torch.tensor([[1, 4, 4], [1, 2, 6]])
    pos, delta = mcg_position_ids(types, grid, mask, spatial_merge_size=2)
    assert pos[0, 0].tolist() == [0, 1, 2, 4, 4, 4, 4, 7, 8, 10, 10, 10, 14]
    assert pos[1, 0].tolist() == [0, 1, 2, 4, 4, 5, 5, 7, 8, 10, 10, 10, 14]
    assert pos[2, 0].tolist() == [0, 1, 2, 4, 5, 4, 5, 7, 8, 10, 11, 12, 14]
    assert (pos[:, 1] == torch.tensor([0] * (L - 4) + [0, 1, 2, 3])).all()
    assert delta.tolist() == [[14 + 1 - 13], [0]]


def test_right_padding_same_positions_as_left():
    row = [0] * 2 + [1] * 4 + [0] * 3
    types = torch.tensor([row + [0, 0], [0, 0] + row])
    mask = torch.tensor([[1] * 9 + [0, 0], [0, 0] + [1] * 9])
    grid = torch.tensor([[1, 4, 4], [1, 4, 4]])
    pos, delta = mcg_position_ids(types, grid, mask, spatial_merge_size=2)
    assert torch.equal(pos[:, 0, :9], pos[:, 1, 2:])
    assert (pos[:, 0, 9:] == 0).all() and (pos[:, 1, :2] == 0).all()
    # text 0,1 | image from 1 + 2 = 3, h 3..4 | text from 3 + 1 + 2 = 6: 6, 7, 8
    assert pos[:, 0, 8].tolist() == [8, 8, 8]
    assert delta.tolist() == [[8 + 1 - 9], [8 + 1 - 9]]


def test_strides_gaps_image_first_and_back_to_back_images():
    # image merged 2×3 opens the sequence, another 1×1 image follows at once, then text
    types = torch.tensor([[1] * 6 + [1] + [0, 0]])
    grid = torch.tensor([[1, 4, 6], [1, 2, 2]])
    pos, delta = mcg_position_ids(
        types, grid, spatial_merge_size=2, text_to_image_gap=3, image_to_text_gap=4, stride_h=2, stride_w=3
    )
    # first image starts at 0: h = 0,0,0,2,2,2 ; w = 0,3,6,0,3,6 ; cursor after = 0 + max(2, 6) + 4 = 10
    assert pos[1, 0, :6].tolist() == [0, 0, 0, 2, 2, 2]
    assert pos[2, 0, :6].tolist() == [0, 3, 6, 0, 3, 6]
    assert pos[0, 0, :6].tolist() == [0] * 6
    # second image directly after: starts at the cursor 10, text continues at 10 + 0 + 4
    assert pos[:, 0, 6].tolist() == [10, 10, 10]
    assert pos[:, 0, 7:].T.tolist() == [[14] * 3, [15] * 3]
    assert delta.tolist() == [[15 + 1 - 9]]


def test_text_only_and_all_padding_rows():
    types = torch.zeros(2, 5, dtype=torch.long)
    mask = torch.tensor([[1, 1, 1, 0, 0], [0, 0, 0, 0, 0]])
    pos, delta = mcg_position_ids(types, None, mask, spatial_merge_size=2)
    assert pos[:, 0].tolist() == [[0, 1, 2, 0, 0]] * 3
    assert (pos[:, 1] == 0).all()
    assert delta.tolist() == [[0], [0]]


@pytest.mark.parametrize(
    "types, grid, message",
    [
        ([[0, 1, 1, 1, 0]], [[1, 4, 4]], "describe 4 image tokens"),  # grid wants 4 tokens, 3 given
        ([[0, 1, 1, 1, 1, 0]], None, "image_grid_thw is missing"),
        ([[0, 1, 1, 0, 1, 1]], [[1, 4, 4]], "not one contiguous run"),
        ([[0, 1, 1, 1, 1, 0]], [[1, 4, 4], [1, 2, 2]], "describe 5 image tokens"),  # an extra grid
        ([[0, 1, 1, 1, 1, 0]], [[1, 3, 4]], "multiple of spatial_merge_size"),
        ([[0, 3, 0]], None, "may only hold"),
    ],
)
def test_bad_grids_raise_clear_errors(types, grid, message):
    grid = None if grid is None else torch.tensor(grid)
    with pytest.raises(RopeError, match=message) as info:
        mcg_position_ids(torch.tensor(types), grid, spatial_merge_size=2)
    assert isinstance(info.value, ClinkdError) and isinstance(info.value, ValueError)


def test_image_split_across_samples_is_rejected():
    types = torch.tensor([[0, 0, 1, 1], [1, 1, 0, 0]])
    with pytest.raises(RopeError, match="one sample"):
        mcg_position_ids(types, torch.tensor([[1, 4, 4]]), spatial_merge_size=2)


def test_bad_settings_rejected():
    with pytest.raises(RopeError):
        mcg_position_ids(torch.zeros(1, 3, dtype=torch.long), None, spatial_merge_size=2, stride_h=0)


def test_docstring_example_runs():
    import doctest

    import clinkd.model.rope as rope

    result = doctest.testmod(rope, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 5 and result.failed == 0


def test_two_image_prompt_of_the_processor(processor, images):
    """A report study's prompt (issue 16): two images in one user turn, as ``build_batch`` writes it. Each
    image block starts ``text_to_image_gap`` after its ``<|vision_start|>`` and text resumes
    ``image_to_text_gap`` after the block's extent; gaps 1 equal stock ``get_rope_index``."""
    from clinkd.model.processor import build_batch

    batch = build_batch(processor, [[images[0], images[2]]], ["Write the findings."])
    types, grid, ids = batch["mm_token_type_ids"], batch["image_grid_thw"], batch["input_ids"]
    assert grid.tolist() == [[1, 8, 8], [1, 4, 6]]  # merged 4x4 = 16 tokens, 2x3 = 6 tokens
    row = types[0].tolist()
    first = row.index(1)
    second = first + 16 + 2  # <|vision_end|><|vision_start|> between the blocks
    assert row[first : first + 16] == [1] * 16 and row[first + 16 : second] == [0, 0]
    assert row[second : second + 6] == [1] * 6 and 1 not in row[second + 6 :]
    pos, delta = mcg_position_ids(types, grid, batch["attention_mask"], spatial_merge_size=2)
    p = pos[:, 0]  # (3, L)
    s1 = (first - 1) + 2  # <|vision_start|> at first - 1 (position first - 1: plain text before)
    assert p[:, first - 1].tolist() == [first - 1] * 3
    assert p[:, first].tolist() == [s1] * 3 and p[:, first + 15].tolist() == [s1, s1 + 3, s1 + 3]
    end1 = s1 + 3 + 2  # <|vision_end|> after the extent 3 of the 4x4 block
    assert p[:, first + 16].tolist() == [end1] * 3 and p[:, first + 17].tolist() == [end1 + 1] * 3
    s2 = end1 + 1 + 2
    assert p[:, second].tolist() == [s2] * 3
    assert p[1, second : second + 6].tolist() == [s2, s2, s2, s2 + 1, s2 + 1, s2 + 1]  # 2 rows
    assert p[2, second : second + 6].tolist() == [s2, s2 + 1, s2 + 2] * 2  # 3 columns
    after = s2 + 2 + 2  # extent max(1, 2) = 2, then the gap
    assert p[:, second + 6].tolist() == [after] * 3
    n = ids.shape[1]
    assert p[:, -1].tolist() == [after + n - 1 - (second + 6)] * 3  # text runs on by one
    assert delta.tolist() == [[after + n - (second + 6) - n]]
    # gaps 1, strides 1: exactly upstream's ids for the two-image prompt
    stock = stock_rope_index(merge=2)(ids, types, image_grid_thw=grid, attention_mask=batch["attention_mask"])
    got = mcg_position_ids(types, grid, batch["attention_mask"], spatial_merge_size=2, **STOCK)
    assert torch.equal(got[0], stock[0]) and torch.equal(got[1], stock[1])
