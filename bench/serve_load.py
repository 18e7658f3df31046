#!/usr/bin/python3
"""Load and latency of `fxcam serve` (docs/performance.md, "fxcam serve").

    /usr/bin/python3 bench/serve_load.py --build BUILD_DIR [--requests 50] [--clients 8] [--threads 2]

Starts `BUILD_DIR/cli/fxcam serve` (the embedded model) on a free loopback
port and measures, with the same image (default models/samples/synth_2000_00000.png)
and the default query (Grad-CAM, figure included):
  (a) one client sending --requests explain requests one after another;
  (b) --clients concurrent clients x --requests each;
  (c) one request's latency against the same work in-process through the
      Python bindings over BUILD_DIR/libfxcam.so: decode the PNG bytes
      (fx_image_load_memory), fx_gradcam_compute, the 8-bit heatmap and the
      composed figure (fx_figure_compose) written as PNGs to /dev/shm
      (fx_image_save: the PNG encoding the server does in memory). The model is
      loaded once on each side; HTTP requests and in-process runs alternate,
      so that the machine's load hits both alike.
Every answer is checked: HTTP 200, the same predicted class and confidence
(1e-5) as a lone request, and an 8-bit heatmap within one level (batched passes
may sum in another order). Prints a Markdown table."""
import argparse
import base64
import io
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
import http.client

import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def percentile(values, p):
    s = sorted(values)
    k = (len(s) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


class Server:
    def __init__(self, fxcam, threads):
        self.proc = subprocess.Popen([fxcam, "serve", "--port", "0", "--threads", str(threads)],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        m = re.search(r"http://127\.0\.0\.1:(\d+)/", self.proc.stdout.readline())
        if not m:
            self.proc.kill()
            sys.exit("fxcam serve did not print its URL")
        self.port = int(m.group(1))

    def explain(self, body):
        t0 = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
        try:
            conn.request("POST", "/api/v1/explain", body=body)
            r = conn.getresponse()
            data = r.read()
        finally:
            conn.close()
        return r.status, data, time.perf_counter() - t0

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)


def heatmap_of(answer):
    return np.array(Image.open(io.BytesIO(base64.b64decode(answer["heatmaps"][0]["png"])))).astype(int)


class Checker:
    def __init__(self, ref):
        self.ref = ref
        self.ref_map = heatmap_of(ref)
        self.bad = []
        self.alone_compute_ms = []  # the server's own fx_gradcam_compute time of batches of one
        self.timings = []  # every answer's timing, for the per-batch-size breakdown of (b)
        self.lock = threading.Lock()

    def check(self, status, data):
        try:
            assert status == 200, status
            a = json.loads(data)
            assert a["prediction"]["index"] == self.ref["prediction"]["index"]
            assert abs(a["prediction"]["confidence"] - self.ref["prediction"]["confidence"]) < 1e-5
            # Most answers carry the very bytes of the reference: decoding the
            # PNG (PIL, under the GIL) only when they differ keeps the client's
            # CPU time, which competes with the server's on this machine, small.
            if a["heatmaps"][0]["png"] != self.ref["heatmaps"][0]["png"]:
                assert np.abs(heatmap_of(a) - self.ref_map).max() <= 1
            assert a["figure_png"]
            with self.lock:
                self.timings.append(a["timing"])
            if a["timing"]["batch_size"] == 1:
                with self.lock:
                    self.alone_compute_ms.append(a["timing"]["compute_ms"])
            return a["timing"]["batch_size"]
        except Exception as e:  # noqa: BLE001 - counted and reported
            with self.lock:
                self.bad.append("%r: %s" % (e, data[:200]))
            return 0


def sequential(server, body, checker, n):
    lat = []
    t0 = time.perf_counter()
    for _ in range(n):
        status, data, dt = server.explain(body)
        checker.check(status, data)
        lat.append(dt)
    return time.perf_counter() - t0, lat


def concurrent(server, body, checker, clients, n):
    lat, batches, lock = [], [], threading.Lock()

    def client():
        for _ in range(n):
            status, data, dt = server.explain(body)
            b = checker.check(status, data)
            with lock:
                lat.append(dt)
                batches.append(b)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0, lat, batches


IN_PROCESS = r"""
import os, sys, time
import numpy as np
sys.path.insert(0, os.path.join(sys.argv[1], "python"))
import fxcam
from fxcam import image as fimage
body = open(sys.argv[2], "rb").read()
model = fxcam.Model(os.path.join(sys.argv[1], "models", "fracture_densenet.pt"), device="cpu",
                    threads=int(sys.argv[3]))
for line in sys.stdin:
    t0 = time.perf_counter()
    img = fimage.decode_image(body)
    result = fxcam.compute(model, [img], ("gradcam",))
    heat = result.heatmap(0)
    gray = np.floor(np.clip(heat, 0, 1) * 255 + 0.5).astype(np.uint8)
    fimage.save_image("/dev/shm/fxcam_bench_map.png", gray)
    fig = fimage.compose_figure(img, heat, label=result.predicted_name(0), confidence=result.confidence(0),
                                method="Grad-CAM", layer=result.layer)
    fimage.save_image("/dev/shm/fxcam_bench_fig.png", fig)
    print(time.perf_counter() - t0, result.predicted_class(0), flush=True)
model.close()
"""


def in_process_runner(build, image, threads):
    """The in-process side in its own interpreter (numpy and the bindings
    only: no PIL, no HTTP threads in the process that runs the model), driven
    one run per line."""
    # The OpenMP wait policy fxcam's executable gives itself (cli/main.c
    # re-execs with OMP_WAIT_POLICY=PASSIVE): with spinning idle threads a
    # process on a busy shared machine is many times slower, and the
    # comparison would measure that, not the HTTP overhead.
    env = dict(os.environ, FXCAM_LIBRARY=os.path.join(build, "libfxcam.so"),
               OMP_WAIT_POLICY=os.environ.get("OMP_WAIT_POLICY", "PASSIVE"))
    proc = subprocess.Popen([sys.executable, "-c", IN_PROCESS, ROOT, image, str(threads)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env)

    def run():
        proc.stdin.write("run\n")
        proc.stdin.flush()
        dt, predicted = proc.stdout.readline().split()
        return float(dt), int(predicted)

    def close():
        proc.stdin.close()
        if proc.wait(timeout=60) != 0:
            raise RuntimeError("the in-process runner failed (exit %d)" % proc.returncode)

    run.close = close
    return run


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--image", default=os.path.join(ROOT, "models", "samples", "synth_2000_00000.png"))
    ap.add_argument("--requests", type=int, default=50)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--pairs", type=int, default=30, help="interleaved single-request / in-process pairs for (c)")
    args = ap.parse_args()
    with open(args.image, "rb") as fh:
        body = fh.read()

    server = Server(os.path.join(args.build, "cli", "fxcam"), args.threads)
    try:
        status, data, _ = server.explain(body)
        assert status == 200, data[:300]
        checker = Checker(json.loads(data))
        for _ in range(3):
            checker.check(*server.explain(body)[:2])
        seq_wall, seq_lat = sequential(server, body, checker, args.requests)
        first_concurrent = len(checker.timings)
        con_wall, con_lat, batches = concurrent(server, body, checker, args.clients, args.requests)
        con_timings = checker.timings[first_concurrent:]
        run = in_process_runner(args.build, args.image, args.threads)
        for _ in range(3):
            run()
        http_lat, proc_lat, timings = [], [], []
        for _ in range(args.pairs):
            status, data, dt = server.explain(body)
            checker.check(status, data)
            http_lat.append(dt)
            if status == 200:
                timings.append(dict(json.loads(data)["timing"], http_ms=1e3 * dt))
            dt, predicted = run()
            assert predicted == checker.ref["prediction"]["index"]
            proc_lat.append(dt)
        run.close()
    finally:
        rc = server.stop()

    total = args.requests * (1 + args.clients) + args.pairs + 4
    seq_tp, con_tp = args.requests / seq_wall, args.requests * args.clients / con_wall
    http_med, proc_med = statistics.median(http_lat), statistics.median(proc_lat)
    load = open("/proc/loadavg").read().split()[:3]
    print("# %s, %d CPUs, --threads %d, load average before/after run: %s" %
          (time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), os.cpu_count(), args.threads, " ".join(load)))
    print("answers checked: %d, wrong or failed: %d, server exit status %d" % (total, len(checker.bad), rc))
    for b in checker.bad[:5]:
        print("  ", b)
    print()
    print("| run | requests | wall s | throughput req/s | p50 ms | p99 ms |")
    print("|---|---|---|---|---|---|")
    print("| (a) 1 client, sequential | %d | %.1f | %.2f | %.0f | %.0f |" %
          (args.requests, seq_wall, seq_tp, 1e3 * percentile(seq_lat, 50), 1e3 * percentile(seq_lat, 99)))
    print("| (b) %d clients x %d | %d | %.1f | %.2f | %.0f | %.0f |" %
          (args.clients, args.requests, len(con_lat), float(con_wall), float(con_tp), 1e3 * percentile(con_lat, 50),
           1e3 * percentile(con_lat, 99)))
    print()
    print("throughput (b)/(a): %.2fx (target >= 2x); batch sizes in (b): %s (mean %.1f)" %
          (con_tp / seq_tp, sorted(set(batches)), statistics.mean(batches)))
    print("(c) %d interleaved pairs: one HTTP request median %.0f ms (p90 %.0f), in-process decode + compute + "
          "figure + PNGs median %.0f ms (p90 %.0f): ratio %.2fx (target <= 1.1x)" %
          (args.pairs, 1e3 * http_med, 1e3 * percentile(http_lat, 90), 1e3 * proc_med,
           1e3 * percentile(proc_lat, 90), http_med / proc_med))
    by_size = {}
    for t in con_timings:
        by_size.setdefault(t["batch_size"], []).append(t)
    print("(b) per batch size: n: pass ms (per image), answer ms -- " + "; ".join(
        "%d: %.0f (%.1f), %.1f" % (n, statistics.median(t["compute_ms"] for t in ts),
                                  statistics.median(t["compute_ms"] for t in ts) / n,
                                  statistics.median(t["answer_ms"] for t in ts)) for n, ts in sorted(by_size.items())))
    seq_timings = checker.timings[4:first_concurrent]
    print("(a) lone requests: pass %.1f ms, answer %.1f ms, view %.1f ms (overlapped with the pass)" %
          (statistics.median(t["compute_ms"] for t in seq_timings), statistics.median(t["answer_ms"] for t in seq_timings),
           statistics.median(t["view_ms"] for t in seq_timings)))
    keys = ["http_ms", "total_ms", "upload_ms", "decode_ms", "queue_ms", "compute_ms", "handoff_ms", "view_ms",
            "figure_ms", "png_ms", "answer_ms"]
    print("(c) where one HTTP request's time goes, medians in ms (timing of the answers): " +
          ", ".join("%s %.1f" % (k, statistics.median(t[k] for t in timings)) for k in keys))
    print("    beyond the engine: http_ms - compute_ms %.1f ms; outside the server (connection, transfer, client "
          "read): http_ms - total_ms %.1f ms" %
          (statistics.median(t["http_ms"] - t["compute_ms"] for t in timings),
           statistics.median(t["http_ms"] - t["total_ms"] for t in timings)))
    alone = statistics.median(checker.alone_compute_ms)
    print("server-side: fx_gradcam_compute of a lone request median %.0f ms (timing.compute_ms); the HTTP "
          "latency of (c) is %.2fx that (decode, figure, PNGs, base64, JSON, HTTP)" %
          (alone, 1e3 * http_med / alone))
    return 1 if checker.bad or rc != 0 else 0


if __name__ == "__main__":
    sys.exit(main())
