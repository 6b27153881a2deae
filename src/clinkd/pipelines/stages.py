"""Training stages a pipeline reuses: trained once, trained again only when what they depend on changes.

A stage is a :class:`~clinkd.train.config.RunConfig` built in code from typed sections
(:func:`stage_config`; no ``--key=value`` strings) and run by :func:`train_stage` into its
``train.output_dir``. Beside the model, ``clinkd_stage_key.json`` records the stage's key
(:func:`stage_key`): its whole config, the digests of the weights it starts from (and distils from) and of
its training data. Run again with the same key, a finished stage is reused; with another key it is
trained again, with a line saying what changed; an interrupted stage with the same key resumes from its
last complete checkpoint. :func:`fresh_stage` keeps the same rule for a folder other code makes (a
dataset, a model's predictions).

Example (what ``clinkd demo`` does for its baseline row)::

    from rich.console import Console
    from clinkd.train.config import DataConfig, ModelConfig

    cfg = stage_config(
        "baseline",
        Path("runs/demo/models/baseline"),
        data=DataConfig(dir="runs/demo/data"),
        model=ModelConfig(path=str(student_base), rope="stock"),
        train={"max_steps": 240, "per_device_train_batch_size": 8, "learning_rate": 2e-3},
    )
    folder = train_stage(Console(), cfg)  # trains, or says the finished stage is reused

Used by :mod:`clinkd.pipelines.demo`, ``scripts/diagnose_demo.py`` and ``scripts/pretrain_tiny.py``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where used: transformers is slow to import (``clinkd --help``, the scripts)
    from clinkd.train.config import DataConfig, DistillConfig, ModelConfig, RCTConfig, RunConfig, Stage

__all__ = ["KEY_FILE", "fresh_stage", "slug", "stage_config", "stage_key", "train_stage"]

#: the file beside a stage's model that records the key it was trained with
KEY_FILE = "clinkd_stage_key.json"


def slug(name: str) -> str:
    """A row or stage name as a folder name: ``"+ MCG-RoPE"`` → ``mcg-rope``."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def stage_config(
    name: str,
    folder: str | os.PathLike,
    *,
    data: DataConfig,
    model: ModelConfig,
    train: Mapping[str, Any],
    stage: Stage = "sft",
    distill: DistillConfig | None = None,
    rct: RCTConfig | None = None,
) -> RunConfig:
    """The run config of stage ``name``, written to ``folder``, built from typed sections and validated once.

    Args:
        name: the stage's name (``RunConfig.name``).
        folder: its output folder (``train.output_dir``).
        data, model: the :class:`~clinkd.train.config.DataConfig` and
            :class:`~clinkd.train.config.ModelConfig` sections (each checked when built).
        train: ``train`` keys (:class:`~clinkd.train.config.ClinkdTrainingArguments`), e.g.
            ``{"max_steps": 240, "learning_rate": 2e-3}``; unset ones keep clinkd's defaults. They are
            checked as a recipe's ``train`` section is (:func:`clinkd.config.from_dict`: unknown keys named,
            ``10`` read as ``10.0`` for a float key) and completed by the environment as
            :func:`~clinkd.train.config.load_run_configs` completes them
            (:func:`~clinkd.train.config.environment_settings`).
        stage: ``"sft"`` or ``"distill"``.
        distill, rct: those sections (None: their defaults).

    The result equals what :func:`~clinkd.train.config.load_run_configs` builds from the same settings given
    as ``--section.key=value`` overrides (``tests/pipelines/test_stages.py``), so a stage's key does not
    depend on which way its config was written.
    """
    from clinkd.config import from_dict
    from clinkd.train.config import (
        ClinkdTrainingArguments,
        DistillConfig,
        RCTConfig,
        RunConfig,
        environment_settings,
    )

    args = environment_settings({**train, "output_dir": str(folder)})
    return RunConfig(
        stage=stage,
        name=name,
        data=data,
        model=model,
        distill=distill if distill is not None else DistillConfig(),
        rct=rct if rct is not None else RCTConfig(),
        train=from_dict(ClinkdTrainingArguments, args, "train"),
    )


def stage_key(cfg: RunConfig) -> dict:
    """What a training stage depends on: its whole run config (output folder aside), the weights of the
    models it starts from or distils from, and its training data (``data.dir/train.json``)."""
    from clinkd.train.keys import digest, weights_digest

    config = cfg.to_dict()
    config["train"].pop("output_dir", None)
    inputs = {"model": weights_digest(cfg.model.path) if cfg.model.path else None}
    if cfg.stage == "distill" and cfg.distill.teacher:  # RunConfig refuses a distill stage without one
        inputs["teacher"] = weights_digest(cfg.distill.teacher)
    train = Path(cfg.data.dir) / "train.json"
    return {
        "config": digest(config),
        "inputs": inputs,
        "data": digest(train.read_text(encoding="utf-8")) if train.is_file() else None,
    }


def train_stage(console, cfg: RunConfig) -> Path:
    """Train ``cfg`` into its ``train.output_dir`` and return that folder, or reuse it.

    A folder holding a finished stage (``clinkd_run.yaml``) with the same :func:`stage_key` is reused;
    one made with another key is deleted and trained again, with a line on ``console`` (a
    :class:`rich.console.Console`) saying what changed. The key is written before training, so an
    interrupted stage with the same key resumes from its last complete checkpoint.
    """
    from clinkd.config import ConfigError
    from clinkd.train.run import run_stage

    if cfg.train.output_dir is None:  # the folder is deleted when its key changes: never guess one
        raise ConfigError(f"{cfg.name}: train.output_dir is not set")
    name, target = cfg.name, Path(cfg.train.output_dir)
    key = stage_key(cfg)
    key_file = target / KEY_FILE
    change = _remove_if_changed(target, key_file, key)
    if change is not None:
        console.print(f"[yellow]{name}: {target} was made otherwise ({change}): training again[/yellow]")
    elif (target / "clinkd_run.yaml").is_file():
        console.print(f"[dim]{name}: already trained with these settings ({target})[/dim]")
        return target
    target.mkdir(parents=True, exist_ok=True)
    key_file.write_text(
        json.dumps(key, indent=1) + "\n", encoding="utf-8"
    )  # before training: a resume checks it
    console.print(
        f"[b]{name}[/b]: {cfg.stage}, {cfg.train.max_steps} steps, rope {cfg.model.rope}"
        + (", reflective correction" if cfg.rct.enabled else "")
    )
    run_stage(cfg, resume=True)
    return target


def fresh_stage(console, folder: Path, key_file: Path, key: dict) -> None:
    """Remove ``folder`` (what a pipeline made: data, predictions) when it was made with another ``key``,
    saying so on ``console``, and record in ``key_file`` the key it is (re)made with."""
    change = _remove_if_changed(folder, key_file, key)
    if change is not None:
        console.print(f"[yellow]{folder} was made otherwise ({change}): making it again[/yellow]")
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key_file.write_text(json.dumps(key) + "\n", encoding="utf-8")


def _remove_if_changed(folder: Path, key_file: Path, key: dict) -> str | None:
    """Delete ``folder`` when it exists and ``key_file`` does not hold ``key``; returns what changed
    (:func:`~clinkd.train.keys.describe_change`), None when nothing was deleted."""
    from clinkd.train.keys import describe_change

    old = json.loads(key_file.read_text(encoding="utf-8")) if key_file.is_file() else None
    if not folder.exists() or old == key:
        return None
    change = describe_change(old, key)
    shutil.rmtree(folder)
    return change
