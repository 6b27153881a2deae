import math

import pytest
import torch
import torch.nn.functional as F

from clinkd.train.losses import causal_lm_loss, confidence_margin, distillation_loss, forward_kl


def _batch(seed=0, B=3, L=7, V=11):
    g = torch.Generator().manual_seed(seed)
    s = torch.randn(B, L, V, generator=g)
    t = torch.randn(B, L, V + 4, generator=g)  # a larger teacher vocabulary is cut to the student's
    labels = torch.randint(0, V, (B, L), generator=g)
    labels[:, :3] = -100  # prompt
    labels[1, 5:] = -100  # padding
    return s, t, labels


def _naive(s, t, labels, alpha, tau):
    """Token by token, the obvious way."""
    V = s.size(-1)
    ce_sum, kl_sum, n = 0.0, 0.0, 0
    for b in range(s.size(0)):
        for i in range(s.size(1) - 1):
            y = int(labels[b, i + 1])
            if y == -100:
                continue
            n += 1
            ce_sum += -F.log_softmax(s[b, i], -1)[y].item()
            pt = F.softmax(t[b, i, :V] / tau, -1)
            ps = F.softmax(s[b, i] / tau, -1)
            kl_sum += sum(pt[v].item() * math.log(pt[v].item() / ps[v].item()) for v in range(V))
    ce, kl = ce_sum / n, kl_sum / n
    return (alpha * kl + ce) / (1 + alpha), ce, kl


@pytest.mark.parametrize("alpha,tau", [(0.5, 0.5), (1.0, 2.0), (0.0, 1.0)])
def test_matches_naive_computation(alpha, tau):
    s, t, labels = _batch()
    parts = distillation_loss(s, t, labels, alpha=alpha, temperature=tau)
    loss, ce, kl = _naive(s, t, labels, alpha, tau)
    assert float(parts.loss) == pytest.approx(loss, rel=1e-5)
    assert float(parts.ce) == pytest.approx(ce, rel=1e-5)
    assert float(parts.kl) == pytest.approx(kl, rel=1e-5)


def test_identical_logits_give_zero_kl_and_loss_equals_scaled_ce():
    s, _, labels = _batch(1)
    parts = distillation_loss(s, s.clone(), labels, alpha=0.5, temperature=0.5)
    assert float(parts.kl) == pytest.approx(0.0, abs=1e-6)
    assert float(parts.loss) == pytest.approx(float(parts.ce) / 1.5, rel=1e-6)


def test_ce_equals_transformers_convention():
    s, _, labels = _batch(2)
    ref = F.cross_entropy(s[:, :-1].reshape(-1, s.size(-1)), labels[:, 1:].reshape(-1), ignore_index=-100)
    assert float(causal_lm_loss(s, labels)) == pytest.approx(float(ref), rel=1e-6)


def test_gradients_reach_only_the_student():
    s, t, labels = _batch(3)
    s.requires_grad_(True)
    t.requires_grad_(True)
    distillation_loss(s, t, labels).loss.backward()
    assert s.grad is not None and s.grad.abs().sum() > 0
    assert t.grad is None
    # no gradient through masked positions
    assert s.grad[:, :2].abs().sum() == 0


def test_gradient_accumulation_equals_full_batch():
    s, t, labels = _batch(4, B=4)
    n_items = int((labels[:, 1:] != -100).sum())
    full = distillation_loss(s, t, labels).loss
    halves = sum(
        distillation_loss(s[i : i + 2], t[i : i + 2], labels[i : i + 2], num_items_in_batch=n_items).loss
        for i in (0, 2)
    )
    assert float(halves) == pytest.approx(float(full), rel=1e-6)


def test_kl_is_taken_over_the_shared_vocabulary():
    """Embedding rows past the shared vocabulary (a 7B teacher's 152,064 vs a 2B student's 151,936) are ignored,
    whichever model has more of them."""
    s, t, labels = _batch()
    t = t[..., : s.size(-1)]
    junk = torch.full(t.shape[:2] + (3,), 50.0)  # huge logits on rows the other model lacks
    base = forward_kl(s, t, labels)
    torch.testing.assert_close(forward_kl(s, torch.cat([t, junk], -1), labels), base)
    torch.testing.assert_close(forward_kl(torch.cat([s, junk], -1), t, labels), base)


def test_bad_inputs_are_clear():
    s, t, labels = _batch()
    with pytest.raises(ValueError, match="temperature"):
        forward_kl(s, t, labels, temperature=0)
    with pytest.raises(ValueError, match="same batch"):
        forward_kl(s, t[:, :-1], labels)


def test_confidence_margin():
    logits = torch.full((2, 3, 4), -1e9)
    logits[0, :, 0] = 10.0  # certain: margin 1
    logits[1, :, 0] = 0.0  # two equal top tokens: margin 0
    logits[1, :, 1] = 0.0
    labels = torch.tensor([[-100, 1, 1], [-100, 1, -100]])
    m = confidence_margin(logits, labels)
    assert m.tolist() == pytest.approx([1.0, 0.0], abs=1e-6)
    assert confidence_margin(logits, torch.full((2, 3), -100)).tolist() == [0.0, 0.0]


def test_topk_kl_with_the_whole_vocabulary_equals_full_kl():
    from clinkd.train.losses import forward_kl_topk

    s, t, labels = _batch(5)
    t = t[..., : s.size(-1)]
    # cached at the *label* positions: row i holds the teacher's prediction of labels[:, i] (= logits i-1)
    v, i = t.topk(t.size(-1), dim=-1)
    v = torch.cat([torch.zeros_like(v[:, :1]), v[:, :-1]], dim=1)
    i = torch.cat([torch.zeros_like(i[:, :1]), i[:, :-1]], dim=1)
    full = forward_kl(s, t, labels, temperature=0.7)
    assert float(forward_kl_topk(s, v, i, labels, temperature=0.7)) == pytest.approx(float(full), rel=1e-5)
    # fewer tokens: an approximation, still >= 0 and close when the teacher is peaked
    v4, i4 = v[..., :4], i[..., :4]
    assert float(forward_kl_topk(s, v4, i4, labels, temperature=0.7)) >= 0


def test_teacher_topk_round_trip_through_the_collator_layout():
    from clinkd.train.losses import forward_kl_topk, teacher_topk

    s, t, labels = _batch(6)
    t = t[..., : s.size(-1)]
    cached = teacher_topk(t, labels, k=0)  # 0: whole vocabulary
    assert [c[0].shape[0] for c in cached] == (labels[:, 1:] != -100).sum(1).tolist()
    # place them at label positions as ConversationCollator does
    V = s.size(-1)
    values = torch.zeros(*labels.shape, V)
    indices = torch.zeros(*labels.shape, V, dtype=torch.long)
    for b, (v, i) in enumerate(cached):
        pos = (labels[b] != -100).nonzero().squeeze(-1)
        pos = pos[pos > 0]
        values[b, pos] = v.float()
        indices[b, pos] = i.long()
    got = forward_kl_topk(s, values, indices, labels, temperature=0.5)
    assert float(got) == pytest.approx(
        float(forward_kl(s, t, labels, temperature=0.5)), rel=2e-3
    )  # float16 cache
