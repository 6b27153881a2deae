"""Which ``checkpoint-N`` folders a run can resume from.

transformers' ``get_last_checkpoint`` picks the highest ``checkpoint-N`` by its name alone; a run killed
while saving leaves that folder empty or half written, and resuming from it fails or — without
``optimizer.pt`` — silently continues with a fresh optimizer. :func:`last_complete_checkpoint` picks the
newest *complete* one instead and logs every newer folder it skips, and why.

A checkpoint folder is complete when (:func:`checkpoint_problem` returns None):

* ``trainer_state.json`` is there and parses, with an integer ``global_step`` (the Trainer writes it
  last, after the weights, optimizer, scheduler and random states);
* its weights are whole: ``model.safetensors``, or ``model.safetensors.index.json`` and every shard it
  names (likewise ``pytorch_model.bin[.index.json]``, peft's ``adapter_model.*``); each safetensors file
  holds every byte its header announces (not cut short);
* the optimizer state is there: ``optimizer.pt`` (or FSDP/DeepSpeed/SageMaker's variants: ``optimizer.bin``,
  ``optimizer_0/``, ``rank*-of-*-optimizer.pt``, a DeepSpeed ``latest`` naming an existing folder), and
  ``scheduler.pt`` (DeepSpeed keeps its own scheduler in its folder). A folder without them — e.g. one
  written with ``save_only_model`` — is *incomplete*: resuming from it would restart the optimizer.
"""

from __future__ import annotations

import json
import logging
import re
import struct
from pathlib import Path

log = logging.getLogger(__name__)

_CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")


def checkpoint_folders(out: str | Path) -> list[Path]:
    """``out``'s ``checkpoint-N`` folders, newest (highest N) first."""
    out = Path(out)
    if not out.is_dir():
        return []
    found = [
        (int(m.group(1)), p) for p in out.iterdir() if p.is_dir() and (m := _CHECKPOINT_RE.match(p.name))
    ]
    return [p for _, p in sorted(found, reverse=True)]


def _safetensors_problem(path: Path) -> str | None:
    """Why a safetensors file is not whole (None when it is): missing, or shorter than its header says."""
    if not path.is_file():
        return f"{path.name} is missing"
    size = path.stat().st_size
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                return f"{path.name} is cut short ({size} bytes)"
            (n,) = struct.unpack("<Q", head)
            if n > size - 8:
                return f"{path.name} is cut short (header of {n} bytes, file of {size})"
            header = json.loads(f.read(n))
    except (OSError, ValueError) as err:
        return f"{path.name} is unreadable ({err})"
    end = max((int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"), default=0)
    if size < 8 + n + end:
        return f"{path.name} is cut short ({size} of {8 + n + end} bytes)"
    return None


def _weights_problem(folder: Path) -> str | None:
    for index in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        p = folder / index
        if p.exists():
            try:
                shards = sorted(set(json.loads(p.read_text(encoding="utf-8"))["weight_map"].values()))
            except (OSError, ValueError, KeyError, AttributeError) as err:
                return f"{index} is unreadable ({err})"
            for shard in shards:
                if shard.endswith(".safetensors"):
                    problem = _safetensors_problem(folder / shard)
                    if problem:
                        return f"{problem} (a shard {index} names)"
                elif not (folder / shard).is_file():
                    return f"{shard} is missing (a shard {index} names)"
            return None
    for name in ("model.safetensors", "adapter_model.safetensors"):
        if (folder / name).exists():
            return _safetensors_problem(folder / name)
    if any((folder / n).is_file() for n in ("pytorch_model.bin", "adapter_model.bin")):
        return None
    if _deepspeed_folder(folder) is not None or any(folder.glob("pytorch_model_fsdp*")):
        return None  # DeepSpeed (ZeRO-3 writes no whole weights) or FSDP keep the weights in their own files
    return "it holds no model weights (model.safetensors or model.safetensors.index.json)"


def _deepspeed_folder(folder: Path) -> Path | None:
    latest = folder / "latest"
    if not latest.is_file():
        return None
    try:
        tag = latest.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return folder / tag if tag and (folder / tag).is_dir() else None


def _optimizer_problem(folder: Path) -> str | None:
    if _deepspeed_folder(folder) is not None:
        return None  # DeepSpeed keeps the optimizer (and its scheduler) in latest's folder
    optimizer = (
        (folder / "optimizer.pt").is_file()
        or (folder / "optimizer.bin").is_file()
        or any(folder.glob("optimizer.pt_*"))
        or any(folder.glob("rank*-of-*-optimizer.pt"))
        or any(p.is_dir() for p in folder.glob("optimizer_*"))
    )
    if not optimizer:
        return "optimizer.pt is missing (resuming would restart the optimizer)"
    if not (folder / "scheduler.pt").is_file():
        return "scheduler.pt is missing (resuming would restart the learning-rate schedule)"
    return None


def checkpoint_problem(folder: str | Path) -> str | None:
    """Why ``folder`` is not a complete checkpoint (see the module docstring), or None when it is."""
    folder = Path(folder)
    if not folder.is_dir():
        return "it is not a folder"
    if not any(folder.iterdir()):
        return "it is empty (the run was stopped while saving it?)"
    state = folder / "trainer_state.json"
    if not state.is_file():
        return "trainer_state.json is missing (the run was stopped while saving it?)"
    try:
        step = json.loads(state.read_text(encoding="utf-8"))["global_step"]
        if not isinstance(step, int):
            raise ValueError(f"global_step is {step!r}")
    except (OSError, ValueError, KeyError, TypeError) as err:
        return f"trainer_state.json is unreadable ({err}; the run was stopped while saving it?)"
    return _weights_problem(folder) or _optimizer_problem(folder)


def last_complete_checkpoint(out: str | Path) -> tuple[Path | None, list[tuple[Path, str]]]:
    """``(the newest complete checkpoint folder of out or None, [(newer folder skipped, why), ...])``.

    Every skipped folder is logged as a warning naming it and the reason.
    """
    skipped: list[tuple[Path, str]] = []
    for folder in checkpoint_folders(out):
        problem = checkpoint_problem(folder)
        if problem is None:
            return folder, skipped
        log.warning("skipping the incomplete checkpoint %s: %s", folder, problem)
        skipped.append((folder, problem))
    return None, skipped
