"""``clinkd data``: build, check, describe, convert and look at Med-GRIT data, and import the Med-VQA and
report-generation benchmarks (:mod:`clinkd.data.bench`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from clinkd.benchmarks import NAMES as BENCHMARK_NAMES  # standard library only: --help stays fast
from clinkd.errors import ClinkdError

MIN_SYNTH_IMAGES = 16  # two per modality: one for training, one for testing
DEFAULT_SHAPES_IMAGES = (
    2000  # clinkd.data.synth.shapes.DEFAULT_SHAPES_IMAGES (not imported: keeps --help fast)
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="build, check, describe and convert Med-GRIT data")
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION")
    dsub.required = True

    s = dsub.add_parser(
        "synth",
        help="write the built-in synthetic Med-GRIT benchmark (or generic shapes pretraining data)",
        description="Write DIR/images/<modality>_<n>.png, DIR/train.json and DIR/test_{VG,RO,GC,MII}.json "
        "in exactly the Med-GRIT format. --domain shapes writes generic (non-medical) pretraining data "
        "instead: DIR/images/shapes_<n>.png and DIR/train.json only (grounding, referring, description and "
        "counting of coloured shapes). Same seed, same bytes. A folder that already holds something is "
        "refused unless --force. --format NAME writes a small stand-in of a Med-VQA or report-generation "
        "benchmark instead, in its real file layout (what `clinkd data import` reads).",
    )
    s.add_argument(
        "--format",
        choices=BENCHMARK_NAMES,
        default=None,
        help="write a stand-in of this benchmark in its distributed layout (VQA-RAD JSON, SLAKE JSON, "
        "PathVQA parquet, R2Gen annotation.json for IU X-Ray and MIMIC-CXR) instead of Med-GRIT data; "
        "--images is then its number of images (report sets: studies), default 24 (16 studies)",
    )
    s.add_argument(
        "--domain",
        choices=["medgrit", "shapes"],
        default="medgrit",
        help="medgrit: the synthetic Med-GRIT benchmark (default); shapes: generic pretraining data "
        "for a student base, a train.json only",
    )
    s.add_argument("--out", required=True, type=Path, help="output folder (new or empty, unless --force)")
    s.add_argument("--seed", type=int, default=0, help="random seed, >= 0 (default 0)")
    s.add_argument(
        "--images",
        type=int,
        default=None,
        help=f"number of images, at least {MIN_SYNTH_IMAGES} for medgrit (default 480), at least 1 "
        f"for shapes (default {DEFAULT_SHAPES_IMAGES})",
    )
    s.add_argument(
        "--test-fraction",
        type=float,
        default=None,
        help="share of images in the test split, between 0 and 1 exclusive (default 0.2); ignored by "
        "--domain shapes, which writes no test split",
    )
    s.add_argument(
        "--force",
        action="store_true",
        help="write into a folder that already holds files (files of the same names are overwritten)",
    )
    s.set_defaults(func=cmd_synth)

    c = dsub.add_parser(
        "check",
        help="validate a data file or dataset folder, reporting every problem",
        description="Report every problem at once (bad JSON, missing fields, repeated records, unknown "
        "modality, bad boxes, unbalanced <box>/<ref> tags, chat special tokens, image paths leaving the image "
        "folder, missing or undecodable images) with file and record index. Every image is decoded, refused "
        "over CLINKD_MAX_IMAGE_PIXELS pixels (default 67108864) or CLINKD_MAX_VOLUME_VOXELS voxels (default "
        "536870912) as its header declares them. Exit status 1 when there is any problem.",
    )
    c.add_argument(
        "path",
        type=Path,
        help="a JSON data file or a dataset folder (or, with --benchmark, the benchmark's release folder)",
    )
    c.add_argument(
        "--benchmark",
        choices=BENCHMARK_NAMES,
        default=None,
        help="check PATH as this benchmark's distributed files (fields, answer types, ids, images; pickle "
        "files refused) instead of Med-GRIT files",
    )
    c.add_argument(
        "--images", type=Path, default=None, help="image folder (default: images/ beside the data)"
    )
    c.add_argument("--no-images", action="store_true", help="do not open the images")
    c.add_argument("--max-shown", type=int, default=200, help="print at most this many problems")
    c.set_defaults(func=cmd_check)

    st = dsub.add_parser("stats", help="counts per split, task and modality")
    st.add_argument("path", type=Path, help="a dataset folder")
    st.add_argument("--json", action="store_true", help="print JSON instead of a table")
    st.set_defaults(func=cmd_stats)

    cv = dsub.add_parser(
        "convert",
        help="convert between the test, train and ShareGPT (LLaMA-Factory) forms",
        description="Convert a file (or every data file of a folder) to another form, optionally rewriting box "
        "markup (qwen: <box>..</box>, qwen2: <|box_start|>..<|box_end|>, clinkd: <box_start>..<box_end>). "
        "ShareGPT output also writes dataset_info.json.",
    )
    cv.add_argument("src", type=Path, help="input file or dataset folder")
    cv.add_argument("dst", type=Path, help="output file (or folder when src is a folder)")
    cv.add_argument("--to", required=True, choices=["test", "train", "sharegpt"], help="output form")
    cv.add_argument(
        "--from",
        dest="src_format",
        choices=["test", "train", "sharegpt"],
        default=None,
        help="input form (default: detected)",
    )
    cv.add_argument(
        "--box-style",
        choices=["qwen", "qwen2", "clinkd"],
        default=None,
        help="rewrite box/ref markup into this style (default: keep)",
    )
    cv.add_argument(
        "--box-convention",
        choices=["medgrit", "qwen2_vl", "qwen2_5_vl", "qwen3_vl"],
        default=None,
        help="write every box in this model family's own coordinates and answer form (qwen2_vl: 0-1000 "
        "<|box_start|> markup; qwen2_5_vl: absolute pixels of the image as the processor resizes it, "
        "JSON bbox_2d; qwen3_vl: 0-1000 JSON bbox_2d); the image sizes assumed are written to "
        "<output stem>.boxes.json (default: keep the files' Med-GRIT text)",
    )
    cv.add_argument(
        "--images",
        type=Path,
        default=None,
        help="image folder, read for --box-convention (default: the dataset's images/)",
    )
    cv.add_argument(
        "--min-pixels",
        type=int,
        default=None,
        help="--box-convention: min_pixels of the HF image processor that will read the output (its "
        "checkpoint's preprocessor_config.json; default the hub's: 3136 for Qwen2/2.5-VL, 65536 for "
        "Qwen3-VL). Absolute coordinates (qwen2_5_vl) are pixels of the image it resizes to",
    )
    cv.add_argument(
        "--max-pixels",
        type=int,
        default=None,
        help="--box-convention: that processor's max_pixels (default the hub's: 12845056 for "
        "Qwen2/2.5-VL, 16777216 for Qwen3-VL)",
    )
    cv.set_defaults(func=cmd_convert)

    im = dsub.add_parser(
        "import",
        help="turn a Med-VQA or report-generation benchmark into a clinkd dataset folder",
        description="Read benchmark NAME from its distributed files in SRC (every problem refused: run "
        "`clinkd data check --benchmark NAME SRC` first) and write OUT/train.json (and val.json) in the "
        "Med-GRIT training form, OUT/test.json in the test form with answer_type and benchmark keys, "
        "OUT/benchmark.json, and OUT/images: a link to SRC's images (PathVQA: its embedded images, written "
        "out). Several images of a record become several <img> tags; report records are asked one fixed "
        "instruction.",
    )
    im.add_argument("name", choices=BENCHMARK_NAMES, help="the benchmark")
    im.add_argument("src", type=Path, help="the benchmark's release folder")
    im.add_argument("--out", required=True, type=Path, help="output folder (new or empty, unless --force)")
    im.add_argument(
        "--all-languages",
        action="store_true",
        help="SLAKE: keep the Chinese questions too (default: English)",
    )
    im.add_argument("--force", action="store_true", help="write into a folder that already holds files")
    im.set_defaults(func=cmd_import)

    g = dsub.add_parser("gallery", help="a contact sheet of images with their boxes and labels drawn")
    g.add_argument("path", type=Path, help="a dataset folder")
    g.add_argument("--out", required=True, type=Path, help="output PNG (not a file of the dataset)")
    g.add_argument("-n", type=int, default=16, help="number of images, at least 1 (default 16)")
    g.add_argument("--seed", type=int, default=0)
    g.set_defaults(func=cmd_gallery)


def cmd_synth(args: argparse.Namespace) -> int:
    from clinkd.data import synth
    from clinkd.paths import output_dir

    if args.seed < 0:
        raise ClinkdError(f"--seed must be 0 or more, got {args.seed}")
    if args.format is not None:
        return _synth_benchmark(args)
    if args.domain == "shapes":
        return _synth_shapes(args)
    if args.test_fraction is None:
        args.test_fraction = 0.2
    if not 0.0 < args.test_fraction < 1.0:
        raise ClinkdError(
            f"--test-fraction must be between 0 and 1, exclusive (got {args.test_fraction}): the "
            "dataset needs both a training and a test split"
        )
    kwargs = {"seed": args.seed, "test_fraction": args.test_fraction, "progress": True}
    if args.images is not None:
        if args.images < MIN_SYNTH_IMAGES:
            raise ClinkdError(
                f"--images must be at least {MIN_SYNTH_IMAGES} (two per modality: one for training, "
                f"one for testing), got {args.images}"
            )
        kwargs["n_images"] = args.images
    output_dir(args.out, force=args.force, what="--out folder")
    summary = synth.generate(args.out, **kwargs)
    print(json.dumps(summary, indent=1, default=str))
    return 0


def _synth_shapes(args: argparse.Namespace) -> int:
    import time

    from clinkd.data.synth import generate_shapes
    from clinkd.paths import output_dir

    n = DEFAULT_SHAPES_IMAGES if args.images is None else args.images
    if n < 1:
        raise ClinkdError(f"--images must be at least 1, got {n}")
    if args.test_fraction is not None:
        print(
            "note: --test-fraction is ignored by --domain shapes (it writes train.json only)", file=sys.stderr
        )
    output_dir(args.out, force=args.force, what="--out folder")
    t0 = time.perf_counter()
    out = generate_shapes(args.out, seed=args.seed, n_images=n, progress=True)
    summary = {
        "out_dir": str(out),
        "domain": "shapes",
        "seed": args.seed,
        "images": n,
        "files": {"train": str(out / "train.json")},
        "seconds": round(time.perf_counter() - t0, 3),
    }
    print(json.dumps(summary, indent=1))
    return 0


def _synth_benchmark(args: argparse.Namespace) -> int:
    import time

    from clinkd.data.bench.synth import write_standin
    from clinkd.paths import output_dir

    if args.domain != "medgrit":
        raise ClinkdError("give --format or --domain, not both")
    if args.test_fraction is not None:
        print("note: --test-fraction is ignored by --format (the real splits are kept)", file=sys.stderr)
    output_dir(args.out, force=args.force, what="--out folder")
    t0 = time.perf_counter()
    summary = write_standin(args.format, args.out, seed=args.seed, n_images=args.images)
    summary["seconds"] = round(time.perf_counter() - t0, 3)
    print(json.dumps(summary, indent=1))
    return 0


def _check_benchmark(args: argparse.Namespace) -> int:
    from clinkd.data.bench import read_benchmark

    if args.images is not None:
        raise ClinkdError("--images does not apply to --benchmark (each set has its own image folder)")
    data = read_benchmark(args.benchmark, args.path, check_images=not args.no_images)
    for p in data.problems[: args.max_shown]:
        print(p)
    hidden = len(data.problems) - args.max_shown
    if hidden > 0:
        print(f"... and {hidden} more")
    verdict = "OK" if data.ok else f"{len(data.problems)} problem(s)"
    counts = ", ".join(f"{n} {s}" for s, n in data.counts().items()) or "no records"
    print(f"checked {args.benchmark} at {args.path}: {counts}: {verdict}", file=sys.stderr)
    return 0 if data.ok else 1


def cmd_import(args: argparse.Namespace) -> int:
    from clinkd.data.bench.convert import convert_benchmark

    options = {"lang": None} if args.all_languages else {}
    if args.all_languages and args.name != "slake":
        raise ClinkdError("--all-languages applies to slake only")
    summary = convert_benchmark(args.name, args.src, args.out, force=args.force, **options)
    print(json.dumps(summary, indent=1))
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from clinkd.data.check import check_path

    if args.max_shown < 0:
        raise ClinkdError(f"--max-shown must be 0 or more, got {args.max_shown}")
    if args.benchmark is not None:
        return _check_benchmark(args)
    if args.images is not None and not args.images.is_dir():
        raise ClinkdError(f"--images {args.images}: not a folder (give the folder that holds the images)")
    report = check_path(args.path, args.images, check_images=not args.no_images)
    for p in report.problems[: args.max_shown]:
        print(p)
    hidden = len(report.problems) - args.max_shown
    if hidden > 0:
        print(f"... and {hidden} more")
    verdict = "OK" if report.ok else f"{len(report.problems)} problem(s)"
    print(
        f"checked {len(report.files)} file(s), {report.n_records} record(s), {report.n_images} image(s): {verdict}",
        file=sys.stderr,
    )
    return 0 if report.ok else 1


def cmd_stats(args: argparse.Namespace) -> int:
    from clinkd.data.formats import read_dataset_dir
    from clinkd.data.stats import dataset_stats, stats_table

    stats = dataset_stats(read_dataset_dir(args.path))
    if args.json:
        print(json.dumps(stats, indent=1))
    else:
        from rich.console import Console

        Console().print(stats_table(stats, title=f"{args.path}"))
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    from clinkd.data.formats import find_dataset_files, read_samples, write_samples

    if args.box_convention is None and (args.min_pixels is not None or args.max_pixels is not None):
        raise ClinkdError("--min-pixels/--max-pixels apply to --box-convention")
    if args.box_convention is not None and args.box_style is not None:
        raise ClinkdError("give --box-style or --box-convention, not both (a convention has its own markup)")
    if args.src.is_dir():
        files = find_dataset_files(args.src)
        pairs = [(p, args.dst / p.name) for p in [*files.train, *files.test.values()]]
        if not pairs:
            raise ClinkdError(f"{args.src}: no data files to convert")
        image_dir = files.image_dir
    else:
        pairs = [(args.src, args.dst)]
        image_dir = args.src.parent / "images" if (args.src.parent / "images").is_dir() else args.src.parent
    image_dir = args.images or image_dir
    for src, dst in pairs:
        samples = read_samples(src, fmt=args.src_format)
        note = ""
        if args.box_convention is not None:
            from clinkd.data.export import HUB_PIXEL_BUDGETS, write_in_convention
            from clinkd.model.processor import check_pixel_budget

            lo, hi = args.min_pixels, args.max_pixels
            check_pixel_budget(lo, hi, names=("--min-pixels", "--max-pixels"))
            hub_lo, hub_hi = HUB_PIXEL_BUDGETS[args.box_convention]
            lo = lo if lo is not None else min(hub_lo, hi or hub_lo)
            hi = hi if hi is not None else max(hub_hi, lo)
            samples, side = write_in_convention(
                samples, dst, args.box_convention, image_dir, min_pixels=lo, max_pixels=hi
            )
            note = f", boxes in the {args.box_convention} convention; image sizes assumed in {side}"
            areas = [w * h for w, h in (v["size"] for v in json.loads(side.read_text())["images"].values())]
            if areas and args.box_convention == "qwen2_5_vl":
                print(
                    f"LLaMA-Factory: keep image_max_pixels >= {max(areas)} and image_min_pixels <= {min(areas)} "
                    "(its defaults: 589824 and 1024) so that it does not rescale the images before the "
                    f"processor, and the processor's own budget at {lo}..{hi}",
                    file=sys.stderr,
                )
        write_samples(samples, dst, args.to, box_style=args.box_style)
        print(f"{src} -> {dst} ({len(samples)} records, {args.to}{note})")
    return 0


def _refuse_dataset_file(out: Path, dataset: Path) -> None:
    """Refuse an output path that is one of the dataset's data files or lies in its image folder: writing
    there would destroy what the command reads."""
    from clinkd.data.formats import find_dataset_files

    files = find_dataset_files(dataset)
    target = out.resolve()
    inputs = {p.resolve() for p in [*files.train, *files.test.values(), files.root / "dataset_info.json"]}
    if target in inputs or (
        files.image_dir != files.root and target.is_relative_to(files.image_dir.resolve())
    ):
        raise ClinkdError(f"--out {out} is a file of the dataset {dataset}; write the gallery somewhere else")


def cmd_gallery(args: argparse.Namespace) -> int:
    from clinkd.data.gallery import make_gallery
    from clinkd.paths import output_file

    if args.n < 1:
        raise ClinkdError(f"-n must be at least 1, got {args.n}")
    _refuse_dataset_file(args.out, args.path)
    output_file(args.out, what="--out")
    out = make_gallery(args.path, args.out, n=args.n, seed=args.seed)
    print(out)
    return 0
