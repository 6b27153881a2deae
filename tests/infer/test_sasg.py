"""SASG: the semantic medoid wins (real MiniLM embedder), greedy rows are greedy, one generate call."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from clinkd.data import load_image, read_samples
from clinkd.infer.generate import generate_answers
from clinkd.infer.predict import predict_file
from clinkd.infer.sasg import AnchoredLength, GreedyRows, generate_candidates, select_answers

OUTLIER = "The patient has a fractured left femur with displacement."
PARAPHRASES = [
    "The lesion is in the left lobe of the liver.",
    "A lesion is located in the liver's left lobe.",
    "There is a lesion in the left hepatic lobe.",
    "The left lobe of the liver contains a lesion.",
]


def test_a_paraphrase_beats_the_outlier_even_in_greedy_position(embedder):
    (sel,) = select_answers([[OUTLIER, *PARAPHRASES]], embedder)
    assert sel.index in (1, 2, 3, 4) and sel.answer in PARAPHRASES
    assert len(sel.scores) == 5 and min(sel.scores) == sel.scores[0]  # the outlier agrees least


def test_boxes_that_agree_beat_a_far_box(embedder):
    def ans(x1, y1, x2, y2):
        return f"<ref>tumor</ref><box>({x1},{y1}),({x2},{y2})</box>"

    far, near = (
        ans(700, 700, 900, 900),
        [ans(100, 100, 300, 300), ans(105, 98, 305, 296), ans(95, 102, 298, 305)],
    )
    (sel,) = select_answers([[far, *near]], embedder)  # same words: only the boxes can decide
    assert sel.index in (1, 2, 3)


def test_ties_go_to_the_greedy_answer(embedder):
    sels = select_answers([["the liver"] * 4, ["", "", ""]], embedder)
    assert [s.index for s in sels] == [0, 0]


def test_questions_with_one_wording_are_not_embedded():
    class Counting:
        def __init__(self):
            self.texts = []

        def encode(self, texts):
            self.texts += list(texts)
            return np.ones((len(texts), 4), np.float32) / 2

    emb = Counting()
    sels = select_answers([["the liver"] * 3, ["a cyst", "a mass", "a cyst"]], emb)
    assert sorted(set(emb.texts)) == ["a cyst", "a mass"]  # the first question needed no embedding
    assert sels[0].scores == [1.0, 1.0, 1.0] and sels[0].index == 0


def test_greedy_rows_force_the_argmax():
    scores = torch.tensor([[0.1, 2.0, 0.3], [5.0, 0.0, 1.0], [0.0, 0.0, 9.0], [1.0, 3.0, 2.0]])
    out = GreedyRows(2)(torch.zeros(4, 1, dtype=torch.long), scores)
    assert torch.equal(out[1], scores[1]) and torch.equal(out[3], scores[3])  # sampled rows untouched
    assert out[0].argmax() == 1 and out[2].argmax() == 2
    assert torch.isinf(out[0]).sum() == 2 and torch.isinf(out[2]).sum() == 2


def test_candidates_come_from_one_generate_call_with_greedy_first(synth_dir, tiny_student, monkeypatch):
    model, processor = tiny_student
    samples = read_samples(synth_dir / "test_GC.json")[:3]
    images = [load_image(synth_dir / "images" / s.image) for s in samples]
    prompts = [s.prompts()[0] for s in samples]
    greedy = generate_answers(model, processor, images, prompts, max_new_tokens=8, batch_size=3)
    calls = []
    real = type(model).generate

    def counting(self, *args, **kwargs):
        calls.append(kwargs["input_ids"].shape[0])
        return real(self, *args, **kwargs)

    monkeypatch.setattr(type(model), "generate", counting)
    torch.manual_seed(0)
    cands = generate_candidates(model, processor, images, prompts, n=4, max_new_tokens=8, length_factor=None)
    assert calls == [3 * 5]  # greedy + 4 samples for all questions of the batch: one call
    assert [len(c) for c in cands] == [5, 5, 5]
    assert [c[0] for c in cands] == [g[0] for g in greedy]  # row 0 of each group is the greedy answer
    assert any(len(set(c[1:])) > 1 for c in cands)  # and the others are sampled


@pytest.mark.parametrize("family", ["qwen2_vl", "qwen2_5_vl", "qwen3_vl"])
@pytest.mark.parametrize("rope", ["mcg", "stock"])
def test_candidates_after_a_shared_prefill_decode_as_after_their_own(family, rope):
    """One prefill per prompt, its cache copied to every candidate, gives the same tokens as generate's
    own expansion (a prefill per candidate): greedy rows equal plain greedy, seeded samples are equal."""
    from transformers import LogitsProcessorList

    from clinkd.infer.generate import generate_batch
    from clinkd.model import build_tiny_processor
    from clinkd.model.tiny import build_tiny_model

    rng = np.random.default_rng(0)
    images = [
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)) for h, w in [(112, 112), (56, 84)]
    ]
    questions = ["Where is the liver?", "Describe the lesion in the image please"]
    qwen3 = family == "qwen3_vl"
    processor = build_tiny_processor(
        ["where is the liver", "describe the lesion in the image"] * 20,
        max_pixels=(128 if qwen3 else 112) ** 2,
        patch_size=16 if qwen3 else 14,
    )
    model = build_tiny_model("tiny-student", processor.tokenizer, family=family, rope=rope, seed=1)
    kw = dict(max_new_tokens=10, do_sample=True, num_return_sequences=3, top_k=0, temperature=1.0)
    with torch.no_grad():
        greedy = generate_batch(model, processor, images, questions, max_new_tokens=10, do_sample=False)
        rows = generate_batch(
            model, processor, images, questions, logits_processor=LogitsProcessorList([GreedyRows(1)]), **kw
        )
        torch.manual_seed(0)
        shared = generate_batch(model, processor, images, questions, **kw)
        torch.manual_seed(0)
        own = generate_batch(model, processor, images, questions, share_prefill=False, **kw)
    assert rows == [g for g in greedy for _ in range(3)]
    assert shared == own


def test_predict_sasg_records_candidates_under_an_extra_key(tmp_path, synth_dir, tiny_student, embedder):
    from clinkd.eval.predictions import read_predictions

    model, processor = tiny_student
    out = tmp_path / "pred_RO.jsonl"
    predict_file(
        model,
        synth_dir / "test_RO.json",
        out,
        processor=processor,
        select="sasg",
        candidates=3,
        save_candidates=True,
        embedder=embedder,
        limit=3,
        batch_size=3,
        max_new_tokens=6,
        progress=False,
    )
    recs = [json.loads(x) for x in out.read_text().splitlines()]
    for r in recs:
        extra = r["sasg"]
        assert len(extra["candidates"]) == 4 and len(extra["scores"]) == 4
        assert r["response"] == extra["candidates"][extra["chosen"]]
        assert extra["scores"][extra["chosen"]] == pytest.approx(max(extra["scores"]))
    assert [p.id for p in read_predictions(out)] == [0, 1, 2]  # the extra key does not disturb the reader


def test_anchored_length_cuts_samples_that_outrun_the_greedy_answer():
    end, prompt = 9, [1, 1, 1]
    stop = AnchoredLength(group=3, end_id=end, factor=2.0, slack=1)
    # one question, rows: greedy (ends at its 2nd token), a sample that ends at its 4th, a rambler
    steps = [[5, 5, 5], [end, 5, 5], [0, 5, 5], [0, end, 5], [0, 0, 5], [0, 0, 5]]
    seqs = [list(prompt) for _ in range(3)]
    flags = []
    for tokens in steps:
        for row, t in zip(seqs, tokens):
            row.append(t)
        flags.append(stop(torch.tensor(seqs), torch.zeros(3, 10)).tolist())
    # cap = 2 * 2 + 1 = 5 new tokens: nothing stops before, sampled rows stop at the 5th
    assert flags[3] == [False, False, False] and flags[4] == [False, True, True]
    assert stop.cut.tolist() == [False, False, True]  # only the rambler (no <|im_end|>) is dropped


def test_dropped_samples_leave_the_vote(synth_dir, tiny_student, monkeypatch):
    import clinkd.infer.sasg as sasg_mod

    model, processor = tiny_student
    samples = read_samples(synth_dir / "test_RO.json")[:2]
    images = [load_image(synth_dir / "images" / s.image) for s in samples]
    prompts = [s.prompts()[0] for s in samples]

    class CutSecond(AnchoredLength):
        def __call__(self, input_ids, scores, **kwargs):
            out = super().__call__(input_ids, scores, **kwargs)
            self.cut[1::3] = True  # pretend the first sample of each question rambled
            return out

    monkeypatch.setattr(sasg_mod, "AnchoredLength", CutSecond)
    torch.manual_seed(0)
    cands = generate_candidates(model, processor, images, prompts, n=2, max_new_tokens=4)
    torch.manual_seed(0)
    full = generate_candidates(model, processor, images, prompts, n=2, max_new_tokens=4, length_factor=None)
    assert cands == [[f[0], f[2]] for f in full]
