"""Reflective Correction Training (method.md §3): reuse the model's wrong answers during SFT.

At ``rct.rounds`` equally spaced steps of training, the current model answers ``rct.sample_size``
training questions. An answer is wrong when a required box is missing, its boxes' IoU with the
reference is below ``rct.iou_threshold``, or its text is less similar than ``rct.similarity_threshold``
to the reference. For each wrong answer the model is asked again with the reference as a hint and
``rct.num_candidates`` answers are sampled; the best-scoring one is kept if it passes the same bar, else
the reference itself is used. The correction samples are replayed ``rct.replay`` times in the rest of
training (they take scheduled positions, so the step budget does not change), written as a Med-GRIT
training file ``<output_dir>/rct/round_<k>.json``, and counted in ``<output_dir>/rct/log.jsonl``.

Every process of a distributed run computes the same round (same weights, same seeds), so their
schedules stay identical without communication.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
from transformers import TrainerCallback

from clinkd.data.formats import write_train_file
from clinkd.data.sample import Sample, Turn, image_tag
from clinkd.infer.generate import generate_answers
from clinkd.infer.similarity import Embedder, judge
from clinkd.seeding import local_seed
from clinkd.train.config import RCTConfig
from clinkd.train.dataset import TrainItem, load_item_images
from clinkd.train.schedule import ScheduledDataset

log = logging.getLogger(__name__)

HINT = "{question}\nA reference answer is: {reference}\nAnswer the question."


def round_steps(max_steps: int, rounds: int) -> list[int]:
    """The steps after which correction rounds run: equally spaced, never the last step."""
    steps = sorted({max(1, round(max_steps * r / (rounds + 1))) for r in range(1, rounds + 1)})
    return [s for s in steps if s < max_steps]


def fetched_ahead(
    per_device_batch: int, world_size: int, num_workers: int, prefetch_factor: int | None
) -> int:
    """Schedule positions past the consumed ones that the data loaders may already have read.

    Each rank's loader has handed out the batch being trained on plus the one accelerate reads ahead,
    and each of its ``num_workers`` workers holds up to ``prefetch_factor`` more (torch's default 2).
    A global micro-batch spans ``per_device_batch * world_size`` positions. One extra micro-batch of margin.
    """
    in_flight = 3 + num_workers * ((prefetch_factor or 2) if num_workers > 0 else 0)
    return in_flight * per_device_batch * world_size


def turn_pool(items: list[TrainItem]) -> list[tuple[int, int]]:
    """(item, turn) pairs of the ground-truth items, the questions a round draws from."""
    return [(i, t) for i, it in enumerate(items) if it.kind == "gt" for t in range(len(it.turns))]


class ReflectiveCorrection(TrainerCallback):
    """A Trainer callback running the correction rounds (see module docstring)."""

    def __init__(
        self,
        cfg: RCTConfig,
        dataset: ScheduledDataset,
        processor,
        out_dir: str | Path,
        *,
        max_steps: int,
        global_batch: int,
        lookahead: int | None = None,
        seed: int = 0,
        embedder: Embedder | None = None,
        is_main_process: bool = True,
    ):
        self.cfg = cfg
        self.dataset = dataset
        self.processor = processor
        self.dir = Path(out_dir) / "rct"
        self.steps = round_steps(max_steps, cfg.rounds)
        self.global_batch = global_batch
        # positions past the consumed ones that data loading may already have fetched (see fetched_ahead)
        self.lookahead = 2 * global_batch if lookahead is None else lookahead
        self.seed = seed
        self.embedder = embedder or Embedder()
        self.is_main = is_main_process
        self.pool = turn_pool(dataset.items)

    # -- resume -----------------------------------------------------------------------------------
    def restore(self, up_to_step: int) -> int:
        """Re-apply the rounds logged at steps ``<= up_to_step`` (a resumed run); returns how many."""
        log_file = self.dir / "log.jsonl"
        if not log_file.is_file():
            return 0
        done, kept = 0, []
        for line in log_file.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by a crash: that round is simply run again
            if entry["step"] > up_to_step:
                continue  # after the checkpoint: it runs again
            kept.append(line)
            items = [
                TrainItem.from_row(d)
                for d in json.loads((self.dir / f"round_{entry['round']}.items.json").read_text())
            ]
            self.dataset.replay(items, self.cfg.replay, entry["from_position"], entry["seed"])
            done += 1
        if self.is_main:
            log_file.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
        return done

    # -- the round ---------------------------------------------------------------------------------
    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step in self.steps:
            self.run_round(model, self.steps.index(state.global_step) + 1, state.global_step)
        return control

    def run_round(self, model, k: int, step: int) -> dict:
        cfg = self.cfg
        seed = self.seed * 1000 + k
        # training randomness must not depend on the round: the CPU's and every accelerator device's generator
        # are seeded for the round and restored on leaving it (clinkd.seeding.local_seed)
        with local_seed(seed):
            picks = np.random.default_rng(seed).choice(
                len(self.pool), size=min(cfg.sample_size, len(self.pool)), replace=False
            )
            chosen = [self.pool[i] for i in sorted(picks.tolist())]
            items = [self.dataset.items[i] for i, _ in chosen]
            images = [load_item_images(it) for it in items]  # a list for a multi-image item
            questions = [it.turns[t][0] for it, (_, t) in zip(items, chosen)]
            refs = [it.turns[t][1] for it, (_, t) in zip(items, chosen)]
            answers = [
                a[0]
                for a in generate_answers(
                    model,
                    self.processor,
                    images,
                    questions,
                    max_new_tokens=cfg.max_new_tokens,
                    batch_size=cfg.generation_batch_size,
                )
            ]
            verdicts = judge(
                answers,
                refs,
                self.embedder,
                iou_threshold=cfg.iou_threshold,
                similarity_threshold=cfg.similarity_threshold,
            )
            wrong = [j for j, v in enumerate(verdicts) if v.wrong]
            corrections, corrected = [], 0
            if wrong:
                hints = [HINT.format(question=questions[j], reference=refs[j]) for j in wrong]
                cands = generate_answers(
                    model,
                    self.processor,
                    [images[j] for j in wrong],
                    hints,
                    max_new_tokens=cfg.max_new_tokens,
                    batch_size=max(1, cfg.generation_batch_size // cfg.num_candidates),
                    num_return_sequences=cfg.num_candidates,
                    do_sample=True,
                    temperature=cfg.sampling_temperature,
                )
                for j, cand in zip(wrong, cands):
                    scores = judge(
                        cand,
                        [refs[j]] * len(cand),
                        self.embedder,
                        iou_threshold=cfg.iou_threshold,
                        similarity_threshold=cfg.similarity_threshold,
                    )
                    best = int(np.argmax([s.score for s in scores]))
                    ok = not scores[best].wrong
                    corrected += ok
                    src = items[j]
                    corrections.append(
                        src.derive(  # about all of the source's images
                            turns=[(questions[j], str(cand[best]) if ok else refs[j])],
                            source=f"rct round {k}",
                            kind="correction",
                            meta={
                                "id": src.meta.get("id", ""),
                                **({"images": src.meta["images"]} if "images" in src.meta else {}),
                                "from": "model" if ok else "reference",
                                "wrong_answer": str(answers[j]),
                            },
                        )
                    )
        from_position = step * self.global_batch + self.lookahead  # past the batches already (pre)fetched
        positions = self.dataset.replay(corrections, cfg.replay, from_position, seed)
        entry = {
            "round": k,
            "step": step,
            "answered": len(chosen),
            "found": len(wrong),
            "corrected": corrected,
            "reference_used": len(wrong) - corrected,
            "replayed": len(positions),
            "from_position": from_position,
            "seed": seed,
        }
        if self.is_main:
            self._write(k, corrections, entry)
        log.info(
            "reflective correction round %d at step %d: answered %d, wrong %d, corrected by the model %d, "
            "reference used %d, replayed %d times",
            k,
            step,
            entry["answered"],
            entry["found"],
            corrected,
            entry["reference_used"],
            entry["replayed"],
        )
        return entry

    def _write(self, k: int, corrections: list[TrainItem], entry: dict) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        samples = []
        for c in corrections:
            # a study's views keep the names its data file gave them (CXR1_IM-0001/0.png, …): file names alone
            # would collide between studies; a single image keeps its name, as Med-GRIT files write it
            names = c.meta.get("images") or [p.name for p in c.images]
            tags = "".join(image_tag(n) for n in names)
            samples.append(
                Sample(
                    id=c.meta.get("id") or c.image.stem,
                    image=names[0],
                    turns=[Turn(tags + "\n" + c.turns[0][0], c.turns[0][1])],
                    images=list(names),
                )
            )
        write_train_file(samples, self.dir / f"round_{k}.json")
        items = [c.to_row() for c in corrections]
        (self.dir / f"round_{k}.items.json").write_text(
            json.dumps(items, ensure_ascii=False), encoding="utf-8"
        )
        with open(self.dir / "log.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")
