"""The search config: YAML or TOML on disk, validated by pydantic.

Every field has a default explained in one comment, so the smallest valid config is a name.
``nasprune schema`` prints the JSON schema of :class:`SearchConfig`. Loading a config also
checks the strategy's name and each of its params against the param's type
(:func:`check_strategy_params`), so a bad value fails before a search starts.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from nasprune.errors import ConfigError
from plumbing import first_line, json_hash

if TYPE_CHECKING:
    from storage import SearchRecord


INT_MAX = 2**31 - 1  # what the store's integer columns hold (budgets, batch sizes, threads)
Mode = Literal["elastic", "prune"]  # how a search evaluates candidates (EvaluationConfig.mode)
# A training's learning rate: constant, or decayed along a half cosine to 0 at its last step
# (the supernet's, a candidate's steps, a fine-tuning: nasprune.evaluation.finetune.lr_factor)
LrSchedule = Literal["constant", "cosine"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SpaceConfig(_Model):
    name: str = "builtin.mlp"  # a registered space: `nasprune spaces` lists them
    params: dict[str, Any] = Field(default_factory=dict)  # the space's own keyword arguments


class DataConfig(_Model):
    builtin: Literal["digits", "synthetic"] | None = "digits"  # bundled data, nothing downloads
    entry_point: str | None = None  # "module:function" returning (train, val[, test]) data
    batch_size: int = Field(64, gt=0, le=INT_MAX)  # for supernet training and evaluation
    params: dict[str, Any] = Field(default_factory=dict)  # e.g. synthetic: num_samples, noise

    @model_validator(mode="after")
    def _one_source(self) -> DataConfig:
        if self.entry_point is not None:
            if not re.fullmatch(r"[\w.]+:[\w.]+", self.entry_point):
                raise ValueError(
                    f"entry_point must look like 'module:function', got {self.entry_point!r}"
                )
            self.builtin = None
        elif self.builtin is None:
            raise ValueError("give either builtin (digits | synthetic) or entry_point")
        return self


class SupernetConfig(_Model):
    # How long the supernet trains: `steps` (optimiser steps), or `epochs` (passes over the
    # training data), cut short by `time` (seconds) and by early stopping. None of steps and
    # epochs: sized to the data and the model, 3 epochs for a supernet derived from a trained
    # model (it starts from its weights), within 100-3000 steps, and 10 for one trained from
    # scratch, within 1000-3000 steps
    steps: int | None = Field(None, ge=0)
    epochs: int | None = Field(None, ge=0)  # 0 evaluates the random init
    time: float | None = Field(None, gt=0)
    # stop when neither the smallest nor a middle subnet gained 0.1 point of validation
    # accuracy over this many evaluations (about five per training, or one an epoch if that is
    # more, at most ten), and not before 30% of the budget;
    # 0 trains the whole budget
    patience: int = Field(2, ge=0)
    # sandwich: the largest, smallest and random subnets every step (BigNAS); progressive:
    # kernel sizes, then blocks, then widths made elastic in turn (Once-for-All)
    schedule: Literal["sandwich", "progressive"] = "sandwich"
    # Adam learning rate; default 0.01 for a built-in supernet trained from scratch, 0.001 for
    # a supernet derived from a trained model (it starts from the model's weights)
    lr: float | None = Field(None, gt=0)
    # constant: that rate throughout; cosine: decayed along a half cosine to 0 at the budget's
    # last step (Once-for-All, BigNAS), so the shared weights settle before subnets are ranked
    lr_schedule: LrSchedule = "constant"
    weight_decay: float = Field(0.0, ge=0)
    random_subnets: int = Field(2, ge=0)  # random subnets per step, besides largest and smallest
    distill: bool = True  # smaller subnets learn from the largest one's soft labels
    checkpoint_dir: str = ".nasprune/checkpoints"  # where trained supernets are kept and reused

    @model_validator(mode="after")
    def _one_length(self) -> SupernetConfig:
        if self.steps is not None and self.epochs is not None:
            raise ValueError("give steps or epochs, not both")
        return self


class EvaluationConfig(_Model):
    bn_calibration_batches: int = Field(4, ge=0)  # train batches to recompute BN stats per subnet
    # elastic: candidates share one trained supernet (masks); prune: each candidate is cut
    # from the trained dense model with torch-pruning (derived spaces only), no supernet.
    # elastic ranked candidates better in benchmarks/bench_byom.py (see the README)
    mode: Mode = "elastic"
    # training steps of each candidate, extracted (elastic: with the supernet's weights), before
    # its accuracy is measured; 0 measures elastic candidates inside the supernet as they are.
    # Unset: sized to where the weights come from (nasprune.evaluation.candidates.candidate_steps)
    finetune_steps: int | None = Field(None, ge=0)
    finetune_lr: float = Field(1e-3, gt=0)  # Adam learning rate of those steps
    # constant: every step at finetune_lr; cosine: decayed from it to 0 at the last step
    finetune_lr_schedule: LrSchedule = "constant"
    distill: bool = True  # prune mode's training learns from the dense model's soft labels too


class Objective(_Model):
    metric: Literal["accuracy", "loss", "latency_ms", "params", "macs"]
    direction: Literal["maximize", "minimize"]


class Limit(_Model):
    max: float = Field(gt=0)  # the metric must be <= max


class LatencyConfig(_Model):
    # a registered backend (nasprune.latency.register_backend): torch (eager), torchscript,
    # onnxruntime, or one of the user's; checked against the registry when a search starts
    backend: str = "torch"
    device: Literal["cpu", "cuda"] = "cpu"  # torch on a GPU is timed with CUDA events
    threads: int = Field(1, gt=0, le=INT_MAX)  # torch intra-op threads while measuring
    batch_size: int = Field(1, gt=0, le=INT_MAX)
    warmup: int = Field(10, ge=0)  # untimed runs first
    # relative: each figure is timed against a fixed reference network, the two alternating in
    # bursts, and kept as the median candidate/reference ratio times the device's anchor
    # figure of the reference (see nasprune.latency.reference), so a figure taken in a slow
    # minute agrees with one taken in a fast one; false: the absolute median of single runs
    relative: bool = True
    burst_ms: float = Field(1.0, ge=0)  # relative: each burst lasts this long, or one slower run
    repeats: int = Field(30, gt=0)  # timed runs (relative: burst pairs) per round; rounds go on
    precision: float = Field(0.05, gt=0)  # until the median's 95% CI is within +-5% of it
    max_repeats: int = Field(300, gt=0)  # ... or after this many timed runs (or pairs)
    time_cap_s: float = Field(10.0, gt=0)  # ... or this many seconds; then it is flagged noisy
    # with a latency constraint and a calibration of this device (`nasprune calibrate`), skip
    # candidates predicted slower than the limit by more than screen_margin (a fraction)
    screen: bool = True
    screen_margin: float = Field(0.1, ge=0)


class StrategyConfig(_Model):
    name: str = "optuna.tpe"  # a registered strategy: `nasprune strategies` lists them
    # passed to the strategy; each is checked against its type when the config is loaded
    params: dict[str, Any] = Field(default_factory=dict)


class BudgetConfig(_Model):
    trials: int = Field(50, gt=0, le=INT_MAX)  # evaluated trials in total, across resumes
    time: float | None = Field(None, gt=0)  # seconds for one invocation; resume carries on


class ExecutionConfig(_Model):
    executor: Literal["local", "ray"] = "local"  # ray: candidates are evaluated as Ray tasks
    workers: int = Field(1, gt=0)  # local worker processes `nasprune run` starts
    ray_address: str | None = None  # a Ray cluster to join; None starts a local one
    gpus_per_trial: float = Field(0.0, ge=0)  # ray: GPUs each evaluation task asks for
    lease_s: float = Field(60.0, gt=0)  # a running trial whose lease is not renewed is retried
    max_attempts: int = Field(3, gt=0, le=INT_MAX)  # evaluations of one trial before it is failed


class SearchConfig(_Model):
    """A whole search: what to prune, on which data, how to choose, how much to spend."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")  # the search's id in the store
    seed: int = 0  # seeds supernet training, data split and strategy
    storage: str | None = None  # SQLAlchemy URL; --storage and NASPRUNE_STORAGE override it
    space: SpaceConfig = Field(default_factory=SpaceConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    supernet: SupernetConfig = Field(default_factory=SupernetConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    objectives: list[Objective] = Field(
        default_factory=lambda: [Objective(metric="accuracy", direction="maximize")], min_length=1
    )
    constraints: dict[Literal["latency_ms", "params", "macs"], Limit] = Field(default_factory=dict)
    latency: LatencyConfig = Field(default_factory=LatencyConfig)
    strategy: StrategyConfig = Field(default_factory=StrategyConfig)
    budget: BudgetConfig = Field(default_factory=BudgetConfig)
    execution: ExecutionConfig = Field(default_factory=ExecutionConfig)

    @field_validator("objectives")
    @classmethod
    def _distinct_objectives(cls, value: list[Objective]) -> list[Objective]:
        metrics = [o.metric for o in value]
        if len(set(metrics)) != len(metrics):
            raise ValueError(f"objectives repeat a metric: {metrics}")
        return value

    def config_hash(self) -> str:
        """sha256 of the config as canonical JSON, without storage and execution (they say where
        and how, not what)."""
        return json_hash(self.model_dump(mode="json", exclude={"storage", "execution"}))


def _format_validation(source: str, exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "(top level)"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    given = first.get("input")
    quoted = isinstance(given, str | int | float) and first["type"] not in (
        "extra_forbidden",
        "missing",
    )
    shown = f", not {given!r}" if quoted else ""
    return f"{source}: {where}: {first['msg']}{shown}{more}"


def parse_config(data: Any, source: str = "config", *, check_strategy: bool = True) -> SearchConfig:
    """Validate a mapping into a :class:`SearchConfig`, with a one-line error. Without
    ``check_strategy`` the strategy's params are not checked (a stored config was, when it was
    stored, and checking imports the strategy's library)."""
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}: expected a mapping at the top level, got {type(data).__name__}"
        )
    try:
        config = SearchConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_validation(source, exc)) from None
    if check_strategy:
        check_strategy_params(config, source)
    return config


def check_strategy_params(config: SearchConfig, source: str = "config") -> None:
    """Raise :class:`ConfigError` unless the strategy is registered and each of its params fits
    the param's type (see :mod:`strategies.params`). A strategy whose library is not installed
    is not checked here: creating it says what to install."""
    from strategies import MissingDependencyError, StrategyError
    from strategies.params import check_params

    try:
        check_params(config.strategy.name, config.strategy.params)
    except MissingDependencyError:
        return
    except StrategyError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def load_config(path: str | Path) -> SearchConfig:
    """Read a YAML (.yaml/.yml) or TOML (.toml) config file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    text = path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as exc:
        detail = first_line(exc)
        raise ConfigError(
            f"{path}: not valid {'TOML' if path.suffix == '.toml' else 'YAML'}: {detail}"
        ) from None
    return parse_config(data, source=str(path))


def json_schema() -> dict[str, Any]:
    return SearchConfig.model_json_schema()


def stored_config(record: SearchRecord) -> SearchConfig:
    """The config a search was created with (its strategy params were checked then)."""
    return parse_config(
        record.config, source=f"stored config of search {record.name!r}", check_strategy=False
    )
