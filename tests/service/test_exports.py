"""The service's background exports: asks for the same file share one job, the file is written
whole (never half a file under its name), a failed export is reported to whoever asks for it
within ``failure_s`` (and tried again after), and the queue has a bound."""

from __future__ import annotations

from pathlib import Path

import pytest
from service_helpers import http_config

import nasprune
from nasprune.exporting.subnet import plan_path_for
from nasprune.search.worker import Silent
from nasprune.service.exports import Exports, ExportsBusy
from storage import Store


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A real two-trial search."""
    tmp = tmp_path_factory.mktemp("exports")
    url = f"sqlite:///{tmp / 'store.db'}"
    supernet = {"epochs": 1, "checkpoint_dir": str(tmp / "checkpoints")}
    nasprune.run(http_config(tmp, supernet=supernet, budget={"trials": 2}), storage=url,
                 observer=Silent())  # fmt: skip
    return url


def test_asks_share_one_job_and_the_file_is_written_whole(url: str, tmp_path: Path) -> None:
    with Store(url) as store:
        exports = Exports(store)
        path = tmp_path / "search1-trial0.onnx"
        first = exports.request("tiny", 0, "onnx", path)
        assert exports.request("tiny", 0, "onnx", path) is first
        assert first.result(timeout=120) == path
        assert path.stat().st_size > 0 and plan_path_for(path).exists()
        assert sorted(p.name for p in tmp_path.iterdir()) == [path.name, plan_path_for(path).name]
        assert exports.request("tiny", 0, "onnx", path).result(timeout=60) == path
        exports.close()


def test_a_failure_is_reported_then_retried_and_leaves_no_part_file(
    url: str, tmp_path: Path
) -> None:
    with Store(url) as store:
        remembering, forgetting = Exports(store), Exports(store, failure_s=0.0)
        for exports in (remembering, forgetting):
            path = tmp_path / "search9-trial0.pt"
            failed = exports.request("nope", 0, "state", path)
            with pytest.raises(Exception, match="nope"):
                failed.result(timeout=60)
            again = exports.request("nope", 0, "state", path)
            assert (again is failed) == (exports is remembering)
            with pytest.raises(Exception, match="nope"):
                again.result(timeout=60)
            assert list(tmp_path.iterdir()) == []
            exports.close()


def test_the_queue_is_bounded(url: str, tmp_path: Path) -> None:
    with Store(url) as store:
        exports = Exports(store, max_pending=1)
        first = exports.request("tiny", 1, "onnx", tmp_path / "a.onnx")
        with pytest.raises(ExportsBusy, match="1 exports are waiting"):
            exports.request("tiny", 1, "state", tmp_path / "b.pt")
        first.result(timeout=120)
        assert exports.request("tiny", 1, "state", tmp_path / "b.pt").result(timeout=60)
        exports.close()
