"""Against the peers, on the same inputs in the same process.

1. 2D: segmentation-models-pytorch ``Unet(resnet34, decoder_attention_type="scse")`` vs our
   ``smp_unet`` (resnet34, scse), 256x256, batch 8: forward and training step.
2. 3D: MONAI ``sliding_window_inference`` with MONAI's ``UNet`` vs our 3D inference path
   (``scseg.inference.volume.sliding_window_probabilities``) on a 160x192x160 volume, equal
   window (96^3), overlap, window batch and Gaussian blending, with our scSE ``unet`` and
   ``resunet`` at MONAI's widths and strides (``stem_stride=2``: MONAI's UNet downsamples in
   its first layer) and our default ``unet``, which keeps a full-resolution stage as nnU-Net
   does (about ten times the compute). Our strided network also goes through MONAI's path,
   which separates the cost of the path from that of the network.

    uv run python benchmarks/peers.py [--only 2d|3d] [--repeats N]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import segmentation_models_pytorch as smp
import torch
from monai.inferers import sliding_window_inference
from monai.networks.nets import UNet

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import interleaved, markdown_table, steps, write

import scseg
from scseg.inference import LoadedModel
from scseg.inference.volume import sliding_window_probabilities


def compare_2d(repeats: int, device: str) -> list[dict]:
    x = torch.randn(8, 3, 256, 256, device=device)
    torch.manual_seed(0)
    models = {
        "smp Unet resnet34 scse": smp.Unet("resnet34", encoder_weights=None, classes=2,
                                           decoder_attention_type="scse"),
        "scseg smp_unet resnet34 scse": scseg.create_model(
            "smp_unet", spatial_dims=2, in_channels=3, classes=2, attention="scse",
            encoder_name="resnet34"),
        "smp Unet resnet34 (no attention)": smp.Unet("resnet34", encoder_weights=None, classes=2),
        "scseg smp_unet resnet34 none": scseg.create_model(
            "smp_unet", spatial_dims=2, in_channels=3, classes=2, attention="none",
            encoder_name="resnet34"),
    }  # fmt: skip
    built = {name: steps(m.to(device), x, device) for name, m in models.items()}
    fwd = interleaved({n: s[0] for n, s in built.items()}, repeats)
    train = interleaved({n: s[1] for n, s in built.items()}, repeats)
    return [
        {"comparison": "2D 256x256 batch 8", "model": name,
         "params": sum(p.numel() for p in models[name].parameters()),
         "forward": fwd[name], "train_step": train[name]}
        for name in models
    ]  # fmt: skip


def compare_3d(repeats: int, device: str, overlap: float, sw_batch: int) -> list[dict]:
    torch.manual_seed(0)
    volume = torch.randn(1, 1, 160, 192, 160)
    roi = (96, 96, 96)
    widths = (32, 64, 128, 256, 320)
    amp = device == "cuda"
    monai_net = UNet(3, 1, 2, channels=widths, strides=(2, 2, 2, 2), num_res_units=2)
    ours = {  # the same widths and depth; the first two also downsample at once, as MONAI's
        "scseg unet (scse), stem_stride 2": scseg.create_model(
            "unet", spatial_dims=3, in_channels=1, classes=2, channels=widths, stem_stride=2),
        "scseg resunet (scse), stem_stride 2": scseg.create_model(
            "resunet", spatial_dims=3, in_channels=1, classes=2, channels=widths,
            stem_stride=2),
        "scseg unet (scse), default: full-res stage": scseg.create_model(
            "unet", spatial_dims=3, in_channels=1, classes=2, channels=widths),
    }  # fmt: skip

    def monai_path(net: torch.nn.Module):
        net = net.to(device).eval()

        def run() -> None:
            with torch.inference_mode(), torch.autocast(device, torch.bfloat16, enabled=amp):
                logits = sliding_window_inference(volume.to(device), roi, sw_batch, net,
                                                  overlap=overlap, mode="gaussian")  # fmt: skip
                torch.softmax(logits, 1).cpu()

        return run

    def our_path(net: torch.nn.Module):
        loaded = LoadedModel(net.to(device).eval(), 3, 1, 2, {}, {"patch_size": list(roi)})

        def run() -> None:  # mixed precision on a GPU comes with the path
            sliding_window_probabilities(loaded, volume, roi, overlap, sw_batch)

        return run

    paths = {"MONAI UNet (2 res units) + sliding_window_inference": (monai_path, monai_net)}
    for name, net in ours.items():
        paths[f"{name} + scseg inference path"] = (our_path, net)
    # Our networks through MONAI's path too: what the path costs, apart from the network.
    name = "scseg unet (scse), stem_stride 2"
    paths[f"{name} + MONAI sliding_window_inference"] = (monai_path, ours[name])
    times = interleaved({name: path(net) for name, (path, net) in paths.items()}, repeats)
    return [
        {"comparison": f"3D 160x192x160, roi 96^3, overlap {overlap}, sw batch {sw_batch}",
         "model": name, "params": sum(p.numel() for p in paths[name][1].parameters()),
         "inference": times[name]}
        for name in times
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", choices=("2d", "3d"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--overlap", type=float, default=0.25)
    parser.add_argument("--sw-batch-size", type=int, default=2)
    parser.add_argument("--suffix", default="")
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    rows = []
    if args.only in (None, "2d"):
        rows += compare_2d(args.repeats, device)
    if args.only in (None, "3d"):
        rows += compare_3d(max(1, args.repeats - 1), device, args.overlap, args.sw_batch_size)
    lines = []
    for r in rows:
        timing = [r[k] for k in ("forward", "train_step", "inference") if k in r]
        cells = [f"{t['median_s']:.3f} ({t['min_s']:.3f})" for t in timing]
        if "inference" in r:
            cells = ["", "", cells[0]]
        else:
            cells.append("")
        lines.append([r["comparison"], r["model"], f"{r['params'] / 1e6:.2f} M", *cells])
    table = markdown_table(
        ["comparison", "model", "params", "forward s", "train step s", "sliding-window s"], lines
    )
    meta = {"repeats": args.repeats, "statistic": "median (min)"}
    for path in write(f"peers{args.suffix}", rows, table, meta):
        print(path)
    print(table)


if __name__ == "__main__":
    main()
