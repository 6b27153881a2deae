"""``clinkd train``: run a training recipe (one stage or a pipeline of stages)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train with a YAML recipe: sft, distill, or the whole ClinKD pipeline",
        description="Run a recipe from configs/ (or your own). Any key can be overridden on the command line "
        "as --section.key=value, e.g. --data.dir=DIR --train.output_dir=OUT --train.max_steps=50; in a pipeline, "
        "--STAGE.section.key=value targets one stage. --resume continues from the last checkpoint.",
        epilog="Sections: data, model, distill, rct, train (any transformers TrainingArguments). "
        "`clinkd train --help-config` lists every key with its default.",
    )
    p.add_argument(
        "config", nargs="?", type=Path, help="YAML recipe (omit to use the defaults: tiny student SFT)"
    )
    p.add_argument(
        "--resume", action="store_true", help="continue from the last checkpoint in the output folder"
    )
    p.add_argument("--print-config", action="store_true", help="print the resolved configuration and exit")
    p.add_argument("--help-config", action="store_true", help="list every configuration key and exit")
    p.set_defaults(func=cmd_train, accepts_overrides=True)


def cmd_train(args: argparse.Namespace) -> int:
    import yaml

    from clinkd.train.config import config_help, load_run_configs

    if args.config is not None and str(args.config).startswith("--"):
        # argparse takes an option holding a space (--model.lora_target_modules='[q_proj, v_proj]') for the
        # positional argument: it is an override, and the recipe file, if any, is among the others
        overrides = [str(args.config), *args.overrides]
        files = [a for a in overrides if not a.startswith("--")]
        args.config = Path(files[0]) if files else None
        args.overrides = [a for a in overrides if a not in files[:1]]
    if args.help_config:
        print(config_help(), end="")
        return 0
    configs = load_run_configs(args.config, args.overrides)
    if args.print_config:
        for cfg in configs:
            print(yaml.safe_dump({cfg.name: cfg.to_dict()}, sort_keys=False))
        return 0
    from clinkd.train.run import run_pipeline

    for out in run_pipeline(configs, resume=args.resume):
        print(out)
    return 0
