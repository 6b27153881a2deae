"""Typed configuration of a training run: ``clinkd train CONFIG.yaml [--section.key=value ...]``.

A run is one stage (``sft`` or ``distill``) or a ``pipeline`` of stages (the ClinKD recipe: teacher SFT →
pseudo-label distillation of the student → student SFT with reflective correction). Sections:

- ``data``   — :class:`DataConfig`, the dataset folder;
- ``model``  — :class:`ModelConfig`, the model trained (a checkpoint or a tiny model built here);
- ``distill``— :class:`DistillConfig`, the teacher and the pseudo-label curriculum (stage ``distill``);
- ``rct``    — :class:`RCTConfig`, reflective correction (an option of stage ``sft``);
- ``train``  — :class:`ClinkdTrainingArguments`, transformers' ``TrainingArguments`` (accelerate,
  DeepSpeed and FSDP come with it) plus nothing else.

In a pipeline, ``stages`` lists named stages, each a mapping of the same sections that override the
top-level ones; ``@name`` in ``model.path`` or ``distill.teacher`` refers to the model written by an
earlier stage (its output folder ``train.output_dir/<name>``).

A loaded configuration is a value (issue 15): :func:`load_run_configs` resolves everything at build time
— ``@stage`` references, the settings the process's environment decides (``train.use_cpu`` under a CPU
launcher) — and validates once; nothing changes a config afterwards. The clinkd sections and
:class:`RunConfig` are frozen dataclasses; ``train`` is transformers' ``TrainingArguments``, which cannot
be frozen (the Trainer writes to it), so clinkd never assigns to it: :func:`with_train` gives a changed
copy (how a stage sets the step count it computed from the data).
"""

from __future__ import annotations

import copy
import dataclasses
import importlib.util
import os
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from transformers import TrainingArguments

from clinkd.config import (
    ConfigError,
    coerce,
    deep_merge,
    from_dict,
    help_field,
    parse_overrides,
    read_yaml,
    to_dict,
)

Stage = Literal["sft", "distill"]


@dataclass(frozen=True)
class DataConfig:
    dir: str = help_field(
        "runs/data", "dataset folder as `clinkd data synth` writes it, or real Med-GRIT files"
    )
    synth_if_missing: bool = help_field(
        True, "generate the synthetic benchmark into `dir` when it does not exist"
    )
    synth_images: int = help_field(480, "images of the synthetic benchmark generated when missing")
    synth_seed: int = help_field(0, "seed of the synthetic benchmark generated when missing")
    max_train_samples: int | None = help_field(None, "use at most this many training records (None: all)")
    box_convention: Literal["auto", "native", "medgrit"] = help_field(
        "auto",
        "coordinates and answer form of boxes in training text: native = the model family's own "
        "(Qwen2-VL 0-1000 <|box_start|> markup, Qwen2.5-VL absolute pixels of the resized image in JSON "
        "bbox_2d, Qwen3-VL 0-1000 JSON), medgrit = the files' own text; auto = what the starting model "
        "answers in (native for a hub checkpoint, medgrit for a tiny model, its own for a clinkd fine-tune)",
    )
    box_style: Literal["qwen", "qwen2", "clinkd"] = help_field(
        "qwen",
        "box/ref markup of the training text with box_convention medgrit (qwen: <box>..</box>, as "
        "Med-GRIT writes it)",
    )

    def __post_init__(self):
        if self.box_convention == "native" and self.box_style != "qwen":
            raise ConfigError(
                "data.box_style: applies to data.box_convention medgrit; native writes each "
                "family's own form (leave box_style at qwen)"
            )
        if self.synth_images < 16:
            raise ConfigError("data.synth_images: must be at least 16 (two images per modality)")
        if self.max_train_samples is not None and self.max_train_samples <= 0:
            raise ConfigError("data.max_train_samples: must be positive or null")


@dataclass(frozen=True)
class ModelConfig:
    path: str | None = help_field(
        None, "checkpoint folder to fine-tune (a real Qwen2-VL, a clinkd model, or @stage)"
    )
    init: Literal["tiny-student", "tiny-teacher"] | None = help_field(
        "tiny-student", "when `path` is null: build this tiny model from its config (offline)"
    )
    rope: Literal["mcg", "stock"] = help_field("mcg", "position ids: MCG-RoPE (ClinKD) or stock M-RoPE")
    text_to_image_gap: int = help_field(2, "MCG-RoPE: first visual position minus last text position")
    image_to_text_gap: int = help_field(
        2, "MCG-RoPE: first text position after an image minus max visual position"
    )
    stride_h: int = help_field(1, "MCG-RoPE: step between neighbouring visual rows")
    stride_w: int = help_field(1, "MCG-RoPE: step between neighbouring visual columns")
    dtype: Literal["float32", "bfloat16", "float16"] = help_field("float32", "weights' dtype when loading")
    min_pixels: int | None = help_field(
        None,
        "smallest resized image area in pixels (null: 512*512 for a real checkpoint, whose saved max_pixels "
        "is above 1024*1024 like the hub's 12.8 MP; a tiny or clinkd-saved model keeps its own)",
    )
    max_pixels: int | None = help_field(
        None,
        "largest resized image area in pixels, at most max_pixels/784 visual tokens an image (null: "
        "1024*1024, the ClinKD release, for a real checkpoint; a tiny or clinkd-saved model keeps its own)",
    )
    freeze_vision: bool = help_field(False, "keep the vision tower frozen")
    lora_r: int = help_field(0, "LoRA rank; 0 trains all weights (full fine-tuning)")
    lora_alpha: int = help_field(16, "LoRA scaling")
    lora_dropout: float = help_field(0.05, "LoRA dropout")
    lora_target_modules: list[str] = help_field(
        ["q_proj", "k_proj", "v_proj", "o_proj"], "language-model modules LoRA adapts"
    )

    def __post_init__(self):
        if self.path is None and self.init is None:
            raise ConfigError("model: give model.path (a checkpoint folder) or model.init (a tiny size)")
        for k in ("text_to_image_gap", "image_to_text_gap", "stride_h", "stride_w"):
            if getattr(self, k) < 1:
                raise ConfigError(f"model.{k}: must be >= 1")
        if self.lora_r < 0:
            raise ConfigError("model.lora_r: must be >= 0")
        if not 0 <= self.lora_dropout < 1:
            raise ConfigError(f"model.lora_dropout: must be in [0, 1), got {self.lora_dropout}")
        if self.lora_r > 0 and not self.lora_target_modules:
            raise ConfigError(
                "model.lora_target_modules: LoRA (model.lora_r > 0) needs at least one module name"
            )
        from clinkd.model.processor import check_pixel_budget

        check_pixel_budget(
            self.min_pixels,
            self.max_pixels,
            names=("model.min_pixels", "model.max_pixels"),
            error=ConfigError,
        )


@dataclass(frozen=True)
class DistillConfig:
    teacher: str | None = help_field(
        None, "teacher checkpoint folder (or @stage); shares the student's tokenizer"
    )
    alpha: float = help_field(0.5, "weight of the KL term: loss = (alpha*KL + CE) / (1 + alpha)")
    temperature: float = help_field(0.5, "softmax temperature of the KL term")
    subset: float = help_field(1.0, "fraction of training records pseudo-labelled and distilled")
    curriculum_phases: int = help_field(
        4, "the curriculum admits samples in this many phases, most confident first"
    )
    margin_floor: float = help_field(
        0.3, "a pseudo-label whose confidence margin is below this is replaced by the ground truth"
    )
    replace_contradicting: bool = help_field(
        True, "replace pseudo-labels that contradict the ground truth (box IoU < 0.5 or another object name)"
    )
    max_new_tokens: int = help_field(128, "longest pseudo-label generated")
    generation_batch_size: int = help_field(16, "batch size of pseudo-label generation")
    teacher_logits: Literal["cached", "online"] = help_field(
        "cached",
        "cached: the teacher's top-k logits are computed once, with the pseudo-labels, and the teacher "
        "leaves memory; online: the teacher runs on every training batch",
    )
    top_k: int = help_field(64, "teacher logits kept per answer token when cached (0: the whole vocabulary)")

    def __post_init__(self):
        if self.top_k < 0:
            raise ConfigError("distill.top_k: must be >= 0 (0 keeps the whole vocabulary)")
        if self.alpha < 0:
            raise ConfigError("distill.alpha: must be >= 0")
        if self.temperature <= 0:
            raise ConfigError("distill.temperature: must be > 0")
        if not 0 < self.subset <= 1:
            raise ConfigError("distill.subset: must be in (0, 1]")
        if self.curriculum_phases < 1:
            raise ConfigError("distill.curriculum_phases: must be >= 1")
        if not 0 <= self.margin_floor <= 1:
            raise ConfigError("distill.margin_floor: must be in [0, 1]")


@dataclass(frozen=True)
class RCTConfig:
    enabled: bool = help_field(False, "reflective correction training during SFT")
    rounds: int = help_field(2, "correction rounds, at equally spaced points of training")
    sample_size: int = help_field(64, "training questions the model answers at each round")
    num_candidates: int = help_field(4, "candidates sampled per wrong answer, with the reference as a hint")
    iou_threshold: float = help_field(0.5, "an answer box below this IoU with the reference is wrong")
    similarity_threshold: float = help_field(
        0.75, "an answer less similar than this to the reference is wrong"
    )
    sampling_temperature: float = help_field(0.9, "temperature of candidate sampling")
    replay: int = help_field(2, "times each correction sample is replayed in the rest of training")
    max_new_tokens: int = help_field(128, "longest answer generated")
    generation_batch_size: int = help_field(16, "batch size of generation")

    def __post_init__(self):
        if self.rounds < 1 or self.sample_size < 1 or self.num_candidates < 1 or self.replay < 1:
            raise ConfigError("rct.rounds, rct.sample_size, rct.num_candidates and rct.replay must be >= 1")
        if not 0 <= self.iou_threshold <= 1 or not -1 <= self.similarity_threshold <= 1:
            raise ConfigError("rct.iou_threshold must be in [0, 1] and rct.similarity_threshold in [-1, 1]")


@dataclass
class ClinkdTrainingArguments(TrainingArguments):
    """transformers' ``TrainingArguments`` with defaults that run anywhere (CPU included).

    Every TrainingArguments option is a ``train.`` key (``train.deepspeed``, ``train.bf16``, ...). Not frozen
    (transformers' Trainer writes to its arguments), but clinkd never assigns to one once built: see
    :func:`with_train`. ``train.use_cpu`` is decided from the environment before building
    (:func:`environment_settings`), not here.
    """

    output_dir: str | None = field(
        default="runs/train", metadata={"help": "where checkpoints and the final model go"}
    )
    per_device_train_batch_size: int = field(default=8, metadata={"help": "batch size per device"})
    learning_rate: float = field(default=1e-3, metadata={"help": "peak learning rate"})
    max_steps: int = field(default=200, metadata={"help": "optimizer steps (-1: use num_train_epochs)"})
    lr_scheduler_type: str = field(default="cosine", metadata={"help": "learning-rate schedule"})
    warmup_steps: float = field(
        default=0.05, metadata={"help": "warm-up steps (a float < 1 is a fraction of training)"}
    )
    logging_steps: float = field(default=10, metadata={"help": "log every N steps"})
    save_steps: float = field(default=100, metadata={"help": "checkpoint every N steps"})
    save_total_limit: int | None = field(default=2, metadata={"help": "keep this many checkpoints"})
    report_to: str | list[str] | None = field(
        default="none", metadata={"help": "loggers (none, tensorboard, wandb)"}
    )
    optim: str = field(default="adamw_torch", metadata={"help": "optimizer"})
    remove_unused_columns: bool = field(
        default=False, metadata={"help": "must stay false: batches carry images"}
    )
    dataloader_num_workers: int = field(default=0, metadata={"help": "data loader workers"})
    seed: int = field(default=0, metadata={"help": "random seed"})

    def __post_init__(self):
        if self.learning_rate <= 0:
            raise ConfigError(f"train.learning_rate: must be > 0, got {self.learning_rate}")
        if self.per_device_train_batch_size < 1:
            raise ConfigError("train.per_device_train_batch_size: must be >= 1")
        if self.max_steps == 0 or (self.max_steps < 0 and self.num_train_epochs <= 0):
            raise ConfigError("train.max_steps: must be positive (or -1 with train.num_train_epochs > 0)")
        if self.remove_unused_columns:
            raise ConfigError(
                "train.remove_unused_columns: must be false (the collator's image tensors are needed)"
            )
        if self.deepspeed and not _launched() and importlib.util.find_spec("mpi4py") is None:
            # DeepSpeed finds its peers from the launcher's variables, else through MPI
            raise ConfigError(
                "train.deepspeed: start the run with a launcher, e.g. `torchrun --nproc_per_node N -m clinkd.cli.main "
                "train ...` (N=1 for one process), `accelerate launch` or `deepspeed`; without the launcher's "
                "RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT/LOCAL_RANK DeepSpeed looks for MPI (mpi4py), which is not installed"
            )
        self._check_precision()
        super().__post_init__()

    def _check_precision(self) -> None:
        """Mixed precision the machine can run, refused up front otherwise: on CPU accelerate silently
        drops fp16 (no autocast, no loss scaling), and transformers' own bf16 message names no key."""
        if (self.fp16 or self.fp16_full_eval) and (self.use_cpu or not _has_accelerator(any_kind=True)):
            where = "with train.use_cpu=true" if self.use_cpu else "on this machine, which has no GPU"
            raise ConfigError(
                f"train.fp16: float16 mixed precision needs a GPU; it would be ignored {where}. Drop "
                "train.fp16, or train in bfloat16 on the CPU with --train.bf16=true --train.use_cpu=true"
            )
        if (self.bf16 or self.bf16_full_eval) and not self.use_cpu:
            from transformers.utils import is_torch_bf16_gpu_available, is_torch_xla_available

            if not is_torch_bf16_gpu_available() and not is_torch_xla_available():
                raise ConfigError(
                    "train.bf16: this machine has no GPU with bfloat16 support; add --train.use_cpu=true "
                    "to train in bfloat16 on the CPU, or drop train.bf16"
                )


@dataclass(frozen=True)
class RunConfig:
    """One training stage."""

    stage: Stage = help_field("sft", "sft (with optional reflective correction) or distill")
    name: str = help_field("run", "the stage's name (pipelines write it to train.output_dir/<name>)")
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    rct: RCTConfig = field(default_factory=RCTConfig)
    train: ClinkdTrainingArguments = field(default_factory=ClinkdTrainingArguments)

    def __post_init__(self):
        if self.stage == "distill" and not self.distill.teacher:
            raise ConfigError("distill.teacher: stage distill needs a teacher checkpoint (or @stage)")

    def to_dict(self) -> dict:
        d = to_dict(self)
        # keep only the TrainingArguments that differ from transformers' defaults: readable run files
        # (from the field defaults: building a TrainingArguments would reset accelerate's state)
        base = {
            f.name: to_dict(f.default)
            for f in dataclasses.fields(TrainingArguments)
            if f.default is not dataclasses.MISSING
        }
        d["train"] = {k: v for k, v in d["train"].items() if k == "output_dir" or base.get(k, object()) != v}
        return d


SECTIONS = ("data", "model", "distill", "rct", "train")


def _launched() -> bool:
    """Whether a distributed launcher (torchrun, accelerate, deepspeed) started this process."""
    return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "LOCAL_RANK"))


def _has_accelerator(any_kind: bool = False) -> bool:
    """CUDA or XPU; with ``any_kind`` any device torch knows (MPS, NPU, ... too)."""
    import torch

    if any_kind and hasattr(torch, "accelerator"):
        return torch.accelerator.is_available()
    return torch.cuda.is_available() or (hasattr(torch, "xpu") and torch.xpu.is_available())


def load_run_configs(path: str | Path | None, overrides: list[str] | None = None) -> list[RunConfig]:
    """Read a recipe (a single stage, or ``stages:`` of a pipeline) and apply command-line overrides.

    Overrides apply to every stage (``--train.max_steps=20`` shortens all of them); ``--<stage>.<section>.<key>``
    targets one stage of a pipeline. Every stage is fully validated before any work starts, and comes back
    complete: ``@stage`` references are replaced by the stage's output folder, and the settings the
    environment decides are made (:func:`environment_settings`). The configs are values: nothing changes
    them afterwards.
    """
    raw = read_yaml(path) if path is not None else {}
    extra = parse_overrides(overrides or [])
    stages = raw.pop("stages", None)
    if stages is None:
        cfg = _build(deep_merge(raw, extra), prefix="")
        return [cfg]
    if not isinstance(stages, dict) or not stages:
        raise ConfigError("stages: expected a mapping of stage name -> sections")
    for name in stages:
        if not isinstance(name, str) or not _STAGE_NAME.fullmatch(name) or name in (".", ".."):
            raise ConfigError(
                f"stages.{name}: a stage name is letters, digits, '_', '-' or '.' (it names the "
                "stage's output folder)"
            )
    per_stage = {k: extra.pop(k) for k in list(extra) if k in stages}
    for name, value in per_stage.items():
        if not isinstance(value, dict):
            raise ConfigError(f"override --{name}: {name} is a stage; give --{name}.section.key=value")
    base = deep_merge(raw, extra)
    out_root = _section(base, "train").get("output_dir", "runs/train")
    if not isinstance(out_root, str):
        raise ConfigError(f"train.output_dir: expected a path, got {out_root!r}")
    configs = []
    for name, spec in stages.items():
        if not isinstance(spec, dict):
            raise ConfigError(f"stages.{name}: expected a mapping of sections")
        merged = deep_merge(deep_merge(copy.deepcopy(base), spec), per_stage.get(name, {}))
        merged["name"] = name
        merged.setdefault("train", {})
        own = "output_dir" in _section(spec, "train") or "output_dir" in _section(
            per_stage.get(name, {}), "train"
        )
        if not own and isinstance(merged["train"], dict):
            merged["train"]["output_dir"] = str(Path(out_root) / name)
        configs.append(_build(merged, prefix=f"stages.{name}."))
    return _resolve_stage_references(configs)


def _resolve_stage_references(configs: list[RunConfig]) -> list[RunConfig]:
    """``@name`` in ``model.path`` or ``distill.teacher`` → the output folder of the earlier stage ``name``:
    new configs, built from the validated ones (every stage is checked before any reference is)."""
    names = [c.name for c in configs]
    outs = {c.name: c.train.output_dir for c in configs}
    resolved = []
    for i, c in enumerate(configs):
        for key, value in (("model.path", c.model.path), ("distill.teacher", c.distill.teacher)):
            if value and value.startswith("@") and value[1:] not in names[:i]:
                raise ConfigError(
                    f"stages.{c.name}.{key}: {value} does not name an earlier stage ({names[:i]})"
                )
        changes: dict[str, Any] = {}
        if c.model.path and c.model.path.startswith("@"):
            changes["model"] = dataclasses.replace(c.model, path=outs[c.model.path[1:]])
        if c.distill.teacher and c.distill.teacher.startswith("@"):
            changes["distill"] = dataclasses.replace(c.distill, teacher=outs[c.distill.teacher[1:]])
        resolved.append(dataclasses.replace(c, **changes) if changes else c)
    return resolved


_STAGE_NAME = re.compile(r"[A-Za-z0-9_.-]+")


def _section(data: dict, name: str) -> dict:
    """``data[name]`` when it is a mapping, else an empty one (from_dict reports the wrong type)."""
    value = data.get(name)
    return value if isinstance(value, dict) else {}


def environment_settings(train: dict) -> dict:
    """The ``train`` section as the process's environment completes it, before it is validated.

    Under a multi-process launcher (``WORLD_SIZE`` > 1) on a machine without CUDA or XPU, ``use_cpu`` is
    true: accelerate sets up gloo DDP on CPU only when told the run is on CPU; otherwise every torchrun
    process would silently train alone. A ``use_cpu`` that is not a boolean is left for validation to name.
    """
    try:
        asked = coerce(train.get("use_cpu", False), bool, "train.use_cpu")
    except ConfigError:
        return train
    if asked:
        return train
    try:
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError as err:
        raise ConfigError(f"train: {err} (the environment's WORLD_SIZE)") from None
    if world_size > 1 and not _has_accelerator():
        return {**train, "use_cpu": True}
    return train


def _build(data: dict, prefix: str) -> RunConfig:
    data = dict(data)
    data.setdefault("train", {})
    if isinstance(data["train"], dict):
        data["train"] = environment_settings(data["train"])
    try:
        return from_dict(RunConfig, data)
    except ConfigError as err:
        if prefix:
            raise ConfigError(f"{prefix}{err}") from None
        raise


def with_train(cfg: RunConfig, **changes) -> RunConfig:
    """A new config: ``cfg`` with the ``train`` keys ``changes`` set, ``cfg`` and its arguments unchanged.

    The arguments are copied, not rebuilt (``dataclasses.replace``): building ``TrainingArguments`` again
    would run its ``__post_init__`` and drop the device set-up cached on it (``args.device`` resets
    accelerate's state, which in a torchrun process must be set up once).
    """
    for key in changes:
        if key not in {f.name for f in dataclasses.fields(cfg.train) if f.init}:
            raise ConfigError(f"train.{key}: unknown key")
    train = copy.copy(cfg.train)
    for key, value in changes.items():
        setattr(train, key, value)
    return dataclasses.replace(cfg, train=train)


# -- clinkd train --help-config ---------------------------------------------------------------------
#: what clinkd adds to a TrainingArguments option's own help
_TRAIN_NOTES = {"use_cpu": "clinkd: true by itself under a multi-process launcher on a machine without a GPU"}


def field_docs(cls=RunConfig, prefix: str = "") -> list[tuple[str, str, str]]:
    """``(key, default, help)`` of every key, for ``clinkd train --help-config``: clinkd's sections, then
    ``train``: the TrainingArguments clinkd gives defaults of its own, then every other one with
    transformers' default (:func:`config_help` prints them in these groups)."""
    return [row for _, rows in _field_groups(cls, prefix) for row in rows]


def config_help(width: int = 80) -> str:
    """The text of ``clinkd train --help-config``: one line a key (``key  default  help``), in groups.

    The help of transformers' own options is cut to its first sentence and to ``width`` characters
    (transformers' documentation has the rest; a ``[clinkd: ...]`` note is kept); clinkd's own is whole.
    """
    import transformers

    groups = _field_groups(RunConfig, "")
    lines = []
    for title, rows in groups:
        upstream = title.startswith("train: the other")
        lines.append("# " + title.replace("{version}", transformers.__version__))
        for key, default, doc in rows:
            if upstream:
                head, note, rest = doc.partition(" [clinkd: ")
                doc = _shorten(head, width) + note + rest
            lines.append(f"{key:36s} {default:>16s}  {doc}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _field_groups(cls, prefix: str) -> list[tuple[str, list[tuple[str, str, str]]]]:
    """``[(title, rows)]``: clinkd's keys, then the TrainingArguments with clinkd's defaults, then the rest.
    Read from the classes (no TrainingArguments is built)."""
    hints = typing.get_type_hints(cls)
    own, train = [], []
    for f in dataclasses.fields(cls):
        key, tp = f"{prefix}{f.name}", hints.get(f.name)
        if isinstance(tp, type) and issubclass(tp, TrainingArguments):
            train = _train_groups(tp, key + ".")
        elif dataclasses.is_dataclass(tp):
            own += [row for _, rows in _field_groups(tp, key + ".") for row in rows]
        elif f.metadata.get("help"):
            own.append((key, repr(to_dict(_default(f))), _one_line(f.metadata["help"])))
    return [("clinkd's keys", own), *train]


def _train_groups(cls: type, prefix: str) -> list[tuple[str, list[tuple[str, str, str]]]]:
    upstream = {f.name: f for f in dataclasses.fields(TrainingArguments)}
    ours, theirs = [], []
    for f in dataclasses.fields(cls):
        if not f.init or f.name.startswith("_"):
            continue
        default = to_dict(_default(f))
        doc = _one_line(f.metadata.get("help", ""))
        if f.name in _TRAIN_NOTES:
            doc = f"{doc} [{_TRAIN_NOTES[f.name]}]"
        base = upstream.get(f.name)
        if base is not None and f is not base:  # declared again by clinkd's subclass: clinkd's default
            if to_dict(_default(base)) != default:
                doc = f"{doc} (transformers: {to_dict(_default(base))!r})"
            ours.append((prefix + f.name, repr(default), doc))
        else:
            theirs.append((prefix + f.name, repr(default), doc))
    return [
        ("train: transformers TrainingArguments with clinkd's defaults", ours),
        ("train: the other TrainingArguments, with transformers {version}'s defaults", theirs),
    ]


def _default(f: dataclasses.Field):
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def _one_line(text: str) -> str:
    return " ".join(str(text).replace("%%", "%").split())


def _shorten(text: str, width: int) -> str:
    """The first sentence of ``text``, cut at a word to ``width`` characters (``...`` marks a cut)."""
    first = re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0]
    if len(first) <= width:
        return first
    return first[: width - 3].rsplit(" ", 1)[0] + "..."
