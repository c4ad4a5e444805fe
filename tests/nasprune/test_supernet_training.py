"""Supernet training on a budget: sized to the data and the model, cut by a time limit and by
early stopping, resumed after SIGKILL to the very weights of an uninterrupted training, and the
progressive schedule making the network elastic one kind of dimension at a time."""

from __future__ import annotations

import copy
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from kill_support import kill_run_when

import nasprune
from nasprune.config import parse_config
from nasprune.errors import ConfigError
from nasprune.evaluation.data import make_loaders
from nasprune.evaluation.metrics import calibration_batches
from nasprune.evaluation.schedules import Sampler
from nasprune.evaluation.supernet import checkpoint_key, checkpoint_paths, load_or_train
from nasprune.evaluation.supernet_training import budget_of, lr_factor, train_supernet
from search_spaces import create_space
from search_spaces.dimensions import DimensionKind
from storage import Store, get_store

CNN = {"name": "builtin.cnn", "params": {}}


def _config(tmp_path: Path, make_config, **supernet) -> dict:  # noqa: ANN001
    config = make_config(tmp_path)
    config["supernet"] = {"checkpoint_dir": str(tmp_path / "checkpoints"), **supernet}
    return config


def test_the_default_budget_is_sized_to_the_data_and_to_where_the_weights_start(
    tmp_path: Path, make_config
) -> None:
    config = parse_config(_config(tmp_path, make_config))
    scratch = create_space("builtin.mlp")
    assert budget_of(config, scratch, 170).steps == 1700  # 10 epochs from random weights
    assert budget_of(config, scratch, 17).steps == 1000  # at least 1000 steps from scratch
    assert budget_of(config, scratch, 1000).steps == 3000  # at most 3000
    derived = type("Derived", (), {"pretrained": True})()
    assert budget_of(config, derived, 63).steps == 189  # 3 epochs from trained weights
    assert budget_of(config, derived, 2).steps == 100  # at least 100 from trained weights
    sized = budget_of(config, scratch, 170)
    assert sized.every == 170 and "10 epochs" in sized.why  # evaluated once an epoch here
    assert "within 1000-3000" in budget_of(config, scratch, 17).why
    given = parse_config(_config(tmp_path, make_config, steps=50, time=9.5))
    assert (budget_of(given, scratch, 17).steps, budget_of(given, scratch, 17).seconds) == (50, 9.5)
    assert budget_of(given, scratch, 17).every == 10  # about five evaluations
    # Early stopping waits for 30% of the budget, and for a sized budget's floor.
    assert budget_of(given, scratch, 17).no_stop_before == 15
    assert budget_of(config, scratch, 17).no_stop_before == 1000
    assert budget_of(config, scratch, 1000).no_stop_before == 1000
    assert budget_of(config, derived, 1000).no_stop_before == 900  # 30% of 3000
    assert budget_of(config, derived, 63).no_stop_before == 100
    with pytest.raises(ConfigError, match="steps or epochs, not both"):
        parse_config(_config(tmp_path, make_config, steps=5, epochs=1))


def _train(tmp_path: Path, make_config, **supernet):  # noqa: ANN001, ANN202
    config = parse_config(_config(tmp_path, make_config, **supernet))
    space = create_space(config.space.name, **config.space.params)
    loaders = make_loaders(config.data, space.input_shape, space.num_classes, config.seed)
    batches = calibration_batches(loaders.train, 2, config.data.batch_size)
    saved: list[dict] = []
    seen = []

    def save(state: dict) -> None:  # as written to a file then: not the live tensors
        saved.append(copy.deepcopy(state))

    model, outcome = train_supernet(space, loaders, batches, config, save, None, seen.append)
    return model, outcome, saved, seen


def test_a_time_limit_and_a_plateau_end_the_training_early(tmp_path: Path, make_config) -> None:
    _, timed, _, _ = _train(tmp_path, make_config, steps=100_000, time=1.0, patience=0)
    assert timed.stopped_because == "time" and 0 < timed.progress.step < 100_000
    assert timed.progress.seconds >= 1.0  # the limit, then the step in hand finished
    # A learning rate too small to change anything: the subnets stop improving at once.
    _, flat, saved, seen = _train(tmp_path, make_config, steps=400, lr=1e-12, patience=2)
    assert flat.stopped_because == "plateau"
    # Evaluated every 40 steps (at most ten times), never stopped before 30% of the budget.
    assert len(flat.history) == 3 and flat.progress.step == 120
    assert len(saved) == 3 and saved[-1]["step"] == flat.progress.step  # a state per evaluation
    assert seen[-1].accuracy.keys() == {"largest", "middle", "smallest"}
    assert [p.step for p in seen] == list(range(1, flat.progress.step + 1))  # every step shown
    # A plateau found at the budget's last evaluation: the budget ended it.
    _, ended, _, _ = _train(tmp_path, make_config, steps=40, lr=1e-12, patience=4)
    assert ended.progress.step == 40 and len(ended.history) == 5  # every 8 steps
    assert ended.stopped_because == "budget"


def test_the_cosine_schedule_decays_the_rate_to_zero_over_the_budget(
    tmp_path: Path, make_config
) -> None:
    assert [lr_factor("cosine", step, 4) for step in range(5)] == pytest.approx(
        [1.0, 0.8536, 0.5, 0.1464, 0.0], abs=1e-4
    )
    assert {lr_factor("constant", step, 4) for step in range(5)} == {1.0}
    _, _, cosine, _ = _train(tmp_path, make_config, steps=40, lr=0.01, lr_schedule="cosine")
    _, _, constant, _ = _train(tmp_path, make_config, steps=40, lr=0.01)
    # Each saved state holds the rate of the last step before it.
    rates = [s["optimiser"]["param_groups"][0]["lr"] for s in cosine]
    assert len(rates) == 5 and rates[-1] < 1e-4
    assert rates == pytest.approx([0.01 * lr_factor("cosine", s["step"] - 1, 40) for s in cosine])
    assert {s["optimiser"]["param_groups"][0]["lr"] for s in constant} == {0.01}


@pytest.mark.parametrize(
    ("steps", "at", "schedule"),
    [(60, 24, "constant"), (85, 34, "constant"), (60, 24, "cosine")],  # mid-epoch, epoch's end
)
def test_a_training_resumed_from_a_saved_state_ends_with_the_uninterrupted_weights(
    steps: int, at: int, schedule: str, tmp_path: Path, make_config
) -> None:
    recipe = {"steps": steps, "patience": 0, "lr_schedule": schedule}
    whole, outcome, saved, _ = _train(tmp_path, make_config, **recipe)
    middle = saved[1]  # the second evaluation's state (17 steps an epoch)
    config = parse_config(_config(tmp_path, make_config, **recipe))
    space = create_space(config.space.name, **config.space.params)
    loaders = make_loaders(config.data, space.input_shape, space.num_classes, config.seed)
    batches = calibration_batches(loaders.train, 2, config.data.batch_size)
    resumed, again = train_supernet(space, loaders, batches, config, lambda s: None, middle)
    assert again.progress.resumed_at == middle["step"] == at
    for name, tensor in whole.state_dict().items():
        assert torch.equal(tensor, resumed.state_dict()[name]), name
    assert again.history == outcome.history


def _kill_while_training(config_path: Path, url: str, key: str) -> None:
    """Start `nasprune run`, wait until a resumable training state is recorded, SIGKILL it."""

    def ready(store: Store) -> bool:
        return store.get_checkpoint(f"resume:{key}") is not None

    kill_run_when(config_path, url, ready, "a saved training state")


@pytest.mark.slow
def test_a_run_killed_while_training_the_supernet_resumes_it_where_it_stopped(
    workdir: Path, make_config
) -> None:
    config = _config(workdir, make_config, steps=150, patience=0)
    config["space"] = CNN
    config["budget"] = {"trials": 2}
    path = workdir / "cnn.json"
    path.write_text(json.dumps(config))
    parsed = parse_config(config)
    key = checkpoint_key(parsed)
    _kill_while_training(path, config["storage"], key)
    store = get_store(config["storage"])
    final, _ = checkpoint_paths(parsed.supernet.checkpoint_dir, create_space("builtin.cnn"), key)
    assert store.get_checkpoint(key) is None and not final.exists()  # killed before the end
    result = nasprune.resume("tiny", storage=config["storage"])
    assert result.completed == 2 and not result.reused_supernet
    events = [e.message for e in store.events(store.get_search("tiny").search_id)]
    trained = [m for m in events if m.startswith("trained by")]
    assert len(trained) == 1 and "150 of 150 steps" in trained[0]
    step = int(trained[0].split("resumed at step ")[1].split(")")[0])
    assert 0 < step < 150 and step % 17 == 0  # from a saved evaluation (one an epoch), not zero
    # The weights are those of a training nobody interrupted.
    other = dict(config, storage=f"sqlite:///{workdir / 'other.db'}")
    other["supernet"] = dict(config["supernet"], checkpoint_dir=str(workdir / "other"))
    space = create_space("builtin.cnn")
    fresh = parse_config(other)
    loaders = make_loaders(fresh.data, space.input_shape, space.num_classes, fresh.seed)
    batches = calibration_batches(loaders.train, fresh.evaluation.bn_calibration_batches, 64)
    whole, _ = load_or_train(space, loaders, batches, fresh, get_store(other["storage"]))
    resumed = torch.load(final, weights_only=True)
    for name, tensor in whole.state_dict().items():
        assert torch.equal(tensor, resumed[name]), name


def test_progressive_shrinking_makes_kernels_then_blocks_then_widths_elastic() -> None:
    space = create_space("builtin.cnn")
    largest = space.largest()
    sampler = Sampler("progressive", space, 400, random_subnets=2)
    assert sampler.phases is not None
    order = ["largest", "kernel", "depth", "width", "rest"]
    names = [p.name for p in sampler.phases]
    assert names[0] == "largest" and names == sorted(names, key=order.index) and len(names) > 2
    assert [p.start for p in sampler.phases] == sorted({p.start for p in sampler.phases})
    rng = random.Random(0)
    made_elastic: set[str] = set()
    for phase in sampler.phases:
        elastic = {d.name for d in phase.elastic}
        assert made_elastic <= elastic  # a phase keeps what the earlier ones made elastic
        steps = range(phase.start, phase.start + 20)
        archs = [arch for step in steps for arch in sampler.archs(step, rng)]
        moved = {name for arch in archs for name, value in arch.items() if value != largest[name]}
        assert moved <= elastic  # what is not elastic yet stays at its largest
        assert moved == elastic or phase.name == "largest" and not moved
        kinds = {d.kind for d in phase.elastic}
        if phase.name == "depth":
            assert DimensionKind.DEPTH in kinds and DimensionKind.WIDTH not in kinds
        made_elastic = elastic
    assert made_elastic == {d.name for d in space.dimensions() if len(d.choices) > 1}


def test_a_progressive_search_trains_and_ranks(workdir: Path, make_config) -> None:
    config = _config(workdir, make_config, steps=40, schedule="progressive")
    config["budget"] = {"trials": 3}
    result = nasprune.run(config)
    assert result.completed == 3 and result.best is not None and result.best.accuracy > 0.1


def _nasprune(*args: str, url: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "nasprune", *args, "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NASPRUNE_STORAGE": url},
    )


@pytest.mark.slow
def test_a_worker_waiting_for_the_supernet_keeps_waiting_across_a_killed_run_and_its_resume(
    workdir: Path, make_config
) -> None:
    """A worker joins while `run` trains the supernet and waits on the lock; `run` is killed;
    the user resumes. The worker neither gives up nor trains from zero: one of the two resumes
    the training from the saved state, the other waits on and loads the checkpoint."""
    config = _config(workdir, make_config, steps=200, patience=0)
    config["space"] = CNN
    config["budget"] = {"trials": 4}
    config["execution"] = {"lease_s": 3}
    path = workdir / "cnn.json"
    path.write_text(json.dumps(config))
    url, key = config["storage"], checkpoint_key(parse_config(config))
    worker: list[subprocess.Popen[str]] = []

    def worker_waits_and_training_saved(store: Store) -> bool:
        searches = store.list_searches()
        if not searches:
            return False
        lock = store.get_lock(searches[0].search_id, "supernet")
        if not worker and lock is not None:  # the run trains: a worker joins and must wait
            worker.append(_nasprune("worker", "tiny", url=url))
            time.sleep(4.0)  # long enough for the worker to start and block on the lock
        return bool(worker) and store.get_checkpoint(f"resume:{key}") is not None

    kill_run_when(path, url, worker_waits_and_training_saved, "a waiting worker and a saved state")
    try:
        store = get_store(url)
        assert worker[0].poll() is None  # still waiting on the dead run's lock
        assert store.get_checkpoint(key) is None  # the supernet is not trained yet
        resumed = _nasprune("resume", "tiny", url=url)
        assert resumed.wait(timeout=300) == 0, resumed.stderr.read()  # type: ignore[union-attr]
        assert worker[0].wait(timeout=300) == 0, worker[0].stderr.read()  # type: ignore[union-attr]
    finally:
        for process in worker:
            process.kill()
    search = store.get_search("tiny")
    trained = [e.message for e in store.events(search.search_id) if e.kind == "supernet"]
    assert len(trained) == 1, trained  # trained once, by whichever got the lock first
    step = int(trained[0].split("resumed at step ")[1].split(")")[0])
    assert 0 < step < 200  # from the killed run's saved state, not from zero
    complete = [t for t in store.trials(search.search_id) if t.state.value == "complete"]
    assert len(complete) == 4
