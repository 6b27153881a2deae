"""One test per transformers hook of :mod:`clinkd.upstream`: each asserts the upstream shape the hook relies
on (a signature, an attribute, a behaviour), so that a transformers upgrade fails here, by name.

Also the accelerate and DeepSpeed hooks, and the one order relied on with no hook function (custom logits
processors before the warpers, for ``clinkd.infer.sasg``). Behaviour end to end is pinned elsewhere
(docs/platform.md lists where): tests/model/test_modeling.py, tests/train/test_resume.py,
tests/infer/test_generation_settings.py, tests/infer/test_sasg.py.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import os
import warnings
from collections import defaultdict
from pathlib import Path

import pytest
import torch
import transformers
from torch.utils.data import SequentialSampler
from transformers import (
    Qwen2_5_VLForConditionalGeneration,
    Qwen2_5_VLModel,
    Qwen2VLForConditionalGeneration,
    Qwen2VLModel,
    Qwen2VLProcessor,
    Qwen3VLForConditionalGeneration,
    Qwen3VLModel,
)
from transformers.processing_utils import ProcessorMixin

from clinkd import upstream

ROOT = Path(__file__).resolve().parents[1]


def resolve(dotted: str):
    """The object a dotted name names: the longest importable module prefix, then attributes."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for name in parts[i:]:
            obj = getattr(obj, name)
        return obj
    raise ImportError(dotted)


# --------------------------------------------------------------------------------------------------------
# The version the hooks were checked against
# --------------------------------------------------------------------------------------------------------


def test_transformers_version_the_hooks_were_checked_against():
    """A different installed transformers is a warning (run this file, re-read the hooks), not a failure."""
    note = upstream.version_note()
    if note is not None:
        warnings.warn(note, UserWarning, stacklevel=1)
    assert upstream.version_note(upstream.CHECKED_TRANSFORMERS_VERSION) is None
    assert "transformers 5.99.0 is installed" in upstream.version_note("5.99.0")
    assert upstream.CHECKED_TRANSFORMERS_VERSION in (upstream.__doc__ or "")


def test_checked_version_is_within_the_pinned_range():
    """Moving the pin in pyproject.toml without re-checking the hooks (and the version recorded) fails."""
    tomllib = pytest.importorskip("tomllib")
    from packaging.requirements import Requirement

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    pin = next(Requirement(d) for d in deps if Requirement(d).name == "transformers")
    assert pin.specifier.contains(upstream.CHECKED_TRANSFORMERS_VERSION), (
        f"pyproject pins {pin}, the hooks were checked against {upstream.CHECKED_TRANSFORMERS_VERSION}"
    )


# --------------------------------------------------------------------------------------------------------
# Overrides: the upstream method exists with the parameters the override is written against
# --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("hook", upstream.OVERRIDES, ids=lambda o: o.upstream.removeprefix("transformers."))
def test_overridden_upstream_method_keeps_its_parameters(hook):
    stock = resolve(hook.upstream)
    params = inspect.signature(stock).parameters
    assert list(params)[: len(hook.parameters)] == list(hook.parameters), (
        f"{hook.upstream} now takes {list(params)}; clinkd's override {hook.override} is written against "
        f"{list(hook.parameters)} ({hook.why})"
    )
    # ours is a different function, on a subclass of the upstream class, and takes whatever upstream takes:
    # the leading parameters in their places, every other one by name
    ours = resolve(hook.override)
    assert ours is not stock
    assert issubclass(resolve(hook.override.rsplit(".", 1)[0]), resolve(hook.upstream.rsplit(".", 1)[0]))
    ours_params = inspect.signature(ours).parameters
    kinds = {p.kind for p in ours_params.values()}
    assert inspect.Parameter.VAR_POSITIONAL in kinds or list(ours_params)[: len(hook.parameters)] == list(
        hook.parameters
    )
    named = [n for n, p in params.items() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    assert inspect.Parameter.VAR_KEYWORD in kinds or set(named) <= set(ours_params), (
        f"{hook.override} does not take {sorted(set(named) - set(ours_params))} of {hook.upstream}"
    )


def test_every_private_trainer_override_is_listed():
    """A new override of a private Trainer method belongs in OVERRIDES (and gets its test here)."""
    from transformers import Trainer

    from clinkd.train.trainer import ClinKDTrainer

    private = {
        f"transformers.Trainer.{n}"
        for n, v in vars(ClinKDTrainer).items()
        if n.startswith("_") and not n.startswith("__") and callable(v) and hasattr(Trainer, n)
    }
    assert private <= {o.upstream for o in upstream.OVERRIDES}


# --------------------------------------------------------------------------------------------------------
# Model hooks: a tiny model of each family, built from clinkd's own tiny configs
# --------------------------------------------------------------------------------------------------------


class _Vocab:
    """What :func:`clinkd.model.tiny.tiny_config` reads from a tokenizer: 64 ids, the vision specials last."""

    specials = {"<|image_pad|>": 60, "<|video_pad|>": 61, "<|vision_start|>": 62, "<|vision_end|>": 63}
    pad_token_id = 0
    eos_token_id = 1

    def __len__(self) -> int:
        return 64

    def convert_tokens_to_ids(self, token: str) -> int:
        return self.specials[token]


FAMILIES = {  # model_type → stock outer class, stock inner class
    "qwen2_vl": (Qwen2VLForConditionalGeneration, Qwen2VLModel),
    "qwen2_5_vl": (Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLModel),
    "qwen3_vl": (Qwen3VLForConditionalGeneration, Qwen3VLModel),
}


@functools.cache
def tiny_pair(family: str):
    """(stock model, clinkd model) of ``family`` with the same weights, from the ``tiny-student`` config."""
    from clinkd.model.modeling import MODEL_CLASSES
    from clinkd.model.tiny import tiny_config

    ours_cls, stock_cls = MODEL_CLASSES[family]
    stock = stock_cls(tiny_config("tiny-student", _Vocab(), family)).eval()
    ours = ours_cls(tiny_config("tiny-student", _Vocab(), family)).eval()
    ours.load_state_dict(stock.state_dict())
    return stock, ours


def image_batch(patch: int = 14) -> dict[str, torch.Tensor]:
    """One sample: text, one image of 4×4 patches (→ 2×2 = 4 merged tokens), text."""
    image = [_Vocab.specials["<|image_pad|>"]] * 4
    ids = torch.tensor(
        [[5, _Vocab.specials["<|vision_start|>"], *image, _Vocab.specials["<|vision_end|>"], 7, 8]]
    )
    types = torch.zeros_like(ids)
    types[0, 2:6] = 1  # (B, L): 1 on image tokens
    return {
        "input_ids": ids,  # (1, 9)
        "attention_mask": torch.ones_like(ids),
        "mm_token_type_ids": types,
        "pixel_values": torch.randn(
            16, 3 * 2 * patch * patch, generator=torch.Generator().manual_seed(0)
        ),  # (patches, C·T·P·P)
        "image_grid_thw": torch.tensor([[1, 4, 4]]),  # (images, 3)
    }


def _spy(monkeypatch, obj, name: str) -> list:
    """Record each call of ``obj.<name>`` (an instance attribute shadowing the method) as (args, kwargs)."""
    calls, original = [], getattr(obj, name)

    def spy(*args, **kwargs):
        calls.append((args, kwargs))
        return original(*args, **kwargs)

    monkeypatch.setattr(obj, name, spy)
    return calls


@pytest.mark.parametrize("family", list(FAMILIES))
def test_get_rope_index_is_called_by_the_forward_and_by_generate(monkeypatch, family):
    """Hook: the inner model's ``get_rope_index`` computes the 3D positions of a forward (through
    ``compute_3d_position_ids``) and of ``generate`` (``_prepare_position_ids_for_generation``), with
    everything after ``input_ids`` by keyword, and stores the deltas in ``rope_deltas``: overriding it
    covers training and decoding."""
    _, model = tiny_pair(family)
    batch = image_batch(model.config.vision_config.patch_size)
    calls = _spy(monkeypatch, model.model, "get_rope_index")
    model.model.rope_deltas = None
    with torch.no_grad():
        model(**batch)
    assert len(calls) == 1 and len(calls[0][0]) == 1 and torch.equal(calls[0][0][0], batch["input_ids"])
    calls.clear()
    model.model.rope_deltas = None
    with torch.no_grad():
        model.generate(**batch, max_new_tokens=1, do_sample=False, pad_token_id=0, eos_token_id=1)
    assert len(calls) == 1 and len(calls[0][0]) == 1 and torch.equal(calls[0][0][0], batch["input_ids"])
    assert model.model.rope_deltas is not None and model.model.rope_deltas.shape == (1, 1)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_compute_3d_position_ids_is_called_with_inputs_embeds(monkeypatch, family):
    """Hook: the forward asks ``compute_3d_position_ids`` for positions when given none, passing
    ``inputs_embeds`` (B, new, D) by keyword, the parameter ``trim_decode_step_positions`` reads."""
    _, model = tiny_pair(family)
    assert "inputs_embeds" in inspect.signature(FAMILIES[family][1].compute_3d_position_ids).parameters
    batch = image_batch(model.config.vision_config.patch_size)
    calls = _spy(monkeypatch, model.model, "compute_3d_position_ids")
    with torch.no_grad():
        model(**batch)
    assert len(calls) == 1
    args, kwargs = calls[0]
    assert not args and kwargs["inputs_embeds"].shape[:2] == batch["input_ids"].shape


def test_trim_decode_step_positions_keeps_the_new_columns():
    positions = torch.arange(3 * 2 * 5).view(3, 2, 5)  # (3, B=2, past 4 + new 1)
    embeds = torch.zeros(2, 1, 8)  # (B, new, D)
    trim = upstream.trim_decode_step_positions
    qwen2, qwen2_5 = Qwen2VLModel.compute_3d_position_ids, Qwen2_5_VLModel.compute_3d_position_ids
    assert torch.equal(trim(positions, qwen2, (), {"inputs_embeds": embeds}), positions[..., -1:])
    # given positionally: found by its place in that family's signature (2nd in Qwen2-VL, 4th in Qwen2.5-VL)
    assert torch.equal(trim(positions, qwen2, (None, embeds), {}), positions[..., -1:])
    grid = torch.tensor([[1, 4, 4]])  # (images, 3): what the 2nd argument of Qwen2.5-VL is
    assert torch.equal(trim(positions, qwen2_5, (None, grid, None, embeds), {}), positions[..., -1:])
    assert trim(positions, qwen2_5, (None, grid), {}) is positions  # no inputs_embeds given
    full = torch.zeros(2, 5, 8)  # already one column per token: unchanged
    assert trim(positions, qwen2, (), {"inputs_embeds": full}) is positions
    assert trim(None, qwen2, (), {"inputs_embeds": embeds}) is None


@pytest.mark.parametrize("family", list(FAMILIES))
def test_upstream_decode_step_positions_still_cover_the_whole_mask(family):
    """The shape bug ``trim_decode_step_positions`` fixes: a decode step given the whole attention mask
    and no position ids gets (3, B, past + new) positions. If upstream fixes it the trim is a no-op: said
    as a warning (the patch can go), not a failure."""
    inner_cls = FAMILIES[family][1]
    batch, past, new = 2, 4, 1

    class Cache:
        def get_seq_length(self):
            return past

    fake = type("Inner", (), {"rope_deltas": torch.tensor([[3], [5]]), "get_rope_index": None})()
    positions = inner_cls.compute_3d_position_ids(
        fake,
        input_ids=torch.full((batch, new), 7),
        inputs_embeds=torch.zeros(batch, new, 8),
        image_grid_thw=None,
        video_grid_thw=None,
        attention_mask=torch.ones(batch, past + new, dtype=torch.long),
        past_key_values=Cache(),
        mm_token_type_ids=torch.zeros(batch, new, dtype=torch.long),
    )
    assert positions.shape[:2] == (3, batch)
    if positions.shape[-1] == new:
        warnings.warn(
            f"{inner_cls.__name__}.compute_3d_position_ids now builds positions for the new tokens "
            "only: clinkd.upstream.trim_decode_step_positions is no longer needed",
            UserWarning,
            stacklevel=1,
        )
    else:
        assert positions.shape[-1] == past + new
        # the last column is the next token's position: cumsum(mask) − 1 + rope_deltas
        assert positions[0, :, -1].tolist() == [past + new - 1 + 3, past + new - 1 + 5]


@pytest.mark.parametrize("family", list(FAMILIES))
def test_inner_model_class_can_be_swapped(family):
    """Hook of ``swap_inner_model_class``: the stock ``__init__`` builds the inner model as ``self.model``, of
    the stock inner class; the MCG subclass adds no ``__init__`` and no parameter, so the swap keeps every
    weight name (and the stock ``rope_deltas`` attribute ``generate`` uses)."""
    from clinkd.model import modeling

    stock, ours = tiny_pair(family)
    outer_cls, inner_cls = FAMILIES[family]
    assert type(stock) is outer_cls and type(stock.model) is inner_cls
    assert type(ours.model) is ours._inner_class and inner_cls in ours._inner_class.__mro__
    for cls in (ours._inner_class, modeling._McgRopeMixin):
        assert "__init__" not in vars(cls)
    assert ours.state_dict().keys() == stock.state_dict().keys()
    assert hasattr(stock.model, "rope_deltas")


def _pairs():
    from clinkd.model import modeling

    inner = [
        (modeling.McgQwen2VLModel, Qwen2VLModel),
        (modeling.McgQwen2_5_VLModel, Qwen2_5_VLModel),
        (modeling.McgQwen3VLModel, Qwen3VLModel),
    ]
    return list(modeling.MODEL_CLASSES.values()) + inner


#: Stock classes whose checkpoints need a key mapping in 5.23 (Qwen3-VL's already use the live names).
MAPPED = {
    "Qwen2VLForConditionalGeneration",
    "Qwen2VLModel",
    "Qwen2_5_VLForConditionalGeneration",
    "Qwen2_5_VLModel",
}


@pytest.mark.parametrize("pair", _pairs(), ids=lambda p: p[1].__name__)
def test_checkpoint_conversion_mapping_is_registered_by_class_name(pair):
    """Hook of ``share_checkpoint_conversion_mapping``: the registry is keyed by class name and our classes
    carry the stock class's mapping."""
    from transformers.conversion_mapping import (
        USER_REGISTERED_MAPPINGS,
        get_checkpoint_conversion_mapping,
        register_checkpoint_conversion_mapping,
    )

    assert list(inspect.signature(register_checkpoint_conversion_mapping).parameters) == [
        "model_type_or_class_name",
        "mapping",
        "overwrite",
    ]
    ours, stock = pair
    mapping = get_checkpoint_conversion_mapping(stock.__name__)
    assert (mapping is not None) == (stock.__name__ in MAPPED), (
        f"{stock.__name__}: the stock key mapping changed"
    )
    if mapping is not None:
        assert repr(get_checkpoint_conversion_mapping(ours.__name__)) == repr(mapping)
        assert ours.__name__ in USER_REGISTERED_MAPPINGS


@pytest.mark.parametrize("family", list(FAMILIES))
def test_from_pretrained_finds_the_mapping_of_our_class(family):
    """``from_pretrained`` collects conversions by class name and skips unregistered classes defined outside
    transformers (``is_custom_code``): with the registration, our model gets exactly the stock model's."""
    from transformers.conversion_mapping import get_model_conversion_mapping

    stock, ours = tiny_pair(family)
    assert type(ours).is_custom_code() and not type(stock).is_custom_code()
    expected = get_model_conversion_mapping(stock, add_legacy=False)
    assert repr(get_model_conversion_mapping(ours, add_legacy=False)) == repr(expected)
    assert bool(expected) == (family != "qwen3_vl")


# --------------------------------------------------------------------------------------------------------
# Processor hooks
# --------------------------------------------------------------------------------------------------------


class _Tokenizer:
    """Token ids by name, as ``Qwen2VLProcessor.__init__`` reads them."""

    def convert_tokens_to_ids(self, token: str) -> int:
        return {"<|image_pad|>": 151655, "<|video_pad|>": 151656}[token]


def _record_mixin_init(monkeypatch) -> list:
    """Replace ``ProcessorMixin.__init__`` by a recorder of (attributes set so far, args, kwargs)."""
    seen = []

    def record(self, *args, **kwargs):
        seen.append((dict(vars(self)), args, kwargs))

    monkeypatch.setattr(ProcessorMixin, "__init__", record)
    return seen


def test_processor_without_video_sets_what_the_stock_init_sets(monkeypatch):
    """Hook of ``init_processor_without_video``: ``Qwen2VLProcessor.__init__`` sets the image/video tokens and
    their ids, then calls its parent ``ProcessorMixin.__init__`` with the parts and the chat template; the
    adapter sets the same and calls the same parent without the video processor."""
    from clinkd.model.processor import ClinkdProcessor

    assert Qwen2VLProcessor.__mro__[1] is ProcessorMixin
    assert list(inspect.signature(Qwen2VLProcessor.__init__).parameters)[:5] == [
        "self",
        "image_processor",
        "tokenizer",
        "video_processor",
        "chat_template",
    ]
    seen, tok = _record_mixin_init(monkeypatch), _Tokenizer()
    Qwen2VLProcessor.__init__(Qwen2VLProcessor.__new__(Qwen2VLProcessor), "IP", tok, "VP", chat_template="T")
    upstream.init_processor_without_video(ClinkdProcessor.__new__(ClinkdProcessor), "IP", tok, "T")
    (stock_attrs, stock_args, stock_kwargs), (attrs, args, kwargs) = seen
    assert (
        attrs
        == stock_attrs
        == {
            "image_token": "<|image_pad|>",
            "video_token": "<|video_pad|>",
            "image_token_id": 151655,
            "video_token_id": 151656,
        }
    )
    assert stock_args == ("IP", tok, "VP") and args == ("IP", tok)
    assert stock_kwargs == kwargs == {"chat_template": "T"}


def test_processor_parts_come_from_init_parameter_names():
    """``ProcessorMixin`` takes a processor's parts from its ``__init__``'s parameter names
    (``get_attributes``): ``ClinkdProcessor`` has no video processor because its ``__init__`` names none."""
    from clinkd.model.processor import ClinkdProcessor

    assert Qwen2VLProcessor.get_attributes() == ["image_processor", "tokenizer", "video_processor"]
    assert ClinkdProcessor.get_attributes() == ["image_processor", "tokenizer"]


def test_pil_image_processor_and_smart_resize():
    """Hook: the torchvision-free image processor and ``smart_resize`` at their module path, with the
    arguments clinkd passes; ``smart_resize`` is the resize Qwen2.5-VL's pixel boxes refer to."""
    import numpy as np

    assert list(inspect.signature(upstream.smart_resize).parameters) == [
        "height",
        "width",
        "factor",
        "min_pixels",
        "max_pixels",
    ]
    budget = dict(factor=28, min_pixels=56 * 56, max_pixels=224 * 224)
    assert upstream.smart_resize(100, 200, **budget) == (112, 196)  # nearest multiples of 28
    assert upstream.smart_resize(1000, 1000, **budget) == (224, 224)  # down to the budget
    assert upstream.smart_resize(20, 30, **budget) == (56, 84)  # up to the minimum
    ip = upstream.Qwen2VLImageProcessorPil(
        patch_size=14, merge_size=2, size={"shortest_edge": 56 * 56, "longest_edge": 224 * 224}
    )
    assert (ip.size.shortest_edge, ip.size.longest_edge) == (56 * 56, 224 * 224)
    out = ip(images=[np.zeros((100, 200, 3), dtype=np.uint8)], return_tensors="pt")
    assert out["image_grid_thw"].tolist() == [[1, 112 // 14, 196 // 14]]  # (images, 3): t, h, w patches
    assert out["pixel_values"].shape == (8 * 14, 3 * 2 * 14 * 14)  # (patches, C·T·P·P)


# --------------------------------------------------------------------------------------------------------
# Trainer hooks: one short run of a recording Trainer on a toy model
# --------------------------------------------------------------------------------------------------------


class _Toy(torch.nn.Module):
    loss_type = "ForConditionalGeneration"  # what PreTrainedModel derives from clinkd's class names

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x, labels=None, **kwargs):  # (B,) → a scalar loss
        return {"loss": ((self.w - x.float()) ** 2).mean() + 1.0}


class _Items(torch.utils.data.Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        return {"x": torch.tensor(i), "labels": torch.tensor([i, i, -100])}


@pytest.fixture(scope="module")
def trainer_run(tmp_path_factory):
    """Train 1 step (2 micro-batches of 2) and save it, then resume from that checkpoint; what the Trainer
    called is recorded: the first run's calls, plus ``load``, ``flags`` and ``checkpoint`` of the resumed one."""
    from transformers import Trainer, TrainingArguments

    calls = defaultdict(list)

    class Recording(Trainer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.model_accepts_loss_kwargs = True  # as ClinKDTrainer
            calls["shifts_labels"].append(self._loss_shifts_labels)

        def _get_train_sampler(self, train_dataset=None):
            calls["sampler"].append(train_dataset)
            return SequentialSampler(train_dataset if train_dataset is not None else self.train_dataset)

        def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
            calls["load"].append((resume_from_checkpoint, model))
            calls["flags"].append((self.is_deepspeed_enabled, self.is_fsdp_enabled))
            return super()._load_from_checkpoint(resume_from_checkpoint, model)

        def _save_checkpoint(self, model, trial):
            calls["save"].append((self.state.global_step, model is self.model_wrapped or model is self.model))
            return super()._save_checkpoint(model, trial)

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            calls["batches"].append(inputs["x"].tolist())
            calls["items"].append(num_items_in_batch)
            loss = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            calls["loss"].append(float(loss.detach()))
            return loss

        def training_step(self, model, inputs, num_items_in_batch=None):
            loss = super().training_step(model, inputs, num_items_in_batch)
            calls["step_loss"].append(float(loss))
            return loss

    out = tmp_path_factory.mktemp("upstream-trainer")
    args = TrainingArguments(
        output_dir=str(out),
        max_steps=1,
        per_device_train_batch_size=2,
        gradient_accumulation_steps=2,
        save_strategy="steps",
        save_steps=1,
        logging_steps=1,
        report_to="none",
        use_cpu=True,
        seed=0,
        disable_tqdm=True,
        dataloader_num_workers=0,
    )
    Recording(model=_Toy(), args=args, train_dataset=_Items()).train()
    first = dict(calls)
    calls.clear()
    checkpoint = out / "checkpoint-1"
    Recording(model=_Toy(), args=args, train_dataset=_Items()).train(resume_from_checkpoint=str(checkpoint))
    return {**first, "load": calls["load"], "flags": calls["flags"], "checkpoint": checkpoint}


def test_train_sampler_is_asked_by_the_train_dataloader(trainer_run):
    """Hook of ``ClinKDTrainer._get_train_sampler``: ``get_train_dataloader`` asks it for the sampler (with the
    dataset) and reads the dataset in the order it gives."""
    assert len(trainer_run["sampler"]) == 1 and isinstance(trainer_run["sampler"][0], _Items)
    assert trainer_run["batches"] == [[0, 1], [2, 3]]


def test_load_from_checkpoint_is_called_on_resume(trainer_run):
    """Hook of ``ClinKDTrainer._load_from_checkpoint``: ``train(resume_from_checkpoint=…)`` calls it with the
    folder (model left to the default) when neither DeepSpeed nor FSDP is on; the override reads both flags."""
    checkpoint = trainer_run["checkpoint"]
    assert trainer_run["load"] == [(str(checkpoint), None)]
    assert trainer_run["flags"] == [(False, False)]
    assert (checkpoint / "model.safetensors").is_file()  # what the override reloads through from_pretrained


def test_save_checkpoint_is_called_at_each_save(trainer_run):
    """Hook of ``ClinKDTrainer._save_checkpoint``: called at each save step, before anything is written."""
    assert trainer_run["save"] == [(1, True)]


def test_loss_kwargs_flag_passes_the_item_count_and_keeps_the_loss(trainer_run):
    """Hook: with ``model_accepts_loss_kwargs = True`` the Trainer counts the label tokens of the whole
    accumulated step into ``num_items_in_batch`` and does not divide the loss by the accumulation steps
    (``compute_loss`` normalises itself). For a model whose ``loss_type`` is a causal-LM loss it counts
    ``labels[..., 1:]``, the tokens clinkd's shifted losses sum over."""
    assert trainer_run["shifts_labels"] == [True]
    items = trainer_run["items"]
    # each sample's labels [i, i, -100] count 1 after the shift: 2 micro-batches × 2 samples
    assert len(items) == 2 and all(n is not None and int(n) == 4 for n in items)
    assert trainer_run["step_loss"] == pytest.approx(trainer_run["loss"])


@pytest.mark.parametrize("family", list(FAMILIES))
def test_our_models_have_a_causal_lm_loss_type(family):
    """``PreTrainedModel`` derives ``loss_type`` from the class name (``…ForConditionalGeneration``); the
    Trainer shifts labels before counting them only for a ``loss_type`` mapped to ``ForCausalLMLoss``."""
    from transformers.loss.loss_utils import LOSS_MAPPING, ForCausalLMLoss

    _, ours = tiny_pair(family)
    assert ours.loss_type == "ForConditionalGeneration" and LOSS_MAPPING[ours.loss_type] is ForCausalLMLoss


# --------------------------------------------------------------------------------------------------------
# Training hooks: TrainingArguments, the loaded models' key conversions (clinkd.train.distributed)
# --------------------------------------------------------------------------------------------------------


def test_training_arguments_setup_devices_is_a_cached_property_read_by_device(monkeypatch, tmp_path):
    """Hook of ``set_up_devices_again``: ``_setup_devices`` is a ``cached_property`` (kept in the instance
    ``__dict__``) that ``args.device`` reads; dropping it makes the next ``args.device`` compute it again."""
    prop = vars(transformers.TrainingArguments)["_setup_devices"]
    assert isinstance(prop, functools.cached_property)
    calls, original = [], prop.func

    def counted(self):
        calls.append(self)
        return original(self)

    monkeypatch.setattr(prop, "func", counted)
    args = transformers.TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none")
    device = args.device
    assert "_setup_devices" in vars(args)
    before = len(calls)
    assert args.device == device and len(calls) == before  # cached
    assert upstream.set_up_devices_again(args) == device
    assert len(calls) == before + 1 and "_setup_devices" in vars(args)


def test_setup_devices_sets_the_accelerate_deepspeed_flag():
    """Hook of ``clear_accelerate_deepspeed_flag``: ``TrainingArguments._setup_devices`` sets (or deletes)
    ``ACCELERATE_USE_DEEPSPEED``, and accelerate's state reads it to choose DeepSpeed."""
    import accelerate.state

    from clinkd.upstream.accelerate_hooks import ACCELERATE_USE_DEEPSPEED

    setup = vars(transformers.TrainingArguments)["_setup_devices"].func
    assert f'os.environ["{ACCELERATE_USE_DEEPSPEED}"]' in inspect.getsource(setup)
    assert f'"{ACCELERATE_USE_DEEPSPEED}"' in inspect.getsource(accelerate.state)


def test_clear_accelerate_deepspeed_flag(monkeypatch):
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    upstream.clear_accelerate_deepspeed_flag()
    assert "ACCELERATE_USE_DEEPSPEED" not in os.environ
    upstream.clear_accelerate_deepspeed_flag()  # absent: nothing to do


def test_from_pretrained_records_the_key_conversions_it_used(tmp_path):
    """Hook of ``keep_used_weight_conversions``: ``from_pretrained`` keeps the checkpoint-key conversions it
    applied in ``_weight_conversions`` (each a ``WeightTransform`` with ``was_used()``), which
    ``save_pretrained`` reverses (``revert_weight_conversion``); the hook drops the unused ones."""
    from transformers.core_model_loading import WeightTransform, revert_weight_conversion

    assert list(inspect.signature(WeightTransform.was_used).parameters) == ["self"]
    assert "_weight_conversions" in inspect.getsource(revert_weight_conversion)
    stock, ours = tiny_pair("qwen2_vl")
    stock.save_pretrained(tmp_path)  # the hub's (legacy) tensor names
    loaded = type(ours).from_pretrained(tmp_path)
    used = list(loaded._weight_conversions)
    assert used and all(isinstance(c, WeightTransform) and c.was_used() for c in used)

    class Unused:
        def was_used(self) -> bool:
            return False

    loaded._weight_conversions = [*used, Unused()]
    upstream.keep_used_weight_conversions(loaded)
    assert loaded._weight_conversions == used
    upstream.keep_used_weight_conversions(loaded)  # idempotent
    assert loaded._weight_conversions == used


# --------------------------------------------------------------------------------------------------------
# DeepSpeed hooks: transformers' one global DeepSpeed config (clinkd.train.distributed)
# --------------------------------------------------------------------------------------------------------


class _DeepSpeedConfig:
    """What transformers reads from an ``HfDeepSpeedConfig``: ``is_zero3()`` and ``config``."""

    def __init__(self, stage: int):
        self.config = {"zero_optimization": {"stage": stage}}

    def is_zero3(self) -> bool:
        return self.config["zero_optimization"]["stage"] == 3


@pytest.fixture
def active_deepspeed_config_restored():
    before = upstream.active_hf_deepspeed_config()
    yield
    upstream.set_active_hf_deepspeed_config(before)


def test_hf_deepspeed_config_is_one_global_weak_reference(active_deepspeed_config_restored):
    """Hooks of ``active_hf_deepspeed_config``, ``set_active_hf_deepspeed_config`` and ``hf_zero3_enabled``:
    ``set_hf_deepspeed_config`` keeps a weak reference in the module global ``_hf_deepspeed_config_weak_ref``,
    ``unset_hf_deepspeed_config`` sets it to ``None``, ``is_deepspeed_zero3_enabled`` asks the object."""
    import gc
    import weakref

    from transformers.integrations import deepspeed as hf_ds

    zero3, zero2 = _DeepSpeedConfig(3), _DeepSpeedConfig(2)
    upstream.set_active_hf_deepspeed_config(zero3)
    assert isinstance(hf_ds._hf_deepspeed_config_weak_ref, weakref.ref)
    assert upstream.active_hf_deepspeed_config() is zero3
    assert upstream.hf_zero3_enabled() and hf_ds.deepspeed_config() is zero3.config
    upstream.set_active_hf_deepspeed_config(zero2)
    assert upstream.active_hf_deepspeed_config() is zero2 and not upstream.hf_zero3_enabled()
    upstream.set_active_hf_deepspeed_config(None)
    assert hf_ds._hf_deepspeed_config_weak_ref is None
    assert upstream.active_hf_deepspeed_config() is None and not upstream.hf_zero3_enabled()
    upstream.set_active_hf_deepspeed_config(_DeepSpeedConfig(3))  # kept by nobody: gone
    gc.collect()
    assert upstream.active_hf_deepspeed_config() is None and not upstream.hf_zero3_enabled()


# --------------------------------------------------------------------------------------------------------
# accelerate hooks: the process-wide state (clinkd.train.distributed)
# --------------------------------------------------------------------------------------------------------


def test_accelerate_state_is_shared_by_every_instance(trainer_run, monkeypatch):
    """Hooks of ``accelerate_state_set_up`` and ``accelerate_state_uses_deepspeed``: ``PartialState`` and
    ``AcceleratorState`` keep their state in a class-level dict, ``_shared_state`` (every instance's
    ``__dict__``; empty until one is made), with the ``DistributedType`` under ``"distributed_type"``."""
    from accelerate.state import AcceleratorState, PartialState
    from accelerate.utils import DistributedType

    assert PartialState().__dict__ is PartialState._shared_state  # set up (trainer_run): the shared state
    assert isinstance(PartialState._shared_state.get("distributed_type"), DistributedType)
    assert isinstance(AcceleratorState._shared_state, dict)
    assert AcceleratorState._shared_state is AcceleratorState._shared_state  # one dict, not a copy per access
    monkeypatch.setitem(AcceleratorState._shared_state, "distributed_type", DistributedType.NO)
    monkeypatch.setitem(PartialState._shared_state, "distributed_type", DistributedType.NO)
    assert upstream.accelerate_state_set_up() and not upstream.accelerate_state_uses_deepspeed()
    monkeypatch.setitem(PartialState._shared_state, "distributed_type", DistributedType.DEEPSPEED)
    assert upstream.accelerate_state_uses_deepspeed()
    monkeypatch.setitem(PartialState._shared_state, "distributed_type", DistributedType.NO)
    monkeypatch.setitem(AcceleratorState._shared_state, "distributed_type", DistributedType.DEEPSPEED)
    assert upstream.accelerate_state_uses_deepspeed()


# --------------------------------------------------------------------------------------------------------
# generate hooks (clinkd.infer.generate, clinkd.infer.sasg)
# --------------------------------------------------------------------------------------------------------


def test_generate_fills_unset_settings_from_the_model_generation_config():
    """Hooks of ``generation_config_owner`` and ``generation_defaults``: ``_prepare_generation_config``,
    given no ``generation_config``, fills every setting not passed from ``model.generation_config`` (the
    base model's under peft) and lets ``generate``'s keyword arguments win."""
    from peft import PeftModel
    from transformers import GenerationConfig, GenerationMixin

    assert list(inspect.signature(GenerationMixin._prepare_generation_config).parameters) == [
        "self",
        "generation_config",
        "kwargs",
    ]
    _, model = tiny_pair("qwen2_vl")
    before = model.generation_config
    shipped = GenerationConfig(repetition_penalty=1.05, top_k=7, pad_token_id=0, eos_token_id=1)
    with upstream.generation_defaults(model, shipped) as config:
        assert config is shipped and model.generation_config is shipped
        filled, _ = model._prepare_generation_config(None, max_new_tokens=3)
        passed, _ = model._prepare_generation_config(None, repetition_penalty=1.0)
    assert (filled.repetition_penalty, filled.top_k, filled.max_new_tokens) == (1.05, 7, 3)
    assert passed.repetition_penalty == 1.0
    assert model.generation_config is before

    class Wrapper:  # a peft wrapper's shape: generate reads the base model's generation_config
        def get_base_model(self):
            return model

    assert callable(PeftModel.get_base_model)
    assert (
        upstream.generation_config_owner(Wrapper()) is model
        and upstream.generation_config_owner(model) is model
    )


@pytest.mark.parametrize("family", list(FAMILIES))
def test_generation_after_a_cache_positions_from_the_stored_rope_deltas(family):
    """Hooks of ``has_stored_rope_deltas``, ``clear_rope_deltas`` and ``repeat_rope_deltas``: given a cache of
    ``past`` tokens and no new vision tokens, ``_prepare_position_ids_for_generation`` positions each token at
    its text position + the inner model's stored ``rope_deltas`` (B, 1), row by row."""
    _, model = tiny_pair(family)
    stock = FAMILIES[family][0]._prepare_position_ids_for_generation
    assert list(inspect.signature(stock).parameters) == ["self", "inputs_tensor", "model_kwargs"]
    past, new = 4, 1

    class Cache:
        def get_seq_length(self):
            return past

    assert upstream.has_stored_rope_deltas(model) and not upstream.has_stored_rope_deltas(
        torch.nn.Linear(1, 1)
    )
    model.model.rope_deltas = torch.tensor([[3], [5]])  # (B, 1)
    upstream.repeat_rope_deltas(model, 2)
    assert model.model.rope_deltas.tolist() == [[3], [3], [5], [5]]  # (2·B, 1), each row's copies together
    ids = torch.full((4, new), 7)
    kwargs = {
        "input_ids": ids,
        "past_key_values": Cache(),
        "attention_mask": torch.ones(4, past + new, dtype=torch.long),
        "mm_token_type_ids": torch.zeros(4, past + new, dtype=torch.long),
    }
    try:
        positions = model._prepare_position_ids_for_generation(ids, kwargs)
    finally:
        upstream.clear_rope_deltas(model)
    assert model.model.rope_deltas is None
    assert (positions[..., -1] == torch.tensor([past + 3, past + 3, past + 5, past + 5])).all()


def test_dynamic_cache_repeats_its_rows_in_place():
    """Hook of ``repeat_cache_rows``: ``DynamicCache.batch_repeat_interleave(n)`` repeats every layer's
    keys and values (B, H, T, D) → (n·B, H, T, D), each row's copies together, in place."""
    from transformers import DynamicCache

    _, model = tiny_pair("qwen2_vl")
    cache = DynamicCache(config=model.config)
    keys = torch.arange(2 * 1 * 3 * 4, dtype=torch.float).view(2, 1, 3, 4)  # (B, H, T, D)
    cache.update(keys, keys + 100, layer_idx=0)
    upstream.repeat_cache_rows(cache, 3)
    assert torch.equal(cache.layers[0].keys, keys.repeat_interleave(3, dim=0))  # (3·B, H, T, D)
    assert torch.equal(cache.layers[0].values, (keys + 100).repeat_interleave(3, dim=0))
    assert cache.get_seq_length() == 3


def test_custom_logits_processors_run_before_the_warpers():
    """Relied on by ``clinkd.infer.sasg.GreedyRows`` (no hook function: the order is a behaviour): a
    ``logits_processor`` passed to ``generate`` sees the raw logits, before temperature and top-p."""
    from transformers import GenerationConfig, LogitsProcessor, LogitsProcessorList

    _, model = tiny_pair("qwen2_vl")
    batch = image_batch(model.config.vision_config.patch_size)
    seen = []

    class Record(LogitsProcessor):
        def __call__(self, input_ids, scores):
            seen.append(scores.clone())
            return scores

    torch.manual_seed(0)
    with (
        upstream.generation_defaults(model, GenerationConfig(pad_token_id=0, eos_token_id=1)),
        torch.no_grad(),
    ):
        out = model.generate(
            **batch,
            max_new_tokens=2,
            do_sample=True,
            temperature=0.5,
            top_p=0.5,
            top_k=0,
            logits_processor=LogitsProcessorList([Record()]),
            output_logits=True,
            output_scores=True,
            return_dict_in_generate=True,
            pad_token_id=0,
            eos_token_id=1,
        )
    model.model.rope_deltas = None
    assert len(seen) == len(out.logits) >= 1
    for raw, recorded, final in zip(out.logits, seen, out.scores):
        assert torch.equal(recorded, raw)  # the custom processor saw the raw logits (B, V)
        assert not torch.equal(final, raw)  # the warpers ran after it
