"""Load: 8 concurrent clients x 20 requests, every answer right, none lost."""
import base64
import io
import json
import threading
import time

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.torch


def test_eight_clients_twenty_requests(server, sample_bytes):
    ref = server.json("POST", "/api/v1/explain?figure=0", body=sample_bytes)
    ref_map = np.array(Image.open(io.BytesIO(base64.b64decode(ref["heatmaps"][0]["png"])))).astype(int)
    answers, errors = [], []

    def client():
        for _ in range(20):
            try:
                status, _, data = server.request("POST", "/api/v1/explain?figure=0", body=sample_bytes, timeout=300)
                answers.append((status, json.loads(data)))
            except Exception as e:  # noqa: BLE001 - counted and reported below
                errors.append(repr(e))

    t0 = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    elapsed = time.monotonic() - t0
    assert not errors and len(answers) == 160
    batches = []
    for status, r in answers:
        assert status == 200, r
        assert r["prediction"] == ref["prediction"] or (
            r["prediction"]["index"] == ref["prediction"]["index"]
            and abs(r["prediction"]["confidence"] - ref["prediction"]["confidence"]) < 1e-5)
        m = np.array(Image.open(io.BytesIO(base64.b64decode(r["heatmaps"][0]["png"])))).astype(int)
        # Batched passes may sum in another order (float rounding): one 8-bit level at most.
        assert np.abs(m - ref_map).max() <= 1
        batches.append(r["timing"]["batch_size"])
    print("load: 160 requests in %.1f s (%.1f/s), batch sizes seen %s" % (elapsed, 160 / elapsed, sorted(set(batches))))
    assert max(batches) > 1, "concurrent requests were never coalesced"
