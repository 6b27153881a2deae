import pytest
import yaml

from clinkd.cli.main import main
from clinkd.config import ConfigError, parse_overrides
from clinkd.train.config import load_run_configs


def test_defaults_and_overrides():
    (cfg,) = load_run_configs(None, ["--train.max_steps=7", "--data.dir=d", "--model.rope=stock", "--train.seed", "5"])
    assert cfg.train.max_steps == 7 and cfg.data.dir == "d" and cfg.model.rope == "stock" and cfg.train.seed == 5
    assert cfg.train.remove_unused_columns is False and cfg.train.report_to in ([], ["none"], "none")


@pytest.mark.parametrize("override,message", [
    ("--train.max_stepz=3", "train.max_stepz: unknown key; did you mean max_steps"),
    ("--modle.rope=mcg", "modle: unknown key; did you mean model"),
    ("--train.max_steps=ten", "train.max_steps: expected an integer, got 'ten'"),
    ("--distill.alpha=-1", "distill.alpha: must be >= 0"),
    ("--model.rope=xpos", "model.rope: expected one of ['mcg', 'stock']"),
    ("--train.learning_rate=0", "train.learning_rate: must be > 0"),
    ("--rct.enabled=maybe", "rct.enabled: expected true or false"),
    ("--stage=distill", "distill.teacher: stage distill needs a teacher"),
])
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


def test_parse_overrides_types():
    assert parse_overrides(["--a.b=1", "--a.c=true", "--d=null", "--e=[x, y]", "--f=1e-4"]) == {
        "a": {"b": 1, "c": True}, "d": None, "e": ["x", "y"], "f": 1e-4}
    with pytest.raises(ConfigError):
        parse_overrides(["oops"])


@pytest.mark.parametrize("recipe", ["tiny-sft.yaml", "tiny-distill.yaml", "tiny-clinkd.yaml", "qwen2vl-7b-medgrit.yaml"])
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
