"""The words of the shapes domain (:mod:`clinkd.data.synth.shapes`): its question and answer templates, worded
unlike the Med-GRIT benchmark's, and the small helpers that fill them.
"""

from __future__ import annotations

import numpy as np

# No wording of the Med-GRIT templates: grounding questions name plain objects (sometimes in <ref> tags).
GROUND_NAME = (
    "Where's the {name}?",
    "Put a box around the {name}.",
    "Which part of the picture holds the {name}?",
    "Mark the {name} with a box.",
    "Where in the picture is the {name}?",
    "Draw a box around the {name}.",
)
GROUND_SHAPE = (
    "Find every {shape}.",
    "Mark all the {shapes}.",
    "Box each {shape} in the picture.",
    "Where are the {shapes}?",
    "Are there any {shapes}? Show them.",
)
GROUND_COLOUR = (
    "Show me the {colour} shape.",
    "Find everything that is {colour}.",
    "Which shapes are {colour}? Box them.",
    "Mark every {colour} object.",
)
ABSENT_NAME = ("There is no {name} in the picture.",)
ABSENT_SHAPE = ("There are no {shapes} in the picture.",)
ABSENT_COLOUR = ("Nothing in the picture is {colour}.",)
REFER = (
    "What is in {box}?",
    "Which shape is at {box}?",
    "What do you see at {box}?",
    "Tell me what {box} contains.",
    "What colour and shape is the thing in {box}?",
)
REFER_ANSWERS = ("{a}", "{a}", "It is {a}.", "That is {a}.")
DESCRIBE = (
    "Describe the picture.",
    "What does this picture contain?",
    "Tell me what you see.",
    "Give a short description of the scene.",
    "Describe the shapes in this picture and where they are.",
)
SCENE = (
    "The picture shows {count} shapes on {ground}: {list}.",
    "There are {count} shapes on {ground}: {list}.",
    "On {ground} there are {count} shapes: {list}.",
)
SCENE_ONE = "The picture shows a single shape on {ground}: {list}."
COVERS = (
    "{Top} partly covers {under}.",
    "{Top} overlaps {under} and hides part of it.",
    "{Top} lies on top of {under}.",
)
NO_COVER = ("None of the shapes overlap.", "The shapes do not overlap.")
COUNT_ALL = (
    "How many shapes are there?",
    "How many shapes can you see?",
    "Count the shapes in the picture.",
    "What is the number of shapes in this picture?",
)
COUNT_SHAPE = ("How many {shapes} are there?", "Count the {shapes}.", "How many {shapes} can you see?")
COUNT_COLOUR = (
    "How many {colour} shapes are there?",
    "Count the {colour} shapes.",
    "How many shapes are {colour}?",
)
NUMBERS = ("no", "one", "two", "three", "four", "five", "six")
GROUNDS = (
    "a plain {c1} background",
    "a background fading from {c1} {side1} to {c2} {side2}",
    "a textured {c1} background",
)
SIDES = {"left": "on the left", "right": "on the right", "top": "at the top", "bottom": "at the bottom"}


def plural(word: str) -> str:
    return word + ("es" if word.endswith(("s", "x", "ch", "sh")) else "s")


def article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def pick(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


def join_words(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
