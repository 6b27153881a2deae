"""Position-id speed: clinkd's vectorised MCG-RoPE function against the stock transformers loop.

1. ``get_rope_index`` of the stock ``Qwen2VLModel`` vs :func:`clinkd.model.mcg_position_ids` on the same
   batch (32 samples × ~1,000 tokens, one or two images each, left padding), at stock settings (where
   the outputs are checked equal) and at the ClinKD release settings.
2. Forward time of the tiny student with stock vs MCG position ids (should be equal within noise).

Run: ``python benchmarks/bench_rope.py`` (CPU, a minute or so). Nothing is downloaded.
"""

from __future__ import annotations

import os
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import torch
from PIL import Image

from clinkd.model import build_batch, build_tiny_model, build_tiny_processor, mcg_position_ids, tiny_config
from transformers.models.qwen2_vl.modeling_qwen2_vl import Qwen2VLModel


def timeit(fn, repeats: int, warmup: int = 2) -> tuple[float, float]:
    """Median and min wall time of ``fn()`` in milliseconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times), min(times)


def rope_batch(batch: int = 32, length: int = 1000, seed: int = 0, merge: int = 2):
    """(input_ids, mm_token_type_ids, attention_mask, image_grid_thw): left padded, 1–2 images a sample."""
    rng = np.random.default_rng(seed)
    rows, grids = [], []
    for _ in range(batch):
        n_tokens = int(rng.integers(length - 100, length + 1))
        images = []
        for _ in range(int(rng.integers(1, 3))):
            h, w = int(rng.integers(8, 17)), int(rng.integers(8, 17))  # merged grid, ≤ 256 tokens
            images.append((h, w))
            grids.append([1, h * merge, w * merge])
        n_text = n_tokens - sum(h * w for h, w in images)
        cuts = sorted(rng.integers(1, n_text, len(images)).tolist())
        types, prev = [], 0
        for cut, (h, w) in zip(cuts, images):
            types += [0] * (max(cut - prev, 1)) + [1] * (h * w)
            prev = cut
        types += [0] * max(n_text - prev, 1)
        rows.append(types)
    width = max(map(len, rows))
    tt = torch.zeros(batch, width, dtype=torch.long)
    mask = torch.zeros(batch, width, dtype=torch.long)
    for i, r in enumerate(rows):
        tt[i, width - len(r):] = torch.tensor(r)
        mask[i, width - len(r):] = 1
    ids = torch.randint(20, 1000, (batch, width))
    return ids, tt, mask, torch.tensor(grids)


def corpus() -> list[str]:
    try:
        from clinkd.data.synth import text_corpus

        return list(text_corpus(seed=0))
    except ImportError:
        words = ["liver", "kidney", "lung", "brain", "lesion", "CT", "MRI", "X-ray", "tumor", "scan"]
        return [f"Where is the <ref>{w}</ref>? <box>({i},{2 * i}),({3 * i},{4 * i})</box> in the {v} image."
                for i, (w, v) in enumerate(zip(words * 30, words[::-1] * 30))]


def bench_rope(threads: int) -> None:
    processor = build_tiny_processor(corpus())
    stock_model = Qwen2VLModel(tiny_config("tiny-student", processor.tokenizer)).eval()
    ids, tt, mask, grid = rope_batch()
    n_img = grid.shape[0]
    print(f"position ids: batch {tt.shape[0]} × {tt.shape[1]} tokens, {n_img} images "
          f"({int(tt.eq(1).sum())} image tokens), left padding, {threads} threads")

    def stock():
        return stock_model.get_rope_index(ids, tt, image_grid_thw=grid, attention_mask=mask)

    def ours_stock_settings():
        return mcg_position_ids(tt, grid, mask, spatial_merge_size=2, text_to_image_gap=1, image_to_text_gap=1)

    def ours_release():
        return mcg_position_ids(tt, grid, mask, spatial_merge_size=2)

    a, b = stock(), ours_stock_settings()
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]), "outputs differ at stock settings"
    t_stock = timeit(stock, repeats=10)
    t_ours = timeit(ours_stock_settings, repeats=50)
    t_mcg = timeit(ours_release, repeats=50)
    print(f"  {'':40s} {'median ms':>10s} {'min ms':>8s} {'speed-up':>9s}")
    print(f"  {'transformers get_rope_index (stock)':40s} {t_stock[0]:10.2f} {t_stock[1]:8.2f} {'1.0x':>9s}")
    print(f"  {'clinkd mcg_position_ids, gaps 1 (=stock)':40s} {t_ours[0]:10.2f} {t_ours[1]:8.2f} "
          f"{t_stock[0] / t_ours[0]:8.1f}x")
    print(f"  {'clinkd mcg_position_ids, gaps 2 (release)':40s} {t_mcg[0]:10.2f} {t_mcg[1]:8.2f} "
          f"{t_stock[0] / t_mcg[0]:8.1f}x")
    return processor


def bench_forward(processor, batch: int = 8) -> None:
    model = build_tiny_model("tiny-student", processor.tokenizer, seed=0)
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (224, 224, 3), dtype=np.uint8)) for _ in range(batch)]
    questions = ["Please locate the liver in this CT image and describe what you see."] * batch
    inputs = build_batch(processor, images, questions, ["The liver is at <box>(120,80),(300,260)</box>."] * batch)
    print(f"tiny student forward: batch {batch} × {inputs['input_ids'].shape[1]} tokens, 224×224 images "
          f"(64 image tokens each), no grad")
    results = {}
    with torch.no_grad():
        for _ in range(2):  # interleave the two settings to even out drift
            for scheme in ("stock", "mcg"):
                model.set_rope(scheme)
                t = timeit(lambda: model(**inputs), repeats=8)
                results.setdefault(scheme, []).append(t[0])
    for scheme, times in results.items():
        print(f"  rope={scheme:6s} median {min(times):8.2f} ms")


def main() -> None:
    threads = torch.get_num_threads()
    processor = bench_rope(threads)
    bench_forward(processor)


if __name__ == "__main__":
    main()
