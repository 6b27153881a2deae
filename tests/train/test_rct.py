"""Reflective correction on a crafted set: which answers are wrong, what replaces them, what is replayed."""

import json

import pytest

import clinkd.train.rct as rct_mod
from clinkd.data.formats import read_samples
from clinkd.train.config import RCTConfig
from clinkd.train.dataset import TrainItem
from clinkd.train.rct import ReflectiveCorrection, round_steps
from clinkd.train.schedule import ScheduledDataset

REFS = {
    "q0": "<ref>liver</ref><box>(100,100),(400,400)</box>",  # answered right
    "q1": "<ref>spleen</ref><box>(600,100),(900,400)</box>",  # box missing -> wrong, model corrects it
    "q2": "<ref>kidney</ref><box>(100,600),(300,900)</box>",  # box off (IoU < 0.5) -> wrong, reference used
    "q3": "a round bright lesion in the upper left",  # text right
    "q4": "a large dark cyst in the lower right",  # text wrong -> wrong, model corrects it
}
GREEDY = {
    "q0": "<ref>liver</ref><box>(110,100),(400,410)</box>",
    "q1": "<ref>spleen</ref>",
    "q2": "<ref>kidney</ref><box>(500,100),(700,300)</box>",
    "q3": "a round bright lesion in the upper left",
    "q4": "nothing to see here",
}
CANDIDATES = {
    "q1": ["<ref>spleen</ref>", "<ref>spleen</ref><box>(600,110),(890,400)</box>"],
    "q2": ["<ref>kidney</ref><box>(0,0),(50,50)</box>", "<ref>liver</ref>"],
    "q4": ["a large dark cyst in the lower right", "blah"],
}


@pytest.fixture
def crafted(tmp_path, monkeypatch, bag_of_words):
    from PIL import Image

    img = tmp_path / "ct_1.png"
    Image.new("RGB", (32, 32)).save(img)
    items = [
        TrainItem(image=img, turns=[(q, a)], source=f"train.json [record {i}]", meta={"id": f"ct_{i}"})
        for i, (q, a) in enumerate(REFS.items())
    ]
    calls = []

    def fake_generate(model, processor, images, questions, *, num_return_sequences=1, **kw):
        calls.append((list(questions), num_return_sequences, kw.get("do_sample", False)))
        if num_return_sequences == 1:
            return [[GREEDY[q]] for q in questions]
        keys = [q.split("\n")[0] for q in questions]  # the hint follows the question
        assert all("A reference answer is: " + REFS[k] in q for k, q in zip(keys, questions))
        return [CANDIDATES[k] for k in keys]

    monkeypatch.setattr(rct_mod, "generate_answers", fake_generate)
    dataset = ScheduledDataset(items, list(range(5)) * 8)  # 40 positions
    cfg = RCTConfig(
        enabled=True, rounds=1, sample_size=5, num_candidates=2, replay=2, similarity_threshold=0.75
    )
    cb = ReflectiveCorrection(
        cfg,
        dataset,
        processor=None,
        out_dir=tmp_path / "out",
        max_steps=10,
        global_batch=2,
        seed=0,
        embedder=bag_of_words,
    )
    return cb, dataset, calls, tmp_path / "out"


def test_round_finds_corrects_and_replays(crafted):
    cb, dataset, calls, out = crafted
    entry = cb.run_round(model=None, k=1, step=3)
    assert entry["answered"] == 5
    assert entry["found"] == 3  # q1 (missing box), q2 (IoU 0), q4 (text)
    assert entry["corrected"] == 2  # q1 and q4 by a sampled candidate
    assert entry["reference_used"] == 1  # q2: no candidate passes
    assert entry["replayed"] == 6  # 3 corrections x 2
    assert calls[1][1] == 2 and calls[1][2] is True  # candidates are sampled, two per wrong answer
    new = dataset.items[5:]
    answers = {it.turns[0][0]: it.turns[0][1] for it in new}
    assert answers == {"q1": CANDIDATES["q1"][1], "q2": REFS["q2"], "q4": CANDIDATES["q4"][0]}
    assert all(it.kind == "correction" for it in new)
    # replays only in the future: positions >= (step + 2) * global batch
    touched = [i for i, idx in enumerate(dataset.order) if idx >= 5]
    assert len(touched) == 6 and min(touched) >= 10
    # the round's file is a Med-GRIT training file, and the log counts it
    samples = read_samples(out / "rct" / "round_1.json")
    assert [s.turns[0].answer for s in samples] == [answers[q] for q in ("q1", "q2", "q4")]
    assert samples[0].turns[0].question.startswith("<img>ct_1.png</img>\n")
    logged = [json.loads(line) for line in (out / "rct" / "log.jsonl").read_text().splitlines()]
    assert logged == [entry]


def test_restore_reapplies_rounds_before_the_checkpoint(crafted, tmp_path, bag_of_words):
    cb, dataset, _, out = crafted
    cb.run_round(model=None, k=1, step=3)
    order_after = list(dataset.order)
    fresh = ScheduledDataset(dataset.items[:5], list(range(5)) * 8)
    cb2 = ReflectiveCorrection(cb.cfg, fresh, None, out, max_steps=10, global_batch=2, embedder=bag_of_words)
    assert cb2.restore(up_to_step=3) == 1
    assert fresh.order == order_after
    assert [it.turns for it in fresh.items[5:]] == [it.turns for it in dataset.items[5:]]
    # a checkpoint from before the round: nothing re-applied, and the round is dropped from the log
    # (it runs again after the resume)
    fresh = ScheduledDataset(dataset.items[:5], list(range(5)) * 8)
    cb3 = ReflectiveCorrection(cb.cfg, fresh, None, out, max_steps=10, global_batch=2, embedder=bag_of_words)
    assert cb3.restore(up_to_step=2) == 0 and fresh.order == list(range(5)) * 8
    assert (out / "rct" / "log.jsonl").read_text() == ""


def test_round_steps():
    assert round_steps(300, 2) == [100, 200]
    assert round_steps(10, 1) == [5]
    assert round_steps(2, 3) == [1]


def test_round_forks_the_random_state_of_every_device(crafted, monkeypatch):
    """A round draws random numbers (sampling) seeded on every device, and leaves the caller's CPU and
    accelerator generators as they were: ``fork_rng`` over all the accelerator's devices, not just the CPU
    state (issues 11 and 15)."""
    import contextlib

    import torch

    cb, _dataset, _, _ = crafted
    forked = []
    real_fork = torch.random.fork_rng

    @contextlib.contextmanager
    def spy_fork(devices=None, enabled=True, **kw):
        forked.append(list(devices) if devices is not None else None)
        with real_fork(devices=[], enabled=enabled, **kw):  # no CUDA here: fork the CPU only
            yield

    monkeypatch.setattr(torch.random, "fork_rng", spy_fork)
    where = torch.accelerator if hasattr(torch, "accelerator") else torch.cuda  # what clinkd.seeding asks
    monkeypatch.setattr(where, "is_available", lambda: True)
    monkeypatch.setattr(where, "device_count", lambda: 2)
    draws = []
    fake = rct_mod.generate_answers

    def drawing_generate(*args, **kw):
        draws.append(torch.rand(3).tolist())  # what sampling would consume
        return fake(*args, **kw)

    monkeypatch.setattr(rct_mod, "generate_answers", drawing_generate)
    torch.manual_seed(123)
    torch.rand(5)
    before = torch.get_rng_state()
    e1 = cb.run_round(model=None, k=1, step=3)
    assert torch.equal(torch.get_rng_state(), before)
    assert forked == [[0, 1]]  # every accelerator device's generator forked
    first = list(draws)
    draws.clear()
    torch.rand(7)  # whatever training drew in between
    e2 = cb.run_round(model=None, k=1, step=3)  # the same round again: the same random numbers
    assert draws == first and e2["found"] == e1["found"]


def test_round_draws_what_a_bare_seed_drew(crafted, monkeypatch):
    """The round's random numbers are those of ``torch.manual_seed(seed * 1000 + k)``, as before the seeding
    became local (issue 15): the same samples for the same seed. Pinned values, and the CPU state kept."""
    import torch

    cb, _, _, _ = crafted
    draws = []
    fake = rct_mod.generate_answers

    def drawing_generate(*args, **kw):
        draws.append(torch.rand(2).tolist())
        return fake(*args, **kw)

    monkeypatch.setattr(rct_mod, "generate_answers", drawing_generate)
    torch.manual_seed(7)
    before = torch.get_rng_state()
    cb.run_round(model=None, k=1, step=3)  # seed 0 * 1000 + 1
    assert torch.equal(torch.get_rng_state(), before)
    torch.manual_seed(1)
    expected = torch.rand(4).tolist()
    assert [x for d in draws for x in d] == expected
    assert expected == [0.7576315999031067, 0.2793108820915222, 0.40306925773620605, 0.7346844673156738]
