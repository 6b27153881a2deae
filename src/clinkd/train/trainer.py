"""The one training loop: transformers' ``Trainer`` with a ClinKD ``compute_loss``.

Why not trl: ``GKDTrainer`` forwards only ``input_ids``/``attention_mask`` (images never reach the
models). trl 1.16's ``DistillationTrainer`` does pass images to both models, but it distils on-policy (a
generalized JSD over completions the student generates during training, teacher run on every batch,
equal vocabulary sizes required), while ClinKD distils off-policy on fixed, cached teacher pseudo-labels
with ``(alpha*KL + CE) / (1 + alpha)``, in a curriculum order fixed before the run and rewritten by
reflective correction, over the output rows a 7B teacher and a 2B student share (docs/platform.md, "trl").
Here the whole collated batch — ``pixel_values``, ``image_grid_thw``, ``mm_token_type_ids`` included —
goes to both models. Everything else (accelerate, DeepSpeed, FSDP, checkpointing, resume, logging) is
the stock Trainer's.

The private ``Trainer`` methods overridden here (``_get_train_sampler``, ``_load_from_checkpoint``,
``_save_checkpoint``) and the ``model_accepts_loss_kwargs`` flag are upstream hooks: they are listed, with
the upstream signatures they are written against, in :data:`clinkd.upstream.OVERRIDES`, and
``tests/test_upstream.py`` checks that upstream still has and calls them.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from pathlib import Path

import torch
from torch.utils.data import SequentialSampler
from transformers import Trainer

from clinkd.errors import ClinkdError
from clinkd.train.dataset import ITEM_KINDS
from clinkd.train.distributed import prepare_teacher, repair_weight_conversions
from clinkd.train.losses import causal_lm_loss, distillation_loss


class ClinKDTrainer(Trainer):
    """``Trainer`` whose loss is CE over answer tokens, or the distillation loss when a teacher is given.

    Training stops with a :class:`~clinkd.errors.ClinkdError` as soon as a training loss is not finite
    (the run diverged), and no checkpoint is written from weights that are not all finite.

    Args:
        teacher: a frozen model sharing the student's tokenizer; kept in eval mode, never updated, run on
            every batch (online distillation). Batches that carry cached teacher top-k logits
            (``teacher_topk_values``/``teacher_topk_indices``, offline distillation) need no teacher.
        alpha, temperature: the distillation loss's weights (see :func:`~clinkd.train.losses.distillation_loss`).
        Other arguments are ``Trainer``'s. The training dataset is read in its own order (a
        :class:`~clinkd.train.schedule.ScheduledDataset`), never reshuffled by the Trainer.
    """

    def __init__(self, *args, teacher=None, alpha: float = 0.5, temperature: float = 0.5, **kwargs):
        super().__init__(*args, **kwargs)
        repair_weight_conversions(self.model)  # checkpoints keep their stock tensor names under ZeRO-3 too
        # whole on the device, or partitioned across the processes under DeepSpeed ZeRO-3
        self.teacher = prepare_teacher(teacher, self) if teacher is not None else None
        self.alpha = alpha
        self.temperature = temperature
        # our compute_loss normalises by num_items_in_batch itself: ask the Trainer to count answer tokens
        # across gradient-accumulation micro-batches (and devices) and not to rescale again (an upstream
        # hook: clinkd.upstream)
        self.model_accepts_loss_kwargs = True
        self._parts: dict[str, float] = defaultdict(float)
        self._seen = torch.zeros(
            len(ITEM_KINDS), dtype=torch.long
        )  # items trained on since the last log, by kind
        self._parts_since_step: int | None = None  # the step the parts started at (set on the first batch)
        self._last_log_time = time.perf_counter()

    def _get_train_sampler(self, train_dataset=None):
        """The dataset's own order (a ``ScheduledDataset`` fixes it in advance), never reshuffled.

        Upstream hook (:data:`clinkd.upstream.OVERRIDES`): ``get_train_dataloader`` calls it for the sampler.
        """
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        return SequentialSampler(dataset)

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        """Reload a checkpoint's weights through ``from_pretrained``, whole or sharded.

        The stock method loads ``model.safetensors`` with a plain ``load_state_dict`` (and the shards of
        ``model.safetensors.index.json`` with ``load_sharded_checkpoint``, non-strict); but
        ``save_pretrained`` writes Qwen2-VL weights under their legacy names (``model.layers.*``) while the
        live module calls them ``model.language_model.layers.*`` (platform.md, the key-mapping trap), so
        the weights would silently not load. ``from_pretrained`` applies the key mapping, to one file or to
        the shards a hub-size model is saved in.

        Upstream hook (:data:`clinkd.upstream.OVERRIDES`): ``train(resume_from_checkpoint=…)`` calls it
        before preparing the model (FSDP: after, with the wrapped model; DeepSpeed loads its own way).
        """
        model = model if model is not None else self.model
        folder = Path(resume_from_checkpoint)
        weights = (folder / "model.safetensors").is_file() or (
            folder / "model.safetensors.index.json"
        ).is_file()
        plain = not hasattr(model, "peft_config")  # peft checkpoints hold adapters: the stock path loads them
        if not weights or not plain or self.is_deepspeed_enabled or self.is_fsdp_enabled:
            return super()._load_from_checkpoint(resume_from_checkpoint, model)
        dtype = next(model.parameters()).dtype
        fresh = type(model).from_pretrained(
            resume_from_checkpoint, config=model.config, dtype=dtype, use_safetensors=True
        )  # never a pickle
        model.load_state_dict(fresh.state_dict(), strict=True)
        del fresh

    def compute_loss(self, model, inputs, return_outputs: bool = False, num_items_in_batch=None):
        if self._parts_since_step is None:  # a resumed run starts counting at its checkpoint's step
            self._parts_since_step = self.state.global_step
        inputs = dict(inputs)
        labels = inputs.pop("labels")
        kinds = inputs.pop("item_kind", None)  # (B,) codes of ITEM_KINDS: count what this step trains on
        if kinds is not None and model.training:
            self._seen += torch.bincount(kinds.cpu(), minlength=len(ITEM_KINDS))
        cached = (inputs.pop("teacher_topk_values", None), inputs.pop("teacher_topk_indices", None))
        outputs = model(**inputs)
        logits = outputs.logits  # (B, L, V)
        scale = 1.0
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            # num_items_in_batch counts every device's tokens and DDP averages gradients: undo the average
            scale = float(self.accelerator.num_processes)
        # weight of this micro-batch in the logged per-step parts (a per-micro-batch mean without a count)
        w = scale if num_items_in_batch is not None else 1.0 / max(1, self.args.gradient_accumulation_steps)
        if self.teacher is not None or cached[0] is not None:
            if cached[0] is not None:  # offline distillation: the teacher's top-k logits came with the batch
                teacher_logits = cached
            elif self.teacher is not None:  # always, by the condition above: online distillation
                with torch.no_grad():
                    teacher_logits = self.teacher(**inputs).logits
            parts = distillation_loss(
                logits,
                teacher_logits,
                labels,
                alpha=self.alpha,
                temperature=self.temperature,
                num_items_in_batch=num_items_in_batch,
            )
            loss = parts.loss
            self._parts["ce"] += float(parts.ce) * w
            self._parts["kd"] += float(parts.kl) * w
        else:
            loss = causal_lm_loss(logits, labels, num_items_in_batch)
            self._parts["ce"] += float(loss.detach()) * w
        if model.training:
            self._check_loss(loss.detach())
        loss = loss * scale
        return (loss, outputs) if return_outputs else loss

    def _check_loss(self, loss: torch.Tensor) -> None:
        """Stop a diverged run before its NaN gradients reach the weights (and a checkpoint). With several
        processes the verdict is shared (one tiny all-reduce), so that all stop together instead of the
        others waiting for the one that stopped."""
        value = float(loss)  # the loss parts above already waited for it
        total = value
        if self.args.world_size > 1:
            total = float(self.accelerator.reduce(loss.float().reshape(1), reduction="sum"))
        if not math.isfinite(total):
            step = self.state.global_step + 1
            where = (
                f"the loss is {value}"
                if not math.isfinite(value)
                else "the loss of another process is not finite"
            )
            raise ClinkdError(
                f"training stopped at step {step}: {where}, the run diverged. Lower train.learning_rate (now "
                f"{self.args.learning_rate:g}) or add warm-up (train.warmup_steps); no weights of this step were saved"
            )

    def nonfinite_weights(self, model=None) -> list[str]:
        """Names of the trained parameters (``requires_grad``) that are no longer finite on any process; [] when
        all are. Frozen weights never change, so they are not read."""
        model = model if model is not None else self.model
        named = []
        for n, p in model.named_parameters():
            if p.requires_grad:
                t = getattr(p, "ds_tensor", p)  # DeepSpeed ZeRO-3: this process's partition
                named.append(
                    (n, t.to_local() if hasattr(t, "to_local") else t)
                )  # FSDP2 DTensor: the local shard
        if not named:
            return []
        with torch.no_grad():
            # a sum is NaN/inf when any value is, and needs no tensor-sized temporary (one sync in all)
            bad = torch.stack(
                [~torch.isfinite(t.sum(dtype=torch.float32)).to(self.args.device) for _, t in named]
            )
            if self.args.world_size > 1:  # partitions differ between processes: agree on the verdict
                bad = self.accelerator.reduce(bad.int(), reduction="sum").bool()
        return [n for (n, _), b in zip(named, bad.tolist()) if b]

    def check_weights_finite(self, model=None, what: str = "the model") -> None:
        """Raise a ClinkdError naming some parameters when a trained weight is infinite or NaN (nothing saved)."""
        bad = self.nonfinite_weights(model)
        if bad:
            raise ClinkdError(
                f"training stopped at step {self.state.global_step}: {len(bad)} weight tensors are no longer finite "
                f"numbers (e.g. {', '.join(bad[:3])}), so {what} was not saved; the run diverged: lower "
                f"train.learning_rate (now {self.args.learning_rate:g})"
            )

    def _save_checkpoint(self, model, trial) -> None:
        """The stock checkpoint, refused when a trained weight is not finite (upstream hook:
        :data:`clinkd.upstream.OVERRIDES`)."""
        self.check_weights_finite(what=f"checkpoint-{self.state.global_step}")
        super()._save_checkpoint(model, trial)

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs:  # a training log: add the loss parts and the throughput since the last one
            if self._parts_since_step is None:
                self._parts_since_step = 0
            steps = max(1, self.state.global_step - self._parts_since_step)
            names = sorted(self._parts)
            # loss parts (per-step means) and the items of each kind trained on since the last log, in one
            # tensor: a single gather when every process logs; parts are averaged, counts summed
            # ("seen_correction" counts reflective-correction replays that really reached training)
            values = torch.cat(
                [
                    torch.tensor([self._parts[k] / steps for k in names], dtype=torch.float64),
                    self._seen.to(torch.float64),
                ]
            ).to(self.args.device)
            if self.args.world_size > 1:
                per_process = self.accelerator.gather(values).view(self.args.world_size, -1)
                values = torch.cat(
                    [per_process[:, : len(names)].mean(0), per_process[:, len(names) :].sum(0)]
                )
            parts, seen = values[: len(names)].tolist(), values[len(names) :].tolist()
            for k, v in zip(names, parts):
                logs[k] = round(v, 4)
            for k, v in zip(ITEM_KINDS, seen):
                if v:
                    logs[f"seen_{k}"] = int(v)
            self._seen.zero_()
            now = time.perf_counter()
            n = (self.state.global_step - self._parts_since_step) * self.args.train_batch_size
            n *= self.args.gradient_accumulation_steps * self.args.world_size
            logs["samples_per_s"] = round(n / max(now - self._last_log_time, 1e-9), 2)
            self._parts = defaultdict(float)
            self._parts_since_step = self.state.global_step
            self._last_log_time = now
        super().log(logs, start_time)
