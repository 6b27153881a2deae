"""The Java parts of pycocoevalcap, each started once: PTB tokenizer, METEOR 1.5, SPICE detection.

pycocoevalcap starts a tokenizer JVM per ``tokenize`` call and a METEOR JVM (≈8 s: it loads a 60 MB
paraphrase table) per ``Meteor()``; the published scripts do both once per modality per task. Here
one tokenizer run covers every caption of every task, and one METEOR process scores them all.

* Tokenizer: the same jar and flags (``PTBTokenizer -preserveLines -lowerCase``), one file per
  document as pycocoevalcap writes it, all files in one JVM (``-ioFileList``), then pycocoevalcap's
  own punctuation filter. The tokenizer splits lines on more than ``\\n`` (``\\r``, ``\\x0b``,
  ``\\x0c``, ``\\x85``, U+2028/2029 — checked), so such characters are replaced by spaces first and
  lone surrogates by U+FFFD; each output must have exactly one line per caption, or we fail loudly
  rather than misalign scores (pycocoevalcap's ``zip`` would silently drop or shift captions). Captions
  are tokenised whole, as pycocoevalcap tokenises them: no length bound here (the evaluator's
  ``max_caption_tokens`` is an explicit, counted option).
* METEOR: the same jar and flags as ``pycocoevalcap.meteor.Meteor``, the same ``SCORE``/``EVAL``
  protocol (so the numbers are identical), but lines are streamed by a writer thread instead of one
  blocking round trip per caption, and a group's corpus score is one ``EVAL`` of its aggregated
  statistics (:func:`aggregate_stats`, METEOR's own aggregation rule). METEOR's aligner runs out of its
  2 GB on a response of some 20,000 words that often match its reference (pycocoevalcap's does too);
  the process then ends, and :class:`MeteorDied` says after how many answers.
* SPICE: needs the Stanford CoreNLP 3.6.0 jars that pycocoevalcap *downloads* on first use. We only
  look for the files and never call the downloader.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import tempfile
import threading
import unicodedata
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from clinkd.errors import ClinkdError

MAX_TOKENS = 2_000
"""The caption bound clinkd suggests when one is needed to stay alive (``--max-caption-tokens``, off by
default): far above any Med-GRIT answer (a reference is a few dozen words), far below what METEOR
cannot align."""

_PUNCTUATIONS = frozenset(
    ["''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-", "--", "...", ";"]
)
# The same list as pycocoevalcap.tokenizer.ptbtokenizer.PUNCTUATIONS (checked by a test).


class JavaToolError(ClinkdError, RuntimeError):
    """A Java-based metric cannot run (no Java, a tool failing); the message says what to do."""


class MeteorDied(JavaToolError):
    """The METEOR process ended mid-stream after ``answered`` output lines (the next input killed it)."""

    def __init__(self, message: str, answered: int):
        super().__init__(message)
        self.answered = answered


def package_dir() -> Path:
    """pycocoevalcap's folder, found without importing it (importing SPICE code is harmless, but
    looking is enough)."""
    spec = importlib.util.find_spec("pycocoevalcap")
    if spec is None or not spec.submodule_search_locations:
        raise JavaToolError("pycocoevalcap is not installed; pip install pycocoevalcap==1.2")
    return Path(next(iter(spec.submodule_search_locations)))


def java_available() -> str | None:
    """Reason Java cannot be used, or ``None`` when ``java`` is on PATH."""
    return None if shutil.which("java") else "no 'java' executable on PATH (install a JRE, e.g. Java 17)"


def sanitize_line(text: str) -> str:
    """One caption as one tokenizer line: line breaks of any kind and other control characters
    become spaces, lone surrogates U+FFFD; nothing is cut."""
    if text.isascii() and text.isprintable():
        return text
    out = []
    for c in text:
        cat = unicodedata.category(c)
        if cat in ("Cc", "Zl", "Zp"):
            out.append(" ")
        elif cat == "Cs":
            out.append("\ufffd")
        else:
            out.append(c)
    return "".join(out)


def _aggressive(text: str) -> str:
    """Fallback sanitiser: anything not printable becomes a space."""
    return "".join(c if c.isprintable() else " " for c in sanitize_line(text))


def ptb_tokenize(texts: Sequence[str]) -> list[str]:
    """Tokenise one document like ``PTBTokenizer().tokenize`` (lower-cased, punctuation removed)."""
    return ptb_tokenize_docs([texts])[0]


def ptb_tokenize_docs(docs: Sequence[Sequence[str]]) -> list[list[str]]:
    """Tokenise several documents in one JVM, each exactly as its own ``PTBTokenizer.tokenize`` call
    (whole captions: nothing is cut).

    The tokenizer is *not* line-local: whether ``a.``, ``etc.``, ``no.`` or ``e.g.`` at the end of a
    line keeps its period depends on how the next line starts (or on the end of the file). So each
    document (one group's responses, or its references — what pycocoevalcap tokenises in one call)
    goes to its own file, and the tokenizer's ``-ioFileList`` mode reads them all in one process,
    each to its own end of file.

    Raises :class:`JavaToolError` when Java is missing or an output cannot be aligned with its input.
    """
    reason = java_available()
    if reason:
        raise JavaToolError(f"caption metrics (GC, MII) need Java: {reason}")
    outs = _run_tokenizer([[sanitize_line(t) for t in doc] for doc in docs])
    result: list[list[str]] = []
    for doc, lines in zip(docs, outs):
        if lines is None:  # characters the tokenizer reads as line breaks: try harder, then fail
            lines = _run_tokenizer([[_aggressive(t) for t in doc]])[0]
        if lines is None:
            raise JavaToolError(
                "the PTB tokenizer output does not line up with its input "
                "(a caption holds characters it treats as line breaks)"
            )
        result.append(
            [" ".join([w for w in line.rstrip().split(" ") if w not in _PUNCTUATIONS]) for line in lines]
        )
    return result


def _run_tokenizer(docs: list[list[str]]) -> list[list[str] | None]:
    """Raw tokenizer output lines per document (``None`` where the line count does not match)."""
    jar = package_dir() / "tokenizer" / "stanford-corenlp-3.4.1.jar"
    results: list[list[str] | None] = [[] for _ in docs]
    todo = [k for k, doc in enumerate(docs) if doc]
    if not todo:
        return results
    with tempfile.TemporaryDirectory(prefix="clinkd-ptb-") as tmp:
        folder = Path(tmp)
        listing = []
        for k in todo:
            # written as pycocoevalcap writes its temporary file: captions joined by "\n"
            (folder / f"in{k}.txt").write_bytes("\n".join(docs[k]).encode("utf-8", errors="replace"))
            listing.append(f"in{k}.txt\tout{k}.txt")
        (folder / "files.txt").write_text("\n".join(listing) + "\n", encoding="utf-8")
        proc = subprocess.run(
            [
                "java",
                "-cp",
                str(jar),
                "edu.stanford.nlp.process.PTBTokenizer",
                "-preserveLines",
                "-lowerCase",
                "-ioFileList",
                "files.txt",
            ],
            cwd=folder,
            capture_output=True,
            check=False,
        )
        if proc.returncode != 0:
            raise JavaToolError(f"PTB tokenizer failed: {proc.stderr.decode(errors='replace')[-500:]}")
        for k in todo:
            text = (folder / f"out{k}.txt").read_bytes().decode("utf-8", errors="replace")
            results[k] = _align(text.split("\n"), docs[k])
    return results


def _align(out: list[str], doc: list[str]) -> list[str] | None:
    """One output line per caption. Trailing blank captions may yield no output line at all
    (pycocoevalcap's ``zip`` then silently drops them); they tokenise to ``""``."""
    n = len(doc)
    if len(out) > n and not any(x.strip() for x in out[n:]):
        out = out[:n]
    if len(out) < n and not any(t.strip() for t in doc[len(out) :]):
        out = out + [""] * (n - len(out))
    return out if len(out) == n else None


class MeteorProcess:
    """One METEOR 1.5 JVM, started at construction (in the background: the caller goes on working
    while it loads) and reused for every group of every task. Same command line as
    ``pycocoevalcap.meteor.Meteor``.

    Use as a context manager, or call :meth:`close`.
    """

    def __init__(self) -> None:
        reason = java_available()
        if reason:
            raise JavaToolError(f"METEOR (GC, MII) needs Java: {reason}")
        folder = package_dir() / "meteor"
        self._proc = subprocess.Popen(
            ["java", "-jar", "-Xmx2G", "meteor-1.5.jar", "-", "-", "-stdio", "-l", "en", "-norm"],
            cwd=folder,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self._lock = threading.Lock()
        self._pending = b""

    def __enter__(self) -> MeteorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        proc = self._proc
        if proc.poll() is None:
            try:
                proc.stdin.close()  # type: ignore[union-attr]
            except OSError:
                pass
            proc.kill()
        proc.wait()

    def stats(self, hyps: Sequence[str], refs: Sequence[Sequence[str]]) -> list[str]:
        """The ``SCORE`` statistics line of each (hypothesis, references) pair, streamed."""
        lines = [_score_line(h, r) for h, r in zip(hyps, refs, strict=True)]
        with self._lock:
            return self._stream(lines, len(lines))

    def evaluate(self, stats: Sequence[str]) -> tuple[float, list[float]]:
        """``EVAL`` over a group's statistics: (corpus METEOR, per-caption METEOR), as pycocoevalcap's
        ``Meteor.compute_score`` returns them for that group."""
        return self.evaluate_many([stats])[0]

    def evaluate_many(self, groups: Sequence[Sequence[str]]) -> list[tuple[float, list[float]]]:
        """:meth:`evaluate` for several groups, written and read in one stream."""
        if any(not g for g in groups):
            raise ValueError("METEOR needs at least one caption per group")
        lines = ["EVAL" + "".join(f" ||| {s}" for s in g) + "\n" for g in groups]
        with self._lock:
            out = self._stream(lines, sum(len(g) + 1 for g in groups))
        results, pos = [], 0
        for g in groups:
            values = [float(x) for x in out[pos : pos + len(g) + 1]]
            pos += len(g) + 1
            results.append((values[-1], values[:-1]))
        return results

    def evaluate_summed(self, stats: Sequence[str]) -> float:
        """Corpus METEOR of a group from the element-wise sum of its statistics, sent as one line."""
        return self.evaluate_summed_many([stats])[0]

    def evaluate_summed_many(self, groups: Sequence[Sequence[str]]) -> list[float]:
        """Corpus METEOR of each group, from its ``SCORE`` statistics aggregated here.

        METEOR's ``EVAL`` aggregates a corpus with ``MeteorStats.addStats`` — every field summed,
        except that a segment matched perfectly (all words of both sides matched, in one chunk) adds
        no chunks — and scores the aggregate. :func:`aggregate_stats` does the same (the fields are
        integer counts, so the sums are exact), and a one-segment ``EVAL`` of the result gives the
        identical corpus score (asserted by the tests and the benchmark against full ``EVAL`` runs)
        while sending one short line instead of thousands. Per-caption scores are not returned.
        """
        lines = [aggregate_stats(stats) for stats in groups]
        return [score for score, _ in self.evaluate_many([[line] for line in lines])]

    def _stream(self, lines: list[str], n_out: int) -> list[str]:
        """Write ``lines`` from a thread (so a full pipe cannot deadlock) and read ``n_out`` lines.

        Reads go through ``os.read`` in large chunks: a ``readline`` per caption would take the GIL
        once per line, and with a busy Python thread beside it each take can wait a switch interval.
        """
        payload = "".join(lines).encode("utf-8", errors="replace")
        stdin = self._proc.stdin
        error: list[BaseException] = []

        def write() -> None:
            try:
                stdin.write(payload)  # type: ignore[union-attr]
                stdin.flush()  # type: ignore[union-attr]
            except BaseException as err:
                error.append(err)

        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        fd = self._proc.stdout.fileno()  # type: ignore[union-attr]
        chunks: list[bytes] = [self._pending]
        seen = self._pending.count(b"\n")
        while seen < n_out:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                writer.join(timeout=5)
                why = f" ({error[0]})" if error else ""
                raise MeteorDied(
                    "the METEOR process ended unexpectedly"
                    + why
                    + " (is Java working? ~2 GB of memory is needed)",
                    seen,
                )
            chunks.append(chunk)
            seen += chunk.count(b"\n")
        writer.join()
        if error:
            raise JavaToolError(f"writing to METEOR failed: {error[0]}")
        data = b"".join(chunks)
        parts = data.split(b"\n", n_out)
        self._pending = parts[n_out] if len(parts) > n_out else b""
        return [p.decode("utf-8", errors="replace").strip() for p in parts[:n_out]]


STATS_WIDTH = 23
"""tstLen refLen tstFunc refFunc, 4 stages × (tstContent refContent tstFunction refFunction),
chunks tstWordMatches refWordMatches — METEOR 1.5's statistics line."""


def additive_stats(line: str) -> list[float]:
    """One segment's ``SCORE`` statistics line as the row METEOR's ``addStats`` adds to a corpus: every
    field as it is, except the chunk count (field 20) of a segment matched perfectly (all words of both
    sides matched, one chunk), which adds nothing. A corpus's statistics are the sum of its segments'
    rows, so a resampled corpus (a bootstrap, :mod:`clinkd.eval.paired`) is a weighted sum of them."""
    r = [float(x) for x in line.split()]
    if len(r) != STATS_WIDTH:
        raise JavaToolError(f"unexpected METEOR statistics line {line!r}")
    test_matches = sum(r[4 + 4 * i] + r[6 + 4 * i] for i in range(4))
    ref_matches = sum(r[5 + 4 * i] + r[7 + 4 * i] for i in range(4))
    if test_matches == r[0] and ref_matches == r[1] and r[20] == 1.0:
        r[20] = 0.0
    return r


def aggregate_stats(stats: Sequence[str]) -> str:
    """The statistics line of a corpus: METEOR's ``addStats`` over the segments' lines."""
    if not stats:
        raise ValueError("METEOR needs at least one caption per group")
    total = [0.0] * STATS_WIDTH
    for line in stats:
        for k, v in enumerate(additive_stats(line)):
            total[k] += v
    return " ".join(repr(v) for v in total)


METEOR_PARAMETERS = {"alpha": 0.85, "beta": 0.2, "gamma": 0.6, "delta": 0.75}
"""METEOR 1.5's parameters for ``-l en`` (task ``default``, as pycocoevalcap runs it: no ``-t``)."""
METEOR_MODULE_WEIGHTS = (1.0, 0.6, 0.8, 0.6)
"""Its weights of the exact, stem, synonym and paraphrase matching stages."""


def meteor_from_stats(stats: np.ndarray) -> np.ndarray:
    """METEOR scores of aggregated statistics rows, vectorised: ``(..., 23) -> (...)``.

    ``MeteorScorer.computeMetrics`` of meteor-1.5.jar (what ``EVAL`` prints for a corpus), operation
    for operation in its order, so that a corpus's row (the sum of :func:`additive_stats` rows) gives
    the score METEOR's ``EVAL`` gives; equality with the JVM is asserted by the tests. NaN scores (no
    words, no matches) are 0 and negative ones are clipped to 0, as there.
    """
    a, b, g, d = (METEOR_PARAMETERS[k] for k in ("alpha", "beta", "gamma", "delta"))
    s = np.asarray(stats, dtype=np.float64)
    test_len, ref_len, test_fn, ref_fn = s[..., 0], s[..., 1], s[..., 2], s[..., 3]
    test_wlen = d * (test_len - test_fn) + (1.0 - d) * test_fn
    ref_wlen = d * (ref_len - ref_fn) + (1.0 - d) * ref_fn
    test_w = np.zeros_like(test_len)
    ref_w = np.zeros_like(ref_len)
    for i, w in enumerate(METEOR_MODULE_WEIGHTS):  # content matches of every stage, then function words
        test_w = test_w + s[..., 4 + 4 * i] * w * d
    for i, w in enumerate(METEOR_MODULE_WEIGHTS):
        ref_w = ref_w + s[..., 5 + 4 * i] * w * d
    for i, w in enumerate(METEOR_MODULE_WEIGHTS):
        test_w = test_w + s[..., 6 + 4 * i] * w * (1.0 - d)
    for i, w in enumerate(METEOR_MODULE_WEIGHTS):
        ref_w = ref_w + s[..., 7 + 4 * i] * w * (1.0 - d)
    test_total = sum(s[..., 4 + 4 * i] + s[..., 6 + 4 * i] for i in range(4))
    ref_total = sum(s[..., 5 + 4 * i] + s[..., 7 + 4 * i] for i in range(4))
    chunks, word_matches = s[..., 20], s[..., 21] + s[..., 22]
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = test_w / test_wlen
        recall = ref_w / ref_wlen
        f_mean = 1.0 / (((1.0 - a) / precision) + (a / recall))
        perfect = (test_total == test_len) & (ref_total == ref_len) & (chunks == 1)
        frag = np.where(perfect, 0.0, chunks / (word_matches / 2))
        score = f_mean * (1.0 - g * np.power(frag, b))
    return np.where(np.isnan(score), 0.0, np.maximum(score, 0.0))


def _score_line(hyp: str, refs: Sequence[str]) -> str:
    # pycocoevalcap cleans the hypothesis this way; '|||' is the field separator, so it is also
    # dropped from references (pycocoevalcap would send it and misread the line).
    hyp = hyp.replace("|||", "").replace("  ", " ")
    refs = [r.replace("|||", "") for r in refs]
    return " ||| ".join(("SCORE", " ||| ".join(refs), hyp)) + "\n"


SPICE_JARS = ("stanford-corenlp-3.6.0.jar", "stanford-corenlp-3.6.0-models.jar")


def spice_unavailable_reason() -> str | None:
    """Why SPICE cannot run here, or ``None`` when it can be tried.

    Looks for ``spice-1.0.jar`` and the CoreNLP jars in pycocoevalcap's ``spice/lib`` — files only;
    pycocoevalcap's ``get_stanford_models`` (which downloads them) is never called.
    """
    reason = java_available()
    if reason:
        return reason
    folder = package_dir() / "spice"
    if not (folder / "spice-1.0.jar").is_file():
        return f"spice-1.0.jar is missing from {folder.name}/ in the pycocoevalcap package"
    missing = [j for j in SPICE_JARS if not (folder / "lib" / j).is_file()]
    if missing:
        return (
            "SPICE needs the Stanford CoreNLP 3.6.0 jars (" + ", ".join(missing) + ") in "
            "pycocoevalcap/spice/lib; pycocoevalcap downloads them from nlp.stanford.edu on first "
            "use, which clinkd never triggers (offline). Copy them there to get SPICE."
        )
    return None


def spice_scores(hyps: Sequence[str], refs: Sequence[Sequence[str]]) -> list[float]:
    """Per-caption SPICE F-scores (``scores["All"]["f"]``), one JVM for all captions.

    Call only when :func:`spice_unavailable_reason` is ``None``. The object is built without
    ``Spice.__init__`` because that constructor is what downloads CoreNLP when it is missing.
    """
    from pycocoevalcap.spice.spice import Spice

    scorer = Spice.__new__(Spice)
    gts = {i: list(r) for i, r in enumerate(refs)}
    res = {i: [h] for i, h in enumerate(hyps)}
    _, per = scorer.compute_score(gts, res)
    return [float(s["All"]["f"]) for s in per]
