"""One measured SFT step and one distillation step of a model with Qwen2-VL's real dimensions.

Random weights (nothing is downloaded), real shapes: Qwen2-VL-2B-Instruct's text and vision towers as the
student, its real 151,936-row vocabulary, one 448x448 image per sample (256 merged image tokens) and a
chat-length answer; for distillation a Qwen2-VL-7B-shaped teacher (152,064 rows) run online, so the step
includes the teacher's forward and the loss over the shared vocabulary. Prints tokens/s and the peak
memory of each step as one JSON line per step.

    python scripts/gpu_check.py                       # on a CUDA machine, bf16 (what gpu_check.sh runs)
    python scripts/gpu_check.py --dims tiny --device cpu --dtype float32   # smoke test (the test suite)

The figures are what to compare with a real run's first steps; they are not part of CI.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

# Hub config values of Qwen2-VL-2B-Instruct and Qwen2-VL-7B-Instruct (their config.json), and a tiny
# stand-in with the same structure for the smoke test.
DIMS = {
    "2b": dict(
        hidden_size=1536,
        num_hidden_layers=28,
        num_attention_heads=12,
        num_key_value_heads=2,
        intermediate_size=8960,
        vocab_size=151936,
        tie_word_embeddings=True,
        mrope_section=[16, 24, 24],
        vision=dict(depth=32, embed_dim=1280, num_heads=16, mlp_ratio=4),
    ),
    "7b": dict(
        hidden_size=3584,
        num_hidden_layers=28,
        num_attention_heads=28,
        num_key_value_heads=4,
        intermediate_size=18944,
        vocab_size=152064,
        tie_word_embeddings=False,
        mrope_section=[16, 24, 24],
        vision=dict(depth=32, embed_dim=1280, num_heads=16, mlp_ratio=4),
    ),
    "tiny": dict(
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=128,
        vocab_size=151936,
        tie_word_embeddings=True,
        mrope_section=[2, 3, 3],
        vision=dict(depth=1, embed_dim=32, num_heads=2, mlp_ratio=2),
    ),
    "tiny-teacher": dict(
        hidden_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=192,
        vocab_size=152064,
        tie_word_embeddings=False,
        mrope_section=[4, 4, 4],
        vision=dict(depth=1, embed_dim=32, num_heads=2, mlp_ratio=2),
    ),
}
IMAGE_PAD, VISION_START, VISION_END = 151655, 151652, 151653


def build(dims: str, dtype: torch.dtype, device: str):
    from transformers import Qwen2VLConfig

    from clinkd.model.modeling import MODEL_CLASSES

    d = dict(DIMS[dims])
    vision, section = d.pop("vision"), d.pop("mrope_section")
    tie = d.pop("tie_word_embeddings")
    text = dict(
        d,
        rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": section},
        max_position_embeddings=32768,
        tie_word_embeddings=tie,
    )
    config = Qwen2VLConfig(
        text_config=text,
        tie_word_embeddings=tie,
        vision_config=dict(
            vision,
            hidden_size=d["hidden_size"],
            patch_size=14,
            spatial_merge_size=2,
            temporal_patch_size=2,
            in_channels=3,
        ),
        image_token_id=IMAGE_PAD,
        video_token_id=151656,
        vision_start_token_id=VISION_START,
        vision_end_token_id=VISION_END,
    )
    cls = MODEL_CLASSES["qwen2_vl"][0]
    with torch.device(device):
        model = cls(config).to(dtype)
    return model


def batch(
    batch_size: int, image_side: int, prompt: int, answer: int, device: str, dtype: torch.dtype, seed: int = 0
):
    """A training batch as the collator builds it: text, one image per sample, labels on the answer."""
    g = torch.Generator().manual_seed(seed)
    grid = image_side // 14  # patches per side
    n_img = (grid // 2) ** 2  # merged image tokens
    seq = [VISION_START] + [IMAGE_PAD] * n_img + [VISION_END]
    rows, labels = [], []
    for _ in range(batch_size):
        p = torch.randint(0, 151000, (prompt,), generator=g).tolist()
        a = torch.randint(0, 151000, (answer,), generator=g).tolist()
        ids = p[:4] + seq + p[4:] + a
        rows.append(ids)
        labels.append([-100] * (len(ids) - answer) + a)
    input_ids = torch.tensor(rows, device=device)
    mm = (input_ids == IMAGE_PAD).long()
    pixel_values = torch.randn(batch_size * grid * grid, 3 * 2 * 14 * 14, generator=g).to(device, dtype)
    return {
        "input_ids": input_ids,
        "attention_mask": torch.ones_like(input_ids),
        "mm_token_type_ids": mm,
        "pixel_values": pixel_values,
        "image_grid_thw": torch.tensor([[1, grid, grid]] * batch_size, device=device),
        "labels": torch.tensor(labels, device=device),
    }


def step(model, opt, inputs, teacher=None) -> dict:
    from clinkd.train.losses import causal_lm_loss, distillation_loss

    inputs = dict(inputs)
    labels = inputs.pop("labels")
    device = labels.device
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    sync()
    t0 = time.perf_counter()
    logits = model(**inputs).logits  # (B, L, V)
    if teacher is None:
        loss = causal_lm_loss(logits, labels)
    else:
        with torch.no_grad():
            t_logits = teacher(**inputs).logits
        loss = distillation_loss(logits, t_logits, labels).loss
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    sync()
    seconds = time.perf_counter() - t0
    tokens = int(inputs["attention_mask"].sum())
    out = {
        "step": "distill" if teacher is not None else "sft",
        "loss": round(float(loss.detach()), 4),
        "seconds": round(seconds, 3),
        "tokens": tokens,
        "tokens_per_s": round(tokens / seconds, 1),
    }
    if device.type == "cuda":
        out["peak_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--dims", default="2b", choices=["2b", "tiny"], help="student dimensions (default: Qwen2-VL-2B)"
    )
    p.add_argument("--device", default="cuda", help="device (default cuda)")
    p.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32"], help="weights' dtype")
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--image-side", type=int, default=448, help="square image side in pixels (multiple of 28)")
    p.add_argument("--answer-tokens", type=int, default=64)
    p.add_argument("--skip-distill", action="store_true", help="only the SFT step")
    args = p.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        p.error("no CUDA device: run on a GPU machine, or pass --dims tiny --device cpu --dtype float32")
    if args.image_side % 28:
        p.error("--image-side must be a multiple of 28 (patch 14, merge 2)")
    dtype = getattr(torch, args.dtype)
    torch.manual_seed(0)
    student = build(args.dims, dtype, args.device)
    inputs = batch(args.batch_size, args.image_side, 48, args.answer_tokens, args.device, dtype)
    opt = torch.optim.AdamW(student.parameters(), lr=1e-5)  # its states count in the peak memory
    step(student, opt, inputs)  # warm-up (kernels, allocator, optimizer states)
    print(json.dumps({"student": args.dims, "dtype": args.dtype, **step(student, opt, inputs)}), flush=True)
    if not args.skip_distill:
        t_dims = "7b" if args.dims == "2b" else "tiny-teacher"
        teacher = build(t_dims, dtype, args.device).eval().requires_grad_(False)
        step(student, opt, inputs, teacher)
        print(
            json.dumps(
                {
                    "student": args.dims,
                    "teacher": t_dims,
                    "dtype": args.dtype,
                    **step(student, opt, inputs, teacher),
                }
            ),
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
