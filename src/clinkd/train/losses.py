"""Losses of the ClinKD training stages, as pure functions (method.md §2).

Shapes: ``B`` batch, ``L`` sequence length, ``V`` vocabulary. ``labels`` hold the *unshifted* target ids
with -100 on every position that is not an answer token (prompt, image, padding), as transformers'
causal-LM convention: the logits at position ``i`` predict ``labels[i + 1]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

#: the label of a position no loss is taken on (PyTorch's and transformers' ``ignore_index``); the one
#: definition: :class:`clinkd.train.dataset.ConversationCollator` writes it, the losses read it
IGNORE_INDEX = -100


@dataclass
class LossParts:
    """The combined loss and its parts (detached copies of the parts, for logging)."""

    loss: torch.Tensor
    ce: torch.Tensor
    kl: torch.Tensor


def _shift(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    # (B, L, V), (B, L) -> (B, L-1, V), (B, L-1): position i predicts token i+1
    return logits[:, :-1, :], labels[:, 1:]


def _normaliser(mask: torch.Tensor, num_items_in_batch: int | torch.Tensor | None) -> torch.Tensor:
    """The number of answer tokens the summed loss is divided by.

    Under gradient accumulation the Trainer passes ``num_items_in_batch``, the answer-token count of the
    whole accumulated batch, so that the sum of the micro-batch losses equals the loss of the full
    batch; without it, the micro-batch's own count is used.
    """
    if num_items_in_batch is None:
        return mask.sum().clamp(min=1).to(torch.float32)
    n = torch.as_tensor(num_items_in_batch, dtype=torch.float32, device=mask.device)
    return n.clamp(min=1)


def causal_lm_loss(
    logits: torch.Tensor, labels: torch.Tensor, num_items_in_batch: int | torch.Tensor | None = None
) -> torch.Tensor:
    """Token-level cross-entropy over answer tokens, summed then divided by the answer-token count.

    Args:
        logits: (B, L, V) student logits.
        labels: (B, L) target ids, -100 where no loss is taken.
        num_items_in_batch: answer tokens in the whole (accumulated) batch, or None.
    """
    logits, targets = _shift(logits, labels)
    mask = targets != IGNORE_INDEX
    ce = F.cross_entropy(
        logits.reshape(-1, logits.size(-1)).float(),
        targets.reshape(-1),
        ignore_index=IGNORE_INDEX,
        reduction="sum",
    )
    return ce / _normaliser(mask, num_items_in_batch)


def forward_kl(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    temperature: float = 0.5,
    num_items_in_batch: int | torch.Tensor | None = None,
) -> torch.Tensor:
    """KL(teacher ‖ student) of temperature-scaled next-token distributions, over answer tokens.

    ``sum_v p_T(v) (log p_T(v) - log p_S(v))`` with ``p = softmax(logits / temperature)``, summed over
    the positions whose next token is an answer token and divided like :func:`causal_lm_loss`.
    Both distributions are taken over the vocabulary the two models share, the first
    ``min(V_s, V_t)`` logits (method.md §2): checkpoints pad their embeddings past the tokenizer by
    different amounts (Qwen2-VL-7B 152,064 rows, 2B 151,936), and those rows are no tokens. The caller
    checks that the shared part covers the tokenizer (``clinkd.train.run.check_embedding_sizes``). The
    teacher's logits never carry gradient.

    Args:
        student_logits: (B, L, V_s).
        teacher_logits: (B, L, V_t), the same token positions as the student.
        labels: (B, L) with -100 off the answers.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if teacher_logits.shape[:2] != student_logits.shape[:2]:
        raise ValueError(
            f"teacher and student logits cover different positions: {tuple(teacher_logits.shape[:2])} vs "
            f"{tuple(student_logits.shape[:2])}; feed both models the same batch"
        )
    v = min(student_logits.size(-1), teacher_logits.size(-1))
    s, targets = _shift(student_logits[..., :v], labels)
    t, _ = _shift(teacher_logits[..., :v].detach(), labels)
    mask = targets != IGNORE_INDEX  # (B, L-1)
    s, t = s[mask].float(), t[mask].float()  # (N, V): only answer positions, saves memory
    log_p_s = F.log_softmax(s / temperature, dim=-1)
    log_p_t = F.log_softmax(t / temperature, dim=-1)
    kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum()
    return kl / _normaliser(mask, num_items_in_batch)


def forward_kl_topk(
    student_logits: torch.Tensor,
    topk_values: torch.Tensor,
    topk_indices: torch.Tensor,
    labels: torch.Tensor,
    temperature: float = 0.5,
    num_items_in_batch: int | torch.Tensor | None = None,
) -> torch.Tensor:
    """:func:`forward_kl` against teacher logits cached as their top-k (offline distillation).

    The teacher distribution is ``softmax(topk_values / temperature)`` over its k kept tokens; the
    student's log-probabilities are taken over its whole vocabulary and read at those tokens. With k equal
    to the vocabulary size this is exactly :func:`forward_kl`.

    Args:
        student_logits: (B, L, V).
        topk_values: (B, L, k) the teacher's largest logits for the token at each *label* position
            (row ``i`` holds the teacher's prediction of ``labels[:, i]``); anything off the answers.
        topk_indices: (B, L, k) their token ids (< V).
        labels: (B, L) with -100 off the answers.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if topk_values.shape[:2] != labels.shape or topk_indices.shape != topk_values.shape:
        raise ValueError(
            f"cached teacher logits {tuple(topk_values.shape)} do not match labels {tuple(labels.shape)}"
        )
    s, targets = _shift(student_logits, labels)
    mask = targets != IGNORE_INDEX  # (B, L-1)
    tv, ti = topk_values[:, 1:][mask].float(), topk_indices[:, 1:][mask].long()  # (N, k)
    log_p_s = F.log_softmax(s[mask].float() / temperature, dim=-1).gather(-1, ti)  # (N, k)
    log_p_t = F.log_softmax(tv / temperature, dim=-1)
    kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum()
    return kl / _normaliser(mask, num_items_in_batch)


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor | tuple[torch.Tensor, torch.Tensor],
    labels: torch.Tensor,
    *,
    alpha: float = 0.5,
    temperature: float = 0.5,
    num_items_in_batch: int | torch.Tensor | None = None,
) -> LossParts:
    """The ClinKD release's distillation loss: ``(alpha * KL + CE) / (1 + alpha)``.

    CE is taken on the labels (the pseudo-labels, or the ground truth where it replaced them); KL is
    :func:`forward_kl` on full teacher logits (B, L, V_t), or :func:`forward_kl_topk` when
    ``teacher_logits`` is a cached ``(values, indices)`` pair. With identical logits the KL part is 0.

    >>> import torch
    >>> logits = torch.randn(1, 4, 7)
    >>> labels = torch.tensor([[-100, 3, 5, -100]])
    >>> parts = distillation_loss(logits, logits.clone(), labels)
    >>> float(parts.kl)
    0.0
    """
    if alpha < 0:
        raise ValueError(f"alpha must be >= 0, got {alpha}")
    ce = causal_lm_loss(student_logits, labels, num_items_in_batch)
    if isinstance(teacher_logits, tuple):
        kl = forward_kl_topk(student_logits, *teacher_logits, labels, temperature, num_items_in_batch)
    else:
        kl = forward_kl(student_logits, teacher_logits, labels, temperature, num_items_in_batch)
    loss = (alpha * kl + ce) / (1.0 + alpha)
    return LossParts(loss=loss, ce=ce.detach(), kl=kl.detach())


def teacher_topk(
    logits: torch.Tensor, labels: torch.Tensor, k: int
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per sample, the teacher's top-``k`` logits predicting each answer token, for caching.

    Args:
        logits: (B, L, V) teacher logits; labels: (B, L) with -100 off the answers.
    Returns:
        for each sample ``(values (n, k) float16, indices (n, k) int32)`` over its ``n`` answer tokens, in
        order — what :func:`forward_kl_topk` reads back once placed at the label positions.
    """
    lg, targets = _shift(logits, labels)
    k = min(k, lg.size(-1)) if k > 0 else lg.size(-1)
    out = []
    for b in range(lg.size(0)):
        rows = lg[b][targets[b] != IGNORE_INDEX].float()  # (n, V)
        v, i = rows.topk(k, dim=-1)
        out.append((v.to(torch.float16), i.to(torch.int32)))
    return out


def confidence_margin(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-sample mean over answer tokens of ``p_top1 - p_top2`` (method.md §2, our design).

    Args:
        logits: (B, L, V) teacher logits on the sequence holding its own answer.
        labels: (B, L) with -100 off the answer.
    Returns:
        (B,) margins in [0, 1]; 0 for a sample with no answer token.
    """
    lg, targets = _shift(logits, labels)
    mask = (targets != IGNORE_INDEX).float()  # (B, L-1)
    top2 = torch.softmax(lg.float(), dim=-1).topk(2, dim=-1).values  # (B, L-1, 2)
    margin = (top2[..., 0] - top2[..., 1]) * mask
    return margin.sum(dim=1) / mask.sum(dim=1).clamp(min=1)
