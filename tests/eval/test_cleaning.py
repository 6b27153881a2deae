import re
import time

import pytest

from clinkd.eval.classification import ro_correct_standard, ro_correct_strict
from clinkd.eval.cleaning import clean_response, normalize_name


def _published_rule(s: str) -> str:
    """protocol.md §2 transcribed literally (regex and all), as the oracle for random inputs."""
    if ".<|im_end|>" in s:
        s = s.split(".<|im_end|>")[0] + "."
    s = s.replace("<|im_end|>\n", "")
    m = re.search(r"\n(.*?)\n", s, re.DOTALL)
    if m:
        s = m.group(1)
    return s.replace("<|endoftext|>", "").strip()


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("Liver.<|im_end|>\n<|endoftext|>", "Liver."),  # step 1 keeps text before, adds "."
        ("Liver.<|im_end|> trailing.<|im_end|>", "Liver."),  # first occurrence wins
        ("Liver<|im_end|>\nmore", "Livermore"),  # step 2 only drops "<|im_end|>\n"
        ("Sure!\nThe lesion is here.\nAnything else?", "The lesion is here."),  # step 3: first \n…\n span
        ("a\n\nb\nc", ""),  # the first span may be empty
        ("one line\nno second newline", "one line\nno second newline"),  # a single \n is no span
        ("  spleen<|endoftext|><|endoftext|>  ", "spleen"),  # steps 4 and 5
        ("x<|im_end|>\ny\nz\n", "z"),  # order matters: step 2 removes a newline before step 3 looks
        ("", ""),
    ],
)
def test_cleaning_hand_worked(raw, expected):
    assert clean_response(raw) == expected


def test_cleaning_matches_the_literal_rule_on_random_strings():
    import random

    rng = random.Random(0)
    atoms = ["a", " ", "\n", ".", "<|im_end|>", ".<|im_end|>", "<|endoftext|>", "\t", "é"]
    for _ in range(3000):
        s = "".join(rng.choice(atoms) for _ in range(rng.randint(0, 12)))
        assert clean_response(s) == _published_rule(s), repr(s)


def test_cleaning_is_linear_on_huge_responses():
    s = "\n" + "x" * 2_000_000 + "<|endoftext|>" * 1000
    t = time.perf_counter()
    assert clean_response(s) == s[1:].replace("<|endoftext|>", "").strip()
    assert time.perf_counter() - t < 1.0


@pytest.mark.parametrize(
    "ann, resp, standard, strict",
    [
        ("Left kidney", "the left kidney.", True, True),
        ("kidney", "kid", False, False),
        ("liver", "deliverable", True, False),  # substring, not word, matching
        ("left kidney", "kidney, left", True, False),  # order ignored by the standard rule
        ("left  kidney ", "left kidney", True, True),  # split(" ") gives empty words: always found
        ("The Liver", "liver", False, True),  # "the" must appear in the standard rule
        ("", "", True, True),
    ],
)
def test_ro_rules(ann, resp, standard, strict):
    assert ro_correct_standard(ann, resp) is standard
    assert ro_correct_strict(ann, resp) is strict


def test_normalize_name():
    assert normalize_name("The Left-Kidney.") == "left kidney"
    assert normalize_name("  an   ÉCHO\u00a0zone ") == "écho zone"
    assert normalize_name("a") == ""
