import torch

from clinkd.data.formats import read_dataset_dir
from clinkd.train.dataset import ConversationCollator, TrainItem, assistant_label_mask, items_from_dataset


def test_assistant_mask_by_hand():
    # header = [7, 8], end = 9; two answers in row 0, one in row 1 followed by padding 0
    ids = torch.tensor(
        [
            [1, 7, 8, 4, 5, 9, 2, 9, 7, 8, 6, 9],
            [3, 9, 7, 8, 4, 9, 0, 0, 0, 0, 0, 0],
        ]
    )
    m = assistant_label_mask(ids, [7, 8], 9)
    assert m[0].tolist() == [0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 1, 1]
    assert m[1].tolist() == [0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0]


def test_labels_cover_every_answer_of_a_multi_turn_sample(synth_dir, tiny_processor):
    ds = read_dataset_dir(synth_dir)
    items = items_from_dataset(ds)
    multi = [it for it in items if len(it.turns) >= 3][:2]
    assert multi, "the synthetic training set should have multi-turn records"
    col = ConversationCollator(tiny_processor)
    batch = col(multi)
    tok = tiny_processor.tokenizer
    for row, it in enumerate(multi):
        labels = batch["labels"][row]
        kept = labels[labels != -100]
        text = tok.decode(kept, skip_special_tokens=False)
        # exactly the answers, each closed by <|im_end|>, in order, and nothing else
        assert text == "".join(a + "<|im_end|>" for _, a in it.turns)
        # the image tokens and the questions are never labelled
        assert not (labels[batch["mm_token_type_ids"][row] == 1] != -100).any()
    # padding is masked
    pad = batch["attention_mask"] == 0
    assert (batch["labels"][pad] == -100).all()


def test_missing_image_is_named(tmp_path, synth_dir, tiny_processor):
    import pytest

    from clinkd.errors import DataError

    col = ConversationCollator(tiny_processor)
    item = TrainItem(image=tmp_path / "ct_404.png", turns=[("q", "a")], source="train.json [record 7]")
    with pytest.raises(DataError, match=r"train.json \[record 7\].*image file not found"):
        col([item])


def test_missing_image_fails_before_training(tmp_path, synth_dir):
    import json
    import shutil

    import pytest

    from clinkd.errors import DataError

    copy = tmp_path / "data"
    shutil.copytree(synth_dir, copy)
    first = json.loads((copy / "train.json").read_text())[3]["id"]
    (copy / "images" / f"{first}.png").unlink()
    with pytest.raises(DataError, match=rf"train.json \[record 3\] \(id {first}\): image not found"):
        items_from_dataset(read_dataset_dir(copy))
