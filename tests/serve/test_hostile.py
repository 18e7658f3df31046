"""Hostile input against `fxcam serve`: each gets a clear HTTP error, the
server keeps serving others, and its memory stays flat."""
import socket
import threading
import time

import numpy as np
import pytest

from conftest import Server

pytestmark = pytest.mark.torch


def raw(port, data, timeout=10, read=True):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        if not read:
            return b""
        chunks = []
        while True:
            try:
                c = s.recv(65536)
            except socket.timeout:
                break
            if not c:
                break
            chunks.append(c)
        return b"".join(chunks)
    finally:
        s.close()


def status_of(answer):
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else None


def test_declared_10_gb_is_413_without_reading(server):
    t0 = time.monotonic()
    answer = raw(server.port, b"POST /api/v1/explain HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                 b"Content-Length: 10737418240\r\n\r\n" + b"\x89PNG" * 100)
    assert status_of(answer) == 413 and b"limit" in answer
    assert time.monotonic() - t0 < 5


def test_upload_over_the_limit_is_413(server):
    """The server answers before the body and closes: the client may see its
    send fail (EPIPE) but must read the 413."""
    s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    body = b"\0" * (2 * 1024 * 1024 + 1)
    try:
        s.sendall(b"POST /api/v1/explain HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    except OSError:
        pass
    answer = s.recv(4096)
    s.close()
    assert status_of(answer) == 413


def test_chunked_upload_over_the_limit_is_413(server):
    chunk = b"\0" * 65536
    body = b"".join(b"%x\r\n" % len(chunk) + chunk + b"\r\n" for _ in range(40)) + b"0\r\n\r\n"
    answer = raw(server.port, b"POST /api/v1/explain HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
    assert status_of(answer) == 413


def test_truncated_multipart_is_400(server, sample_bytes):
    b = b"XyZ"
    body = b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n\r\n" + sample_bytes[:500]
    status, _, data = server.request("POST", "/api/v1/explain", body=body,
                                     headers={"Content-Type": "multipart/form-data; boundary=" + b.decode()})
    assert status == 400 and (b"multipart" in data or b"not an image" in data)


def test_multipart_wrong_field_is_400(server, sample_bytes):
    body = (b"--BoundaryX\r\nContent-Disposition: form-data; name=\"image\"\r\n\r\n" + sample_bytes +
            b"\r\n--BoundaryX--\r\n")
    status, _, data = server.request("POST", "/api/v1/explain", body=body,
                                     headers={"Content-Type": "multipart/form-data; boundary=BoundaryX"})
    assert status == 400 and b"'file'" in data


def test_non_image_is_400(server):
    status, _, data = server.request("POST", "/api/v1/explain", body=b"GIF89a not what we read")
    assert status == 400 and b"not a PNG, JPEG or DICOM" in data


def test_dicom_without_pixels_is_400(server):
    # Part 10 preamble + DICM + a file meta group with no pixel data at all
    body = b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00UI\x14\x001.2.840.10008.1.2.1\0"
    status, _, data = server.request("POST", "/api/v1/explain", body=body)
    assert status in (400, 415), data
    assert b"error" in data


@pytest.mark.parametrize("path", ["/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/api/v1/../../../etc/passwd",
                                  "/static/..%2f..%2fetc%2fpasswd", "/api/v2/model", "/index.html"])
def test_path_traversal_is_404(server, path):
    answer = raw(server.port, b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert status_of(answer) == 404 and b"root:" not in answer


def test_wrong_method_is_405(server):
    assert server.request("GET", "/api/v1/explain")[0] == 405
    assert server.request("DELETE", "/api/v1/model")[0] == 405


def test_slow_client_times_out_and_others_are_served(server, sample_bytes):
    """--timeout 2: a client that stops sending is closed after ~2 s, one that
    trickles a byte every 0.5 s is cut by the upload deadline; meanwhile
    other clients are answered at once."""
    results = {}

    def idle():
        s = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        s.sendall(b"POST /api/v1/explain HTTP/1.1\r\nHost: x\r\nContent-Le")
        t0 = time.monotonic()
        results["idle_answer"] = s.recv(100)
        results["idle_s"] = time.monotonic() - t0
        s.close()

    def trickle():
        s = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        s.sendall(b"POST /api/v1/explain HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
        t0 = time.monotonic()
        try:
            while time.monotonic() - t0 < 25:
                s.sendall(b"\x89")
                time.sleep(0.5)
            results["trickle"] = "never closed"
        except OSError:
            results["trickle"] = time.monotonic() - t0
        s.close()

    threads = [threading.Thread(target=idle), threading.Thread(target=trickle)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    t0 = time.monotonic()
    assert server.request("GET", "/healthz", timeout=5)[0] == 200
    assert server.request("POST", "/api/v1/explain?figure=0", body=sample_bytes, timeout=30)[0] == 200
    assert time.monotonic() - t0 < 10
    for t in threads:
        t.join(40)
    assert results["idle_s"] < 6, results
    assert results["trickle"] != "never closed" and results["trickle"] < 15, results


def test_queue_full_is_503_with_retry_after(sample_bytes):
    s = Server("--queue", "1", "--workers", "8")
    try:
        answers = []

        def one():
            answers.append(s.request("POST", "/api/v1/explain?figure=0", body=sample_bytes, timeout=120))

        threads = [threading.Thread(target=one) for _ in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(180)
        codes = sorted(a[0] for a in answers)
        assert len(codes) == 12 and set(codes) <= {200, 503} and 200 in codes and 503 in codes, codes
        assert all(a[1].get("Retry-After") == "1" for a in answers if a[0] == 503)
    finally:
        s.stop()


def bad_requests(port, sample_bytes):
    """Eleven kinds of bad request for a server started with --token T
    --max-upload 1; each returns the HTTP status it got (None: no answer
    expected) and the status it should get."""
    auth = b"Authorization: Bearer T\r\n"
    head = b"POST /api/v1/explain HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    multipart = b"Content-Type: multipart/form-data; boundary=BoundaryX\r\n"
    rng = np.random.default_rng(7)

    def post(headers, body, expect):
        return lambda: (status_of(raw(port, head + headers + b"Content-Length: %d\r\n\r\n" % len(body) + body)),
                        expect)

    def oversized():
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        body = b"\0" * (1024 * 1024 + 4096)
        try:
            s.sendall(head + auth + b"Content-Length: %d\r\n\r\n" % len(body) + body)
        except OSError:
            pass
        answer = s.recv(4096)
        s.close()
        return status_of(answer), 413

    def partial_then_gone():
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(head + auth + b"Content-Length: 100000\r\n\r\n" + sample_bytes[:1000])
        s.close()  # a client that gives up half-way: nothing to read
        return None, None

    def garbage_png():
        return post(auth, b"\x89PNG\r\n\x1a\n" + rng.bytes(3000), 400)()

    kinds = [
        post(auth + multipart, b"--BoundaryX\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\n"
             + sample_bytes[:300], 400),                                    # truncated multipart
        post(auth + multipart, b"--BoundaryX\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\nab"
             b"\r\n--BoundaryX--\r\n", 400),                              # wrong part
        lambda: (status_of(raw(port, head + auth + b"Content-Length: 10737418240\r\n\r\n\x89PNG")), 413),
        oversized,
        post(b"Authorization: Bearer wrong\r\n", sample_bytes, 401),
        post(b"", sample_bytes, 401),
        garbage_png,
        post(auth, sample_bytes[:700], 400),                                # truncated PNG
        post(auth, b"GIF89a" + b"junk" * 200, 400),                          # not an image we read
        partial_then_gone,
        lambda: (status_of(raw(port, b"GET /api/v1/results/%s/image.png HTTP/1.1\r\nHost: x\r\n"
                                     b"Connection: close\r\n" % (b"ab" * 16) + auth + b"\r\n")), 404),
    ]
    return kinds


def test_rss_flat_over_1000_bad_requests(sample_bytes):
    """After a warm-up of every kind, 1000 more bad requests (eleven kinds:
    malformed multipart, declared and real oversize, wrong and missing token,
    garbage and truncated images, clients leaving half-way, unknown results)
    grow the server's resident memory (VmRSS) by less than 4 MiB, and the
    server then answers a good request as it did before them."""
    s = Server("--token", "T", "--max-upload", "1", "--timeout", "2")
    try:
        auth = {"Authorization": "Bearer T"}
        before_answer = s.json("POST", "/api/v1/explain?figure=0", body=sample_bytes, headers=auth)
        kinds = bad_requests(s.port, sample_bytes)
        wrong = []

        def storm(n):
            for i in range(n):
                got, want = kinds[i % len(kinds)]()
                if got != want:
                    wrong.append((i % len(kinds), got, want))

        storm(3 * len(kinds) * 10)  # warm-up: every path, its buffers and malloc's arenas
        time.sleep(0.5)             # connections from partial_then_gone are closed
        rss_before = s.rss_kb()
        storm(1000)
        time.sleep(0.5)
        rss_after = s.rss_kb()
        assert not wrong, wrong[:10]
        assert rss_after - rss_before < 4 * 1024, (rss_before, rss_after)
        after_answer = s.json("POST", "/api/v1/explain?figure=0", body=sample_bytes, headers=auth)
        assert after_answer["prediction"] == before_answer["prediction"]
        assert after_answer["heatmaps"][0]["png"] == before_answer["heatmaps"][0]["png"]
        print("VmRSS %d kB before, %d kB after 1000 bad requests" % (rss_before, rss_after))
    finally:
        s.stop()
