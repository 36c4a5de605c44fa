"""Build week + msnew data images for every stock, for one date and for every date of a preset.

    .venv/bin/python benchmarks/build_images.py --preset demo --seed 0

Prints bytes of images produced per second next to a NumPy copy of the same number of bytes
measured in the same run (ratio; aim >= 0.5), and the peak memory of the image phase against the
panel's size (aim <= 2x). The image phase runs in a child process that starts from the saved panel,
so its peak is not the panel build's.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _rss_gib() -> float:
    """Peak resident memory of this process (VmHWM: unlike ru_maxrss, not inherited through fork/exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def build_and_save(preset: str, seed: int, out: Path) -> None:
    from factor_pipeline.datasets.panel import build_panel
    from factor_pipeline.market.sources import synthetic_source
    from factor_pipeline.market.warehouse import connect_memory

    src = synthetic_source(preset, seed, root=out / "home")
    t0 = time.perf_counter()
    con = connect_memory()
    con.execute("SET threads = 2; SET memory_limit = '3GB'; SET preserve_insertion_order = false")
    p = build_panel(con, src.relations())
    print(f"panel: {p.daily.shape[0]} stocks x {p.daily.shape[1]} dates, {p.nbytes / 2**20:.0f} MiB, "
          f"built in {time.perf_counter() - t0:.1f}s (peak RSS {_rss_gib():.2f} GiB)")
    np.savez(out / "panel.npz", codes=p.codes, dates=p.dates, daily=p.daily, listed=p.listed,
             suspended=p.suspended, csi_all=p.members["csi_all"], bars30=p.bars30)


def images(folder: Path) -> None:
    import torch

    from factor_pipeline.datasets.base import dataset_base
    from factor_pipeline.datasets.builders import gather
    from factor_pipeline.datasets.panel import Panel
    from factor_pipeline.datasets.samples import sample_mask

    torch.set_num_threads(2)
    rss_imports = _rss_gib()
    z = np.load(folder / "panel.npz")
    p = Panel(z["codes"], z["dates"], z["daily"], z["listed"], z["suspended"], {"csi_all": z["csi_all"]},
              bars30=z["bars30"])
    panel_gib = p.nbytes / 2**30  # before the base takes over the 30-minute bars
    base = dataset_base(p, consume=True)
    masks = {"week": sample_mask(p, 150), "msnew": sample_mask(p, 30)}
    dates = [t for t in range(149, len(p.dates)) if masks["week"][:, t].any()]

    def one(t: int) -> int:
        n = 0
        for name in ("week", "msnew"):
            s = torch.from_numpy(np.flatnonzero(masks[name][:, t]))
            x = gather(base, name, s, torch.full((len(s),), t))
            n += x.numel() * x.element_size()
        return n

    one(dates[-1])  # warm-up
    t0 = time.perf_counter()
    b1 = one(dates[-1])
    s1 = time.perf_counter() - t0
    t0 = time.perf_counter()
    total = sum(one(t) for t in dates)
    s_all = time.perf_counter() - t0
    # references, same process: NumPy copies of the same bytes in batches of the same size, (a) streaming
    # through a source as large as the panel (memory-bound, like our gathers) and (b) one cached buffer
    batch = max(b1 // 8, 1)
    big = np.random.default_rng(0).random(max(p.nbytes // 8, 4 * batch))
    dst = np.empty(batch)
    reps = max(int(total / dst.nbytes), 1)
    starts = (np.arange(reps) * batch) % (len(big) - batch)
    t0 = time.perf_counter()
    for s0 in starts:
        np.copyto(dst, big[s0: s0 + batch])
    s_np = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(reps):
        np.copyto(dst, big[:batch])
    s_cached = time.perf_counter() - t0
    ours, ref, cached = total / s_all, reps * dst.nbytes / s_np, reps * dst.nbytes / s_cached
    peak = _rss_gib()
    print(f"one date ({p.dates[dates[-1]]}): {b1 / 2**20:.1f} MiB of week+msnew images in {s1 * 1e3:.1f} ms")
    print(f"every date ({len(dates)}): {total / 2**30:.2f} GiB in {s_all:.1f}s = {ours / 2**30:.2f} GiB/s; "
          f"NumPy copy of the same bytes from a panel-sized source: {ref / 2**30:.2f} GiB/s; ratio {ours / ref:.2f} "
          f"(from one cache-resident batch: {cached / 2**30:.2f} GiB/s, ratio {ours / cached:.2f})")
    print(f"peak RSS {peak:.2f} GiB, {rss_imports:.2f} GiB of it Python+torch before the panel; panel "
          f"{panel_gib:.2f} GiB; (peak - imports) / panel = {(peak - rss_imports) / panel_gib:.2f} "
          f"(panel + per-day base tensors + image batches)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="demo")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--images-from")
    args = ap.parse_args()
    if args.images_from:
        images(Path(args.images_from))
        return
    with tempfile.TemporaryDirectory() as tmp:
        build_and_save(args.preset, args.seed, Path(tmp))
        subprocess.run([sys.executable, __file__, "--images-from", tmp], check=True)


if __name__ == "__main__":
    main()
