"""Turn a training checkpoint into a shippable one plus its model card.

    python -m pesto.train.release runs/wpc.pt sw/pesto/assets/resnet20_fmnist_wpc.pt \
        --command "pesto train --recipe fmnist-demo --threads 1 --out runs/wpc.pt"

Drops the optimizer state (halves the file; the release is for inference and export), keeps
everything else, and writes <dst>.json and <dst>.md: accuracy, sparsity per layer, the command.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from ..errors import PestoError
from ..util import atomic_write_bytes, atomic_write_text, sha256
from ..validate import existing_file, output_file
from .checkpoint import load_checkpoint


def release(src, dst, command: str = "") -> dict:
    ckpt = load_checkpoint(src)
    ckpt.pop("path", None)
    ckpt["optimizer"] = None
    import io
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    data = buf.getvalue()
    atomic_write_bytes(dst, data)
    load_checkpoint(dst)  # what we ship must load
    last = ckpt["history"][-1] if ckpt["history"] else {}
    card = {
        "file": Path(dst).name, "bytes": len(data), "sha256": sha256(data),
        "model": ckpt["model"], "quant": ckpt["quant"], "data": ckpt["data"], "epochs": ckpt["epoch"],
        "test_acc": last.get("test_acc"), "overall_sparsity": last.get("overall_sparsity"),
        "group_sparsity": last.get("group_sparsity"), "in_group_sparsity": last.get("in_group_sparsity"),
        "compression_rate": last.get("compression_rate"),
        "train_time_s": round(sum(h.get("time_s", 0) for h in ckpt["history"]), 1),
        "steps": sum(h.get("steps", 0) for h in ckpt["history"]),
        "layers": last.get("layers", {}), "command": command, "args": ckpt["args"],
        "history": [{k: h.get(k) for k in ("epoch", "lr", "train_loss", "test_acc", "overall_sparsity",
                                           "group_sparsity", "compression_rate", "time_s")}
                    for h in ckpt["history"]],
    }
    dst = Path(dst)
    atomic_write_text(dst.with_suffix(".json"), json.dumps(card, indent=1) + "\n")
    atomic_write_text(dst.with_suffix(".md"), model_card(card))
    return card


def model_card(c: dict) -> str:
    q, m = c["quant"], c["model"]
    a = c["args"]
    lines = [
        f"# {c['file']}",
        "",
        f"{m['name']} ({m['in_channels']}x{m['input_size']}x{m['input_size']} -> {m['num_classes']} classes), "
        f"mode **{q['mode']}**, Cg {q['cg']}, first/last layer float: {q['keep_first_last']}. "
        f"Trained on {c['data']['dataset']} (normalise x = (pixel/255 - {c['data']['mean']}) / {c['data']['std']}).",
        "",
        f"- test accuracy: **{c['test_acc']:.2f}%** on {a.get('test_subset') or 'all 10000'} test images",
        f"- overall sparsity {100 * c['overall_sparsity']:.1f}%, group sparsity **{100 * c['group_sparsity']:.1f}%**, "
        f"in-group sparsity {100 * c['in_group_sparsity']:.1f}%",
        f"- compression rate (eq 2.8): **{c['compression_rate']:.1f}x**",
        f"- training: {c['epochs']} epochs, {c['steps']} steps of batch {a.get('batch_size')} on "
        f"{a.get('subset') or 'all'} images, lambda {a.get('lam')}, a {a.get('a')}, lr {a.get('lr')} "
        f"x{a.get('gamma')} at {a.get('milestones')}; {c['train_time_s'] / 60:.1f} min on a shared 2-core CPU",
        f"- file: {c['bytes']} bytes, sha256 {c['sha256']}",
        "",
        "Made by:",
        "",
        "```",
        c["command"] or "(command not recorded)",
        "```",
        "",
        "| layer | group sparsity (%) | layer sparsity (%) | WPC delta |",
        "|---|---|---|---|",
    ]
    for name, v in c["layers"].items():
        d = v.get("delta")
        lines.append(f"| {name} | {100 * v['group_sparsity']:.1f} | {100 * v['layer_sparsity']:.1f} | "
                     f"{'' if d is None else f'{d:.4f}'} |")
    lines += ["", "| epoch | lr | train loss | test acc (%) | group sparsity (%) | comp. rate |",
              "|---|---|---|---|---|---|"]
    for h in c["history"]:
        lines.append(f"| {h['epoch']} | {h['lr']:g} | {h['train_loss']:.4f} | {h['test_acc']:.2f} | "
                     f"{100 * h['group_sparsity']:.1f} | {h['compression_rate']:.1f}x |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m pesto.train.release", description=__doc__.splitlines()[0])
    p.add_argument("src", type=existing_file)
    p.add_argument("dst", type=output_file)
    p.add_argument("--command", default="", help="the command that trained src (recorded in the card)")
    args = p.parse_args(argv)   # a usage error exits 2 (docs/robustness.md)
    try:
        card = release(args.src, args.dst, args.command)
    except PestoError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"{args.dst}: {card['bytes']} bytes, acc {card['test_acc']:.2f}%, group sparsity "
          f"{100 * card['group_sparsity']:.1f}%, {card['compression_rate']:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
