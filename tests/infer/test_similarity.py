"""The sentence-embedding cache: bounded, least recently used out, the same vectors as without it (issue 15)."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from clinkd.infer.similarity import EMBEDDING_CACHE_SIZE, Embedder


class CountingModel:
    """A stand-in sentence encoder: hashed word counts, unit-normalised; records what it was asked."""

    def __init__(self):
        self.calls: list[list[str]] = []

    def encode(self, texts, **kw):
        self.calls.append(list(texts))
        out = np.zeros((len(texts), 16), np.float32)
        for i, t in enumerate(texts):
            for w in t.split():
                out[i, zlib.crc32(w.encode()) % 16] += 1
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def test_the_cache_is_bounded_and_drops_the_least_recently_used():
    model = CountingModel()
    e = Embedder(model=model, cache_size=2)
    e.encode(["a", "b"])
    e.encode(["a"])  # a hit: "a" is now the most recently used
    e.encode(["c"])  # evicts "b"
    assert list(e._cache) == ["a", "c"]
    e.encode(["a", "b"])  # only "b" is encoded again
    assert model.calls == [["a", "b"], ["c"], ["b"]]
    assert len(e._cache) == 2


def test_vectors_are_the_same_with_any_cache_size():
    texts = ["the liver", "", "a small lesion", "the liver", "the spleen", "a small lesion", "x y z"]
    unbounded = Embedder(model=CountingModel(), cache_size=10**6)
    reference = unbounded.encode(texts)
    for size in (0, 1, 2, 3):  # smaller than the texts of one call: each still gets its vector
        e = Embedder(model=CountingModel(), cache_size=size)
        for _ in range(2):
            out = e.encode(texts)
            assert out.shape == reference.shape
            np.testing.assert_array_equal(out, reference)
        assert len(e._cache) <= size
    assert not reference[1].any()  # an empty text: the zero vector


def test_no_cache_encodes_every_call():
    model = CountingModel()
    e = Embedder(model=model, cache_size=0)
    e.encode(["a", "a", "b"])
    e.encode(["a"])
    assert model.calls == [["a", "b"], ["a"]] and not e._cache


def test_default_size_and_bad_size():
    assert Embedder(model=CountingModel()).cache_size == EMBEDDING_CACHE_SIZE > 0
    with pytest.raises(ValueError, match="cache_size"):
        Embedder(model=CountingModel(), cache_size=-1)
