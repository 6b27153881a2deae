"""The Med-GRIT data layer: samples and boxes, file forms, validation, images, synthetic benchmark."""

from clinkd.data.boxes import Box, convert_markup, format_grounding, parse_box_body, parse_boxes, parse_refs
from clinkd.data.formats import (
    Dataset,
    find_dataset_files,
    read_dataset_dir,
    read_samples,
    write_samples,
    write_sharegpt,
    write_test_file,
    write_train_file,
)
from clinkd.data.images import load_image
from clinkd.data.sample import MODALITIES, TASKS, Sample, Turn, modality_of

__all__ = [
    "MODALITIES",
    "TASKS",
    "Box",
    "Dataset",
    "Sample",
    "Turn",
    "convert_markup",
    "find_dataset_files",
    "format_grounding",
    "load_image",
    "modality_of",
    "parse_box_body",
    "parse_boxes",
    "parse_refs",
    "read_dataset_dir",
    "read_samples",
    "write_samples",
    "write_sharegpt",
    "write_test_file",
    "write_train_file",
]
