"""Crash safety: a search killed with SIGKILL mid-trial resumes to exactly its budget, retries
the interrupted trial first (same number, second attempt), and asks the same architectures as
an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_support import cli
from kill_support import kill_run_when

import nasprune
from nasprune.errors import SearchError
from storage import Store, TrialState, get_store


def _kill_mid_trial(config_path: Path, url: str, name: str, after: int) -> None:
    """Start `nasprune run`, wait until `after` trials are complete and the next one is
    running, then SIGKILL the process."""

    def ready(store: Store) -> bool:
        try:
            search = store.get_search(name)
        except Exception:
            return False
        done = store.count_trials(search.search_id, [TrialState.COMPLETE])
        return done >= after and store.count_trials(search.search_id, [TrialState.RUNNING]) == 1

    kill_run_when(config_path, url, ready, "the kill point")


@pytest.mark.slow  # tens of seconds: the slow target (CI runs both)
def test_sigkilled_search_resumes_to_exactly_its_budget_like_an_uninterrupted_one(
    workdir: Path, make_config, write_config
) -> None:
    url = f"sqlite:///{workdir / 'store.db'}"
    budget = 8
    # Slow latency measurement makes each trial long, so the kill lands inside one.
    latency = {"threads": 1, "batch_size": 1, "warmup": 5, "repeats": 3000}
    killed = make_config(workdir, name="killed", budget={"trials": budget}, latency=latency)
    config_path = write_config(workdir / "killed.yaml", killed)
    _kill_mid_trial(config_path, url, "killed", after=3)

    store = get_store(url)
    search = store.get_search("killed")
    left_running = store.trials(search.search_id, [TrialState.RUNNING])
    assert len(left_running) == 1, "the kill should land inside a trial"
    interrupted = left_running[0]

    result = nasprune.resume("killed", storage=url)
    assert result.completed == budget

    trials = store.trials(search.search_id)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == len(trials) == budget, "every trial completes; none is lost"
    assert len({t.arch_hash for t in complete}) == budget, "a trial was counted twice"
    retried = trials[interrupted.number]
    assert retried.arch == interrupted.arch and retried.attempts == 2
    assert all(t.attempts == 1 for t in trials if t.number != interrupted.number)

    # An uninterrupted twin (it reuses the supernet checkpoint and the stored latencies).
    straight = make_config(workdir, name="straight", budget={"trials": budget}, latency=latency)
    nasprune.run(straight, storage=url)
    reference = store.trials(store.get_search("straight").search_id)
    assert [t.arch_hash for t in complete] == [t.arch_hash for t in reference]
    assert [t.accuracy for t in complete] == [t.accuracy for t in reference]


def test_resume_of_a_finished_search_adds_no_trial(workdir: Path, make_config) -> None:
    config = make_config(workdir, budget={"trials": 3})
    nasprune.run(config)
    again = nasprune.resume("tiny", storage=config["storage"])
    assert again.new_trials == 0 and again.completed == 3


def test_time_budget_pauses_the_search_and_resume_finishes_it(workdir: Path, make_config) -> None:
    config = make_config(workdir, budget={"trials": 6, "time": 0.001})
    first = nasprune.run(config)
    assert first.stopped_because == "time" and first.status == "paused"
    assert first.completed < 6
    store = get_store(config["storage"])
    assert store.get_search("tiny").status == "paused"
    # The stored config keeps its time limit, so each resume adds at least one trial: six
    # resumes at most (a regression fails here rather than looping forever).
    for _ in range(6):
        result = nasprune.resume("tiny", storage=config["storage"])
        assert result.new_trials >= 1 or result.completed == 6
        if result.status == "completed":
            break
    else:
        pytest.fail("six resumes did not finish a search of six trials")
    assert store.count_trials(store.get_search("tiny").search_id, [TrialState.COMPLETE]) == 6


def test_ctrl_c_gives_the_trial_back_pauses_the_search_and_exits_130(
    workdir: Path, make_config, write_config
) -> None:
    url = f"sqlite:///{workdir / 'store.db'}"
    latency = {"threads": 1, "batch_size": 1, "warmup": 5, "repeats": 3000}
    # A budget it cannot finish, and a space it cannot exhaust (4,368 networks), before the
    # signal lands, however loaded the machine.
    space = {"name": "builtin.mlp", "params": {"max_depth": 3, "widths": list(range(8, 136, 8))}}
    config = make_config(
        workdir, name="ctrl-c", budget={"trials": 2000}, latency=latency, space=space
    )
    path = write_config(workdir / "ctrl-c.yaml", config)
    proc = subprocess.Popen(
        [sys.executable, "-m", "nasprune", "run", str(path), "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NASPRUNE_STORAGE": url},
        # Ctrl-C as a terminal sends it: a test run started in the background (`cmd &` in a
        # script) ignores SIGINT, and a child would inherit that and never be interrupted
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 240
    store = None
    while time.monotonic() < deadline:
        if store is None and (workdir / "store.db").exists():
            store = get_store(url)  # one store for the whole wait, not one per look
        if store is not None and [s.name for s in store.list_searches()]:
            if store.count_trials(store.get_search("ctrl-c").search_id, [TrialState.RUNNING]):
                break
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "nasprune resume ctrl-c" in stderr and "Traceback" not in stderr
    store = get_store(url)
    search = store.get_search("ctrl-c")
    assert search.status == "paused"
    released = store.trials(search.search_id, [TrialState.RUNNING])
    assert len(released) == 1, "the interrupted trial goes back to the queue"
    # One more complete trial in all: the resumed run retries the one given back, and stops.
    done = store.count_trials(search.search_id, [TrialState.COMPLETE])
    assert nasprune.resume("ctrl-c", storage=url, trials=done + 1).completed == done + 1
    retried = store.get_trial(search.search_id, released[0].number)
    assert retried is not None and retried.state == TrialState.COMPLETE
    assert retried.attempts == 2


def test_resume_with_trials_raises_the_total_budget_and_run_still_recognises_the_search(
    workdir: Path, make_config, write_config, capsys, monkeypatch
) -> None:
    config = make_config(workdir, budget={"trials": 4})
    path = write_config(workdir / "tiny.yaml", config)
    url = config["storage"]
    assert nasprune.run(config).completed == 4

    code, out, err = cli(
        capsys, monkeypatch, "resume", "tiny", "--trials", "7", "--quiet", "--storage", url
    )
    assert code == 0, err
    assert "7/7 trials complete (3 new, budget reached)" in out
    store = get_store(url)
    search = store.get_search("tiny")
    assert store.count_trials(search.search_id, [TrialState.COMPLETE]) == 7
    assert search.budget_trials == 7 and search.config == nasprune.load_config(path).model_dump(
        mode="json"
    )
    code, out, _ = cli(capsys, monkeypatch, "status", "tiny", "--json", "--storage", url)
    assert code == 0 and json.loads(out)[0]["budget"] == 7

    # The stored config is unchanged, so the original config still finds its search, whose
    # budget is now 7: nothing is left to do.
    again = nasprune.run(config, resume_if_exists=True)
    assert (again.completed, again.budget, again.new_trials) == (7, 7, 0)


def test_resume_with_fewer_trials_than_complete_fails_cleanly_and_changes_nothing(
    workdir: Path, make_config, capsys, monkeypatch
) -> None:
    config = make_config(workdir, budget={"trials": 3})
    nasprune.run(config)
    store = get_store(config["storage"])
    before = store.get_search("tiny")

    code, out, err = cli(
        capsys, monkeypatch, "resume", "tiny", "--trials", "2", "--storage", config["storage"]
    )
    assert code == 2 and out == ""
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "already has 3 complete trials" in err and "2" in err
    with pytest.raises(SearchError, match="already has 3 complete trials"):
        nasprune.resume("tiny", trials=1, storage=config["storage"])
    after = store.get_search("tiny")
    assert after == before and len(store.trials(after.search_id)) == 3


def test_resume_with_trials_below_the_budget_shortens_the_search(
    workdir: Path, make_config
) -> None:
    config = make_config(workdir, budget={"trials": 10, "time": 0.001})
    first = nasprune.run(config)  # the time limit pauses it after each trial
    assert first.status == "paused" and first.completed == 1
    result = nasprune.resume("tiny", trials=2, storage=config["storage"])
    assert (result.completed, result.budget, result.status) == (2, 2, "completed")
    assert result.stopped_because == "budget"
