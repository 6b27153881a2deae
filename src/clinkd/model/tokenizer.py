"""A small byte-level BPE tokenizer with the Qwen special tokens, trained locally in seconds.

Tiny models cannot use the real Qwen2 vocabulary (152k rows would dwarf a 128-wide model), so they
share a tokenizer trained on the synthetic Med-GRIT text. Digits are pre-tokenised one by one (as the
Qwen2 tokenizer does), so a box ``<box>(123,456),(789,901)</box>`` becomes ``<box>``, ``(``, ``1``,
``2``, ``3``, ``,`` … — a vocabulary a small model can learn to emit coordinates with.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

__all__ = ["BOX_TOKENS", "QWEN_SPECIAL_TOKENS", "build_tokenizer"]

#: Qwen2-VL's special tokens, in Qwen's own order (<|endoftext|> first: it is the padding token).
QWEN_SPECIAL_TOKENS: tuple[str, ...] = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

#: Med-GRIT grounding markup: ordinary (not special) added tokens, so decoding keeps them.
BOX_TOKENS: tuple[str, ...] = ("<box>", "</box>", "<ref>", "</ref>")


def build_tokenizer(
    corpus: Iterable[str],
    vocab_size: int = 4096,
    min_frequency: int = 2,
) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer on ``corpus`` and wrap it for transformers.

    Deterministic: the same corpus gives the same vocabulary. The Qwen special tokens get ids
    0..13 (``<|endoftext|>`` = pad, ``<|im_end|>`` = eos), the box markup the next four ids.

    Args:
        corpus: texts to learn merges from (e.g. ``clinkd.data.synth.text_corpus()``).
        vocab_size: upper bound of the vocabulary (a small corpus stops earlier).
        min_frequency: a merge must occur this often.
    """
    texts = [t for t in corpus if t]
    if not texts:
        raise ValueError("build_tokenizer needs a non-empty corpus")
    # the markup must not be learned as merges: strip it before training, it is added whole below
    for tag in BOX_TOKENS:
        texts = [t.replace(tag, " ") for t in texts]
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),  # each digit its own pre-token
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(QWEN_SPECIAL_TOKENS) + list(BOX_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    # the trainer registered the markup as special; make it ordinary text so decode keeps it
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in BOX_TOKENS])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        clean_up_tokenization_spaces=False,
        model_max_length=32768,
        extra_special_tokens={
            "image_token": "<|image_pad|>",
            "video_token": "<|video_pad|>",
            "vision_bos_token": "<|vision_start|>",
            "vision_eos_token": "<|vision_end|>",
        },
    )
    return fast
