"""Images per second of fxcam.dask with 1 and 2 local worker processes
(threads_per_worker=1, libtorch threads=1 each) on the same images, in one
run (docs/scale.md). Usage: PYTHONPATH=python FXCAM_LIBRARY=build/libfxcam.so
    python3 bench/dask_scale.py [N_IMAGES (32)] [ROUNDS (2)]
The images are the embedded samples (models/samples) copied to N names."""
import os
import shutil
import sys
import tempfile
import time

from distributed import Client, LocalCluster

import fxcam.dask as fxdask

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 32
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    samples = sorted(os.path.join(ROOT, "models", "samples", f) for f in os.listdir(os.path.join(ROOT, "models",
                                                                                                    "samples"))
                     if f.endswith(".png"))
    work = tempfile.mkdtemp(prefix="fxcam-dask-bench-")
    paths = []
    for k in range(n):
        p = os.path.join(work, "in", f"img_{k:03d}.png")
        os.makedirs(os.path.dirname(p), exist_ok=True)
        shutil.copy(samples[k % len(samples)], p)
        paths.append(p)
    clusters = {w: LocalCluster(n_workers=w, threads_per_worker=1, processes=True, dashboard_address=None)
                for w in (1, 2)}
    clients = {w: Client(c) for w, c in clusters.items()}
    for w, c in clients.items():  # warm: each worker loads the model once, outside the timing
        fxdask.explain_files(c, paths[:2 * w], os.path.join(work, "warm"), chunk_size=1, as_frame=False)
    rates = {1: [], 2: []}
    for _ in range(rounds):  # alternate, so that background load hits both alike
        for w, c in clients.items():
            start = time.perf_counter()
            rows = fxdask.explain_files(c, paths, os.path.join(work, f"out{w}"), chunk_size=2, as_frame=False)
            seconds = time.perf_counter() - start
            assert all(r["status"] == "ok" for r in rows)
            rates[w].append(n / seconds)
    for w in (1, 2):
        print(f"{w} worker{'s' if w > 1 else ''}: " + ", ".join(f"{r:.1f}" for r in rates[w]) +
              f" images/s (best {max(rates[w]):.1f})")
    print(f"speed-up 2 vs 1 worker (best of {rounds}): {max(rates[2]) / max(rates[1]):.2f}x on {os.cpu_count()} CPUs")
    for c in clients.values():
        c.close()
    for c in clusters.values():
        c.close()
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
