"""Stage runners: ``run_sft``, ``run_distill`` and ``run_pipeline`` (what ``clinkd train`` calls).

Each stage reads its dataset folder (generating the synthetic benchmark there when asked), loads or
builds its model, fixes the order of every training example in advance
(:mod:`clinkd.train.schedule`), trains with :class:`~clinkd.train.trainer.ClinKDTrainer` and saves the
final model — safetensors, config (with its position-id scheme), tokenizer, processor — to
``train.output_dir``, loadable by :func:`clinkd.model.load`.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import yaml
from accelerate import PartialState
from transformers import TrainerCallback

from clinkd.config import ConfigError
from clinkd.data.conventions import Convention, convention_named, native_convention
from clinkd.data.formats import read_dataset_dir
from clinkd.errors import ClinkdError
from clinkd.model.modeling import get_box_convention, set_box_convention
from clinkd.model.processor import box_codec
from clinkd.paths import output_dir
from clinkd.train.checkpoints import last_complete_checkpoint
from clinkd.train.config import RunConfig, with_train
from clinkd.train.dataset import ConversationCollator, items_from_dataset
from clinkd.train.distributed import activate_deepspeed, merge_lora, outside_zero3, zero3_active
from clinkd.train.schedule import ScheduledDataset, curriculum_order, shuffled_order
from clinkd.train.trainer import ClinKDTrainer

log = logging.getLogger(__name__)


# -- pieces shared by the stages --------------------------------------------------------------------
def _out_dir(cfg: RunConfig) -> str:
    """``train.output_dir``: a path once built (TrainingArguments turns null into ``trainer_output``)."""
    out = cfg.train.output_dir
    if out is None:
        raise ConfigError("train.output_dir: expected a path, got None")
    return out


def _teacher_dir(cfg: RunConfig) -> str:
    """``distill.teacher``: set for a distill stage (checked by :class:`RunConfig`)."""
    teacher = cfg.distill.teacher
    if not teacher:
        raise ConfigError("distill.teacher: stage distill needs a teacher checkpoint (or @stage)")
    return teacher


def prepare_data(cfg: RunConfig):
    """Read the dataset folder; generate the synthetic benchmark there first when it is missing."""
    root = Path(cfg.data.dir)
    state = PartialState()
    if not root.exists():
        if not cfg.data.synth_if_missing:
            raise ClinkdError(
                f"data.dir {root} does not exist (set data.synth_if_missing=true to generate it)"
            )
        with state.main_process_first():
            if state.is_main_process and not root.exists():
                from clinkd.data import synth

                log.info("generating the synthetic Med-GRIT benchmark in %s", root)
                # one worker: the generator's fork pool is best kept out of a process that runs torch
                synth.generate(root, seed=cfg.data.synth_seed, n_images=cfg.data.synth_images, workers=1)
    return read_dataset_dir(root)


def rope_settings(cfg: RunConfig) -> dict:
    m = cfg.model
    return {
        "scheme": m.rope,
        "text_to_image_gap": m.text_to_image_gap,
        "image_to_text_gap": m.image_to_text_gap,
        "stride_h": m.stride_h,
        "stride_w": m.stride_w,
    }


def load_model(
    cfg: RunConfig, path: str | None = None, init: str | None = None, rope=None, share_processor=None
):
    """``(model, processor)`` from a checkpoint folder, or a tiny model built under the output folder.

    A tiny model is built with ``share_processor``'s tokenizer when given (a student distilled from a
    teacher must share its vocabulary)."""
    import torch

    from clinkd.model import init_model_dir, load

    path = path if path is not None else cfg.model.path
    rope = rope if rope is not None else rope_settings(cfg)
    if path is None:
        size = init or cfg.model.init
        if size is None:  # refused by ModelConfig: neither model.path nor model.init
            raise ConfigError("model: give model.path (a checkpoint folder) or model.init (a tiny size)")
        state = PartialState()
        target = Path(_out_dir(cfg)) / "init"
        with state.main_process_first():
            if state.is_main_process and not (target / "config.json").is_file():
                init_model_dir(target, size, rope=rope, seed=cfg.train.seed, processor=share_processor)
        path = str(target)
    dtype = getattr(torch, cfg.model.dtype)
    model, processor = load(
        path, rope=rope, dtype=dtype, min_pixels=cfg.model.min_pixels, max_pixels=cfg.model.max_pixels
    )
    conv = set_box_convention(model.config, training_box_convention(cfg, model.config))
    log.info("boxes in training text: %s convention (%s)", conv.key, path)
    return model, processor


def training_box_convention(cfg: RunConfig, config) -> Convention:
    """The box convention a run trains in (``data.box_convention`` for the model of ``config``): ``native``
    the family's own, ``medgrit`` the files' text in ``data.box_style``, ``auto`` what the model answers
    in already (:func:`~clinkd.model.modeling.get_box_convention`: native for a hub checkpoint, medgrit
    for a tiny model) — Med-GRIT text whenever ``data.box_style`` asks for a markup of its own."""
    setting, style = cfg.data.box_convention, cfg.data.box_style
    if setting == "native":
        return native_convention(config.model_type)
    if setting == "medgrit" or style != "qwen":
        return convention_named("medgrit" if style == "qwen" else f"medgrit:{style}")
    return get_box_convention(config)


def apply_lora_and_freezing(model, cfg: RunConfig):
    if cfg.model.freeze_vision:
        visual = getattr(getattr(model, "model", model), "visual", None)
        if visual is None:
            raise ClinkdError("model.freeze_vision: this model has no vision tower named 'visual'")
        visual.requires_grad_(False)
    if cfg.model.lora_r > 0:
        from peft import LoraConfig, get_peft_model

        from clinkd.seeding import local_seed

        check_lora_targets(model, cfg.model.lora_target_modules)
        lora = LoraConfig(
            r=cfg.model.lora_r,
            lora_alpha=cfg.model.lora_alpha,
            lora_dropout=cfg.model.lora_dropout,
            target_modules=cfg.model.lora_target_modules,
            task_type="CAUSAL_LM",
        )
        with local_seed(cfg.train.seed):  # seeded adapters, whatever ran before; the caller's RNG untouched
            model = get_peft_model(model, lora)
    return model


def check_lora_targets(model, targets: list[str]) -> None:
    """Every name of ``model.lora_target_modules`` must name modules of ``model`` the way peft matches them
    (the whole dotted name, or its last parts): peft refuses only when *no* name matches, with a traceback,
    and silently skips the others."""
    import torch

    names = [n for n, _ in model.named_modules()]
    missing = [t for t in targets if not any(n == t or n.endswith("." + t) for n in names)]
    if missing:
        linear = sorted(
            {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
            - {str(i) for i in range(100)}
        )  # positions in a Sequential name no layer kind
        raise ConfigError(
            f"model.lora_target_modules: {', '.join(map(repr, missing))} names no module of {type(model).__name__}; "
            f"its linear layers are named {', '.join(linear[:24])}{' ...' if len(linear) > 24 else ''}"
        )


def global_batch(cfg: RunConfig) -> int:
    a = cfg.train
    return a.per_device_train_batch_size * a.gradient_accumulation_steps * max(1, a.world_size)


def with_max_steps(cfg: RunConfig, n_items: int) -> RunConfig:
    """``cfg`` with ``train.max_steps`` the run's optimizer steps: as given, or ``train.num_train_epochs``
    over ``n_items`` converted into steps (the schedule fixes every example's position in advance, so the
    Trainer counts steps, and the run's saved config says how many). A new config; ``cfg`` is unchanged."""
    if cfg.train.max_steps > 0:
        return cfg
    return with_train(cfg, max_steps=math.ceil(n_items * cfg.train.num_train_epochs / global_batch(cfg)))


def resume_checkpoint(cfg: RunConfig, resume: bool) -> str | None:
    """The checkpoint folder to resume from: the newest *complete* ``checkpoint-N`` of ``train.output_dir``.

    Newer folders left empty or half written by a run killed while saving are skipped, each with a
    warning saying which and why (:func:`clinkd.train.checkpoints.checkpoint_problem`: trainer_state.json
    readable, every weight file/shard whole, optimizer.pt and scheduler.pt present). A folder without
    ``optimizer.pt`` counts as incomplete: a run never resumes silently with a fresh optimizer. None
    without ``resume`` or when there is no checkpoint folder (training starts from the beginning).

    Raises:
        ClinkdError: there are checkpoint folders but none is complete.
    """
    out = Path(_out_dir(cfg))
    if not resume or not out.is_dir():
        return None
    last, skipped = last_complete_checkpoint(out)
    if last is None and skipped:
        why = "; ".join(f"{p.name}: {reason}" for p, reason in skipped)
        raise ClinkdError(
            f"--resume: no complete checkpoint in {out} ({why}). Delete those folders and run "
            "without --resume to start over, or point train.output_dir at a run with one"
        )
    if last is not None:
        log.info("resuming from %s", last)
        return str(last)
    return None


def checkpoint_step(checkpoint: str | None) -> int:
    if checkpoint is None:
        return 0
    return int(json.loads((Path(checkpoint) / "trainer_state.json").read_text())["global_step"])


def save_final(trainer: ClinKDTrainer, model, processor, cfg: RunConfig) -> Path:
    """Write the final model to ``train.output_dir`` (LoRA merged), with processor and run config."""
    out = Path(_out_dir(cfg))
    trainer.check_weights_finite(what=f"the final model ({out})")  # never a model of NaN weights
    gathered, direct = None, False
    if hasattr(model, "merge_and_unload"):  # peft: merge so that clinkd.model.load reads a plain model
        model, gathered = merge_lora(model, trainer)  # under ZeRO-3 the merged weights come gathered
        trainer.model = model
        direct = trainer.is_deepspeed_enabled  # DeepSpeed's engine would save its peft-prefixed module
    if not direct:
        trainer.save_model(str(out))
    elif trainer.args.should_save:
        model.save_pretrained(out, state_dict=gathered)
    trainer.save_state()  # trainer_state.json: the log history (losses, curriculum, items seen by kind)
    if trainer.is_world_process_zero():
        processor.save_pretrained(out)  # stock processor_class, flat preprocessor_config.json with the budget
        keep_processor_files(cfg.model.path, out)
        (out / "clinkd_run.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False), encoding="utf-8")
    trainer.accelerator.wait_for_everyone()  # the next stage may load this model on every process
    return out


#: Files of a hub checkpoint's processor that ``processor.save_pretrained`` does not write itself; copied
#: over so that a fine-tuned hub checkpoint keeps them (slow-tokenizer files, Qwen3-VL's video processor).
KEPT_PROCESSOR_FILES = ("vocab.json", "merges.txt", "video_preprocessor_config.json")


def keep_processor_files(source: str | None, out: Path) -> list[str]:
    """Copy :data:`KEPT_PROCESSOR_FILES` of the checkpoint fine-tuned (``model.path``) into ``out``."""
    import shutil

    if not source or not Path(source).is_dir():
        return []
    kept = []
    for name in KEPT_PROCESSOR_FILES:
        src = Path(source) / name
        if src.is_file() and not (out / name).exists():
            shutil.copyfile(src, out / name)
            kept.append(name)
    return kept


class CurriculumLog(TrainerCallback):
    """Logs each curriculum phase when training reaches it: how many samples entered, the margin threshold.

    Several phases can start within one step (a phase shorter than a global batch, e.g. more phases than
    steps): each is logged, in order (issue 15: keyed by step alone, all but the last were lost).
    """

    def __init__(self, phases, global_batch: int):
        self.at: dict[int, list] = {}  # step -> the phases starting in it, in order
        for p in phases:
            self.at.setdefault(p.start // global_batch, []).append(p)

    def on_step_begin(self, args, state, control, **kwargs):
        for p in self.at.pop(state.global_step, ()):
            log.info(
                "curriculum phase %d at step %d: %d pseudo-labelled samples entered (pool %d, margin >= %.3f)",
                p.index + 1,
                state.global_step,
                p.entered,
                p.pool,
                p.threshold,
            )
            state.log_history.append(
                {
                    "step": state.global_step,
                    "curriculum_phase": p.index + 1,
                    "entered": p.entered,
                    "pool": p.pool,
                    "threshold": p.threshold,
                }
            )
        return control


# -- stages -----------------------------------------------------------------------------------------
def run_sft(cfg: RunConfig, resume: bool = False) -> Path:
    """Supervised fine-tuning on every training record, with reflective correction when enabled."""
    ds = prepare_data(cfg)
    items = items_from_dataset(ds, max_samples=cfg.data.max_train_samples)
    model, processor = load_model(cfg)
    model = apply_lora_and_freezing(model, cfg)
    cfg = with_max_steps(cfg, len(items))
    steps = cfg.train.max_steps
    gb = global_batch(cfg)
    dataset = ScheduledDataset(items, shuffled_order(len(items), steps * gb, cfg.train.seed))
    trainer = ClinKDTrainer(
        model=model,
        args=cfg.train,
        train_dataset=dataset,
        data_collator=ConversationCollator(processor, boxes=box_codec(model, processor)),
        processing_class=processor,
    )
    checkpoint = resume_checkpoint(cfg, resume)
    if cfg.rct.enabled:
        from clinkd.train.rct import ReflectiveCorrection, fetched_ahead

        a = cfg.train
        ahead = fetched_ahead(
            a.per_device_train_batch_size,
            max(1, a.world_size),
            a.dataloader_num_workers,
            a.dataloader_prefetch_factor,
        )
        embedder = None
        if zero3_active():  # loaded whole now: built lazily during training, ZeRO-3 would partition it
            from clinkd.infer.similarity import Embedder

            with outside_zero3():
                embedder = Embedder()
                _ = embedder.model
        rct = ReflectiveCorrection(
            cfg.rct,
            dataset,
            processor,
            _out_dir(cfg),
            max_steps=steps,
            global_batch=gb,
            lookahead=ahead,
            embedder=embedder,
            seed=cfg.train.seed,
            is_main_process=trainer.is_world_process_zero(),
        )
        restored = rct.restore(checkpoint_step(checkpoint)) if checkpoint else 0
        if restored:
            log.info("re-applied %d reflective-correction round(s) from before the checkpoint", restored)
        trainer.add_callback(rct)
    log.info("sft: %d records, %d steps, global batch %d, rope %s", len(items), steps, gb, cfg.model.rope)
    trainer.train(resume_from_checkpoint=checkpoint)
    return save_final(trainer, model, processor, cfg)


def run_distill(cfg: RunConfig, resume: bool = False) -> Path:
    """Pseudo-label distillation of the student from ``distill.teacher`` with the margin curriculum."""
    from clinkd.model import load
    from clinkd.train.pseudo import pseudo_label, turn_items

    ds = prepare_data(cfg)
    base = items_from_dataset(ds, max_samples=cfg.data.max_train_samples)
    teacher_dir = _teacher_dir(cfg)
    with outside_zero3():  # whole even under ZeRO-3: each process generates pseudo-labels alone
        teacher, t_proc = load(teacher_dir)
    if t_proc is None:  # load() returns the processor unless with_processor=False
        raise ClinkdError(f"the teacher {teacher_dir} was loaded without its processor")
    model, processor = load_model(cfg, share_processor=t_proc)
    check_vocabularies(t_proc.tokenizer, processor.tokenizer, teacher_dir)
    shared = check_embedding_sizes(teacher, model, processor.tokenizer, teacher_dir)
    items = turn_items(base, cfg.distill.subset, cfg.train.seed)
    codec = box_codec(model, processor)
    t_conv = get_box_convention(teacher.config)
    if t_conv != codec.convention:
        log.warning(
            "the teacher answers in the %s box convention, the student trains in %s: pseudo-labels are "
            "read back into Med-GRIT form and written in %s, and the teacher's logits are taken on text "
            "in a form it was not trained in",
            t_conv.key,
            codec.convention.key,
            codec.convention.key,
        )
    teacher.to(cfg.train.device)
    # every process labels its share of the subset; the shards are gathered into one cache
    with outside_zero3():  # generate must not sync processes (synced_gpus) for a whole teacher
        labelled, stats = pseudo_label(
            teacher,
            processor,
            items,
            cfg.distill,
            cache_dir=cfg.train.output_dir,
            vocab_size=shared,
            seed=cfg.train.seed,
            boxes=codec,
        )
    model = apply_lora_and_freezing(model, cfg)
    cfg = with_max_steps(cfg, len(labelled))
    steps = cfg.train.max_steps
    gb = global_batch(cfg)
    order, phases = curriculum_order(
        [it.margin or 0.0 for it in labelled], steps * gb, cfg.distill.curriculum_phases, cfg.train.seed
    )
    dataset = ScheduledDataset(labelled, order)
    online = cfg.distill.teacher_logits == "online"
    if not online:  # its logits are cached with the pseudo-labels: free the memory
        del teacher
        teacher = None
    trainer = ClinKDTrainer(
        model=model,
        args=cfg.train,
        train_dataset=dataset,
        data_collator=ConversationCollator(processor, boxes=codec),
        processing_class=processor,
        teacher=teacher,
        alpha=cfg.distill.alpha,
        temperature=cfg.distill.temperature,
    )
    trainer.add_callback(CurriculumLog(phases, gb))
    if trainer.is_world_process_zero():
        Path(_out_dir(cfg)).mkdir(parents=True, exist_ok=True)
        (Path(_out_dir(cfg)) / "distill_stats.json").write_text(
            json.dumps({**stats, "phases": [p.__dict__ for p in phases]}, indent=1), encoding="utf-8"
        )
    log.info(
        "distill: %d pseudo-labelled samples, %d steps, global batch %d, %d curriculum phases, teacher "
        "logits %s",
        len(labelled),
        steps,
        gb,
        len(phases),
        cfg.distill.teacher_logits,
    )
    trainer.train(resume_from_checkpoint=resume_checkpoint(cfg, resume))
    return save_final(trainer, model, processor, cfg)


def check_vocabularies(teacher_tok, student_tok, teacher_path) -> None:
    """Distillation compares token distributions: the student's vocabulary must be the teacher's prefix."""
    tv, sv = teacher_tok.get_vocab(), student_tok.get_vocab()
    diff = [t for t, i in sv.items() if tv.get(t) != i]
    if diff:
        raise ClinkdError(
            f"the teacher {teacher_path} and the student do not share a tokenizer ({len(diff)} student tokens "
            f"differ, e.g. {diff[:3]}): distil between models built with the same tokenizer"
        )


def embedding_rows(model) -> tuple[int, int]:
    """(input embedding rows, output (lm_head) rows) of a model, partitioned by ZeRO-3 or not."""

    def rows(weight) -> int:
        return int(getattr(weight, "ds_shape", weight.shape)[0])  # ZeRO-3 leaves an empty stub + ds_shape

    return rows(model.get_input_embeddings().weight), rows(model.get_output_embeddings().weight)


def check_embedding_sizes(teacher, student, tokenizer, teacher_path) -> int:
    """The vocabulary teacher and student share, checked before any work.

    Checkpoints pad their embeddings past the tokenizer differently (Qwen2-VL-7B has 152,064 rows,
    Qwen2-VL-2B 151,936, for 151,657 tokens): the distillation loss compares the first
    ``min(rows)`` logits, which must cover every token of the tokenizer.
    """
    t_in, t_out = embedding_rows(teacher)
    s_in, s_out = embedding_rows(student)
    shared = min(t_out, s_out)
    if min(t_in, s_in, shared) < len(tokenizer):
        raise ClinkdError(
            f"the embeddings do not cover the tokenizer's {len(tokenizer)} tokens: teacher {teacher_path} has "
            f"{t_in} input / {t_out} output rows, the student {s_in} / {s_out}; distil between models whose "
            "embeddings match their tokenizer"
        )
    if t_out != s_out:
        log.info(
            "teacher (%d logits) and student (%d logits) differ in padding rows: distilling over the %d "
            "they share",
            t_out,
            s_out,
            shared,
        )
    return shared


STAGES = {"sft": run_sft, "distill": run_distill}


def check_output_dirs(configs: list[RunConfig]) -> None:
    """Every stage's ``train.output_dir`` can be written (not a file, not under one, not read-only), checked
    before any stage starts; each is created. A folder that already holds files is fine: ``--resume``
    continues from its checkpoints, and a pipeline's earlier stages leave their models there."""
    for cfg in configs:
        what = f"train.output_dir of stage {cfg.name}" if len(configs) > 1 else "train.output_dir"
        out = Path(_out_dir(cfg)).resolve()
        for key, value in (
            ("model.path", cfg.model.path),
            ("distill.teacher", cfg.distill.teacher),
            ("data.dir", cfg.data.dir),
        ):
            if value and Path(value).resolve() == out:
                raise ClinkdError(
                    f"{what} {cfg.train.output_dir} is the {key}: training would overwrite it; give "
                    "another train.output_dir"
                )
        try:
            output_dir(_out_dir(cfg), force=True, what=what)
        except OSError as err:  # e.g. a name too long, or a read-only file system
            raise ClinkdError(
                f"{what} {cfg.train.output_dir}: cannot create it ({err.strerror or err})"
            ) from None


def run_stage(cfg: RunConfig, resume: bool = False) -> Path:
    # Let TrainingArguments set up the (distributed) state first: it resets accelerate's state, so a
    # PartialState made before it would leave torchrun processes training alone instead of together.
    _ = cfg.train.device
    activate_deepspeed(cfg.train)  # this stage's DeepSpeed config (or none); deepspeed.comm on CPU too
    return STAGES[cfg.stage](cfg, resume=resume)


def run_pipeline(configs: list[RunConfig], resume: bool = False) -> list[Path]:
    """Run stages in order; with ``resume``, a stage whose final model exists is skipped. Every output
    folder is checked first (:func:`check_output_dirs`)."""
    check_output_dirs(configs)
    outs = []
    for cfg in configs:
        out = Path(_out_dir(cfg))
        if resume and (out / "config.json").is_file() and (out / "clinkd_run.yaml").is_file():
            log.info("stage %s already finished (%s): skipped", cfg.name, out)
        else:
            log.info("stage %s (%s) -> %s", cfg.name, cfg.stage, out)
            run_stage(cfg, resume=resume)
        outs.append(out)
    return outs
