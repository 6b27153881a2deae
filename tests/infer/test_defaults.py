"""Issue 15: every inference surface takes its defaults from :mod:`clinkd.infer.defaults`, the one place."""

from __future__ import annotations

import dataclasses
import inspect
import subprocess
import sys

import pytest

from clinkd.infer.defaults import (
    BENCHMARK_MAX_NEW_TOKENS,
    BENCHMARKS,
    DEFAULTS,
    TASK_MAX_NEW_TOKENS,
    max_new_tokens_for,
)


def _parse(*argv):
    from clinkd.cli.main import build_parser

    return build_parser().parse_args(list(argv))


def _defaults(fn) -> dict:
    return {k: p.default for k, p in inspect.signature(fn).parameters.items()}


def test_the_release_values():
    """The values themselves (method.md §4, §6): changing one is a decision, made here and in this test."""
    assert dict(TASK_MAX_NEW_TOKENS) == {"VG": 80, "RO": 80, "GC": 80, "MII": 100}
    assert dict(BENCHMARK_MAX_NEW_TOKENS) == {
        "vqa-rad": 32,
        "slake": 32,
        "pathvqa": 32,
        "iu-xray": 256,
        "mimic-cxr": 256,
    }
    d = DEFAULTS
    assert (d.select, d.candidates, d.temperature, d.top_p) == ("greedy", 5, 0.7, 0.9)
    assert (d.box_weight, d.length_factor, d.length_slack, d.batch_size, d.seed) == (0.5, 2.0, 8, 8, 0)
    assert d.max_new_tokens == 100 and d.max_new_tokens_default_task == 80
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.candidates = 4  # type: ignore[misc]
    with pytest.raises(TypeError):
        d.task_max_new_tokens["VG"] = 1  # type: ignore[index]


def test_max_new_tokens_for():
    assert [max_new_tokens_for(t) for t in ("VG", "RO", "GC", "MII", None)] == [80, 80, 80, 100, 80]
    assert max_new_tokens_for("MII", "iu-xray") == 256 and max_new_tokens_for(benchmark="slake") == 32
    with pytest.raises(ValueError, match="unknown benchmark 'nope'"):
        max_new_tokens_for(benchmark="nope")


def test_clinkd_infer_defaults():
    a = _parse("infer", "--model", "m", "--data", "d", "--out", "o")
    d = DEFAULTS
    assert (a.select, a.candidates, a.temperature, a.top_p) == (
        d.select,
        d.candidates,
        d.temperature,
        d.top_p,
    )
    assert (a.box_weight, a.length_cap, a.batch_size, a.seed) == (
        d.box_weight,
        d.length_factor,
        d.batch_size,
        d.seed,
    )
    assert a.max_new_tokens is None and a.benchmark is None  # per task / benchmark, below
    assert _parse("infer", "--model", "m", "--data", "d", "--out", "o", "--benchmark", "mimic-cxr").benchmark
    with pytest.raises(SystemExit):
        _parse("infer", "--model", "m", "--data", "d", "--out", "o", "--benchmark", "chexpert")


def test_clinkd_ask_defaults():
    a = _parse("ask", "q", "--model", "m", "--image", "i.png")
    assert (a.select, a.candidates, a.max_new_tokens, a.seed) == (
        DEFAULTS.select,
        DEFAULTS.candidates,
        DEFAULTS.max_new_tokens,
        DEFAULTS.seed,
    )


def test_clinkd_serve_defaults():
    """serve's candidates were 4 and its token limit 128: now 5 and 100, as everywhere else."""
    a = _parse("serve", "--model", "m")
    assert (a.select, a.candidates, a.max_new_tokens) == (DEFAULTS.select, 5, 100)
    assert (a.candidates, a.max_new_tokens) == (DEFAULTS.candidates, DEFAULTS.max_new_tokens)


def test_library_defaults():
    from clinkd.infer.ask import ask_image
    from clinkd.infer.generate import generate_answers
    from clinkd.infer.predict import MAX_NEW_TOKENS, _Options, predict_file
    from clinkd.infer.sasg import AnchoredLength, generate_candidates, select_answers
    from clinkd.serve.answer import Answerer

    d = DEFAULTS
    sasg = _defaults(generate_candidates)
    assert (sasg["n"], sasg["max_new_tokens"], sasg["temperature"], sasg["top_p"]) == (
        d.candidates,
        d.max_new_tokens,
        d.temperature,
        d.top_p,
    )
    assert (sasg["length_factor"], sasg["length_slack"]) == (d.length_factor, d.length_slack)
    anchored = _defaults(AnchoredLength.__init__)
    assert (anchored["factor"], anchored["slack"]) == (d.length_factor, d.length_slack)
    assert _defaults(select_answers)["box_weight"] == d.box_weight
    assert _defaults(generate_answers)["max_new_tokens"] == d.max_new_tokens
    ask = _defaults(ask_image)
    assert (ask["select"], ask["candidates"], ask["temperature"], ask["top_p"], ask["max_new_tokens"]) == (
        d.select,
        d.candidates,
        d.temperature,
        d.top_p,
        d.max_new_tokens,
    )
    pf = _defaults(predict_file)
    o = _Options()
    for name in (
        "select",
        "candidates",
        "temperature",
        "top_p",
        "box_weight",
        "length_factor",
        "batch_size",
        "seed",
    ):
        assert pf[name] == getattr(o, name) == getattr(d, name), name
    assert pf["max_new_tokens"] is None and pf["benchmark"] is None
    assert MAX_NEW_TOKENS == {**TASK_MAX_NEW_TOKENS, None: 80}
    fields = {f.name: f.default for f in dataclasses.fields(Answerer)}
    assert (fields["select"], fields["candidates"], fields["max_new_tokens"]) == (
        d.select,
        d.candidates,
        d.max_new_tokens,
    )
    assert (fields["temperature"], fields["top_p"]) == (d.temperature, d.top_p)


def test_generate_batch_default_token_limit(monkeypatch):
    """generate_batch's own fallback, when no max_new_tokens is passed, is the one place's."""
    import clinkd.infer.generate as gen

    src = inspect.getsource(gen.generate_batch)
    assert 'gen_kwargs.pop("max_new_tokens", DEFAULTS.max_new_tokens)' in src


def test_help_texts_state_the_defaults(capsys):
    from clinkd.cli.main import build_parser

    parser = build_parser()
    for argv in (["infer", "--help"], ["ask", "--help"], ["serve", "--help"]):
        with pytest.raises(SystemExit):
            parser.parse_args(argv)
        text = " ".join(capsys.readouterr().out.split())
        assert f"({DEFAULTS.candidates})" in text or f"(default {DEFAULTS.candidates})" in text, argv
    with pytest.raises(SystemExit):
        parser.parse_args(["infer", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "Max new tokens default to 80, and 100 for MII" in text
    assert ", ".join(f"{b} {n}" for b, n in BENCHMARK_MAX_NEW_TOKENS.items()) in text
    assert all(b in text for b in BENCHMARKS)


def test_help_does_not_import_torch():
    """Reading the defaults for the help texts keeps ``clinkd infer --help`` free of torch."""
    code = (
        "import sys; from clinkd.cli.main import build_parser; build_parser(); "
        "import clinkd.infer.defaults; print('torch' in sys.modules, 'transformers' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_rct_and_pseudo_label_settings_are_training_settings():
    """Reflective correction and pseudo-labelling keep their own config (longer answers to learn from,
    sampled at 0.9): pinned here so that a change is a decision."""
    from clinkd.train.config import DistillConfig, RCTConfig

    rct = RCTConfig()
    assert (rct.max_new_tokens, rct.num_candidates, rct.sampling_temperature) == (128, 4, 0.9)
    assert DistillConfig().max_new_tokens == 128
