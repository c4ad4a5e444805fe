"""builtin.cnn1d end to end: a search on series from the user's data, calibrated latency
units of 1-d blocks, and exports that compute what the search scored."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import nasprune
from nasprune.config import parse_config
from nasprune.evaluation.metrics import accuracy_and_loss
from nasprune.evaluation.stored import open_stored
from nasprune.latency.calibrate import calibrate
from nasprune.quantization import OrtModule
from storage import get_store

SERIES = '''
import torch
from torch.utils.data import TensorDataset

def loaders(n=240, length=32):
    """Three classes of noisy sines, one frequency each."""
    g = torch.Generator().manual_seed(0)
    y = torch.randint(3, (n,), generator=g)
    t = torch.arange(length).float()
    phase = 6.28 * torch.rand(n, 1, generator=g)
    noise = 0.3 * torch.randn(n, length, generator=g)
    x = torch.sin((1 + y[:, None].float()) * 0.3 * t + phase) + noise
    x = x[:, None, :]
    return TensorDataset(x[:160], y[:160]), TensorDataset(x[160:], y[160:])
'''


def test_a_search_on_series_calibrates_and_exports_the_1d_subnet(
    workdir: Path, make_config, monkeypatch: pytest.MonkeyPatch
) -> None:
    (workdir / "series.py").write_text(SERIES)
    monkeypatch.syspath_prepend(str(workdir))
    config = make_config(workdir, name="series", budget={"trials": 4})
    config["space"] = {"name": "builtin.cnn1d", "params": {"length": 32, "num_classes": 3}}
    config["data"] = {"entry_point": "series:loaders", "batch_size": 32}
    config["supernet"] = {"steps": 60, "checkpoint_dir": str(workdir / "checkpoints")}
    result = nasprune.run(config)
    assert result.completed == 4 and result.best is not None
    assert result.best.accuracy > 0.5  # three sines of distinct frequency

    calibrated = calibrate(parse_config(config), samples=4, networks=4)
    assert calibrated.units > 0 and calibrated.networks == 4

    store = get_store(config["storage"])
    stored = open_stored(store, store.get_search("series"))
    trial = result.best
    done = nasprune.export("series", workdir / "s.onnx", trial=trial.number, format="onnx",
                           storage=config["storage"])  # fmt: skip
    assert done.accuracy == pytest.approx(trial.accuracy, abs=1e-6)
    written = OrtModule((workdir / "s.onnx").read_bytes())
    assert accuracy_and_loss(written, stored.loaders.val)[0] == pytest.approx(done.accuracy)
    nasprune.export("series", workdir / "s.pt", trial=trial.number, storage=config["storage"])
    alone = nasprune.load_subnet(workdir / "s.pt")
    assert any(isinstance(m, torch.nn.Conv1d) for m in alone.modules())
    x = next(iter(stored.loaders.val))[0]
    torch.testing.assert_close(alone(x), stored.candidate(trial.arch)[1](x), atol=1e-5, rtol=0)
