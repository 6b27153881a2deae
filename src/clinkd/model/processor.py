"""An image-only Qwen2-VL processor, its chat template, and batch building for training / generation.

``Qwen2VLProcessor`` insists on a torchvision video processor, which these CPU machines lack (see
docs/platform.md). :class:`ClinkdProcessor` subclasses it without the video part: it turns chat-formatted
text plus images into ``input_ids``, ``attention_mask``, ``mm_token_type_ids``, ``pixel_values`` and
``image_grid_thw``, saves and loads like any processor, and serves real Qwen2-VL checkpoints as well as
the tiny models.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import Qwen2VLProcessor
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

__all__ = ["CHAT_TEMPLATE", "IGNORE_INDEX", "ClinkdProcessor", "build_batch", "make_image_processor"]

IGNORE_INDEX = -100

#: Qwen2-VL's chat format (image-only): default system prompt, ``<|vision_start|><|image_pad|><|vision_end|>``
#: for each ``{"type": "image"}`` item, ``<|im_start|>assistant\n`` as the generation prompt.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for item in message['content'] %}"
    "{% if item['type'] == 'image' or 'image' in item %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif item['type'] == 'video' %}{{ raise_exception('clinkd processors are image-only') }}"
    "{% elif 'text' in item %}{{ item['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def make_image_processor(
    min_pixels: int = 56 * 56, max_pixels: int = 224 * 224, patch_size: int = 14, merge_size: int = 2
) -> Qwen2VLImageProcessorPil:
    """Qwen2-VL image processor (PIL backend); the defaults turn a 224×224 image into 8×8 = 64 tokens.

    ``min_pixels``/``max_pixels`` bound the resized image area; a side is resized to a multiple of
    ``patch_size * merge_size``.
    """
    return Qwen2VLImageProcessorPil(
        patch_size=patch_size, merge_size=merge_size, size={"shortest_edge": min_pixels, "longest_edge": max_pixels}
    )


class ClinkdProcessor(Qwen2VLProcessor):
    """Image-only ``Qwen2VLProcessor``: ``processor(images=..., text=..., padding=True, return_tensors="pt")``.

    Each ``<|image_pad|>`` in the text is expanded to the image's number of merged tokens, and
    ``mm_token_type_ids`` (B, L) marks them with 1 — what the model's position ids are computed from.
    """

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        # the parent's __init__ wants a video processor: set what it would set, then skip it
        self.image_token = getattr(tokenizer, "image_token", None) or "<|image_pad|>"
        self.video_token = getattr(tokenizer, "video_token", None) or "<|video_pad|>"
        self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)
        self.video_token_id = tokenizer.convert_tokens_to_ids(self.video_token)
        super(Qwen2VLProcessor, self).__init__(image_processor, tokenizer, chat_template=chat_template)


def build_batch(
    processor: ClinkdProcessor,
    images: Sequence,
    questions: Sequence[str],
    answers: Sequence[str] | None = None,
    *,
    padding_side: str | None = None,
    system: str | None = None,
) -> dict[str, torch.Tensor]:
    """Tokenise image + question pairs with the chat template; with ``answers``, add training labels.

    Args:
        processor: a :class:`ClinkdProcessor` (or any Qwen2-VL processor).
        images: one image per sample (PIL image or array), or a list of images per sample (each gets its
            own image slot, ``<|vision_start|><|image_pad|><|vision_end|>``, before the question), or
            ``None`` for a text-only sample.
        questions: the user turn of each sample.
        answers: the assistant turn of each sample. Given: the prompt is followed by the answer and
            ``<|im_end|>``, and ``labels`` (B, L) hold the answer tokens and that ``<|im_end|>`` (the model
            learns to stop), ``-100`` on the prompt and padding. Not given: the prompt ends with
            ``<|im_start|>assistant\\n`` ready for ``model.generate``.
        padding_side: defaults to ``"right"`` with answers (training) and ``"left"`` without (generation).
        system: optional system prompt (the template's default is Qwen's "You are a helpful assistant.").

    Returns:
        dict with ``input_ids``, ``attention_mask``, ``mm_token_type_ids`` (B, L), ``pixel_values``
        (patches, C·T·P·P), ``image_grid_thw`` (N, 3) when there are images, and ``labels`` (B, L) when
        ``answers`` is given. Pass it as ``model(**batch)`` or ``model.generate(**batch, ...)``.
    """
    if answers is not None and len(answers) != len(questions):
        raise ValueError(f"{len(questions)} questions but {len(answers)} answers")
    if len(images) != len(questions):
        raise ValueError(f"{len(questions)} questions but {len(images)} image entries")
    tok = processor.tokenizer
    prompts, flat_images = [], []
    for sample_images, question in zip(images, questions):
        if sample_images is None:
            sample_images = []
        elif not isinstance(sample_images, (list, tuple)):
            sample_images = [sample_images]
        flat_images.extend(sample_images)
        content = [{"type": "image"} for _ in sample_images] + [{"type": "text", "text": question}]
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": content}]
        prompts.append(processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))
    texts = prompts if answers is None else [p + a + "<|im_end|>" for p, a in zip(prompts, answers)]
    side = padding_side or ("left" if answers is None else "right")
    old_side = tok.padding_side
    tok.padding_side = side
    try:
        batch = processor(images=flat_images or None, text=texts, padding=True, return_tensors="pt")
        if answers is not None:
            # prompt length per sample, counted with the same expansion of image tokens
            prompt_ids = processor(images=flat_images or None, text=prompts, padding=True, return_tensors="pt")
            prompt_len = prompt_ids["attention_mask"].sum(1)  # (B,)
    finally:
        tok.padding_side = old_side
    batch = dict(batch)
    if answers is not None:
        mask = batch["attention_mask"].bool()  # (B, L)
        rank = mask.long().cumsum(1) - 1  # (B, L) index among real tokens
        labels = batch["input_ids"].masked_fill(~mask | (rank < prompt_len[:, None]), IGNORE_INDEX)
        batch["labels"] = labels
    return batch
