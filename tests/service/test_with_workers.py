"""A search launched over HTTP and run by two real `nasprune worker` processes: progress by
polling and by server-sent events, best, pareto, trials, and the exported subnet loads back
(state with nasprune.load_subnet, ONNX under ONNX Runtime)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient
from service_helpers import AUTH, http_config

import nasprune

ROOT = Path(__file__).resolve().parents[2]


def worker(url: str, cwd: Path, name: str = "tiny") -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "nasprune", "worker", name, "--quiet"],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NASPRUNE_STORAGE": url, "PYTHONPATH": str(ROOT)},
    )


def sse_events(text: str) -> list[tuple[str, dict]]:
    found = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in lines:
            found.append((lines["event"], json.loads(lines["data"])))
    return found


def test_launch_over_http_then_two_workers_finish_it(
    client: TestClient, store_url: str, tmp_path: Path
) -> None:
    assert client.post("/searches", json=http_config(tmp_path), headers=AUTH).status_code == 201
    workers = [worker(store_url, tmp_path) for _ in range(2)]
    seen = set()
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        now = client.get("/searches/tiny/progress").json()
        seen.add(now["complete"])
        if now["finished"] and all(w.poll() is not None for w in workers):
            break
        time.sleep(0.5)
    for w in workers:
        _, err = w.communicate(timeout=60)
        assert w.returncode == 0, err
    done = client.get("/searches/tiny/progress").json()
    assert done["status"] == "completed" and done["complete"] == 4 and done["running"] == 0
    assert done["best"] is not None and max(seen) == 4

    stream = client.get("/searches/tiny/events")
    assert stream.headers["content-type"].startswith("text/event-stream")
    events = sse_events(stream.text)
    assert events[0][0] == "progress" and events[0][1]["complete"] == 4
    assert events[-1] == ("end", {"status": "completed"})

    best = client.get("/searches/tiny/best").json()["trial"]
    assert best["accuracy"] == max(
        t["accuracy"] for t in client.get("/searches/tiny/trials").json()["items"]
    )
    assert (
        client.get("/searches/tiny/best", params={"max_latency_ms": 1e-9}).json()["trial"] is None
    )
    front = client.get("/searches/tiny/pareto").json()["trials"]
    assert best["number"] in {t["number"] for t in front}
    query = {"sort": "params", "order": "desc", "state": "complete", "limit": 2}
    page = client.get("/searches/tiny/trials", params=query).json()
    assert page["total"] == 4 and len(page["items"]) == 2
    assert page["items"][0]["params"] >= page["items"][1]["params"]
    numbers, after = [], None
    while True:  # keyset paging, two at a time
        query = {"limit": 2} if after is None else {"limit": 2, "after": after}
        keyed = client.get("/searches/tiny/trials", params=query).json()
        numbers += [t["number"] for t in keyed["items"]]
        if (after := keyed["next_after"]) is None:
            break
    assert numbers == [0, 1, 2, 3]
    refused = client.get("/searches/tiny/trials", params={"after": 1, "sort": "params"})
    assert refused.status_code == 400 and refused.json()["detail"].startswith("after:")
    one = client.get(f"/searches/tiny/trials/{best['number']}").json()
    assert one | {"finetuned": None} == best  # /best says whether it was fine-tuned, as the CLI
    lowered = client.patch("/searches/tiny", json={"budget_trials": 3}, headers=AUTH)
    assert lowered.status_code == 409 and "budget_trials" in lowered.json()["detail"]

    state = client.get("/searches/tiny/export", params={"trial": best["number"]})
    assert state.status_code == 200, state.text
    saved = tmp_path / "downloaded.pt"
    saved.write_bytes(state.content)
    model = nasprune.load_subnet(saved)
    assert sum(p.numel() for p in model.parameters()) == best["params"]
    exports = list((tmp_path / "exports").iterdir())
    assert exports and all(p.parent == tmp_path / "exports" for p in exports)
    assert not any(".part" in p.name for p in exports)
    made = {p.name: p.stat().st_mtime_ns for p in exports}
    again = client.get("/searches/tiny/export", params={"trial": best["number"]})
    assert again.content == state.content  # read from the export directory, not made again
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "exports").iterdir()} == made

    # Not waited for, an export under way is a 202; it goes on, and a later ask gets it.
    ask = {"trial": best["number"], "format": "onnx", "wait": 0}
    pending = client.get("/searches/tiny/export", params=ask)
    assert pending.status_code == 202 and pending.headers["retry-after"] == "2"
    assert "ask again" in pending.json()["detail"]
    onnx = client.get("/searches/tiny/export", params={**ask, "wait": 120})
    assert onnx.status_code == 200, onnx.text
    import onnxruntime as ort

    session = ort.InferenceSession(onnx.content, providers=["CPUExecutionProvider"])
    out = session.run(None, {"input": np.zeros((2, 64), dtype=np.float32)})[0]
    assert out.shape == (2, 10)


def test_a_cancelled_search_refuses_workers(
    client: TestClient, store_url: str, tmp_path: Path
) -> None:
    client.post("/searches", json=http_config(tmp_path), headers=AUTH)
    assert client.post("/searches/tiny/cancel", headers=AUTH).status_code == 200
    refused = worker(store_url, tmp_path)
    _, err = refused.communicate(timeout=120)
    assert refused.returncode == 2 and "cancelled" in err
    assert client.get("/searches/tiny/progress").json()["status"] == "cancelled"
