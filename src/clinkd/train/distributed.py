"""DeepSpeed glue for the stages: on GPUs and on CPU (DeepSpeed's CPU accelerator, gloo, ``torchrun``).

What the stock Trainer flow does not do for us:

- **deepspeed.comm on CPU.** On CPU ``ClinkdTrainingArguments`` runs accelerate with ``use_cpu`` (gloo
  DDP), and accelerate then never calls ``deepspeed.init_distributed``. The Trainer's own
  ``deepspeed.initialize`` would do it later, but ZeRO-3's ``zero.Init`` — which ``from_pretrained``
  enters as soon as a ZeRO-3 config is active — reads the world size before that and fails with
  ``train_batch_size is not equal to micro_batch_per_gpu * gradient_acc_step * world_size 4 != 2 * 1 * 1``.
  :func:`activate_deepspeed` wraps torch's existing process group in deepspeed.comm first.
- **which DeepSpeed config is active.** transformers keeps *one* global DeepSpeed config (a weak
  reference set by every ``TrainingArguments`` that has ``deepspeed``); a pipeline builds all its stages'
  arguments up front, so the active one is the last stage's; and accelerate keeps the first stage's
  DeepSpeed plugin. :func:`activate_deepspeed` makes both the running stage's (or none).
- **checkpoint names under ZeRO-3.** transformers 5.23 loads a model under ``zero.Init`` with a
  different code path that records *every* key conversion of the class as applied, not only those that
  matched the checkpoint; ``save_pretrained`` then reverses them all and writes Qwen2-VL's language model
  as ``model.model.layers.*`` (unloadable). :func:`repair_weight_conversions` keeps the ones used, as the
  ordinary path does.
- **the teacher.** :func:`outside_zero3` loads the pseudo-labelling teacher whole while ZeRO-3 is active and lets
  it generate unsynchronised (each process labels its own share, which a partitioned model cannot do);
  :func:`prepare_teacher` then partitions the online teacher under ZeRO-3 the way trl prepares its teacher /
  reference model: ``deepspeed.initialize`` with a copy of the training config, no optimizer, eval mode.
  (:func:`outside_zero3` also serves any helper model loaded during a ZeRO-3 run, e.g. reflective
  correction's sentence embedder.)
"""

from __future__ import annotations

import copy
import logging
from contextlib import contextmanager

from clinkd.upstream import (
    accelerate_state_set_up,
    accelerate_state_uses_deepspeed,
    active_hf_deepspeed_config,
    clear_accelerate_deepspeed_flag,
    hf_zero3_enabled,
    keep_used_weight_conversions,
    set_active_hf_deepspeed_config,
    set_up_devices_again,
)

log = logging.getLogger(__name__)


def activate_deepspeed(args) -> None:
    """Make ``args``' DeepSpeed config the active one (or none) and, in a distributed run, start
    deepspeed.comm on torch's process group. Call after ``args.device`` (which sets up that group).

    In a pipeline each stage's Trainer makes a new ``Accelerator``, but accelerate keeps an earlier
    stage's DeepSpeed set-up: with a plugin it refuses ("You cannot pass in a `deepspeed_plugin` when
    creating a second `Accelerator`"), without one it reuses the earlier stage's DeepSpeed, or fails
    (``'AcceleratorState' object has no attribute 'mixed_precision'``). When DeepSpeed is involved and an
    earlier stage left its state, ``TrainingArguments`` sets the state up again for this stage (the process
    group stays) and accelerate's "use DeepSpeed" environment flag is cleared.
    """
    if accelerate_state_set_up() and (getattr(args, "deepspeed", None) or accelerate_state_uses_deepspeed()):
        clear_accelerate_deepspeed_flag()
        set_up_devices_again(args)
    if not getattr(args, "deepspeed", None):
        set_active_hf_deepspeed_config(
            None
        )  # another stage's ZeRO-3 config must not partition this stage's models
        return
    set_active_hf_deepspeed_config(args.hf_deepspeed_config)
    import torch.distributed as tdist

    if not (tdist.is_available() and tdist.is_initialized()):
        return  # one process: deepspeed.initialize sets up its own (and needs launcher variables)
    from deepspeed import comm

    if not comm.is_initialized():
        comm.init_distributed(dist_backend=tdist.get_backend(), auto_mpi_discovery=False)


def zero3_active() -> bool:
    """Whether transformers' active DeepSpeed config is ZeRO-3."""
    return hf_zero3_enabled()


@contextmanager
def outside_zero3():
    """Inside the block transformers behaves as if no ZeRO-3 config were active; it is restored after.

    While its global DeepSpeed config is ZeRO-3, transformers builds every model under
    ``deepspeed.zero.Init`` (each process keeps empty parameter stubs) and ``generate`` defaults to
    ``synced_gpus=True`` (every step all-reduces "unfinished" across processes, so processes generating
    different numbers of batches or tokens wait for each other forever). For the pseudo-labelling teacher
    neither is wanted: it is loaded whole and each process generates its own share alone.
    """
    if not hf_zero3_enabled():
        yield
        return
    active = active_hf_deepspeed_config()
    set_active_hf_deepspeed_config(None)
    try:
        yield
    finally:
        if active is not None:
            set_active_hf_deepspeed_config(active)


def _hidden_size(config) -> int | None:
    for c in (getattr(config, "text_config", None), config):
        if c is not None and isinstance(getattr(c, "hidden_size", None), int):
            return c.hidden_size
    return None


def teacher_deepspeed_config(train_config: dict, teacher_config) -> dict:
    """The DeepSpeed config of a frozen ZeRO-3 teacher: a copy of the training's, ZeRO stage 3 kept, the
    optimizer and scheduler dropped, and the buckets that ``"auto"`` sizes from the hidden size filled
    from the teacher's (transformers fills them only for the trained model, inside ``train()``)."""
    cfg = copy.deepcopy(train_config)
    for key in ("optimizer", "scheduler"):
        cfg.pop(key, None)
    zero = cfg.setdefault("zero_optimization", {})
    h = _hidden_size(teacher_config)
    sized = (
        {
            "reduce_bucket_size": h * h,
            "stage3_prefetch_bucket_size": int(0.9 * h * h),
            "stage3_param_persistence_threshold": 10 * h,
        }
        if h
        else {}
    )
    for key in [k for k, v in zero.items() if v == "auto"]:
        if key in sized:
            zero[key] = sized[key]
        else:  # DeepSpeed's default
            del zero[key]
    zero["stage"] = 3
    return cfg


def prepare_teacher(teacher, trainer):
    """The teacher as the run needs it: whole on the device, or partitioned under ZeRO-3.

    Under ZeRO-3 the teacher (loaded whole, see :func:`outside_zero3`) is partitioned across the
    processes by ``deepspeed.initialize`` (no optimizer, eval mode): each process keeps 1/N of its weights,
    and every forward gathers them layer by layer, so every process must run the teacher on every batch
    (``compute_loss`` does). Otherwise (ZeRO-0/1/2, DDP, one device) every process holds a whole copy.
    """
    teacher.eval()
    teacher.requires_grad_(False)
    plugin = getattr(trainer.accelerator.state, "deepspeed_plugin", None)
    if plugin is None or plugin.zero_stage != 3:
        return teacher.to(trainer.args.device)
    import deepspeed

    engine, *_ = deepspeed.initialize(
        model=teacher, config=teacher_deepspeed_config(plugin.deepspeed_config, teacher.config)
    )
    engine.eval()
    log.info("teacher partitioned with DeepSpeed ZeRO-3 across %d processes", trainer.args.world_size)
    return engine


def repair_weight_conversions(model) -> None:
    """Keep only the key conversions that matched the checkpoint on every ``PreTrainedModel`` in ``model``.

    What ``from_pretrained`` records outside ZeRO-3; under ZeRO-3 transformers 5.23 records the class's whole
    mapping, and ``save_pretrained`` reverses unused renamings too (``model.layers.*`` saved as
    ``model.model.layers.*``). Idempotent; a no-op for models loaded the ordinary way. The upstream hook:
    :func:`clinkd.upstream.keep_used_weight_conversions`.
    """
    keep_used_weight_conversions(model)


def merge_lora(model, trainer):
    """``(model.merge_and_unload(), gathered)``: the LoRA-merged plain model, and under ZeRO-3 its whole
    weights (a state dict on the saving process, ``{}`` on the others; ``None`` without ZeRO-3).

    Under ZeRO-3 each process holds empty stubs of the base weights, and peft's merge fails (``The size of
    tensor a (0) must match the size of tensor b (128)``); the weights are gathered for the merge and the
    merged ones copied out, since leaving the block re-partitions the stubs without the merge. Every
    process holds the whole model for that moment.
    """
    plugin = getattr(trainer.accelerator.state, "deepspeed_plugin", None)
    if plugin is None or plugin.zero_stage != 3:
        return model.merge_and_unload(), None
    import deepspeed

    with deepspeed.zero.GatheredParameters(list(model.parameters())):
        merged = model.merge_and_unload()
        gathered = (
            {k: v.detach().clone() for k, v in merged.state_dict().items()}
            if trainer.args.should_save
            else {}
        )
    return merged, gathered
