"""Batched answer generation for any clinkd / Qwen2-VL-family model.

One function serves pseudo-labelling (greedy), reflective correction (several sampled candidates per
question) and inference. Several candidates of one prompt come from a single ``generate`` call after one
shared prefill of the prompt (:func:`prefill_shared_cache`).

Decoding settings are complete and explicit. transformers' ``generate`` fills every setting left unset
from ``model.generation_config`` (``_prepare_generation_config``), so a checkpoint's
``generation_config.json`` (Qwen2.5-VL ships ``repetition_penalty`` 1.05, sampling on, temperature 1e-6)
would leak into "greedy" decoding. :func:`generate_batch` therefore swaps in a neutral
``GenerationConfig`` carrying only the token ids for the duration of the call
(:func:`neutral_generation_config`) and passes every output-changing field explicitly
(:func:`decoding_settings`): greedy here is a plain argmax decode.

What this relies on in transformers' internals is in :mod:`clinkd.upstream` (``generation_hooks``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, cast

import torch
from transformers import DynamicCache, GenerationConfig

from clinkd.data.conventions import BoxCodec, Reading
from clinkd.data.sample import check_question
from clinkd.infer.defaults import DEFAULTS
from clinkd.model.processor import box_codec, build_batch
from clinkd.upstream import (
    clear_rope_deltas,
    generation_config_owner,
    generation_defaults,
    has_stored_rope_deltas,
    repeat_cache_rows,
    repeat_rope_deltas,
)

# Text that ends an answer: the chat template closes every turn with <|im_end|>.
STOP_STRINGS = ("<|im_end|>", "<|endoftext|>")

#: Every generation field that changes which tokens come out, at its neutral value. Callers override
#: ``max_new_tokens``, ``do_sample``, ``temperature``, ``top_p``, ``top_k``, ``num_return_sequences``.
NEUTRAL_DECODING: dict[str, Any] = {
    "do_sample": False,
    "num_beams": 1,
    "num_beam_groups": 1,
    "temperature": 1.0,
    "top_k": None,
    "top_p": 1.0,
    "min_p": None,
    "typical_p": 1.0,
    "epsilon_cutoff": 0.0,
    "eta_cutoff": 0.0,
    "repetition_penalty": 1.0,
    "encoder_repetition_penalty": 1.0,
    "no_repeat_ngram_size": 0,
    "encoder_no_repeat_ngram_size": 0,
    "length_penalty": 1.0,
    "diversity_penalty": 0.0,
    "min_length": 0,
    "min_new_tokens": None,
    "bad_words_ids": None,
    "suppress_tokens": None,
    "begin_suppress_tokens": None,
    "forced_bos_token_id": None,
    "forced_eos_token_id": None,
    "exponential_decay_length_penalty": None,
    "sequence_bias": None,
    "renormalize_logits": False,
    "remove_invalid_values": False,
    "guidance_scale": None,
    "watermarking_config": None,
    "low_memory": None,
    "penalty_alpha": None,
    "dola_layers": None,
    "prompt_lookup_num_tokens": None,
    "max_length": None,
    "stop_strings": None,
    "token_healing": False,
}


def decoding_settings(
    *,
    max_new_tokens: int,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_p: float = 1.0,
    top_k: int = 0,
    num_return_sequences: int = 1,
) -> dict[str, Any]:
    """The complete decoding settings of one call (JSON-serialisable): :data:`NEUTRAL_DECODING` with the
    given values. Greedy (``do_sample=False``) ignores temperature/top-p/top-k, which stay neutral
    (``top_k`` None: no top-k filter)."""
    s = dict(
        NEUTRAL_DECODING,
        max_new_tokens=int(max_new_tokens),
        do_sample=bool(do_sample),
        num_return_sequences=int(num_return_sequences),
    )
    if do_sample:
        s.update(temperature=float(temperature), top_p=float(top_p), top_k=int(top_k))
    return s


@contextlib.contextmanager
def neutral_generation_config(model, eos_token_id, pad_token_id) -> Iterator[GenerationConfig]:
    """Swap ``model.generation_config`` for one holding only the token ids while the block runs
    (upstream hook: :func:`clinkd.upstream.generation_defaults`)."""
    old = getattr(generation_config_owner(model), "generation_config", None)
    bos = getattr(old, "bos_token_id", None) if old is not None else None
    neutral = GenerationConfig(eos_token_id=eos_token_id, pad_token_id=pad_token_id, bos_token_id=bos)
    with generation_defaults(model, neutral) as config:
        yield config


def clean_generated(text: str, pad_token: str | None = None) -> str:
    """The answer part of decoded text: everything before the first end-of-turn marker, padding removed."""
    for stop in STOP_STRINGS:
        i = text.find(stop)
        if i >= 0:
            text = text[:i]
    if pad_token:
        text = text.replace(pad_token, "")
    return text.strip()


class Answer(str):
    """A generated answer: the text in Med-GRIT form (``<ref>..</ref><box>(x1,y1),(x2,y2)</box>``, 0–1000 of
    the original image) is the string itself; ``raw`` is what the model wrote, in its own box convention,
    and ``reading`` says which boxes were read and what could not be."""

    raw: str
    reading: Reading

    def __new__(cls, text: str, raw: str | None = None, reading: Reading | None = None):
        obj = super().__new__(cls, text)
        obj.raw = text if raw is None else raw
        obj.reading = reading if reading is not None else Reading(text)
        return obj


def _size(image) -> tuple[int, int] | None:
    """``(width, height)`` of a question's image; of the first one when it has several (boxes refer to one
    image, and the multi-image samples, report studies, carry none: issue 16)."""
    if isinstance(image, (list, tuple)):
        image = image[0] if image else None
    size = getattr(image, "size", None)
    return (int(size[0]), int(size[1])) if isinstance(size, tuple) and len(size) == 2 else None


def generate_batch(
    model,
    processor,
    images: Sequence,
    questions: Sequence[str],
    *,
    share_prefill: bool = True,
    boxes: BoxCodec | str | None = "auto",
    **gen_kwargs,
) -> list[Answer]:
    """One ``model.generate`` call on one batch; the cleaned answers, ``num_return_sequences`` per question
    in a row (question-major: ``(b * n,)``).

    Boxes cross the model's boundary here (``boxes``, default ``"auto"``: the model's own convention,
    :func:`~clinkd.model.processor.box_codec`). ``images``: one image (or None) per question, or a list
    of images for a question about several (each gets its own slot, in order, before the question;
    boxes are converted for the first one's size). The questions, in Med-GRIT form, are written in the
    model's convention for their image's resized size, and each answer is read back into Med-GRIT form
    (:class:`Answer`; its ``raw`` keeps the model's text). ``None``: questions and answers pass unchanged.

    ``gen_kwargs`` go to ``generate`` (``max_new_tokens``, ``do_sample``, ``temperature``, ``top_p``, ``top_k``,
    ``num_return_sequences``, and non-setting arguments such as ``logits_processor``); every other
    decoding field is set to its neutral value (:func:`decoding_settings`) and the model's own
    ``generation_config`` is out of play for the call (:func:`neutral_generation_config`). The stop token
    (``<|im_end|>``) and padding are set here. The caller handles eval mode and ``no_grad``.

    With ``num_return_sequences = n > 1`` and ``share_prefill`` the ``n`` answers of a prompt share its
    prefill (:func:`prefill_shared_cache`): the prompt runs once through the model, its KV cache is copied
    ``n`` times, and ``generate`` goes on from there. Plain ``generate`` would repeat every prompt ``n``
    times before the first forward (``_expand_inputs_for_generation``) and prefill ``n·b`` rows.
    """

    for q in questions:
        check_question(q)
    tok = processor.tokenizer
    end_id = tok.convert_tokens_to_ids("<|im_end|>")
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else end_id
    setting_keys = ("max_new_tokens", "do_sample", "temperature", "top_p", "top_k", "num_return_sequences")
    unknown = set(gen_kwargs) & (set(NEUTRAL_DECODING) - set(setting_keys))
    if unknown:
        raise ValueError(f"generate_batch sets {sorted(unknown)} itself (neutral decoding)")
    settings = decoding_settings(
        max_new_tokens=gen_kwargs.pop("max_new_tokens", DEFAULTS.max_new_tokens),
        **{k: gen_kwargs.pop(k) for k in setting_keys[1:] if k in gen_kwargs},
    )
    gen_kwargs = {**gen_kwargs, **settings}
    device = next(model.parameters()).device
    # the only string boxes takes is "auto"
    codec = box_codec(model, processor) if boxes == "auto" else cast("BoxCodec | None", boxes)
    sizes = [_size(im) for im in images]
    if codec is not None and codec.convert_questions:
        questions = [codec.to_model(q, sz) for q, sz in zip(questions, sizes)]
    batch = build_batch(processor, list(images), list(questions))
    batch = {k: v.to(device) for k, v in batch.items()}
    prompt_len = batch["input_ids"].shape[1]
    n = int(gen_kwargs.get("num_return_sequences") or 1)
    # the cache trick needs the Qwen-VL inner model's stored rope_deltas (not there on, e.g., a peft wrapper)
    if share_prefill and n > 1 and prompt_len > 1 and has_stored_rope_deltas(model):
        gen_kwargs = {**gen_kwargs, "num_return_sequences": 1}
        batch = prefill_shared_cache(model, batch, n)
    with neutral_generation_config(model, end_id, pad_id):
        seqs = model.generate(
            **batch, eos_token_id=end_id, pad_token_id=pad_id, **gen_kwargs
        )  # (b * n, L + new)
    new = seqs[:, prompt_len:]
    texts = [
        clean_generated(t, tok.pad_token)
        for t in tok.batch_decode(new, skip_special_tokens=False, clean_up_tokenization_spaces=False)
    ]
    if codec is None:
        return [Answer(t) for t in texts]
    per = max(1, len(texts) // max(1, len(sizes)))
    readings = [codec.read(t, sizes[i // per]) for i, t in enumerate(texts)]
    return [Answer(r.text, t, r) for r, t in zip(readings, texts)]


def prefill_shared_cache(model, batch: dict[str, torch.Tensor], n: int) -> dict[str, Any]:
    """Run a batch's prompts once and return ``generate`` inputs for ``n`` continuations of each.

    The prompts but their last token go through the model (image included) into a ``DynamicCache``;
    the cache, the inner model's ``rope_deltas`` and the text inputs are repeated ``n`` times per row
    (question-major, as ``num_return_sequences`` orders them). ``generate`` given that cache feeds only
    the last prompt token, whose 3D position it takes from the stored ``rope_deltas`` (transformers 5.23,
    ``_prepare_position_ids_for_generation``), so every row decodes exactly as it would after its own
    prefill. The last token stays out of the prefill because ``generate`` needs one uncached token to start.
    Upstream hooks: :func:`clinkd.upstream.clear_rope_deltas`, :func:`~clinkd.upstream.repeat_rope_deltas`,
    :func:`~clinkd.upstream.repeat_cache_rows`.

    Args:
        batch: :func:`~clinkd.model.processor.build_batch` output on the model's device (b rows).
    Returns:
        ``input_ids``, ``attention_mask`` and ``mm_token_type_ids`` with ``n·b`` rows, and
        ``past_key_values`` holding ``L − 1`` positions for each.
    """
    text_keys = [k for k in ("input_ids", "attention_mask", "mm_token_type_ids") if k in batch]
    head = {k: (v[:, :-1] if k in text_keys else v) for k, v in batch.items()}
    cache = DynamicCache(config=model.config)
    clear_rope_deltas(model)  # computed afresh from this prompt
    model(**head, past_key_values=cache, use_cache=True, logits_to_keep=1)
    repeat_cache_rows(cache, n)  # (b, H, L − 1, D) → (n·b, H, L − 1, D) per layer
    repeat_rope_deltas(model, n)  # (b, 1) → (n·b, 1)
    out: dict[str, Any] = {k: batch[k].repeat_interleave(n, dim=0) for k in text_keys}
    out["past_key_values"] = cache
    return out


@torch.no_grad()
def generate_answers(
    model,
    processor,
    images: Sequence,
    questions: Sequence[str],
    *,
    max_new_tokens: int = DEFAULTS.max_new_tokens,
    batch_size: int = 16,
    num_return_sequences: int = 1,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_p: float = 1.0,
    progress: bool | str = False,
    boxes: BoxCodec | str | None = "auto",
) -> list[list[Answer]]:
    """Answer each (image, question); returns, per question, ``num_return_sequences`` answers.

    Greedy unless ``do_sample``. Questions and answers are in Med-GRIT form, converted at the model's
    boundary (``boxes``, see :func:`generate_batch`); answers stop at ``<|im_end|>``. The model is put in eval mode for the call
    and restored afterwards; seed torch before calling for reproducible sampling.

    Args:
        images: one PIL image (or None) per question, or a list of images for a question about several
            (a report study's views, issue 16).
        questions: question texts without the ``<img>`` tag.
    """
    if len(images) != len(questions):
        raise ValueError(f"{len(images)} images for {len(questions)} questions")
    if num_return_sequences > 1 and not do_sample:
        raise ValueError("several answers per question need do_sample=True (greedy decoding gives one)")
    was_training = model.training
    model.eval()
    out: list[list[Answer]] = []
    starts: Iterable[int] = range(0, len(questions), batch_size)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(
            starts, desc=progress if isinstance(progress, str) else "generate", unit="batch", leave=False
        )
    gen_kwargs: dict[str, Any] = dict(
        max_new_tokens=max_new_tokens, do_sample=do_sample, num_return_sequences=num_return_sequences
    )
    if do_sample:
        gen_kwargs.update(temperature=temperature, top_p=top_p, top_k=0)
    n = num_return_sequences
    try:
        for start in starts:
            texts = generate_batch(
                model,
                processor,
                images[start : start + batch_size],
                questions[start : start + batch_size],
                boxes=boxes,
                **gen_kwargs,
            )
            out += [texts[i : i + n] for i in range(0, len(texts), n)]
    finally:
        model.train(was_training)
    return out
