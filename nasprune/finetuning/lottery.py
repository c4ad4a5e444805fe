"""`nasprune lottery`: iterative magnitude pruning with weight rewinding (lottery tickets).

Frankle & Carbin (ICLR 2019) prune a trained network by magnitude, reset the surviving weights
to their early values and train again, round after round; Frankle et al. (ICML 2020, "Linear
Mode Connectivity and the Lottery Ticket Hypothesis") rewind to an early step of training
rather than to initialisation. Here the network is a trial's subnet and its starting weights
w0 are the search's (inherited) ones:

* round 0 trains ``steps`` Adam steps (the fine-tuning loop, its learning rate and the search's
  seed) and keeps the weights at step ``rewind_step`` (w_K; K = 0 keeps w0 itself);
* round r >= 1 prunes ``rate`` of the remaining conv and linear weights, ranked together by
  magnitude (biases and norms are never pruned), resets every weight to w_K with the mask
  applied, and trains ``steps`` steps with the pruned weights held at exactly zero.

Every round is a fine-tuning run of the trial in the store (no table of its own), keyed by the
lottery's settings and its round, with its weights (zeros where pruned) and their checksum. Its
mask, w_K and its step checkpoints lie beside the weights in ``checkpoint_dir/finetunes``, so a
killed lottery resumes at the round and the checkpoint it was in, and the same settings again
reuse the finished rounds (a longer lottery reuses the rounds of a shorter one). The best round
(highest validation accuracy; the sparser one on a tie) is recorded last, so it is the trial's
newest complete run: the weights ``nasprune export`` and ``nasprune best`` then use.

``reinit`` runs the paper's control: the ticket's masks (the same lottery without ``reinit``
is run, or reused, first), with the surviving conv and linear layers drawn afresh from their
initialisation instead of rewound to w_K.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nasprune.config import stored_config
from nasprune.errors import SearchError, user_errors
from nasprune.evaluation.finetune import finetune
from nasprune.evaluation.metrics import accuracy_and_loss
from nasprune.evaluation.stored import StoredSearch, open_stored
from nasprune.evaluation.supernet import file_sha256
from nasprune.finetuning.runs import CHECKPOINT_EVERY
from nasprune.store_access import StorageArg, find_trial, open_store
from plumbing import json_hash
from search_spaces import SearchSpace
from search_spaces.derived.plan import named_prunable_weights, prunable_weights
from storage import FinetuneRecord, Store, TrialRecord

Mask = dict[str, torch.Tensor]  # state-dict name of a conv/linear weight -> its kept entries
OnStep = Callable[[int, int, float | None], None]  # round, step in the round, loss (None: reused)


@dataclass(frozen=True)
class Round:
    number: int
    sparsity: float  # share of the conv/linear weights that are zero
    run: FinetuneRecord  # complete: its accuracy, test accuracy and weights file
    reused: bool  # finished by an earlier call with the same settings
    resumed_from: int  # the step an interrupted round carried on from (0 if fresh)


@dataclass(frozen=True)
class LotteryFiles:
    """Where a lottery keeps its files: a stem in the search's ``finetunes`` folder."""

    folder: Path
    stem: str
    mask_stem: str  # the control reads the masks of its ticket

    def weights(self, round: int) -> Path:
        return self.folder / f"{self.stem}-round{round}.pt"

    def checkpoint(self, round: int) -> Path:
        return self.folder / f"{self.stem}-round{round}.resume.pt"

    def mask(self, round: int) -> Path:
        return self.folder / f"{self.mask_stem}-round{round}.mask.pt"

    @property
    def rewind(self) -> Path:
        return self.folder / f"{self.mask_stem}.rewind.pt"  # w_K, the state every round resets to


@dataclass(frozen=True)
class LotteryResult:
    trial: TrialRecord
    rounds: tuple[Round, ...]
    files: LotteryFiles
    rewind_step: int
    reinit: bool

    @property
    def best(self) -> Round:
        """The most accurate round on validation; the sparser one on a tie."""
        return max(self.rounds, key=lambda r: (r.run.accuracy or 0.0, r.number))


def lottery_trial(
    name: str,
    trial: int,
    *,
    rounds: int,
    rate: float,
    steps: int = 500,
    rewind_step: int = 0,
    lr: float = 1e-3,
    reinit: bool = False,
    storage: StorageArg = None,
    progress: OnStep | None = None,
    space: SearchSpace | None = None,
) -> LotteryResult:
    """Run ``rounds`` rounds of iterative magnitude pruning with rewinding on trial ``trial``
    of search ``name``, pruning ``rate`` of the remaining weights each round; see the module.
    With ``reinit`` (the random-reinitialisation control), ``progress`` first reports the
    ticket's rounds, then the control's."""
    _check(rounds, rate, steps, rewind_step, lr)
    store = open_store(storage)
    with user_errors():
        record = store.get_search(name)
        chosen = find_trial(store, record, trial)  # a trial that is not complete has no weights
        settings = {
            "lottery": "imp",
            "steps": steps,
            "lr": lr,
            "rate": rate,
            "rewind_step": rewind_step,
            "seed": stored_config(record).seed,  # as the search and `nasprune finetune`
        }
        ctx = open_stored(store, record, space)
        ticket = _Lottery(store, ctx, chosen, settings, progress).run(rounds)
        result = ticket
        if reinit:
            control = _Lottery(store, ctx, chosen, settings | {"reinit": True}, progress)
            result = control.control(ticket)
        _choose(store, ticket.best.run)  # the control's rounds are not the trial's weights
    return result


def _check(rounds: int, rate: float, steps: int, rewind_step: int, lr: float) -> None:
    if not 0 < rate < 1:
        raise SearchError(f"--rate (the share pruned each round) must be in (0, 1), got {rate}")
    if rounds < 1:
        raise SearchError(f"--rounds must be at least 1, got {rounds}")
    if steps < 1:
        raise SearchError(f"--steps must be at least 1, got {steps}")
    if not 0 <= rewind_step <= steps:
        raise SearchError(f"--rewind-step must be in 0..--steps ({steps}), got {rewind_step}")
    if not lr > 0:
        raise SearchError(f"--lr must be positive, got {lr}")


def _choose(store: Store, run: FinetuneRecord) -> None:
    """Record ``run`` again, unchanged, so that it is the trial's newest complete run."""
    store.put_finetune(
        run.trial_id, run.key, run.settings, steps_done=run.steps_done, complete=True,
        path=run.path, sha256=run.sha256, accuracy=run.accuracy, test_accuracy=run.test_accuracy,
    )  # fmt: skip


class _Lottery:
    """One lottery of one trial: its settings, its files, its rounds in the store."""

    def __init__(
        self,
        store: Store,
        ctx: StoredSearch,
        trial: TrialRecord,
        settings: dict[str, Any],
        progress: OnStep | None,
    ) -> None:
        self.store, self.ctx, self.trial = store, ctx, trial
        self.settings, self.progress = settings, progress
        self.steps, self.seed = int(settings["steps"]), int(settings["seed"])
        folder = Path(ctx.config.supernet.checkpoint_dir) / "finetunes"
        stem = f"{ctx.record.name}-trial{trial.number}-lottery-"
        ticket = {k: v for k, v in settings.items() if k != "reinit"}
        self.files = LotteryFiles(
            folder, stem + json_hash(settings, 16), stem + json_hash(ticket, 16)
        )
        self.w0 = ctx.subnet(trial)

    def key(self, round: int) -> str:
        return json_hash(self.settings | {"round": round}, 16)

    def run(self, rounds: int) -> LotteryResult:
        """The ticket: round 0, then ``rounds`` rounds of pruning and rewinding."""
        self.files.folder.mkdir(parents=True, exist_ok=True)
        mask = self._first_mask()
        done = [self._round(0, mask, copy.deepcopy(self.w0), int(self.settings["rewind_step"]))]
        for number in range(1, rounds + 1):
            mask = self._next_mask(number, done[-1].run, mask)
            done.append(self._round(number, mask, self._rewound(mask)))
        return self._result(done)

    def control(self, ticket: LotteryResult) -> LotteryResult:
        """The ticket's masks, each trained from a fresh random draw of the survivors."""
        done = [ticket.rounds[0]]
        for number in range(1, len(ticket.rounds)):
            mask = _load_mask(self.files.mask(number))
            done.append(self._round(number, mask, self._rewound(mask, reinit=number)))
        return self._result(done)

    def _result(self, done: list[Round]) -> LotteryResult:
        rewind_step, reinit = int(self.settings["rewind_step"]), "reinit" in self.settings
        return LotteryResult(self.trial, tuple(done), self.files, rewind_step, reinit)

    def _first_mask(self) -> Mask:
        """Every conv and linear weight that is not zero already (a trial's weight sparsity)."""
        path = self.files.mask(0)
        if path.is_file():
            return _load_mask(path)
        mask = {
            name: weight.detach() != 0 for name, weight in named_prunable_weights(self.w0).items()
        }
        torch.save(mask, path)
        return mask

    def _next_mask(self, number: int, previous: FinetuneRecord, mask: Mask) -> Mask:
        """Round ``number``'s mask from its file, or ``mask`` pruned by the magnitudes of the
        previous round's trained weights, and written there."""
        path = self.files.mask(number)
        if path.is_file():
            return _load_mask(path)
        trained = self._loaded(Path(str(previous.path)))
        pruned = prune(named_prunable_weights(trained), mask, float(self.settings["rate"]))
        torch.save(pruned, path)
        return pruned

    def _rewound(self, mask: Mask, reinit: int | None = None) -> nn.Module:
        """w_K with ``mask`` applied; with ``reinit``, the conv and linear layers drawn afresh
        (seeded by the search's seed and the round) before the mask."""
        module = self._loaded(self.files.rewind)
        if reinit is not None:
            reinitialise(module, self.seed + reinit)
        apply_mask(module, mask)
        return module

    def _reusable(self, run: FinetuneRecord | None, round: int) -> bool:
        if run is None or not run.complete or run.path is None or not Path(run.path).is_file():
            return False
        files = [self.files.mask(round)] + ([self.files.rewind] if round == 0 else [])
        return all(p.is_file() for p in files) and file_sha256(Path(run.path)) == run.sha256

    def _round(self, number: int, mask: Mask, subnet: nn.Module, keep: int | None = None) -> Round:
        """Train round ``number`` from ``subnet`` (its checkpoint, if it has one), or reuse it;
        ``keep``: the step whose weights are w_K (round 0)."""
        sparsity = mask_sparsity(mask)
        existing = self.store.get_finetune(self.trial.trial_id, self.key(number))
        if self._reusable(existing, number):
            assert existing is not None
            if self.progress is not None:
                self.progress(number, self.steps, None)
            return Round(number, sparsity, existing, True, 0)
        settings = self.settings | {"round": number, "sparsity": round(sparsity, 6)}
        record = {"trial_id": self.trial.trial_id, "key": self.key(number), "settings": settings}
        start, optimiser_state = self._resume(existing, number, subnet, keep)
        if keep == 0 and start == 0:
            torch.save(subnet.state_dict(), self.files.rewind)
        self._running(record, start)
        done = start
        for end in _boundaries(self.steps, keep):
            if end <= done:
                continue
            optimiser = finetune(
                subnet, self.ctx.loaders.train, end, float(self.settings["lr"]), seed=self.seed,
                start=done, optimiser_state=optimiser_state, on_step=self._on_step(number),
            )  # fmt: skip
            apply_mask(subnet, mask)  # the loop holds zeros already; the mask is the authority
            done, optimiser_state = end, optimiser.state_dict()
            if end == keep:
                torch.save(subnet.state_dict(), self.files.rewind)
            checkpoint = {"model": subnet.state_dict(), "optimiser": optimiser_state, "step": done}
            torch.save(checkpoint, self.files.checkpoint(number))
            self._running(record, done)
        run = self._finish(record, subnet, number)
        return Round(number, sparsity, run, False, start)

    def _loaded(self, path: Path) -> nn.Module:
        """The subnet with the state dict in ``path``."""
        module = copy.deepcopy(self.w0)
        module.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return module

    def _running(self, record: dict[str, Any], steps_done: int) -> None:
        self.store.put_finetune(
            **record, steps_done=steps_done, complete=False, path=None, sha256=None
        )

    def _resume(
        self, existing: FinetuneRecord | None, number: int, subnet: nn.Module, keep: int | None
    ) -> tuple[int, dict[str, Any] | None]:
        """(step, optimiser state) of the round's checkpoint, loaded into ``subnet``; (0, None)
        without one, or when round 0's w_K should be on disk by then and is not."""
        path = self.files.checkpoint(number)
        if existing is None or existing.steps_done == 0 or not path.is_file():
            return 0, None
        saved = torch.load(path, map_location="cpu", weights_only=True)
        if keep is not None and int(saved["step"]) >= keep and not self.files.rewind.is_file():
            return 0, None
        subnet.load_state_dict(saved["model"])
        return int(saved["step"]), saved["optimiser"]

    def _on_step(self, number: int) -> Callable[[int, float], None] | None:
        progress = self.progress
        if progress is None:
            return None
        return lambda step, loss: progress(number, step, loss)

    def _finish(self, record: dict[str, Any], subnet: nn.Module, number: int) -> FinetuneRecord:
        loaders = self.ctx.loaders
        accuracy, _ = accuracy_and_loss(subnet, loaders.val)
        test = None if loaders.test is None else accuracy_and_loss(subnet, loaders.test)[0]
        weights = self.files.weights(number)
        torch.save(subnet.state_dict(), weights)
        self.files.checkpoint(number).unlink(missing_ok=True)
        return self.store.put_finetune(
            **record, steps_done=self.steps, complete=True, path=str(weights.resolve()),
            sha256=file_sha256(weights), accuracy=accuracy, test_accuracy=test,
        )  # fmt: skip


def _boundaries(steps: int, keep: int | None) -> list[int]:
    """The steps a round checkpoints at: every ``CHECKPOINT_EVERY``, w_K's step, the last."""
    ends = set(range(CHECKPOINT_EVERY, steps, CHECKPOINT_EVERY)) | {steps}
    if keep is not None and keep > 0:
        ends.add(keep)
    return sorted(ends)


def _load_mask(path: Path) -> Mask:
    mask: Mask = torch.load(path, map_location="cpu", weights_only=True)
    return mask


def prune(weights: dict[str, torch.Tensor], mask: Mask, rate: float) -> Mask:
    """``mask`` less ``rate`` of its kept entries: those of the smallest magnitude in
    ``weights``, all layers ranked together (global magnitude pruning)."""
    names = list(mask)
    scores = torch.cat(
        [torch.where(mask[n], weights[n].detach().abs(), -1.0).flatten() for n in names]
    )  # a pruned entry ranks below every kept one
    remaining = int(sum(int(mask[n].sum()) for n in names))
    flat = torch.zeros(scores.numel(), dtype=torch.bool)
    flat[torch.topk(scores, remaining - round(rate * remaining)).indices] = True
    sizes = [mask[n].numel() for n in names]
    return {n: part.view_as(mask[n]) for n, part in zip(names, flat.split(sizes), strict=True)}


def reinitialise(module: nn.Module, seed: int) -> None:
    """Draw ``module``'s conv and linear layers afresh from their own initialisation."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for layer, name in prunable_weights(module):
            reset = getattr(layer, "reset_parameters", None)
            if callable(reset):
                reset()
            else:  # transformers' Conv1D: its normal(0, 0.02) initialisation
                nn.init.normal_(getattr(layer, name), std=0.02)


def apply_mask(module: nn.Module, mask: Mask) -> None:
    """Zero the pruned entries of ``module``'s conv and linear weights."""
    with torch.no_grad():
        for name, weight in named_prunable_weights(module).items():
            weight.mul_(mask[name])


def mask_sparsity(mask: Mask) -> float:
    total = sum(m.numel() for m in mask.values())
    return 1.0 - sum(int(m.sum()) for m in mask.values()) / max(total, 1)
