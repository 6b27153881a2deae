"""Speed of a training step: SFT vs pseudo-label distillation, tiny student, side by side in one run.

    python benchmarks/bench_train.py [--steps 20] [--batch 8] [--threads 2]

A distillation step adds the KL term to the student's forward, backward and AdamW update, against the
teacher's logits: cached (the default, distill.teacher_logits=cached: the teacher's top-64 logits come
with the batch, computed once with the pseudo-labels — that one-off pass is timed too) or online (a
tiny-teacher forward on every batch). Goal (issue 5): a distillation step costs at most 1.6x an SFT
step. All are timed on the same pre-collated batches (the collator's cost is reported separately).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=20, help="timed steps per mode (after 3 warm-up steps)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from clinkd.data import synth
    from clinkd.data.formats import read_dataset_dir
    from clinkd.model import init_model_dir, load
    from clinkd.train.config import load_run_configs
    from clinkd.train.dataset import ConversationCollator, items_from_dataset
    from clinkd.train.trainer import ClinKDTrainer

    tmp = Path(tempfile.mkdtemp(prefix="clinkd-bench-train-"))
    synth.generate(tmp / "data", seed=0, n_images=64)
    items = items_from_dataset(read_dataset_dir(tmp / "data"))
    student_dir = init_model_dir(tmp / "student", "tiny-student", seed=0)
    _, processor = load(student_dir)
    teacher_dir = init_model_dir(tmp / "teacher", "tiny-teacher", seed=1, processor=processor)
    collator = ConversationCollator(processor)
    n_batches = args.steps + 3
    t0 = time.perf_counter()
    batches = [
        collator([items[(i * args.batch + j) % len(items)] for j in range(args.batch)])
        for i in range(n_batches)
    ]
    collate_s = (time.perf_counter() - t0) / n_batches
    seq = statistics.mean(b["input_ids"].shape[1] for b in batches)

    from clinkd.train.pseudo import teacher_pass

    t_model = load(teacher_dir)[0]
    uniq = [items[(i * args.batch + j) % len(items)] for i in range(n_batches) for j in range(args.batch)]
    t0 = time.perf_counter()
    _, topk = teacher_pass(t_model, collator, uniq, batch_size=args.batch, top_k=64)
    cache_s = (time.perf_counter() - t0) / n_batches
    for it, t in zip(uniq, topk):
        it.teacher_topk = t
    cached_batches = [collator(uniq[i * args.batch : (i + 1) * args.batch]) for i in range(n_batches)]
    for it in uniq:
        it.teacher_topk = None

    def run(teacher: bool, batches=batches) -> list[float]:
        model, _ = load(student_dir)
        (cfg,) = load_run_configs(
            None,
            [
                f"--train.output_dir={tmp / 'out'}",
                "--train.max_steps=100",
                f"--train.per_device_train_batch_size={args.batch}",
            ],
        )
        t_model = load(teacher_dir)[0] if teacher else None
        trainer = ClinKDTrainer(
            model=model, args=cfg.train, train_dataset=None, data_collator=collator, teacher=t_model
        )
        trainer.create_optimizer()
        model.train()
        times = []
        for i, batch in enumerate(batches):
            t = time.perf_counter()
            n_items = int((batch["labels"][:, 1:] != -100).sum())
            trainer.training_step(model, dict(batch), num_items_in_batch=n_items)
            trainer.optimizer.step()
            trainer.optimizer.zero_grad()
            if i >= 3:
                times.append(time.perf_counter() - t)
        return times

    sft = run(teacher=False)
    cached = run(teacher=False, batches=cached_batches)
    online = run(teacher=True)
    sft_s, kd_s, on_s = statistics.median(sft), statistics.median(cached), statistics.median(online)
    print(
        f"tiny student, batch {args.batch}, mean sequence {seq:.0f} tokens, {args.threads} threads, "
        f"{args.steps} timed steps each (median)"
    )
    print(f"{'step':<14}{'s/step':>10}{'samples/s':>12}")
    print(f"{'collate':<14}{collate_s:>10.3f}{args.batch / collate_s:>12.1f}")
    print(f"{'sft':<14}{sft_s:>10.3f}{args.batch / sft_s:>12.1f}")
    print(f"{'distill':<14}{kd_s:>10.3f}{args.batch / kd_s:>12.1f}   (cached teacher top-64, the default)")
    print(f"{'distill-online':<14}{on_s:>10.3f}{args.batch / on_s:>12.1f}   (teacher forward every step)")
    print(
        f"{'teacher cache':<14}{cache_s:>10.3f}{args.batch / cache_s:>12.1f}   (one-off, per batch of pseudo-labels)"
    )
    ratio = kd_s / sft_s
    print(
        f"distill / sft = {ratio:.2f}x (goal <= 1.6x: {'met' if ratio <= 1.6 else 'NOT met'}); "
        f"online distill / sft = {on_s / sft_s:.2f}x"
    )


if __name__ == "__main__":
    main()
