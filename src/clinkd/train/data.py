"""Old name of :mod:`clinkd.train.dataset` (it read like the package :mod:`clinkd.data`); removed once
nothing imports it."""

from clinkd.train.dataset import ITEM_KINDS, ConversationCollator, TrainItem, assistant_label_mask, items_from_dataset

__all__ = ["ITEM_KINDS", "ConversationCollator", "TrainItem", "assistant_label_mask", "items_from_dataset"]
