"""Batched answer generation for any clinkd / Qwen2-VL-family model.

One function serves pseudo-labelling (greedy), reflective correction (several sampled candidates per
question) and inference. Several candidates of one prompt come from a single ``generate`` call with
``num_return_sequences``, so they share the prompt's prefill.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from clinkd.model.processor import build_batch

# Text that ends an answer: the chat template closes every turn with <|im_end|>.
STOP_STRINGS = ("<|im_end|>", "<|endoftext|>")


def clean_generated(text: str, pad_token: str | None = None) -> str:
    """The answer part of decoded text: everything before the first end-of-turn marker, padding removed."""
    for stop in STOP_STRINGS:
        i = text.find(stop)
        if i >= 0:
            text = text[:i]
    if pad_token:
        text = text.replace(pad_token, "")
    return text.strip()


def generate_batch(model, processor, images: Sequence, questions: Sequence[str], **gen_kwargs) -> list[str]:
    """One ``model.generate`` call on one batch; the cleaned answers, ``num_return_sequences`` per question
    in a row (question-major: ``(b * n,)``).

    ``gen_kwargs`` go to ``generate`` (``max_new_tokens``, ``do_sample``, ``logits_processor``, ...); the stop
    token (``<|im_end|>``) and padding are set here. The caller handles eval mode and ``no_grad``.
    """
    tok = processor.tokenizer
    end_id = tok.convert_tokens_to_ids("<|im_end|>")
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else end_id
    device = next(model.parameters()).device
    batch = build_batch(processor, list(images), list(questions))
    batch = {k: v.to(device) for k, v in batch.items()}
    seqs = model.generate(**batch, eos_token_id=end_id, pad_token_id=pad_id, **gen_kwargs)  # (b * n, L + new)
    new = seqs[:, batch["input_ids"].shape[1] :]
    texts = tok.batch_decode(new, skip_special_tokens=False, clean_up_tokenization_spaces=False)
    return [clean_generated(t, tok.pad_token) for t in texts]


@torch.no_grad()
def generate_answers(
    model,
    processor,
    images: Sequence,
    questions: Sequence[str],
    *,
    max_new_tokens: int = 128,
    batch_size: int = 16,
    num_return_sequences: int = 1,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_p: float = 1.0,
    progress: bool | str = False,
) -> list[list[str]]:
    """Answer each (image, question); returns, per question, ``num_return_sequences`` answers.

    Greedy unless ``do_sample``. Answers keep their box/ref markup (special tokens are not skipped, so
    ``<|box_start|>`` survives) and stop at ``<|im_end|>``. The model is put in eval mode for the call
    and restored afterwards; seed torch before calling for reproducible sampling.

    Args:
        images: one PIL image (or None) per question.
        questions: question texts without the ``<img>`` tag.
    """
    if len(images) != len(questions):
        raise ValueError(f"{len(images)} images for {len(questions)} questions")
    if num_return_sequences > 1 and not do_sample:
        raise ValueError("several answers per question need do_sample=True (greedy decoding gives one)")
    was_training = model.training
    model.eval()
    out: list[list[str]] = []
    starts = range(0, len(questions), batch_size)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc=progress if isinstance(progress, str) else "generate", unit="batch", leave=False)
    gen_kwargs = dict(max_new_tokens=max_new_tokens, do_sample=do_sample, num_return_sequences=num_return_sequences)
    if do_sample:
        gen_kwargs.update(temperature=temperature, top_p=top_p, top_k=0)
    n = num_return_sequences
    try:
        for start in starts:
            texts = generate_batch(model, processor, images[start : start + batch_size],
                                   questions[start : start + batch_size], **gen_kwargs)
            out += [texts[i : i + n] for i in range(0, len(texts), n)]
    finally:
        model.train(was_training)
    return out
