"""The one model of a Med-GRIT sample: its image(s), modality, a task and (question, answer) turns.

Question texts are kept exactly as the files hold them (the first one usually starts with the
Qwen-VL image tag ``<img>ct_00012.png</img>``; a report-generation study with frontal and lateral views
starts with one tag per image, ``<img>a/0.png</img><img>a/1.png</img>``, issue 16), so that reading and
writing a file gives back the same bytes; :meth:`Sample.prompts` gives the questions without the image
tags, for a model's chat template.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from os import PathLike
from pathlib import PurePath

from clinkd.data.boxes import ANY_TAG, PAIRED_BOX_TAGS, Box, parse_boxes, parse_refs
from clinkd.errors import DataError

# The eight Med-GRIT modalities, as the image file names spell them (protocol.md).
MODALITIES: tuple[str, ...] = ("ct", "mr", "x", "pet", "endoscopy", "dermoscopy", "fundus", "ultrasound")
#: Image-name prefixes of generic (non-Med-GRIT) pretraining data, e.g. :mod:`clinkd.data.synth.shapes`.
#: Valid in data files (``clinkd data check`` accepts them) but never one of :data:`MODALITIES`: the Med-GRIT
#: protocol averages over exactly those eight.
PRETRAINING_MODALITIES: tuple[str, ...] = ("shapes",)
MODALITY_NAMES: dict[str, str] = {
    "ct": "CT",
    "mr": "MRI",
    "x": "X-ray",
    "pet": "PET",
    "endoscopy": "endoscopy",
    "dermoscopy": "dermoscopy",
    "fundus": "fundus photography",
    "ultrasound": "ultrasound",
}
# The four Med-GRIT tasks.
TASKS: tuple[str, ...] = ("VG", "RO", "GC", "MII")
TASK_NAMES: dict[str, str] = {
    "VG": "visual grounding",
    "RO": "referring object classification",
    "GC": "grounded caption",
    "MII": "medical image interpretation",
}

IMG_TAG_RE = re.compile(r"<img>(.*?)</img>", re.S)

#: Extra keys of a test record that a sample keeps (:attr:`Sample.meta`), written by the benchmark
#: converters (issue 16): ``answer_type`` (VQA sets: ``closed`` yes/no-style or ``open``) and
#: ``benchmark`` (``vqa-rad``, ``iu-xray`` ...). Other keys are not kept.
META_KEYS: tuple[str, ...] = ("answer_type", "benchmark")
ANSWER_TYPES: tuple[str, ...] = ("closed", "open")

#: Special tokens that structure a chat: user text holding one could close its turn and open another (a
#: spoofed system or assistant turn) or fake an image slot. The grounding tokens (``<|box_start|>``,
#: ``<|object_ref_start|>`` …) are not among them: questions legitimately carry boxes.
CHAT_SPECIAL_TOKENS: tuple[str, ...] = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
    "<|quad_start|>",
    "<|quad_end|>",
)


def special_tokens_in(text: str) -> list[str]:
    """The chat special tokens (:data:`CHAT_SPECIAL_TOKENS`) that ``text`` contains, in that order."""
    return [t for t in CHAT_SPECIAL_TOKENS if t in text]


def check_question(
    question: str, source: str | PathLike | None = None, record: int | str | None = None
) -> None:
    """Refuse a question the model must not be given: one holding chat special tokens
    (:data:`clinkd.data.sample.CHAT_SPECIAL_TOKENS`, e.g. ``<|im_end|><|im_start|>system``, which would close
    the user's turn and open a spoofed system or assistant turn, or fake an image slot), or text that is
    not valid Unicode (a lone surrogate, as undecodable command-line bytes become), which the tokenizer
    cannot encode.

    Refused, not escaped: an escaped token would change the question the model sees, and whether a
    tokenizer then splits the literal text is family-specific. Every path to the model checks here:
    ``clinkd ask``, ``clinkd infer`` (each test question, before loading the model) and
    :func:`~clinkd.infer.generate.generate_batch` (the web app's answers go through it).

    Raises :class:`~clinkd.errors.DataError` (naming ``source`` and ``record`` when given).
    """
    tokens = special_tokens_in(question)
    if tokens:
        raise DataError(
            f"the question holds the chat special token(s) {', '.join(tokens)}, which would let it end "
            "its turn and start another (a spoofed system or assistant turn); remove them",
            source,
            record,
        )
    try:
        question.encode("utf-8")
    except UnicodeEncodeError as err:
        raise DataError(
            f"the question is not valid text: {question[err.start]!r} at character {err.start} is a lone "
            "surrogate (undecodable bytes?); fix its encoding",
            source,
            record,
        ) from None


def modality_of(image: str) -> str:
    """The modality of an image file name: the part before the first ``_`` of the name, folders left out
    and case kept (protocol.md §3), e.g. ``ct_00012.png``, ``images/ct_00012.png`` → ``ct``; a name
    without ``_`` is its own modality. The one definition (:mod:`clinkd.eval.predictions` uses it)."""
    return PurePath(image).name.split("_")[0]


def image_tag(image: str) -> str:
    return f"<img>{image}</img>"


def strip_image_tag(text: str) -> tuple[str, str | None]:
    """``(text without <img>…</img> and the newline after it, the first image path or None)``."""
    m = IMG_TAG_RE.search(text)
    if m is None:
        return text, None
    rest = text[: m.start()] + text[m.end() :]
    if m.start() == 0:
        rest = rest.lstrip("\n")
    return rest, m.group(1)


def strip_image_tags(text: str) -> tuple[str, list[str]]:
    """``(text without any <img>…</img>, the image paths in order)``; newlines after tags opening the text
    are dropped as :func:`strip_image_tag` drops them (one tag: the same result).

    >>> strip_image_tags("<img>s/0.png</img><img>s/1.png</img>\\nWrite the findings.")
    ('Write the findings.', ['s/0.png', 's/1.png'])
    """
    found = list(IMG_TAG_RE.finditer(text))
    if not found:
        return text, []
    rest = IMG_TAG_RE.sub("", text)
    if found[0].start() == 0:
        rest = rest.lstrip("\n")
    return rest, [m.group(1) for m in found]


def check_meta(meta: dict) -> dict:
    """The known extra keys of a test record (:data:`META_KEYS`), checked; raises ``ValueError``."""
    out = {k: meta[k] for k in META_KEYS if k in meta}
    if "answer_type" in out and out["answer_type"] not in ANSWER_TYPES:
        raise ValueError(
            f"'answer_type' must be one of {', '.join(ANSWER_TYPES)}, got {out['answer_type']!r}"
        )
    if "benchmark" in out and not (isinstance(out["benchmark"], str) and out["benchmark"].strip()):
        raise ValueError(f"'benchmark' must be a non-empty string, got {out['benchmark']!r}")
    return out


_NAME_TOKEN = re.compile(r"[^A-Za-z0-9]+")
_NAME_SUFFIXES = (".jsonl", ".json", ".txt")


def tasks_named(name: str | PathLike) -> list[str]:
    """Every task a file name names, sorted: VG, RO, GC or MII as a token of the file's name.

    The folders are left out, then a ``.json``/``.jsonl``/``.txt`` suffix; the rest is split on
    non-alphanumerics and compared case-insensitively: ``test_mii.json``, ``Test_MII.json``,
    ``MedGRIT_MII_test.json``, ``run-3.RO.predictions.jsonl`` and ``dir/test_VG.json`` each name one task;
    ``VGx.json`` and ``train.json`` none.
    """
    base = PurePath(name).name
    for suffix in _NAME_SUFFIXES:
        if base.lower().endswith(suffix):
            base = base[: -len(suffix)]
            break
    tokens = {t.upper() for t in _NAME_TOKEN.split(base) if t}
    return sorted(tokens.intersection(TASKS))


def task_from_name(name: str | PathLike) -> str | None:
    """The task named in a file name (``test_VG.json``, ``test_mii.json`` → ``VG``, ``MII``), or None
    when none or several are (the rules: :func:`tasks_named`). The one task-from-file-name function:
    :func:`clinkd.eval.predictions.task_from_filename` is this one, raising instead of returning None."""
    found = tasks_named(name)
    return found[0] if len(found) == 1 else None


@dataclass
class Turn:
    """One question and its answer, as written in the file (markup included)."""

    question: str
    answer: str

    @property
    def answer_boxes(self) -> list[Box]:
        return parse_boxes(self.answer)

    @property
    def answer_refs(self) -> list[str]:
        return parse_refs(self.answer)


@dataclass
class Sample:
    """A Med-GRIT sample.

    Attributes:
        id: the record id as the file holds it (test files: the image name without ``.png``).
        image: the (first) image file name or path, relative to the dataset's image folder.
        turns: (question, answer) pairs; test files hold one, training files several.
        task: ``VG``/``RO``/``GC``/``MII`` for single-task samples (test files), None for mixed ones.
        modality: derived from the image name when not given.
        images: every image of the sample in order (the ``<img>`` tags of the first question), ``image``
            first; ``[image]`` when not given. Several for report studies (frontal + lateral, issue 16).
        meta: the test record's known extra keys (:data:`META_KEYS`: ``answer_type``, ``benchmark``).
    """

    id: str
    image: str
    turns: list[Turn]
    task: str | None = None
    modality: str = field(default="")
    images: list[str] = field(default_factory=list)
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.modality:
            self.modality = modality_of(self.image)
        if not self.images:
            self.images = [self.image]
        elif self.images[0] != self.image:
            raise ValueError(f"images[0] {self.images[0]!r} is not the sample's image {self.image!r}")

    def prompts(self) -> list[str]:
        """The questions without their image tags (the images go to the processor instead)."""
        return [strip_image_tags(t.question)[0] for t in self.turns]

    @property
    def boxes(self) -> list[Box]:
        """Every box in every answer."""
        return [b for t in self.turns for b in t.answer_boxes]


# A whole box tag (its body tempered: linear on unclosed tags, issue 13), or any other tag.
_MARKUP_RE = re.compile(f"{PAIRED_BOX_TAGS}|{ANY_TAG}", re.S)


def guess_task(turn: Turn) -> str:
    """The Med-GRIT task a turn most likely belongs to, from its shape (training files do not say).

    A box in the question asks about a region: a short answer names it (RO), a longer one describes it
    (GC). Without one, an answer that is mostly boxes locates something (VG), else it analyses the
    image (MII). A heuristic, used for statistics and for choosing how to score training answers.
    """
    words = len(_MARKUP_RE.sub(" ", turn.answer).split())
    if parse_boxes(strip_image_tag(turn.question)[0]):
        return "RO" if words <= 4 else "GC"
    return "VG" if turn.answer_boxes and words <= 8 else "MII"
