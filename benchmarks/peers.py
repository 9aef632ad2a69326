"""Against the peers, on the same inputs in the same process.

1. 2D: segmentation-models-pytorch ``Unet(resnet34, decoder_attention_type="scse")`` vs our
   ``smp_unet`` (resnet34, scse), 256x256, batch 8: forward and training step.
2. 3D: MONAI ``sliding_window_inference`` with MONAI's ``UNet`` vs our 3D inference path
   (``scseg.inference.volume.sliding_window_probabilities`` with our default scSE ``unet``)
   on a 160x192x160 volume, equal window (96^3), overlap, window batch and Gaussian blending;
   plus our network through MONAI's path, which separates the cost of the path from that of
   the network (MONAI's UNet downsamples in its first layer; ours keeps a full-resolution
   stage, as nnU-Net does).

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
    monai_net = UNet(3, 1, 2, channels=(32, 64, 128, 256, 320), strides=(2, 2, 2, 2),
                     num_res_units=2).to(device).eval()  # fmt: skip
    ours = scseg.create_model("unet", spatial_dims=3, in_channels=1, classes=2, attention="scse")
    ours_loaded = LoadedModel(ours.to(device).eval(), 3, 1, 2, {}, {"patch_size": list(roi)})
    amp = device == "cuda"

    def monai_path() -> None:
        with torch.inference_mode(), torch.autocast(device, torch.bfloat16, enabled=amp):
            logits = sliding_window_inference(volume.to(device), roi, sw_batch, monai_net,
                                              overlap=overlap, mode="gaussian")  # fmt: skip
            torch.softmax(logits, 1).cpu()

    def our_path() -> None:
        with torch.autocast(device, torch.bfloat16, enabled=amp):
            sliding_window_probabilities(ours_loaded, volume, roi, overlap, sw_batch)

    def monai_path_our_net() -> None:  # the same network through MONAI's path: path cost only
        with torch.inference_mode(), torch.autocast(device, torch.bfloat16, enabled=amp):
            logits = sliding_window_inference(volume.to(device), roi, sw_batch, ours,
                                              overlap=overlap, mode="gaussian")  # fmt: skip
            torch.softmax(logits, 1).cpu()

    paths = {
        "MONAI UNet + sliding_window_inference": (monai_path, monai_net),
        "scseg unet (scse) + MONAI sliding_window_inference": (monai_path_our_net, ours),
        "scseg unet (scse) inference path": (our_path, ours),
    }
    times = interleaved({name: fn for name, (fn, _) in paths.items()}, repeats)
    params = {name: net for name, (_, net) in paths.items()}
    return [
        {"comparison": f"3D 160x192x160, roi 96^3, overlap {overlap}, sw batch {sw_batch}",
         "model": name, "params": sum(p.numel() for p in params[name].parameters()),
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
