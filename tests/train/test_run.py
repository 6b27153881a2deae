"""Stages end to end on tiny models: resume equivalence, distillation, SFT with reflective correction."""

import json

import pytest
import torch
from safetensors.torch import load_file

import clinkd.train.run as run_mod
from clinkd.model import load
from clinkd.train.config import load_run_configs
from clinkd.train.run import run_distill, run_sft

FAST = [
    "--train.per_device_train_batch_size=2",
    "--train.logging_steps=1",
    "--train.learning_rate=5e-3",
    "--data.max_train_samples=8",
    "--train.disable_tqdm=true",
]


def _weights(path):
    return load_file(str(path / "model.safetensors"))


def test_resume_gives_the_same_weights(tmp_path, synth_dir, tiny_student_dir, monkeypatch):
    base = FAST + [
        f"--data.dir={synth_dir}",
        f"--model.path={tiny_student_dir}",
        "--train.max_steps=4",
        "--train.save_steps=2",
    ]
    (a,) = load_run_configs(None, base + [f"--train.output_dir={tmp_path / 'a'}"])
    run_sft(a)

    class Crash(RuntimeError):
        pass

    class CrashingTrainer(run_mod.ClinKDTrainer):
        def training_step(self, model, inputs, num_items_in_batch=None):
            if self.state.global_step == 3:
                raise Crash("killed mid-way")
            return super().training_step(model, inputs, num_items_in_batch)

    (b,) = load_run_configs(None, base + [f"--train.output_dir={tmp_path / 'b'}"])
    monkeypatch.setattr(run_mod, "ClinKDTrainer", CrashingTrainer)
    with pytest.raises(Crash):
        run_sft(b)
    monkeypatch.undo()
    assert (tmp_path / "b" / "checkpoint-2").is_dir() and not (tmp_path / "b" / "model.safetensors").exists()
    (b,) = load_run_configs(None, base + [f"--train.output_dir={tmp_path / 'b'}"])
    run_sft(b, resume=True)
    wa, wb = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert wa.keys() == wb.keys()
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=1e-5, atol=1e-6, msg=k)
    # and training did change the weights
    w0 = _weights(tiny_student_dir)
    assert any(not torch.equal(w0[k], wa[k]) for k in wa)
    model, processor = load(tmp_path / "a")
    assert model.rope_settings.scheme == "mcg" and processor is not None


def test_curriculum_log_keeps_phases_starting_in_the_same_step(caplog):
    """Issue 15: four phases over two steps of global batch 2 start two per step; none is dropped."""
    import logging

    from transformers import TrainerControl, TrainerState

    from clinkd.train.schedule import curriculum_order

    _, phases = curriculum_order([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2], length=4, phases=4, seed=0)
    assert [p.start // 2 for p in phases] == [0, 0, 1, 1]
    callback, state = run_mod.CurriculumLog(phases, global_batch=2), TrainerState()
    caplog.set_level(logging.INFO, logger="clinkd")
    for step in range(3):
        state.global_step = step
        callback.on_step_begin(None, state, TrainerControl())
    logged = [(e["step"], e["curriculum_phase"], e["entered"]) for e in state.log_history]
    assert logged == [(0, 1, 2), (0, 2, 2), (1, 3, 2), (1, 4, 2)]
    assert caplog.text.count("curriculum phase") == 4 and "curriculum phase 2 at step 0" in caplog.text


@pytest.mark.parametrize("mode", ["cached", "online"])
def test_distill_stage(tmp_path, synth_dir, tiny_student_dir, tiny_teacher_dir, caplog, mode):
    import logging

    caplog.set_level(logging.INFO, logger="clinkd")
    (cfg,) = load_run_configs(
        None,
        FAST
        + [
            f"--distill.teacher_logits={mode}",
            "--distill.top_k=16",
            "--stage=distill",
            f"--data.dir={synth_dir}",
            f"--model.path={tiny_student_dir}",
            f"--distill.teacher={tiny_teacher_dir}",
            "--distill.subset=0.5",
            "--distill.max_new_tokens=12",
            "--distill.curriculum_phases=2",
            "--train.max_steps=2",
            "--train.save_steps=10",
            f"--train.output_dir={tmp_path / 'kd'}",
        ],
    )
    out = run_distill(cfg)
    stats = json.loads((out / "distill_stats.json").read_text())
    n = stats["pseudo_labels"]
    assert n >= 8 and stats["kept"] + stats["replaced_low_margin"] + stats["replaced_contradicting"] == n
    assert [p["index"] for p in stats["phases"]] == [0, 1] and sum(p["entered"] for p in stats["phases"]) == n
    assert "curriculum phase 1 at step 0" in caplog.text
    cached = json.loads((out / "pseudo_labels.json").read_text())
    assert len(cached["items"]) == n and all(0.0 <= it["margin"] <= 1.0 for it in cached["items"])
    assert (out / "pseudo_labels.teacher.pt").is_file() == (mode == "cached")
    if mode == "cached":
        topk = torch.load(out / "pseudo_labels.teacher.pt", weights_only=True)
        assert len(topk) == n and all(v.shape[1] == 16 and v.shape == i.shape for v, i in topk)
    model, _ = load(out)
    assert model.config.text_config.vocab_size == load(tiny_teacher_dir)[0].config.text_config.vocab_size


@pytest.fixture(scope="module")
def padded_teacher_dir(tmp_path_factory, tiny_teacher_dir):
    """The tiny teacher with 24 extra embedding rows past its tokenizer, as a 7B checkpoint has (152,064 rows
    for 151,657 tokens), their logits made the largest so that an uncut top-k would pick them."""
    model, processor = load(tiny_teacher_dir)
    n = model.get_input_embeddings().weight.shape[0]
    model.resize_token_embeddings(n + 24, mean_resizing=False)
    with torch.no_grad():
        head = model.get_output_embeddings()
        head.weight[n:] = head.weight[:n].abs().max() * 10 * torch.sign(torch.randn(24, head.weight.shape[1]))
        model.get_input_embeddings().weight[n:] = 0.0
    out = tmp_path_factory.mktemp("padded_teacher")
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


@pytest.mark.parametrize("top_k", [0, 16])
def test_distill_from_a_teacher_with_more_embedding_rows(
    tmp_path, synth_dir, tiny_student_dir, padded_teacher_dir, top_k
):
    (cfg,) = load_run_configs(
        None,
        FAST
        + [
            f"--distill.top_k={top_k}",
            "--stage=distill",
            f"--data.dir={synth_dir}",
            f"--model.path={tiny_student_dir}",
            f"--distill.teacher={padded_teacher_dir}",
            "--distill.subset=0.25",
            "--distill.max_new_tokens=6",
            "--train.max_steps=2",
            "--train.save_steps=10",
            f"--train.output_dir={tmp_path / 'kd'}",
        ],
    )
    out = run_distill(cfg)
    rows = load(tiny_student_dir)[0].get_output_embeddings().weight.shape[0]
    topk = torch.load(out / "pseudo_labels.teacher.pt", weights_only=True)
    assert all(int(i.max()) < rows for _, i in topk)
    assert all(v.shape[1] == (top_k or rows) for v, _ in topk)


def test_distill_refuses_embeddings_that_miss_tokens(tmp_path, synth_dir, tiny_student_dir, tiny_teacher_dir):
    from clinkd.errors import ClinkdError

    model, processor = load(tiny_teacher_dir)
    model.resize_token_embeddings(model.get_input_embeddings().weight.shape[0] - 2)
    cut = tmp_path / "cut_teacher"
    model.save_pretrained(cut)
    processor.save_pretrained(cut)
    (cfg,) = load_run_configs(
        None,
        FAST
        + [
            "--stage=distill",
            f"--data.dir={synth_dir}",
            f"--model.path={tiny_student_dir}",
            f"--distill.teacher={cut}",
            f"--train.output_dir={tmp_path / 'kd'}",
        ],
    )
    with pytest.raises(ClinkdError, match="do not cover the tokenizer"):
        run_distill(cfg)
    assert not (tmp_path / "kd" / "pseudo_labels.json").exists()


def test_distill_refuses_a_teacher_with_another_tokenizer(tmp_path, synth_dir, tiny_student_dir):
    from clinkd.errors import ClinkdError
    from clinkd.model import build_tiny_processor, init_model_dir

    other = init_model_dir(
        tmp_path / "other",
        "tiny-teacher",
        processor=build_tiny_processor(["completely different words"] * 50, vocab_size=300),
    )
    (cfg,) = load_run_configs(
        None,
        FAST
        + [
            "--stage=distill",
            f"--data.dir={synth_dir}",
            f"--model.path={tiny_student_dir}",
            f"--distill.teacher={other}",
            f"--train.output_dir={tmp_path / 'kd'}",
            "--train.max_steps=1",
        ],
    )
    with pytest.raises(ClinkdError, match="do not share a tokenizer"):
        run_distill(cfg)


def test_sft_with_reflective_correction(tmp_path, synth_dir, tiny_student_dir, rct_bag_of_words):
    (cfg,) = load_run_configs(
        None,
        FAST
        + [
            f"--data.dir={synth_dir}",
            f"--model.path={tiny_student_dir}",
            "--train.max_steps=4",
            "--train.save_steps=10",
            "--rct.enabled=true",
            "--rct.rounds=1",
            "--rct.sample_size=4",
            "--rct.num_candidates=2",
            "--rct.max_new_tokens=12",
            f"--train.output_dir={tmp_path / 'sft'}",
        ],
    )
    out = run_sft(cfg)
    (entry,) = [json.loads(x) for x in (out / "rct" / "log.jsonl").read_text().splitlines()]
    assert entry["step"] == 2 and entry["answered"] == 4
    # an untrained model answers nonsense: every answer is wrong and gets a correction
    assert entry["found"] == 4 and entry["corrected"] + entry["reference_used"] == 4
    # 4 corrections x 2 replays, but only the positions after step 2 + 2 (of 4 x 2) are free: 0 left here
    assert entry["replayed"] == 0
    assert (out / "rct" / "round_1.json").is_file()
    assert (out / "model.safetensors").is_file() and (out / "clinkd_run.yaml").is_file()


def test_rct_replays_reach_compute_loss(tmp_path, synth_dir, tiny_student_dir, rct_bag_of_words):
    """Every replayed correction is trained on, with data-loader workers too (the 7B recipe sets 4)."""
    (cfg,) = load_run_configs(
        None,
        FAST
        + [
            f"--data.dir={synth_dir}",
            f"--model.path={tiny_student_dir}",
            "--train.max_steps=20",
            "--train.save_steps=100",
            "--train.dataloader_num_workers=2",
            "--train.dataloader_prefetch_factor=1",
            "--train.learning_rate=1e-6",
            "--rct.enabled=true",
            "--rct.rounds=1",
            "--rct.sample_size=4",
            "--rct.num_candidates=2",
            "--rct.max_new_tokens=6",
            "--rct.replay=2",
            f"--train.output_dir={tmp_path / 'sft'}",
        ],
    )
    out = run_sft(cfg)
    (entry,) = [json.loads(x) for x in (out / "rct" / "log.jsonl").read_text().splitlines()]
    assert entry["found"] == 4 and entry["replayed"] == 8
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    seen = sum(h.get("seen_correction", 0) for h in history)
    assert seen == entry["replayed"]
    assert sum(h.get("seen_gt", 0) for h in history) == 20 * 2 - seen


def test_whole_pipeline_recipe_through_the_cli(tmp_path, synth_dir, rct_bag_of_words):
    """configs/tiny-clinkd.yaml end to end at a few steps a stage: teacher -> distill -> student + RCT."""
    from pathlib import Path

    from clinkd.cli.main import main

    recipe = Path(__file__).parents[2] / "configs" / "tiny-clinkd.yaml"
    out = tmp_path / "clinkd"
    args = [
        "train",
        str(recipe),
        f"--data.dir={synth_dir}",
        f"--train.output_dir={out}",
        *FAST,
        "--teacher.train.max_steps=2",
        "--distill.train.max_steps=2",
        "--student.train.max_steps=3",
        "--distill.distill.max_new_tokens=8",
        "--student.rct.rounds=1",
        "--student.rct.sample_size=2",
        "--student.rct.num_candidates=2",
        "--student.rct.max_new_tokens=8",
    ]
    assert main(args) == 0
    for stage in ("teacher", "distill", "student"):
        assert (out / stage / "model.safetensors").is_file(), stage
    assert (out / "distill" / "distill_stats.json").is_file()
    assert (out / "student" / "rct" / "log.jsonl").is_file()
    # the student started from the distilled model and shares the teacher's tokenizer
    t_vocab = load(out / "teacher")[1].tokenizer.get_vocab()
    assert load(out / "student")[1].tokenizer.get_vocab() == t_vocab
    # --resume skips finished stages
    mtime = (out / "student" / "model.safetensors").stat().st_mtime
    assert main(args + ["--resume"]) == 0
    assert (out / "student" / "model.safetensors").stat().st_mtime == mtime


def test_lora_option_saves_a_merged_model(tmp_path, synth_dir, tiny_student_dir):
    (cfg,) = load_run_configs(
        None,
        FAST
        + [
            f"--data.dir={synth_dir}",
            f"--model.path={tiny_student_dir}",
            "--train.max_steps=2",
            "--model.lora_r=4",
            "--model.lora_target_modules=[q_proj, v_proj]",
            f"--train.output_dir={tmp_path / 'lora'}",
        ],
    )
    out = run_sft(cfg)
    w0, w1 = _weights(tiny_student_dir), _weights(out)
    assert w0.keys() == w1.keys()  # merged back: no adapter weights left
    changed = [k for k in w0 if not torch.equal(w0[k], w1[k])]
    assert changed and all("q_proj" in k or "v_proj" in k for k in changed)


def test_epochs_become_steps_in_a_new_config(tmp_path, synth_dir, tiny_student_dir):
    """``train.num_train_epochs`` (with ``max_steps`` -1) is turned into steps for the run and its saved
    config, in a new config: the caller's is a value, unchanged by the run (issue 15)."""
    import yaml

    (cfg,) = load_run_configs(
        None,
        FAST
        + [
            f"--data.dir={synth_dir}",
            f"--model.path={tiny_student_dir}",
            "--train.max_steps=-1",
            "--train.num_train_epochs=1",
            "--data.max_train_samples=4",
            f"--train.output_dir={tmp_path / 'epochs'}",
        ],
    )
    resolved = run_mod.with_max_steps(cfg, n_items=4)
    assert resolved.train.max_steps == 2 and cfg.train.max_steps == -1  # 4 items a epoch, global batch 2
    assert run_mod.with_max_steps(resolved, n_items=4) is resolved
    out = run_sft(cfg)
    assert cfg.train.max_steps == -1
    assert yaml.safe_load((out / "clinkd_run.yaml").read_text())["train"]["max_steps"] == 2
    assert json.loads((out / "trainer_state.json").read_text())["global_step"] == 2
