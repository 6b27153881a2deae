"""clinkd.pipelines.stages: typed stage configs (equal to the override path's), reuse by key, slugs."""

import json

import pytest

from clinkd.config import ConfigError
from clinkd.pipelines.demo import SIZES, demo_stages
from clinkd.pipelines.stages import fresh_stage, slug, stage_config, train_stage
from clinkd.train.config import DataConfig, DistillConfig, ModelConfig, RCTConfig, load_run_configs


def _same(a, b) -> bool:
    """Equal as a stage key sees them: the JSON of ``to_dict`` (so ``10`` and ``10.0`` differ)."""
    return json.dumps(a.to_dict(), sort_keys=True) == json.dumps(b.to_dict(), sort_keys=True)


def test_a_stage_config_equals_the_one_built_from_override_strings(tmp_path):
    cfg = stage_config(
        "kd",
        tmp_path / "kd",
        stage="distill",
        data=DataConfig(dir=str(tmp_path / "data"), synth_if_missing=False),
        model=ModelConfig(path=str(tmp_path / "student"), rope="stock"),
        distill=DistillConfig(teacher=str(tmp_path / "teacher"), subset=0.25),
        rct=RCTConfig(enabled=True, rounds=3),
        train={
            "max_steps": 7,
            "learning_rate": 2e-3,
            "save_steps": 1,
            "logging_steps": 10,
            "warmup_steps": 0,
        },
    )
    (ref,) = load_run_configs(
        None,
        [
            "--stage=distill",
            "--name=kd",
            f"--data.dir={tmp_path / 'data'}",
            "--data.synth_if_missing=false",
            f"--model.path={tmp_path / 'student'}",
            "--model.rope=stock",
            f"--distill.teacher={tmp_path / 'teacher'}",
            "--distill.subset=0.25",
            "--rct.enabled=true",
            "--rct.rounds=3",
            f"--train.output_dir={tmp_path / 'kd'}",
            "--train.max_steps=7",
            "--train.learning_rate=0.002",
            "--train.save_steps=1",
            "--train.logging_steps=10",
            "--train.warmup_steps=0",
        ],
    )
    assert _same(cfg, ref)
    assert cfg.train.save_steps == 1.0 and isinstance(cfg.train.warmup_steps, float)  # read as the recipe's


def test_the_demo_builds_the_configs_its_override_strings_built(tmp_path):
    """The demo's stages as they were written before issue 15 (``--key=value`` strings): the same configs,
    so the stage keys of a demo folder made then still match (its finished stages are reused)."""
    out, data, student, teacher = (
        tmp_path / "demo",
        tmp_path / "demo" / "data",
        tmp_path / "s",
        tmp_path / "t",
    )
    for size, spec in SIZES.items():
        seed = 3
        common = [
            f"--data.dir={data}",
            f"--train.per_device_train_batch_size={spec.batch}",
            f"--train.learning_rate={spec.learning_rate}",
            f"--train.seed={seed}",
            "--train.save_steps=100000",
            "--train.logging_steps=10",
        ]
        budget = spec.distill_steps + spec.sft_steps
        distilled = out / "models" / "distill"
        before = {
            "baseline": (
                "baseline",
                [f"--model.path={student}", "--model.rope=stock", f"--train.max_steps={budget}"],
            ),
            "+ MCG-RoPE": (
                "mcg",
                [f"--model.path={student}", "--model.rope=mcg", f"--train.max_steps={budget}"],
            ),
            "distill": (
                "distill",
                [
                    "--stage=distill",
                    f"--model.path={student}",
                    "--model.rope=mcg",
                    f"--distill.teacher={teacher}",
                    f"--distill.subset={spec.distill_subset}",
                    f"--distill.max_new_tokens={spec.pseudo_max_new_tokens}",
                    f"--train.max_steps={spec.distill_steps}",
                ],
            ),
            "+ pseudo-KD": (
                "kd-sft",
                [f"--model.path={distilled}", "--model.rope=mcg", f"--train.max_steps={spec.sft_steps}"],
            ),
            "+ RCT": (
                "kd-sft-rct",
                [
                    f"--model.path={distilled}",
                    "--model.rope=mcg",
                    f"--train.max_steps={spec.sft_steps}",
                    "--rct.enabled=true",
                    f"--rct.rounds={spec.rct_rounds}",
                    f"--rct.sample_size={spec.rct_sample}",
                    f"--rct.num_candidates={spec.rct_candidates}",
                    f"--rct.max_new_tokens={spec.pseudo_max_new_tokens}",
                ],
            ),
        }
        stages = demo_stages(out, data, spec, seed, student=student, teacher=teacher)
        assert list(stages) == list(before)
        for key, (name, overrides) in before.items():
            target = out / "models" / name
            (ref,) = load_run_configs(
                None, common + overrides + [f"--train.output_dir={target}", f"--name={name}"]
            )
            assert _same(stages[key], ref), (size, key)


def test_a_stage_config_names_an_unknown_train_key_and_takes_the_environments_settings(tmp_path, monkeypatch):
    sections = {"data": DataConfig(dir=str(tmp_path)), "model": ModelConfig()}
    with pytest.raises(ConfigError, match=r"train\.max_stepz: unknown key; did you mean max_steps"):
        stage_config("s", tmp_path / "s", train={"max_stepz": 3}, **sections)
    import clinkd.train.config as config_mod

    # completed as load_run_configs completes a recipe's train section (train.use_cpu under a CPU launcher)
    monkeypatch.setattr(config_mod, "environment_settings", lambda train: {**train, "seed": 77})
    assert stage_config("s", tmp_path / "s", train={}, **sections).train.seed == 77


def test_slug_names_a_folder():
    assert slug("+ MCG-RoPE") == "mcg-rope" and slug("teacher (reference)") == "teacher-reference"


def test_a_folder_made_with_another_key_is_made_again(tmp_path, capsys):
    from rich.console import Console

    console, folder, key_file = Console(width=200), tmp_path / "preds", tmp_path / "keys" / "preds.json"
    folder.mkdir()
    (folder / "a.jsonl").write_text("{}")
    fresh_stage(console, folder, key_file, {"model": "x"})  # no key yet: made again
    assert not folder.exists() and json.loads(key_file.read_text()) == {"model": "x"}
    folder.mkdir()
    (folder / "a.jsonl").write_text("{}")
    fresh_stage(console, folder, key_file, {"model": "x"})
    assert (folder / "a.jsonl").is_file()
    capsys.readouterr()
    fresh_stage(console, folder, key_file, {"model": "y"})
    assert not folder.exists() and "(its model differs)" in capsys.readouterr().out


def test_stages_are_reused_only_with_the_same_key(tmp_path, capsys):
    """A finished stage is reused when config, starting weights and data are the same; otherwise trained again."""
    from rich.console import Console

    from clinkd.data import synth
    from clinkd.model import build_tiny_processor, init_model_dir

    synth_dir = tmp_path / "data"
    synth.generate(synth_dir, seed=0, n_images=16)
    processor = build_tiny_processor(
        synth.text_corpus(seed=0, n_images=16), vocab_size=512, max_pixels=112 * 112
    )
    student_dir = init_model_dir(tmp_path / "student", "tiny-student", processor=processor)

    def config(steps: int):
        return stage_config(
            "s",
            tmp_path / "models" / "s",
            data=DataConfig(dir=str(synth_dir), max_train_samples=4),
            model=ModelConfig(path=str(student_dir)),
            train={
                "per_device_train_batch_size": 2,
                "save_steps": 100,
                "disable_tqdm": True,
                "max_steps": steps,
            },
        )

    console = Console(width=200)
    target = train_stage(console, config(1))
    assert target == tmp_path / "models" / "s"
    mtime = (target / "model.safetensors").stat().st_mtime_ns
    capsys.readouterr()
    train_stage(console, config(1))
    assert "already trained with these settings" in capsys.readouterr().out
    assert (target / "model.safetensors").stat().st_mtime_ns == mtime
    # another config: trained again, saying why
    train_stage(console, config(2))
    out = capsys.readouterr().out
    assert "was made otherwise (its config differs)" in out
    state = json.loads((target / "trainer_state.json").read_text())
    assert state["global_step"] == 2
