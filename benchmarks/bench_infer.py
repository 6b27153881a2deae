"""Inference speed: greedy against SASG (greedy + N sampled candidates, semantic medoid), side by side.

Builds, in a temporary folder, a small synthetic benchmark (``clinkd.data.synth.generate``) and the tiny
student (``clinkd.model.init_model_dir(dir, "tiny-student")``, 224×224 images → 64 image tokens), and
trains the student briefly on the training split (``--train-steps`` AdamW steps) so that it learns to
stop: an untrained model emits garbage until ``max_new_tokens`` on every row, which measures only
the decode loop at its longest. Then, on the test split of every task (release token limits: 80, and
100 for MII), it times, after one warm-up batch:

* ``greedy``          — ``predict_file(select="greedy")`` end to end (images, generation, file writes);
* ``sasg``            — ``predict_file(select="sasg", candidates=N)`` end to end: one shared prefill and one
  ``generate`` call per batch with ``N + 1`` rows per question (greedy row forced by ``GreedyRows``),
  one ``encode`` call;
* ``sasg, no cap``    — the same without :class:`AnchoredLength` (samples may run to the token limit);
* ``sasg, 2 calls``   — (``--two-calls``) the naive alternative (a greedy call, then a sampling call with
  ``num_return_sequences=N``, then the medoid), to show what merging the calls saves;

and splits SASG's time into generation and embedding, in all and per task. Printed as a table with the ratio to greedy.
``--untrained`` adds the same comparison for the untrained student (every row runs to the limit).

Run: ``python benchmarks/bench_infer.py [--images 80] [--train-steps 200] [--candidates 5]``
(about two to four minutes on 2 CPU cores). Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch

from clinkd.data import load_image, read_dataset_dir, synth
from clinkd.infer import sasg as sasg_mod
from clinkd.infer.generate import generate_answers
from clinkd.infer.predict import MAX_NEW_TOKENS, predict_file
from clinkd.infer.similarity import Embedder, select_medoid
from clinkd.model import init_model_dir, load
from clinkd.train.dataset import ConversationCollator, TrainItem


def train_briefly(model, processor, ds, steps: int, batch: int, lr: float, seed: int) -> float:
    """Plain AdamW on (image, question, answer) turns of the training split; returns the last loss."""
    rng = random.Random(seed)
    # one item per turn, each with its image: batches of single-turn samples, labels on the answers
    turns = [
        TrainItem(image=ds.image_path(s), turns=[(q, t.answer)])
        for s in ds.train
        for q, t in zip(s.prompts(), s.turns)
    ]
    collate = ConversationCollator(processor)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    loss = float("nan")
    t0 = time.perf_counter()
    for step in range(steps):
        b = collate(rng.sample(turns, batch))
        b.pop("item_kind")  # the trainer's bookkeeping, not a model input
        out = model(**b)
        out.loss.backward()
        opt.step()
        opt.zero_grad()
        loss = float(out.loss.detach())
        if (step + 1) % 50 == 0:
            print(
                f"  train step {step + 1}/{steps}: loss {loss:.3f} ({time.perf_counter() - t0:.0f} s)",
                flush=True,
            )
    model.eval()
    return loss


def time_predict(model, processor, files, out_dir: Path, **kw) -> tuple[float, float]:
    """Wall seconds of ``predict_file`` over every test file, and the seconds spent embedding."""
    embed_s = [0.0]
    real = sasg_mod.select_answers

    def timed(*a, **k):
        t = time.perf_counter()
        try:
            return real(*a, **k)
        finally:
            embed_s[0] += time.perf_counter() - t

    sasg_mod.select_answers = timed
    import clinkd.infer.predict as predict_mod

    predict_mod.select_answers = timed
    try:
        t0 = time.perf_counter()
        for task, path in files.items():
            predict_file(
                model,
                path,
                out_dir / f"pred_{task}.jsonl",
                processor=processor,
                task=task,
                progress=False,
                **kw,
            )
        return time.perf_counter() - t0, embed_s[0]
    finally:
        sasg_mod.select_answers = real
        predict_mod.select_answers = real


def time_two_calls(model, processor, ds, n: int, batch_size: int, embedder: Embedder, seed: int) -> float:
    """The naive SASG: a greedy call plus a separate sampling call per batch, then the medoid."""
    t0 = time.perf_counter()
    for task, samples in ds.test.items():
        tokens = MAX_NEW_TOKENS[task]
        for start in range(0, len(samples), batch_size):
            batch = samples[start : start + batch_size]
            images = [load_image(ds.image_path(s)) for s in batch]
            prompts = [s.prompts()[0] for s in batch]
            torch.manual_seed(seed + start)
            greedy = generate_answers(
                model, processor, images, prompts, max_new_tokens=tokens, batch_size=batch_size
            )
            sampled = generate_answers(
                model,
                processor,
                images,
                prompts,
                max_new_tokens=tokens,
                batch_size=batch_size,
                num_return_sequences=n,
                do_sample=True,
                temperature=0.7,
                top_p=0.9,
            )
            for g, s in zip(greedy, sampled):
                select_medoid(g + s, embedder)
    return time.perf_counter() - t0


def mean_tokens(processor, out_dir: Path) -> float:
    import json

    lens = [
        len(processor.tokenizer(json.loads(line)["response"])["input_ids"])
        for p in sorted(out_dir.glob("pred_*.jsonl"))
        for line in p.read_text(encoding="utf-8").splitlines()
    ]
    return sum(lens) / max(1, len(lens))


def compare(label: str, model, processor, ds, tmp: Path, args) -> list[tuple[str, float, str]]:
    files = ds.files.test
    n_q = sum(len(v) for v in ds.test.values())
    kw = dict(batch_size=args.batch_size, seed=args.seed)
    # warm-up: one small batch of each path (first-call overheads: kernels, embedder load)
    embedder = Embedder()
    embedder.encode(["warm up"])
    first = {"VG": files["VG"]}
    time_predict(model, processor, first, tmp / f"{label}_warm_g", limit=args.batch_size, **kw)
    time_predict(
        model,
        processor,
        first,
        tmp / f"{label}_warm_s",
        limit=args.batch_size,
        select="sasg",
        candidates=args.candidates,
        embedder=Embedder(model=embedder.model),
        **kw,
    )

    rows = []
    g_s = s_s = e_s = 0.0
    for task in files:  # per task: answers of a few words (VG, RO) against 30-60 (GC, MII)
        one = {task: files[task]}
        g, _ = time_predict(model, processor, one, tmp / f"{label}_greedy", **kw)
        s, e = time_predict(
            model,
            processor,
            one,
            tmp / f"{label}_sasg",
            select="sasg",
            candidates=args.candidates,
            embedder=Embedder(model=embedder.model),
            length_factor=args.length_factor,
            **kw,
        )
        rows.append(
            (
                f"  {task}: greedy | sasg (generate, embed ×greedy)",
                g,
                f"sasg {s:.2f} s = {s / g:.2f}× (generate {(s - e) / g:.2f}×, embed/select {e / g:.2f}×)",
            )
        )
        g_s, s_s, e_s = g_s + g, s_s + s, e_s + e
    rows = [
        (
            f"greedy ({n_q} questions)",
            g_s,
            f"{mean_tokens(processor, tmp / f'{label}_greedy'):.1f} tok/answer",
        ),
        (
            f"sasg N={args.candidates}, one call, length cap {args.length_factor:g}x+8",
            s_s,
            f"generate {s_s - e_s:.2f} s ({(s_s - e_s) / g_s:.2f}× greedy) + embed/select {e_s:.2f} s",
        ),
        *rows,
    ]
    if not args.skip_no_cap:
        u_s, ue_s = time_predict(
            model,
            processor,
            files,
            tmp / f"{label}_sasg_nocap",
            select="sasg",
            candidates=args.candidates,
            embedder=Embedder(model=embedder.model),
            length_factor=None,
            **kw,
        )
        rows.append(
            (
                f"sasg N={args.candidates}, one call, no length cap",
                u_s,
                f"generate {u_s - ue_s:.2f} s + embed/select {ue_s:.2f} s",
            )
        )
    if args.two_calls:
        t2 = time_two_calls(
            model, processor, ds, args.candidates, args.batch_size, Embedder(model=embedder.model), args.seed
        )
        rows.append(
            (f"sasg N={args.candidates}, greedy + sampling calls", t2, "the naive way, for comparison")
        )
    return rows


def print_table(title: str, rows: list[tuple[str, float, str]]) -> None:
    base = rows[0][1]
    print(f"\n{title}")
    print(f"| {'method':44s} | {'seconds':>8s} | {'× greedy':>8s} | notes")
    print(f"|{'-' * 46}|{'-' * 10}|{'-' * 10}|{'-' * 40}")
    for name, secs, note in rows:
        ratio = (
            "" if name.startswith("  ") else f"{secs / base:8.2f}"
        )  # per-task lines carry their own ratios
        print(f"| {name:44s} | {secs:8.2f} | {ratio:>8s} | {note}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=80, help="synthetic images (20%% go to the test split)")
    ap.add_argument("--train-steps", type=int, default=200)
    ap.add_argument("--train-batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--batch-size", type=int, default=8, help="questions per generate call")
    ap.add_argument("--candidates", type=int, default=5)
    ap.add_argument("--length-factor", type=float, default=2.0, help="SASG length cap factor (default 2.0)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--untrained", action="store_true", help="also compare on the untrained student")
    ap.add_argument("--two-calls", action="store_true", help="also time the naive two-call SASG (slow)")
    ap.add_argument("--skip-no-cap", action="store_true", help="skip SASG without the length cap")
    args = ap.parse_args(argv)
    torch.manual_seed(args.seed)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads", flush=True)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        t = time.perf_counter()
        synth.generate(tmp / "data", seed=args.seed, n_images=args.images)
        ds = read_dataset_dir(tmp / "data")
        init_model_dir(tmp / "student", "tiny-student", seed=args.seed)
        model, processor = load(tmp / "student")
        print(
            f"data + tiny student: {time.perf_counter() - t:.0f} s; test questions per task: "
            f"{ {k: len(v) for k, v in ds.test.items()} }",
            flush=True,
        )
        if args.untrained:
            print_table(
                "untrained tiny student (garbage: every row runs to max_new_tokens)",
                compare("untrained", model, processor, ds, tmp, args),
            )
        loss = train_briefly(model, processor, ds, args.train_steps, args.train_batch, args.lr, args.seed)
        print_table(
            f"tiny student after {args.train_steps} training steps (last loss {loss:.2f}); "
            f"max_new_tokens 80 (MII 100), batch {args.batch_size}",
            compare("trained", model, processor, ds, tmp, args),
        )
    print("\nGoal: SASG at most 2.5× greedy.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
