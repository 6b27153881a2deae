"""Load one clinkd ShareGPT export with LLaMA-Factory's own SFT data pipeline and check it.

Run with the LLaMA-Factory virtualenv's python (see check_llamafactory.sh), not clinkd's:

    python check_llamafactory.py EXPORT_DIR IMAGE_DIR MODEL_DIR TEMPLATE [KEY=VALUE ...]

KEY=VALUE pairs are extra LLaMA-Factory arguments, e.g. image_min_pixels=262144 image_max_pixels=1048576.

It loads EXPORT_DIR/train.json through ``llamafactory.data.get_dataset`` (stage sft, the given template,
MODEL_DIR's tokenizer and processor, LLaMA-Factory's default image_min/max_pixels), then checks

* every record clinkd wrote was accepted (no example dropped);
* every turn's text, box markup included, comes back verbatim when the tokens are decoded
  (user turns from input_ids, assistant turns from the label tokens);
* for every image, LLaMA-Factory's collator output (image_grid_thw × patch size) equals the ``resized``
  size recorded in EXPORT_DIR/train.boxes.json, and the prompt holds grid_t·grid_h·grid_w / merge²
  image tokens.

Prints one JSON summary line (prefixed ``SUMMARY``) and exits 1 on any mismatch.
"""

import json
import logging
import os
import sys
import tempfile
from pathlib import Path


def main(export_dir: str, image_dir: str, model_dir: str, template_name: str, *extra: str) -> int:
    # Keep LLaMA-Factory's warnings ("Dropped invalid example", "Media ... does not exist") visible.
    logging.basicConfig(level=logging.WARNING)
    import yaml
    from llamafactory.data import (
        MultiModalDataCollatorForSeq2Seq,
        get_dataset,
        get_template_and_fix_tokenizer,
    )
    from llamafactory.extras.constants import IGNORE_INDEX
    from llamafactory.hparams import get_train_args
    from llamafactory.model import load_tokenizer

    written = json.loads(Path(export_dir, "train.json").read_text(encoding="utf-8"))
    side = json.loads(Path(export_dir, "train.boxes.json").read_text(encoding="utf-8"))

    # The same arguments a `llamafactory-cli train` yaml would carry; nothing is trained.
    model_args, data_args, training_args, _, _ = get_train_args(
        {
            "model_name_or_path": model_dir,
            "stage": "sft",
            "do_train": True,
            "finetuning_type": "full",
            "dataset_dir": export_dir,
            "dataset": "train",
            "media_dir": image_dir,
            "template": template_name,
            "cutoff_len": 16384,
            "overwrite_cache": True,
            "preprocessing_num_workers": 1,
            "output_dir": tempfile.mkdtemp(prefix="lf-out-"),
            "report_to": "none",
            "per_device_train_batch_size": 1,
            **{k: yaml.safe_load(v) for k, v in (kv.split("=", 1) for kv in extra)},  # "1024" -> 1024
        }
    )
    tok_module = load_tokenizer(model_args)
    tokenizer, processor = tok_module["tokenizer"], tok_module["processor"]
    if processor is None:
        print(f"FAIL: LLaMA-Factory loaded no processor from {model_dir}")
        return 1
    template = get_template_and_fix_tokenizer(tokenizer, data_args)
    dataset = get_dataset(template, model_args, data_args, training_args, stage="sft", **tok_module)[
        "train_dataset"
    ]
    collator = MultiModalDataCollatorForSeq2Seq(
        template=template,
        processor=processor,
        tokenizer=tokenizer,
        model=None,
        label_pad_token_id=IGNORE_INDEX,
    )

    ip = processor.image_processor
    patch, merge = ip.patch_size, ip.merge_size
    image_token_id = tokenizer.convert_tokens_to_ids(getattr(processor, "image_token", "<|image_pad|>"))
    problems, sizes = [], []
    if len(dataset) != len(written):
        problems.append(f"LLaMA-Factory accepted {len(dataset)} of {len(written)} records")

    for k, (ex, rec) in enumerate(zip(dataset, written)):
        inputs = tokenizer.decode(ex["input_ids"], skip_special_tokens=False)
        labels = tokenizer.decode([t for t in ex["labels"] if t != IGNORE_INDEX], skip_special_tokens=False)
        for m in rec["messages"]:  # box markup (text or special tokens) must survive tokenisation
            text = m["content"].replace("<image>", "").strip()
            if text not in (labels if m["role"] == "assistant" else inputs):
                problems.append(f"record {rec['id']}: {m['role']} turn not found verbatim: {text[:80]!r}")
        if k == 0:
            shown = inputs.replace("<|image_pad|>", "")  # the expanded image tokens, collapsed for reading
            print(
                f"--- example 0 ({rec['id']}), input (image pads removed):\n{shown}\n--- labels:\n{labels}\n---"
            )

        # What the trainer would feed the model: the collator runs the plugin's resize and the HF processor.
        batch = collator(
            [{k2: ex[k2] for k2 in ("input_ids", "attention_mask", "labels", "images", "videos", "audios")}]
        )
        grids = batch["image_grid_thw"].tolist()
        names = [os.path.basename(p) for p in ex["images"]]
        n_pad = int((batch["input_ids"] == image_token_id).sum())
        if n_pad != sum(t * h * w for t, h, w in grids) // merge**2:
            problems.append(f"record {rec['id']}: {n_pad} image tokens for grids {grids}")
        for name, (_, gh, gw) in zip(names, grids):
            fed, assumed = [gw * patch, gh * patch], side["images"][name]["resized"]
            sizes.append(
                {"image": name, "size": side["images"][name]["size"], "fed": fed, "assumed": assumed}
            )
            if fed != assumed:
                problems.append(
                    f"{name}: LLaMA-Factory feeds {fed[0]}x{fed[1]}, clinkd assumed {assumed[0]}x{assumed[1]}"
                )

    summary = {
        "export": export_dir,
        "template": template_name,
        "written": len(written),
        "accepted": len(dataset),
        "plugin_image_min_max_pixels": [processor.image_min_pixels, processor.image_max_pixels],
        "processor_patch_merge": [patch, merge],
        "clinkd_min_max_pixels_factor": [side["min_pixels"], side["max_pixels"], side["factor"]],
        "images_compared": len(sizes),
        "size_mismatches": sum(s["fed"] != s["assumed"] for s in sizes),
        "sizes": sorted({(tuple(s["size"]), tuple(s["fed"]), tuple(s["assumed"])) for s in sizes}),
        "problems": problems,
    }
    print("SUMMARY " + json.dumps(summary))
    return 1 if problems else 0


if __name__ == "__main__":
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    sys.exit(main(*sys.argv[1:]))
