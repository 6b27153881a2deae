import pytest

from clinkd.train.schedule import ScheduledDataset, curriculum_order, shuffled_order


def test_shuffled_order_is_seeded_epochs():
    order = shuffled_order(5, 12, seed=3)
    assert len(order) == 12
    assert sorted(order[:5]) == list(range(5)) and sorted(order[5:10]) == list(range(5))
    assert order == shuffled_order(5, 12, seed=3) and order != shuffled_order(5, 12, seed=4)


def test_curriculum_admits_most_confident_first():
    margins = [0.1, 0.9, 0.5, 0.7, 0.3, 0.8, 0.2, 0.6]  # by confidence: 1, 5, 3, 7, 2, 4, 6, 0
    order, phases = curriculum_order(margins, length=40, phases=4, seed=0)
    assert len(order) == 40
    assert [p.pool for p in phases] == [2, 4, 6, 8]
    assert [p.entered for p in phases] == [2, 2, 2, 2]
    assert [p.start for p in phases] == [0, 10, 20, 30]
    assert [p.threshold for p in phases] == [0.8, 0.6, 0.3, 0.1]
    # phase k only draws from the k+1 most confident quarters, and admits every newcomer
    by_conf = [1, 5, 3, 7, 2, 4, 6, 0]
    for p in phases:
        seen = set(order[p.start : p.start + 10])
        assert seen <= set(by_conf[: p.pool])
        assert set(by_conf[p.pool - 2 : p.pool]) <= seen
    # the least confident sample never appears before the last phase
    assert 0 not in order[:30] and 0 in order[30:]


def test_replay_keeps_length_and_only_touches_the_future():
    ds = ScheduledDataset(["a", "b", "c"], shuffled_order(3, 30, 0))
    before = list(ds.order)
    pos = ds.replay(["X", "Y"], times=3, from_position=12, seed=1)
    assert len(ds) == 30 and len(pos) == 6 and min(pos) >= 12
    assert ds.order[:12] == before[:12]
    assert sorted(ds[i] for i in pos) == ["X", "X", "X", "Y", "Y", "Y"]
    assert ds.replay(["Z"], times=2, from_position=30, seed=0) == []


def test_bad_schedule():
    with pytest.raises(ValueError):
        ScheduledDataset(["a"], [0, 1])
    with pytest.raises(ValueError):
        curriculum_order([], 4, 2, 0)


@pytest.mark.parametrize("workers", [0, 2])
def test_replay_reaches_data_loader_workers(workers):
    """Rewrites made in the training process while workers run must reach the batches they build."""
    from torch.utils.data import DataLoader, SequentialSampler

    ds = ScheduledDataset([f"item{i}" for i in range(4)], [i % 4 for i in range(40)])
    loader = DataLoader(
        ds,
        batch_size=2,
        sampler=SequentialSampler(ds),
        num_workers=workers,
        collate_fn=list,
        prefetch_factor=1 if workers else None,
    )
    seen = []
    for step, batch in enumerate(loader):
        seen += batch
        if step == 3:  # workers have started and prefetched; rewrite the far future
            positions = ds.replay(["fix-a", "fix-b"], times=3, from_position=20, seed=0)
            assert len(positions) == 6 and min(positions) >= 20
    assert seen[:8] == [f"item{i % 4}" for i in range(8)]
    assert sorted(x for x in seen if x.startswith("fix")) == ["fix-a"] * 3 + ["fix-b"] * 3
    assert seen == [ds[i] for i in range(len(ds))]
