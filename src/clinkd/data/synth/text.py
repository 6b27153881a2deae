"""Questions and answers in the Med-GRIT style for a rendered :class:`SynthImage`.

Answer conventions (what the evaluation protocol scores, ``shared/docs/protocol.md``):

- **VG** — the question names an object with ``<ref>name</ref>``; the answer is
  ``<ref>name</ref><box>(x1,y1),(x2,y2)</box>``, one box per instance of that name in the image
  (several for multiple polyps, hot spots, haemorrhages), boxes in reading order (top, then left).
- **RO** — the question gives a box only; the answer is the object's canonical name, plain text
  without tags (``left kidney``). The published RO metric checks that every word of the annotation
  occurs in the response, so a short untagged annotation is the fair one.
- **GC** — the question gives a box only; the answer is a one- or two-sentence caption naming the
  object (canonical name or a synonym) with its location, size, shape and intensity/colour, no markup.
- **MII** — a generic question; the answer is a paragraph: modality and region, visible structures,
  image-dependent facts, and each finding grounded as ``<ref>name</ref><box>…</box>``.

Questions never contain what their answer holds: RO/GC questions no object name, VG questions no
box, MII questions nothing image-specific. All randomness comes from the generator passed in.
"""

from __future__ import annotations

import re

import numpy as np

from clinkd.data.boxes import NORM, format_grounding
from clinkd.data.sample import MODALITIES
from clinkd.data.synth import templates as T
from clinkd.data.synth.scene import SynthImage, SynthObject

PHOTO = frozenset({"endoscopy", "dermoscopy", "fundus"})


def kind_of(name: str) -> str:
    return T.CATALOGUE[name][0]


def names_for(modality: str, name: str) -> tuple[str, ...]:
    """The canonical name followed by its synonyms in this modality."""
    return (name, *T.SYNONYMS_BY_MODALITY.get((modality, name), T.CATALOGUE[name][1]))


def _pick(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


def _article(phrase: str, kind: str) -> str:
    if kind == "organ":
        return "the " + phrase
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def look(si: SynthImage, obj: SynthObject) -> str:
    """The appearance word: a colour for photographs, else the modality's intensity term."""
    if obj.colour:
        return obj.colour
    return T.INTENSITY["photo" if si.modality in PHOTO else si.modality][obj.intensity]


def percent(obj: SynthObject) -> str:
    n = round(obj.area_fraction * 100)
    return T.PERCENT[1] if n < 1 else T.PERCENT[0].format(n=n)


def _fields(si: SynthImage, obj: SynthObject, rng: np.random.Generator) -> dict[str, str]:
    kind = kind_of(obj.name)
    names = names_for(si.modality, obj.name)
    the = _article(_pick(rng, names), kind)
    return {
        "the": the,
        "The": _cap(the),
        "syn": _article(_pick(rng, names), kind),
        "size": obj.size,
        "shape": obj.shape or "",
        "look": look(si, obj),
        "loc": obj.location,
        "noun": _pick(rng, T.NOUNS[kind]),
        "pct": percent(obj),
        "note": _pick(rng, T.NOTES[obj.note]) if obj.note else "",
    }


def box_text(si: SynthImage, obj: SynthObject) -> str:
    return obj.norm_box(si.width, si.height).to_markup()


def boxes_of(si: SynthImage, name: str) -> list:
    """The 0–1000 boxes of every instance of ``name``, top to bottom then left to right."""
    boxes = [o.norm_box(si.width, si.height) for o in si.objects if o.name == name]
    return sorted(boxes, key=lambda b: (b.y1, b.x1, b.y2, b.x2))


def vg(si: SynthImage, name: str, rng: np.random.Generator) -> tuple[str, str]:
    q = _pick(rng, T.VG_QUESTIONS).format(ref=f"<ref>{name}</ref>")
    return q, format_grounding(name, boxes_of(si, name))


def ro(si: SynthImage, obj: SynthObject, rng: np.random.Generator) -> tuple[str, str]:
    return _pick(rng, T.RO_QUESTIONS).format(box=box_text(si, obj)), obj.name


def gc(si: SynthImage, obj: SynthObject, rng: np.random.Generator) -> tuple[str, str]:
    q = _pick(rng, T.GC_QUESTIONS).format(box=box_text(si, obj))
    return q, _pick(rng, T.GC_ANSWERS).format(**_fields(si, obj, rng))


def mii(si: SynthImage, rng: np.random.Generator) -> tuple[str, str]:
    mod = si.modality
    parts = [_pick(rng, T.OPENINGS[mod]).format(region=si.region)]
    organs = list(dict.fromkeys(o.name for o in si.objects if kind_of(o.name) == "organ"))
    if organs:
        listed = [_article(_pick(rng, names_for(mod, n)), "organ") for n in organs]
        if len(listed) == 1:
            parts.append(_pick(rng, T.STRUCTURE_ONE).format(the=listed[0], The=_cap(listed[0])))
        else:
            text = _join(listed)
            parts.append(_pick(rng, T.STRUCTURES).format(list=text, List=_cap(text)))
    parts += [_pick(rng, T.FACTS[f]) for f in si.facts]
    lesions = list(dict.fromkeys(o.name for o in si.objects if kind_of(o.name) == "lesion"))
    for name in lesions:
        group = [o for o in si.objects if o.name == name]
        grounding = format_grounding(name, boxes_of(si, name))
        if len(group) == 1:
            f = _fields(si, group[0], rng)
            parts.append(_pick(rng, T.FINDING_ONE).format(grounding=grounding, **f))
        else:
            count = T.COUNTS[min(len(group), len(T.COUNTS) + 1) - 2]
            parts.append(
                _pick(rng, T.FINDING_MANY).format(
                    count=count, Count=_cap(count), plural=name + "s", grounding=grounding
                )
            )
    if not lesions:
        parts.append(_pick(rng, T.NO_FINDING))
    if rng.random() < 0.5:
        if lesions:
            counts = {n: sum(o.name == n for o in si.objects) for n in lesions}
            found = [
                _article(n, "lesion") if c == 1 else f"{T.COUNTS[min(c, len(T.COUNTS) + 1) - 2]} {n}s"
                for n, c in counts.items()
            ]
            parts.append(_pick(rng, T.IMPRESSION_LESION).format(list=_join(found)))
        else:
            parts.append(_pick(rng, T.IMPRESSION_NORMAL))
    return _pick(rng, T.MII_QUESTIONS), " ".join(parts)


def vocabulary() -> list[str]:
    """Every word the generator can write, as short strings (templates with their slots emptied).

    Together with the generated texts this is what a tokenizer for the synthetic data must cover.
    """
    hole = re.compile(r"\{\w+\}")
    out: list[str] = []

    def add(*texts: str) -> None:
        out.extend(hole.sub(" ", t) for t in texts)

    for table in (
        T.VG_QUESTIONS,
        T.RO_QUESTIONS,
        T.GC_QUESTIONS,
        T.MII_QUESTIONS,
        T.GC_ANSWERS,
        T.STRUCTURES,
        T.STRUCTURE_ONE,
        T.FINDING_ONE,
        T.FINDING_MANY,
        T.NO_FINDING,
        T.IMPRESSION_LESION,
        T.IMPRESSION_NORMAL,
        T.LOCATIONS,
        T.SIZES,
        T.SHAPES,
        T.COLOURS,
        T.PERCENT,
        T.COUNTS,
    ):
        add(*table)
    add(*(_cap(c) for c in T.COUNTS), "The A An a an the")
    for name, (kind, syns) in T.CATALOGUE.items():
        add(name, name + "s", *syns, *(_article(n, kind) for n in (name, *syns)))
    for syns in T.SYNONYMS_BY_MODALITY.values():
        add(*syns)
    for entries in (*T.NOUNS.values(), *T.NOTES.values(), *T.OPENINGS.values(), *T.FACTS.values()):
        add(*entries)
    for levels in T.INTENSITY.values():
        add(*levels.values())
    add("thyroid breast", "0 1 2 3 4 5 6 7 8 9", f"<ref>x</ref><box>(0,0),({NORM},{NORM})</box>")
    add(*(f"<img>{m}_00000.png</img>\n" for m in MODALITIES))
    return out
