"""The naive reference: one plain pycocoevalcap run per group, as the published scripts do.

Used by the tests and ``benchmarks/bench_eval.py`` to check that :mod:`clinkd.eval.captions` gives
identical numbers. Each call starts a fresh tokenizer JVM (twice: references, then responses, like
``COCOEvalCap.evaluate``) and a fresh METEOR JVM. SPICE is left out (it cannot run offline).
Not for production use: slow by design, and it inherits pycocoevalcap's fragility on odd input.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence

from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.meteor.meteor import Meteor
from pycocoevalcap.rouge.rouge import Rouge
from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer


def naive_caption_scores(hyps: Sequence[str], refs: Sequence[str]) -> dict[str, float]:
    """BLEU-1..4, METEOR, ROUGE-L, CIDEr of one group, each sample its own image, one reference."""
    gts = {i: [{"caption": r}] for i, r in enumerate(refs)}
    res = {i: [{"caption": h}] for i, h in enumerate(hyps)}
    with contextlib.redirect_stdout(io.StringIO()):
        tok = PTBTokenizer()
        gts_t = tok.tokenize(gts)
        res_t = tok.tokenize(res)
        out: dict[str, float] = {}
        bleu, _ = Bleu(4).compute_score(gts_t, res_t, verbose=0)
        for k, v in enumerate(bleu, start=1):
            out[f"Bleu_{k}"] = float(v)
        meteor = Meteor()
        try:
            out["METEOR"] = float(meteor.compute_score(gts_t, res_t)[0])
        finally:
            del meteor
        out["ROUGE_L"] = float(Rouge().compute_score(gts_t, res_t)[0])
        out["CIDEr"] = float(Cider().compute_score(gts_t, res_t)[0])
    return out
