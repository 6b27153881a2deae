"""What a prediction run may be asked: the checks of its selection and decoding settings, made before any
work and naming the option as the caller spells it (``--top-p`` on the command line, ``top_p`` in Python).

Used by ``clinkd infer``, ``clinkd ask`` and :func:`clinkd.infer.predict.predict_file`; the defaults they
check against live in :mod:`clinkd.infer.defaults`.
"""

from __future__ import annotations

import math
from typing import Any

from clinkd.errors import ClinkdError
from clinkd.infer.resume import _is_int

__all__ = ["MAX_SEED", "check_decoding_args"]

#: Largest seed + 1: batch k samples under seed + k, which torch takes up to 2**64 - 1.
MAX_SEED = 2**63


_CLI_NAMES = {"length_factor": "--length-cap"}


def _name(arg: str, cli: bool) -> str:
    return _CLI_NAMES.get(arg, "--" + arg.replace("_", "-")) if cli else arg


def check_decoding_args(
    *,
    select: str = "greedy",
    candidates: int | None = None,
    temperature: float | None = None,
    top_p: float | None = None,
    box_weight: float | None = None,
    length_factor: float | None = None,
    batch_size: int | None = None,
    max_new_tokens: int | None = None,
    limit: int | None = None,
    seed: int | None = None,
    cli: bool = False,
) -> None:
    """Refuse impossible selection and generation settings before any work, naming the option.

    ``None`` means "not given" (a default applies). Sampling settings (temperature, candidates, box
    weight, length cap) are checked for ``select="sasg"`` only, greedy decoding ignoring them; ``top_p``
    is checked whenever given. ``cli`` names the options as the command line spells them (``--top-p``).
    Raises :class:`~clinkd.errors.ClinkdError`.
    """

    def bad(arg: str, rule: str, value: Any) -> ClinkdError:
        return ClinkdError(f"{_name(arg, cli)} must be {rule}, got {value!r}")

    if select not in ("greedy", "sasg"):
        raise ClinkdError(f"unknown selection {select!r}; choose greedy or sasg")
    for arg, value, lowest, rule in (
        ("batch_size", batch_size, 1, "a whole number of at least 1"),
        ("max_new_tokens", max_new_tokens, 1, "a whole number of at least 1"),
        ("limit", limit, 1, "a whole number of at least 1 (leave it out to answer every sample)"),
        ("seed", seed, 0, f"a whole number from 0 to {MAX_SEED - 1}"),
    ):
        if value is not None and (
            not _is_int(value) or value < lowest or (arg == "seed" and value >= MAX_SEED)
        ):
            raise bad(arg, rule, value)
    if top_p is not None and not (isinstance(top_p, (int, float)) and 0 < top_p <= 1):
        raise bad("top_p", "in (0, 1] (the share of probability mass sampled from)", top_p)
    if select != "sasg":
        return
    if candidates is not None and (not _is_int(candidates) or candidates < 1):
        raise bad(
            "candidates", "a whole number of at least 1 for SASG (sampled answers besides greedy)", candidates
        )
    if temperature is not None and not (
        isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature > 0
    ):
        raise bad("temperature", "a finite number above 0 when sampling (SASG)", temperature)
    if box_weight is not None and not (isinstance(box_weight, (int, float)) and 0 <= box_weight <= 1):
        raise bad("box_weight", "between 0 and 1", box_weight)
    if length_factor is not None and not (
        isinstance(length_factor, (int, float)) and math.isfinite(length_factor) and length_factor > 0
    ):
        raise bad(
            "length_factor",
            "a finite number above 0" + (" (0: no cap)" if cli else " (None: no cap)"),
            length_factor,
        )
