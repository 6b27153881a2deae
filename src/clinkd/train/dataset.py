"""Training examples and their collation into model batches.

A :class:`TrainItem` is one image (or several: a report study's frontal and lateral views, issue 16) with
one or more (question, answer) turns. The collator renders each with the processor's chat template, one
image slot per image in the first user turn, runs the processor on the flattened images (which expands
the image tokens and gives ``mm_token_type_ids`` for MCG-RoPE), and sets ``labels`` to the tokens of every assistant answer,
its closing ``<|im_end|>`` included, with -100 on the system prompt, the questions, the image tokens and
the padding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from clinkd.data.boxes import Style, convert_markup
from clinkd.data.check import image_problem
from clinkd.data.conventions import BoxCodec
from clinkd.data.formats import Dataset
from clinkd.data.images import image_path, load_image
from clinkd.data.sample import Sample, strip_image_tags
from clinkd.errors import DataError, ImageLoadError
from clinkd.train.losses import IGNORE_INDEX

#: kinds of training item, coded in each batch's ``item_kind`` (B,) so that the trainer can count what it
#: actually trained on (e.g. the reflective-correction replays that reached a step)
ITEM_KINDS: tuple[str, ...] = ("gt", "pseudo", "correction")


@dataclass
class TrainItem:
    """One training example: its image(s) and (question, answer) turns, questions without image tags.

    ``image`` is the first image (every single-image caller's field); ``images`` all of them in order,
    ``[image]`` when not given. Items derived from another (pseudo-labels, corrections) pass
    ``images=it.images`` on, or use :meth:`derive`, so that no view is lost.
    """

    image: Path
    turns: list[tuple[str, str]]
    source: str = ""  # where it came from, for error messages: "train.json [record 12]"
    kind: str = "gt"  # gt | pseudo | correction
    margin: float | None = None  # teacher confidence margin (pseudo-labels)
    meta: dict = field(default_factory=dict)
    # cached teacher logits for offline distillation: (values (n, k), indices (n, k)) over the n answer tokens
    teacher_topk: tuple | None = field(default=None, repr=False)
    images: list[Path] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.image = Path(self.image)
        self.images = [Path(p) for p in self.images] or [self.image]
        if self.images[0] != self.image:
            raise ValueError(f"images[0] {self.images[0]} is not the item's image {self.image}")

    def to_row(self) -> dict[str, Any]:
        """The item as a JSON object (pseudo-label caches, reflective-correction round files): ``margin`` when
        it has one, ``images`` when it has several (single-image rows stay as before), no teacher logits."""
        row: dict[str, Any] = {
            "image": str(self.image),
            "turns": [list(t) for t in self.turns],
            "source": self.source,
            "kind": self.kind,
        }
        if self.margin is not None:
            row["margin"] = self.margin
        row["meta"] = self.meta
        if len(self.images) > 1:
            row["images"] = [str(p) for p in self.images]
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> TrainItem:
        """The item :meth:`to_row` wrote."""
        return cls(**{**row, "image": Path(row["image"]), "turns": [tuple(t) for t in row["turns"]]})

    def derive(self, **changes) -> TrainItem:
        """A new item about the same image(s): ``changes`` replace fields (``turns``, ``kind``, ...)."""
        base = dict(image=self.image, images=list(self.images), turns=list(self.turns), source=self.source)
        base["meta"] = dict(self.meta)
        return TrainItem(**{**base, **changes})


def sample_to_item(
    sample: Sample, image_dir: Path, source: str = "", box_style: Style | None = None
) -> TrainItem:
    """``sample`` as a training item; its image path must stay inside ``image_dir`` (a
    :class:`~clinkd.errors.DataError` naming ``source`` otherwise)."""
    turns = []
    for t in sample.turns:
        q, a = strip_image_tags(t.question)[0], t.answer
        if box_style is not None:
            q, a = convert_markup(q, box_style), convert_markup(a, box_style)
        turns.append((q, a))
    images = [image_path(image_dir, name, source or None) for name in sample.images]
    meta: dict = {"id": sample.id}
    if len(sample.images) > 1:  # the names as the data file writes them (a study's views share file names)
        meta["images"] = list(sample.images)
    return TrainItem(image=images[0], images=images, turns=turns, source=source, meta=meta)


def load_item_images(item: TrainItem):
    """What generation takes for ``item`` (:func:`clinkd.infer.generate.generate_answers`): its image, or
    the list of its images when it has several (a multi-image study is answered from all its views)."""
    images = [load_image(p) for p in item.images]
    return images[0] if len(images) == 1 else images


#: problems listed in the error raised by :func:`items_from_dataset` (the rest are counted)
SHOWN_PROBLEMS = 5


def items_from_dataset(
    ds: Dataset, box_style: Style | None = None, max_samples: int | None = None
) -> list[TrainItem]:
    """Every training record as an item, its image checked now, before any training step.

    Each distinct image has its header read (:func:`~clinkd.data.images.image_size`: cheap, no decoding).
    Every problem — an image path leaving the image folder, a missing image, one that cannot be read — is
    collected, and one :class:`~clinkd.errors.DataError` lists them (the first few in full, each with its
    file and record), rather than a failure at the step that first meets the image.
    """
    items, problems = [], []
    checked: dict[Path, str | None] = {}  # image -> its problem (None: fine), each image read once
    for i, s in enumerate(ds.train[: max_samples or None]):
        path, record = ds.train_origin[i] if i < len(ds.train_origin) else (ds.files.root, i)
        source = f"{path} [record {record}]"
        try:
            item = sample_to_item(s, ds.image_dir, source=source, box_style=box_style)
        except DataError as err:
            problems.append(f"{source} (id {s.id}): {err.reason}")
            continue
        for image in item.images:  # every view of a multi-image study (issue 16)
            if image not in checked:
                checked[image] = image_problem(image, decode=False)
            if checked[image] is not None:
                problems.append(f"{source} (id {s.id}): {checked[image]}")
        items.append(item)
    if problems:
        shown = "; ".join(problems[:SHOWN_PROBLEMS])
        more = ""
        if len(problems) > SHOWN_PROBLEMS:
            more = (
                f" (and {len(problems) - SHOWN_PROBLEMS} more; run `clinkd data check {ds.files.root}` for the "
                "full list)"
            )
        raise DataError(f"{len(problems)} training record(s) cannot be used: {shown}{more}", ds.files.root)
    if not items:
        raise DataError("no training records", ds.files.root)
    return items


def _messages(turns: Sequence[tuple[str, str]], with_image: bool | int = True) -> list[dict]:
    """Chat messages of ``turns``; the first user turn opens with ``with_image`` image slots (True: one)."""
    slots = int(with_image)
    msgs = []
    for i, (q, a) in enumerate(turns):
        content = ([{"type": "image"}] * slots if i == 0 else []) + [{"type": "text", "text": q}]
        msgs.append({"role": "user", "content": content})
        msgs.append({"role": "assistant", "content": [{"type": "text", "text": a}]})
    return msgs


def assistant_label_mask(input_ids: torch.Tensor, header_ids: Sequence[int], end_id: int) -> torch.Tensor:
    """(B, L) bool: True on every token of an assistant answer and on the ``<|im_end|>`` closing it.

    An answer starts right after the token sequence ``header_ids`` (``<|im_start|>assistant\\n``) and ends
    at the next ``end_id``. Vectorised: no loop over tokens.
    """
    B, L = input_ids.shape
    h = len(header_ids)
    pos = torch.arange(L, device=input_ids.device).expand(B, L)
    starts = torch.zeros(B, L, dtype=torch.bool, device=input_ids.device)
    if h <= L:
        windows = input_ids.unfold(1, h, 1)  # (B, L-h+1, h)
        hit = (windows == torch.as_tensor(header_ids, device=input_ids.device)).all(-1)  # (B, L-h+1)
        starts[:, h:] = hit[:, : L - h]  # the answer's first token follows the header
    ends = input_ids == end_id
    neg = torch.full_like(pos, -1)
    last_start = torch.where(starts, pos, neg).cummax(1).values  # (B, L) last answer start at or before t
    last_end = torch.where(ends, pos, neg).cummax(1).values
    last_end_before = torch.cat([neg[:, :1], last_end[:, :-1]], dim=1)  # strictly before t
    return (last_start >= 0) & (last_start > last_end_before)


class ConversationCollator:
    """Items → a padded batch with ``labels`` on the assistant answers (see module docstring)."""

    def __init__(self, processor, system: str | None = None, boxes: BoxCodec | None = None):
        self.processor = processor
        #: the model's box convention: items hold Med-GRIT text, converted here per image (its resized size)
        self.boxes = boxes
        tok = processor.tokenizer
        self.header_ids = tok.encode("<|im_start|>assistant\n", add_special_tokens=False)
        self.end_id = tok.convert_tokens_to_ids("<|im_end|>")
        self.system = system

    def texts(self, items: Sequence[TrainItem], sizes: Sequence[tuple[int, int]] | None = None) -> list[str]:
        """Each item rendered with the chat template, questions and answers in the model's box convention
        (``sizes``: the original ``(width, height)`` of each item's first image).

        Boxes are converted for the first image's size: a box refers to one image, and the multi-image
        samples (report studies, issue 16) carry no boxes."""
        out = []
        for k, it in enumerate(items):
            turns = it.turns
            if self.boxes is not None and not self.boxes.identity:
                size = sizes[k] if sizes is not None else None
                turns = [(self.boxes.to_model(q, size), self.boxes.to_model(a, size)) for q, a in turns]
            msgs = _messages(turns, len(it.images))
            if self.system:
                msgs = [{"role": "system", "content": self.system}] + msgs
            out.append(self.processor.apply_chat_template(msgs, tokenize=False, add_generation_prompt=False))
        return out

    def load_images(self, items: Sequence[TrainItem]) -> list[list]:
        """Each item's images, in order: one list per item."""
        images = []
        for it in items:
            try:
                images.append([load_image(p) for p in it.images])
            except ImageLoadError as err:
                raise DataError(f"training sample {it.source or it.meta.get('id', '?')}: {err}") from err
        return images

    def __call__(self, items: Sequence[TrainItem]) -> dict[str, torch.Tensor]:
        tok = self.processor.tokenizer
        old = tok.padding_side
        tok.padding_side = "right"
        try:
            images = self.load_images(items)  # per item, its images in order
            texts = self.texts(items, [ims[0].size for ims in images])
            flat = [im for ims in images for im in ims]  # the processor matches them to the slots in order
            batch = dict(self.processor(images=flat, text=texts, padding=True, return_tensors="pt"))
        finally:
            tok.padding_side = old
        answer = assistant_label_mask(batch["input_ids"], self.header_ids, self.end_id)
        answer &= batch["attention_mask"].bool()
        batch["labels"] = batch["input_ids"].masked_fill(~answer, IGNORE_INDEX)
        batch["item_kind"] = torch.tensor([ITEM_KINDS.index(it.kind) for it in items], dtype=torch.long)
        if any(it.teacher_topk is not None for it in items):
            batch.update(self._teacher_tensors(items, answer))
        return batch

    @staticmethod
    def _teacher_tensors(items: Sequence[TrainItem], answer: torch.Tensor) -> dict[str, torch.Tensor]:
        """Cached teacher top-k logits placed at the label positions: (B, L, k) values and indices."""
        pairs = [it.teacher_topk for it in items if it.teacher_topk is not None]  # (values, indices) (n, k)
        if len(pairs) != len(items):
            raise ValueError("a batch mixes items with and without cached teacher logits")
        k = pairs[0][0].shape[-1]
        B, L = answer.shape
        values = torch.zeros(B, L, k, dtype=torch.float32)
        indices = torch.zeros(B, L, k, dtype=torch.long)
        for b, (it, (v, i)) in enumerate(zip(items, pairs)):
            pos = answer[b].nonzero().squeeze(-1)  # (n,)
            if v.shape[0] != pos.numel():
                raise ValueError(
                    f"cached teacher logits of {it.source} cover {v.shape[0]} answer tokens, the batch "
                    f"has {pos.numel()}: the tokenizer or the answer changed since they were cached"
                )
            values[b, pos] = v.float()
            indices[b, pos] = i.long()
        return {"teacher_topk_values": values, "teacher_topk_indices": indices}
