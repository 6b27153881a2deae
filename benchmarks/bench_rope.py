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
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import torch
from PIL import Image
from transformers.models.qwen2_vl.modeling_qwen2_vl import Qwen2VLModel

from clinkd.model import build_tiny_model, build_tiny_processor, mcg_position_ids, tiny_config
from clinkd.train.dataset import ConversationCollator, TrainItem


def timeit(fns: dict, rounds: int, warmup: int = 2) -> dict[str, tuple[float, float]]:
    """Median and min wall time (ms) of each ``fn()``, calls interleaved round by round.

    Interleaving spreads the noise of a shared machine evenly over the candidates.
    """
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - start) * 1e3)
    return {name: (statistics.median(t), min(t)) for name, t in times.items()}


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
        tt[i, width - len(r) :] = torch.tensor(r)
        mask[i, width - len(r) :] = 1
    ids = torch.randint(20, 1000, (batch, width))
    return ids, tt, mask, torch.tensor(grids)


def corpus() -> list[str]:
    try:
        from clinkd.data.synth import text_corpus

        return list(text_corpus(seed=0))
    except ImportError:
        words = ["liver", "kidney", "lung", "brain", "lesion", "CT", "MRI", "X-ray", "tumor", "scan"]
        return [
            f"Where is the <ref>{w}</ref>? <box>({i},{2 * i}),({3 * i},{4 * i})</box> in the {v} image."
            for i, (w, v) in enumerate(zip(words * 30, words[::-1] * 30))
        ]


def bench_rope(processor, threads: int) -> None:
    torch.set_num_threads(threads)
    stock_model = Qwen2VLModel(tiny_config("tiny-student", processor.tokenizer)).eval()
    ids, tt, mask, grid = rope_batch()
    n_img = grid.shape[0]
    print(
        f"position ids: batch {tt.shape[0]} × {tt.shape[1]} tokens, {n_img} images "
        f"({int(tt.eq(1).sum())} image tokens), left padding, {threads} thread(s)"
    )

    def stock():
        return stock_model.get_rope_index(ids, tt, image_grid_thw=grid, attention_mask=mask)

    def ours_stock_settings():
        return mcg_position_ids(
            tt, grid, mask, spatial_merge_size=2, text_to_image_gap=1, image_to_text_gap=1
        )

    def ours_release():
        return mcg_position_ids(tt, grid, mask, spatial_merge_size=2)

    a, b = stock(), ours_stock_settings()
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]), "outputs differ at stock settings"
    t = timeit(
        {
            "transformers get_rope_index (stock)": stock,
            "clinkd mcg_position_ids, gaps 1 (=stock)": ours_stock_settings,
            "clinkd mcg_position_ids, gaps 2 (release)": ours_release,
        },
        rounds=30,
    )
    ref = t["transformers get_rope_index (stock)"]
    print(f"  {'':42s} {'median ms':>10s} {'min ms':>8s} {'speed-up (median / min)':>24s}")
    for name, (med, low) in t.items():
        print(f"  {name:42s} {med:10.2f} {low:8.2f} {ref[0] / med:14.1f}x / {ref[1] / low:4.1f}x")


def bench_forward(processor, batch: int = 8) -> None:
    model = build_tiny_model("tiny-student", processor.tokenizer, seed=0)
    rng = np.random.default_rng(0)
    turn = (
        "Please locate the liver in this CT image and describe what you see.",
        "The liver is at <box>(120,80),(300,260)</box>.",
    )
    with tempfile.TemporaryDirectory(prefix="clinkd-bench-rope-") as tmp:  # the collator reads image files
        items = []
        for i in range(batch):
            path = Path(tmp) / f"ct_{i}.png"
            Image.fromarray(rng.integers(0, 255, (224, 224, 3), dtype=np.uint8)).save(path)
            items.append(TrainItem(image=path, turns=[turn]))
        inputs = ConversationCollator(processor)(items)  # a training batch: labels on the answers
    inputs.pop("item_kind")  # the trainer's bookkeeping, not a model input
    print(
        f"tiny student forward: batch {batch} × {inputs['input_ids'].shape[1]} tokens, 224×224 images "
        f"(64 image tokens each), no grad"
    )

    def forward(scheme):
        def run():
            model.set_rope(scheme)
            model(**inputs)

        return run

    with torch.no_grad():
        t = timeit({"stock": forward("stock"), "mcg": forward("mcg")}, rounds=20)
    for scheme, (med, low) in t.items():
        print(f"  rope={scheme:6s} median {med:8.2f} ms   min {low:8.2f} ms")


def main() -> None:
    threads = torch.get_num_threads()
    print(
        f"torch {torch.__version__}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} "
        "(timings on a busy machine are noisy: compare the columns of one run)"
    )
    processor = build_tiny_processor(corpus())
    # one thread first: the stock function is a Python loop, and small tensor ops gain nothing from
    # threads (with other processes on the cores, intra-op threads mostly wait for each other)
    for n in sorted({1, threads}):
        bench_rope(processor, n)
    torch.set_num_threads(threads)
    bench_forward(processor)


if __name__ == "__main__":
    main()
