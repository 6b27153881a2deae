"""``clinkd.model.load``: a local Qwen-VL checkpoint → its MCG-RoPE model and processor, in one call.

A model folder is read defensively: its JSON files must parse as objects, its weights are safetensors
only — each file checked whole before loading, every shard an index names present, every tensor of the
shape the config describes — and its chat template must render. A PyTorch pickle
(``pytorch_model.bin``) is never unpickled: loading one can run arbitrary code. Each problem is a
one-line :class:`ModelLoadError` naming the file.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, NamedTuple, cast

from huggingface_hub.errors import StrictDataclassClassValidationError, StrictDataclassFieldValidationError
from safetensors import SafetensorError

from clinkd.errors import ClinkdError
from clinkd.model.modeling import MODEL_CLASSES, RopeSettings, get_rope_settings, set_rope_settings
from clinkd.model.processor import ClinkdProcessor, check_pixel_budget, resolve_pixel_budget, set_pixel_budget

__all__ = ["LoadedModel", "ModelLoadError", "load"]

log = logging.getLogger(__name__)


class ModelLoadError(ClinkdError):
    """A model directory that cannot be loaded; the message says why."""


#: JSON files of a model folder that must each parse as one object (tokenizer.json, large, is read by tokenizers)
JSON_FILES = (
    "generation_config.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "preprocessor_config.json",
    "processor_config.json",
    "video_preprocessor_config.json",
    "chat_template.json",
)

#: a conversation the chat template must render: an image, a question, an answer
_PROBE = [
    {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Where is the liver?"}]},
    {"role": "assistant", "content": [{"type": "text", "text": "The liver is at the upper left."}]},
]


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())


def read_json_object(path: Path) -> dict:
    """``path`` parsed as a JSON object; a ModelLoadError naming the file when it is not one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:  # ValueError: not UTF-8, or not JSON
        raise ModelLoadError(f"{path} is not readable JSON: {_one_line(err)}") from None
    except RecursionError:
        raise ModelLoadError(f"{path} is not readable JSON: nested too deeply") from None
    if not isinstance(data, dict):
        raise ModelLoadError(f"{path} is not a JSON object (it holds a {type(data).__name__})")
    return data


SAFE_WEIGHTS = "model.safetensors"
SAFE_INDEX = "model.safetensors.index.json"


def check_weights(directory: Path) -> list[Path]:
    """The safetensors files ``from_pretrained`` reads (``model.safetensors``, else the shards of
    ``model.safetensors.index.json``), each checked whole: its header parses and its data covers every
    tensor. A ModelLoadError naming the file when one is damaged or missing, or when the folder holds
    PyTorch pickle weights only — those are never unpickled (loading a pickle can run any code)."""
    single, index = directory / SAFE_WEIGHTS, directory / SAFE_INDEX
    if single.exists():
        files = [single]
    elif index.exists():
        files = _index_shards(index)
    else:
        pickles = sorted(p.name for p in directory.iterdir() if p.name.startswith("pytorch_model"))
        if pickles:
            raise ModelLoadError(
                f"{directory / pickles[0]}: PyTorch pickle weights, which clinkd does not load (unpickling a file "
                f"can run any code); use the checkpoint's safetensors files ({SAFE_WEIGHTS}), or convert the "
                "weights to safetensors where you trust them"
            )
        raise ModelLoadError(f"{directory} holds no model weights ({SAFE_WEIGHTS} or {SAFE_INDEX})")
    for f in files:
        _check_safetensors(f)
    return files


def _index_shards(index: Path) -> list[Path]:
    """The shard files ``index`` names, each inside the model folder and present."""
    data = read_json_object(index)
    weight_map = data.get("weight_map")
    if (
        not isinstance(weight_map, dict)
        or not weight_map
        or not all(isinstance(v, str) for v in weight_map.values())
    ):
        raise ModelLoadError(f'{index}: no "weight_map" of tensor names to shard file names')
    folder = index.parent.resolve()
    shards = []
    for name in sorted(set(weight_map.values())):
        path = index.parent / name
        if Path(name).is_absolute() or not path.resolve().is_relative_to(folder):
            raise ModelLoadError(f"{index}: shard {name!r} is not a file of the model folder")
        if not path.is_file():
            raise ModelLoadError(
                f"{index}: names the shard {name}, which is missing (an incomplete download?)"
            )
        shards.append(path)
    return shards


def _check_safetensors(path: Path) -> None:
    """A ModelLoadError naming ``path`` unless it is a whole safetensors file (header and every byte)."""
    from safetensors import safe_open

    if not path.is_file():
        raise ModelLoadError(f"{path} is not a file")
    try:
        with safe_open(str(path), framework="pt"):
            pass  # opening parses the header and checks that the data covers every tensor it declares
    except (SafetensorError, OSError) as err:
        raise ModelLoadError(
            f"{path}: not a whole safetensors file ({_one_line(err)}); the file is damaged or "
            "cut short: copy or download it again"
        ) from None


def chat_template_file(directory: Path) -> Path:
    """The file the chat template of ``directory`` comes from (for messages)."""
    for name in ("chat_template.jinja", "chat_template.json"):
        if (directory / name).is_file():
            return directory / name
    return directory / "tokenizer_config.json"


def check_chat_template(processor, directory: Path) -> None:
    """Render a short conversation with the processor's chat template: a template transformers' sandbox
    blocks (one reaching into Python objects), or one that does not parse or raises, is a ModelLoadError
    naming its file now, not a traceback at the first training batch or answer."""
    import jinja2

    if not getattr(processor, "chat_template", None):
        return
    try:
        processor.apply_chat_template(_PROBE, tokenize=False, add_generation_prompt=False)
    except jinja2.TemplateError as err:
        sandbox = isinstance(err, jinja2.exceptions.SecurityError)
        blocked = " (blocked by transformers' template sandbox)" if sandbox else ""
        raise ModelLoadError(
            f"{chat_template_file(directory)}: the chat template cannot be used{blocked}: {type(err).__name__}: "
            f"{_one_line(err)}; restore the checkpoint's own chat template"
        ) from None


class LoadedModel(NamedTuple):
    """What :func:`load` returns; unpacks as ``model, processor = load(path)``."""

    model: Any
    processor: ClinkdProcessor | None


def load(
    path: str | os.PathLike,
    rope: RopeSettings | dict | str | None = None,
    *,
    dtype: Any = None,
    device_map: Any = None,
    with_processor: bool = True,
    min_pixels: int | None = None,
    max_pixels: int | None = None,
    **kwargs,
) -> LoadedModel:
    """Load a Qwen2-VL / Qwen2.5-VL / Qwen3-VL directory as the matching MCG-RoPE model class.

    Args:
        path: a local model directory (``config.json`` + safetensors; a stock Qwen2-VL-2B/7B-Instruct,
            Qwen2.5-VL or Qwen3-VL download, or a directory saved by clinkd). Nothing is downloaded.
        rope: ``None`` keeps the scheme the checkpoint was saved with (``config.clinkd_rope``), and uses
            the ClinKD release setting (MCG-RoPE, gaps 2, strides 1) for a stock checkpoint; ``"mcg"`` or
            ``"stock"`` (alias ``"mrope"``), or a dict of :class:`RopeSettings` fields, overrides it.
        dtype: passed to ``from_pretrained`` (e.g. ``torch.bfloat16``, ``"auto"``); ``None``: its default.
        device_map: passed to ``from_pretrained`` (e.g. ``"auto"``); ``None``: no dispatch.
        with_processor: also load the tokenizer + image processor of ``path`` (image-only
            :class:`ClinkdProcessor`); ``None`` in the result when ``False``.
        min_pixels, max_pixels: the image budget (resized area in pixels) the processor applies. ``None``:
            a real checkpoint (saved ``max_pixels`` above 1024·1024, e.g. the hub's 12,845,056) gets the
            ClinKD release budget 512·512 .. 1024·1024; a folder within it (tiny models, clinkd-saved
            fine-tunes, which record the budget they trained with) keeps its own
            (:func:`~clinkd.model.processor.resolve_pixel_budget`).
        **kwargs: further ``from_pretrained`` arguments (e.g. ``attn_implementation``).

    Returns:
        :class:`LoadedModel` ``(model, processor)``.
    """
    check_pixel_budget(min_pixels, max_pixels)
    directory = Path(path)
    if not directory.is_dir():
        raise ModelLoadError(
            f"{str(path)!r} is not a local directory. clinkd loads models offline only (no hub access at run "
            "time): download the checkpoint elsewhere (e.g. `huggingface-cli download Qwen/Qwen2-VL-2B-Instruct "
            "--local-dir DIR`) or build a tiny one with `clinkd model init`, and pass the local directory"
        )
    config_file = directory / "config.json"
    if not config_file.is_file():
        raise ModelLoadError(f"{directory} has no config.json: not a transformers model directory")
    raw = read_json_object(config_file)
    for name in JSON_FILES:  # transformers would ignore some of them silently, or fail with a traceback
        if (directory / name).exists() and (with_processor or name == "generation_config.json"):
            read_json_object(directory / name)
    model_type = raw.get("model_type")
    if not isinstance(model_type, str) or model_type not in MODEL_CLASSES:
        raise ModelLoadError(
            f"{config_file} has model_type {model_type!r}; clinkd supports {sorted(MODEL_CLASSES)}"
        )
    weight_files = check_weights(directory)
    cls, _ = MODEL_CLASSES[model_type]
    config_class = cls.config_class
    if config_class is None:  # every class of MODEL_CLASSES names its config class
        raise ModelLoadError(f"{cls.__name__} has no config class")
    try:
        config = config_class.from_pretrained(directory, local_files_only=True)
    except (
        OSError,
        ValueError,
        TypeError,
        StrictDataclassFieldValidationError,
        StrictDataclassClassValidationError,
    ) as err:
        raise ModelLoadError(
            f"{config_file}: not a valid {model_type} configuration: {_one_line(err)}"
        ) from err
    settings = RopeSettings.from_value(rope) if rope is not None else get_rope_settings(config)
    set_rope_settings(config, settings)
    load_kwargs = dict(kwargs, config=config, local_files_only=True, use_safetensors=True)
    # mismatched shapes come back in the loading info (and are refused below) instead of a RuntimeError
    report_mismatch = "ignore_mismatched_sizes" not in kwargs  # a caller asking for re-initialisation gets it
    load_kwargs.setdefault("ignore_mismatched_sizes", True)
    if dtype is not None:
        load_kwargs["dtype"] = dtype
    if device_map is not None:
        load_kwargs["device_map"] = device_map
    try:
        # output_loading_info=True: (model, loading info), which transformers' annotation leaves out
        loaded = cls.from_pretrained(directory, output_loading_info=True, **load_kwargs)
        model, info = cast("tuple[Any, dict[str, Any]]", loaded)
    except (OSError, ValueError, SafetensorError) as err:
        raise ModelLoadError(f"cannot load the model weights of {directory}: {_one_line(err)}") from err
    mismatched = sorted(info.get("mismatched_keys") or [], key=lambda m: m[0])
    if mismatched and report_mismatch:
        key, got, want = mismatched[0]
        where = weight_files[0] if len(weight_files) == 1 else directory / SAFE_INDEX
        raise ModelLoadError(
            f"{where}: weight {key} has shape {list(got)} where the model of {config_file.name} has {list(want)} "
            f"({len(mismatched)} tensor(s) differ); the weights and config.json are of different models"
        )
    missing = sorted(info.get("missing_keys") or [])
    if missing:  # from_pretrained only warns; a silently re-initialised tensor is a broken model
        raise ModelLoadError(
            f"{directory}: {len(missing)} weights are missing from the checkpoint (e.g. {missing[:3]}); it does "
            f"not match {cls.__name__}"
        )
    if info.get("unexpected_keys"):
        log.warning(
            "%s: ignored %d unexpected weights (e.g. %s)",
            directory,
            len(info["unexpected_keys"]),
            sorted(info["unexpected_keys"])[:3],
        )
    processor = None
    if with_processor:
        try:
            processor = ClinkdProcessor.from_pretrained(directory, local_files_only=True)
        except (OSError, ValueError, TypeError) as err:
            raise ModelLoadError(
                f"cannot load the tokenizer/image processor of {directory}: {_one_line(err)} (pass "
                "with_processor=False to load the model alone)"
            ) from err
        check_chat_template(processor, directory)
        lo, hi = resolve_pixel_budget(processor, min_pixels, max_pixels)
        set_pixel_budget(processor, lo, hi)
        log.info(
            "%s: images resized into %d..%d pixels (at most %d visual tokens each)",
            directory,
            lo,
            hi,
            hi // (processor.image_processor.patch_size * processor.image_processor.merge_size) ** 2,
        )
    return LoadedModel(model, processor)
