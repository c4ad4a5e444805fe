"""The service's background exports: asks for the same file share one job, the file is written
whole (never half a file under its name), a finished job is forgotten, and a failed one is
reported to whoever waits for it and tried again on the next ask."""

from __future__ import annotations

from pathlib import Path

import pytest
from service_helpers import http_config

import nasprune
from nasprune.exporter import plan_path_for
from nasprune.service.exports import Exports
from nasprune.session import Silent
from storage import Store


def test_asks_share_one_job_and_a_failure_is_retried(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    supernet = {"epochs": 1, "checkpoint_dir": str(tmp_path / "checkpoints")}
    config = http_config(tmp_path, supernet=supernet, budget={"trials": 2})
    nasprune.run(config, storage=url, observer=Silent())
    folder = tmp_path / "exports"
    folder.mkdir()
    with Store(url) as store:
        exports = Exports(store)
        path = folder / "search1-trial0.onnx"
        first = exports.request("tiny", 0, "onnx", path)
        assert exports.request("tiny", 0, "onnx", path) is first
        assert first.result(timeout=120) == path
        assert path.stat().st_size > 0 and plan_path_for(path).exists()
        assert sorted(p.name for p in folder.iterdir()) == [path.name, plan_path_for(path).name]

        again = exports.request("tiny", 0, "onnx", path)  # a new job, which finds the file
        assert again is not first and again.result(timeout=60) == path

        missing = folder / "search9-trial0.pt"
        failed = exports.request("nope", 0, "state", missing)
        with pytest.raises(Exception, match="nope"):
            failed.result(timeout=60)
        assert exports.request("nope", 0, "state", missing) is not failed
        assert not missing.exists()
        exports.close()
