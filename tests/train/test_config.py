"""``clinkd train``'s configuration (the config engine itself: tests/test_config.py)."""

import dataclasses

import pytest
import yaml

from clinkd.cli.main import main
from clinkd.config import ConfigError, to_dict
from clinkd.train.config import RunConfig, load_run_configs, with_train


def test_defaults_and_overrides():
    (cfg,) = load_run_configs(
        None, ["--train.max_steps=7", "--data.dir=d", "--model.rope=stock", "--train.seed", "5"]
    )
    assert (
        cfg.train.max_steps == 7 and cfg.data.dir == "d" and cfg.model.rope == "stock" and cfg.train.seed == 5
    )
    assert cfg.train.remove_unused_columns is False and cfg.train.report_to in ([], ["none"], "none")


@pytest.mark.parametrize(
    "override,message",
    [
        ("--train.max_stepz=3", "train.max_stepz: unknown key; did you mean max_steps"),
        ("--modle.rope=mcg", "modle: unknown key; did you mean model"),
        ("--train.max_steps=ten", "train.max_steps: expected an integer, got 'ten'"),
        ("--distill.alpha=-1", "distill.alpha: must be >= 0"),
        ("--model.rope=xpos", "model.rope: expected one of ['mcg', 'stock']"),
        ("--train.learning_rate=0", "train.learning_rate: must be > 0"),
        ("--rct.enabled=maybe", "rct.enabled: expected true or false"),
        ("--stage=distill", "distill.teacher: stage distill needs a teacher"),
    ],
)
def test_bad_config_names_the_key(override, message):
    with pytest.raises(ConfigError) as err:
        load_run_configs(None, [override])
    assert message in str(err.value)


def test_pipeline_refs_and_per_stage_overrides(tmp_path):
    recipe = {
        "data": {"dir": "dd"},
        "train": {"output_dir": str(tmp_path / "out"), "max_steps": 10},
        "stages": {
            "teacher": {"model": {"init": "tiny-teacher"}},
            "kd": {"stage": "distill", "distill": {"teacher": "@teacher"}},
            "student": {"model": {"path": "@kd"}, "rct": {"enabled": True}},
        },
    }
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    teacher, kd, student = load_run_configs(path, ["--kd.train.max_steps=3", "--train.seed=9"])
    assert kd.distill.teacher == str(tmp_path / "out" / "teacher")
    assert student.model.path == str(tmp_path / "out" / "kd")
    assert [c.train.max_steps for c in (teacher, kd, student)] == [10, 3, 10]
    assert {c.train.seed for c in (teacher, kd, student)} == {9}
    recipe["stages"]["kd"]["distill"]["teacher"] = "@student"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    with pytest.raises(ConfigError, match="does not name an earlier stage"):
        load_run_configs(path)


@pytest.mark.parametrize(
    "recipe", ["tiny-sft.yaml", "tiny-distill.yaml", "tiny-clinkd.yaml", "qwen2vl-7b-medgrit.yaml"]
)
def test_shipped_recipes_validate(recipe):
    from pathlib import Path

    # the real-scale recipe asks for bf16 and DeepSpeed, which TrainingArguments refuses on a CPU machine
    gpu_only = ["--train.bf16=false", "--train.deepspeed=null"] if recipe.startswith("qwen") else []
    configs = load_run_configs(Path(__file__).parents[2] / "configs" / recipe, gpu_only)
    assert configs and all(c.train.output_dir for c in configs)
    if recipe == "tiny-clinkd.yaml":
        assert [c.stage for c in configs] == ["sft", "distill", "sft"] and configs[2].rct.enabled


def test_cli_rejects_bad_key_before_work(tmp_path, capsys):
    assert main(["train", "--train.output_dir", str(tmp_path / "o"), "--train.max_stepz=1"]) == 2
    assert "train.max_stepz: unknown key" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    assert main(["train", "--print-config", "--train.max_steps=3"]) == 0
    assert "max_steps: 3" in capsys.readouterr().out


# -- configs are values (issue 15) ---------------------------------------------------------------------------
def test_configs_are_frozen_and_references_resolved_at_build(tmp_path):
    recipe = {
        "train": {"output_dir": str(tmp_path / "out")},
        "stages": {
            "teacher": {"model": {"init": "tiny-teacher"}},
            "kd": {"stage": "distill", "distill": {"teacher": "@teacher"}, "model": {"path": "@teacher"}},
        },
    }
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    _, kd = load_run_configs(path)
    assert kd.model.path == kd.distill.teacher == str(tmp_path / "out" / "teacher")
    for obj, key in (
        (kd, "stage"),
        (kd.model, "path"),
        (kd.distill, "teacher"),
        (kd.data, "dir"),
        (kd.rct, "enabled"),
    ):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(obj, key, None)


def test_use_cpu_under_a_cpu_launcher_is_decided_before_validation(monkeypatch):
    import clinkd.train.config as config_mod

    monkeypatch.setattr(config_mod, "_has_accelerator", lambda any_kind=False: False)
    monkeypatch.setenv("WORLD_SIZE", "2")
    for given in ({}, {"use_cpu": False}, {"use_cpu": "off"}, {"use_cpu": True}):
        assert config_mod.environment_settings(given)["use_cpu"] is True, given
    assert config_mod.environment_settings({"use_cpu": "maybe"}) == {
        "use_cpu": "maybe"
    }  # validation names it
    monkeypatch.setattr(config_mod, "_has_accelerator", lambda any_kind=False: True)
    assert config_mod.environment_settings({}) == {}
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setattr(config_mod, "_has_accelerator", lambda any_kind=False: False)
    assert config_mod.environment_settings({"seed": 1}) == {"seed": 1}
    # the loader applies it to every stage's train section before validation (a launcher's whole environment
    # would start torch.distributed here, so the function is stood in for)
    monkeypatch.setattr(config_mod, "environment_settings", lambda train: {**train, "seed": 77})
    (cfg,) = load_run_configs(None)
    assert cfg.train.seed == 77


def test_with_train_gives_a_changed_copy():
    (cfg,) = load_run_configs(None, ["--train.max_steps=-1", "--train.num_train_epochs=2"])
    before = to_dict(cfg)
    _ = cfg.train.device  # the device set-up cached on the arguments travels with the copy
    new = with_train(cfg, max_steps=12)
    assert new.train.max_steps == 12 and new.train is not cfg.train and isinstance(new, RunConfig)
    assert to_dict(cfg) == before and cfg.train.max_steps == -1
    assert "_setup_devices" in new.train.__dict__
    assert {k: v for k, v in to_dict(new).items() if k != "train"} == {
        k: v for k, v in before.items() if k != "train"
    }
    with pytest.raises(ConfigError, match="train.max_stepz: unknown key"):
        with_train(cfg, max_stepz=1)


# -- clinkd train --help-config --------------------------------------------------------------------------------
def test_help_config_lists_every_key_with_its_default(capsys):
    from transformers import TrainingArguments

    from clinkd.train.config import DataConfig, DistillConfig, ModelConfig, RCTConfig, field_docs

    assert main(["train", "--help-config"]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines() if line and not line.startswith("#")}
    rows = {key: (default, doc) for key, default, doc in field_docs()}
    assert list(lines) == list(rows) and "train.*" not in rows
    for key, (default, _) in rows.items():  # one line a key: key, default, help
        assert f" {default}  " in lines[key]
    for f in dataclasses.fields(TrainingArguments):  # every TrainingArguments option
        assert f"train.{f.name}" in rows, f.name
    (defaults,) = load_run_configs(None)
    for section, cls in (
        ("data", DataConfig),
        ("model", ModelConfig),
        ("distill", DistillConfig),
        ("rct", RCTConfig),
    ):
        for f in dataclasses.fields(cls):
            assert rows[f"{section}.{f.name}"][0] == repr(
                to_dict(getattr(getattr(defaults, section), f.name))
            )
    # clinkd's own defaults where it changes transformers', transformers' elsewhere
    assert rows["train.learning_rate"] == ("0.001", "peak learning rate (transformers: 5e-05)")
    assert rows["train.max_steps"][0] == "200" and rows["train.per_device_train_batch_size"][0] == "8"
    assert rows["train.adam_beta1"][0] == "0.9" and rows["train.num_train_epochs"][0] == "3.0"
    assert "[clinkd: true by itself under a multi-process launcher" in lines["train.use_cpu"]
    # grouped: clinkd's sections, then TrainingArguments, clinkd's defaults first
    keys = list(rows)
    first = keys.index("train.output_dir")
    assert not any(k.startswith("train.") for k in keys[:first]) and all(
        k.startswith("train.") for k in keys[first:]
    )
    assert keys.index("train.seed") < keys.index("train.adam_beta1")
    # transformers' help cut to its first sentence, at most 80 characters (+ a clinkd note)
    upstream = out[out.index("# train: the other TrainingArguments") :].splitlines()[1:]
    assert len(upstream) > 90
    for line in upstream:
        doc = line.split("  ")[-1].split(" [clinkd: ")[0]
        assert len(doc) <= 80, line
