"""The dense models the benchmarks search, and the script that trains them.

    .venv/bin/python benchmarks/dense_models.py rescnn mnist1d   # trains, caches, prints

* ``rescnn``: a residual 1-D CNN of about 151k parameters, written as users write one: its two
  residual branches are plain ``nn.Sequential`` modules whose adds sit in the parent's forward
  (``h = (h + self.b1(h)).relu()``), the form the trust issue found unremovable.
* ``paper_cnn``: the MNIST-1D paper's CNN (three 1-D convolutions of 25 channels, about 5k
  parameters; the paper reports 94%).
* ``mobilenet``: the MobileNetV2-style network of the test zoo (``tests/support/zoo.py``:
  inverted residuals, depthwise convolutions, about 40k parameters), for 1-channel images.
* ``digits_resnet``: the ResNet of ``examples/byom`` (the user's model of that example).

Trained weights are cached under ``.nasprune/bench/`` (ignored by git), keyed by model, task
and seed, so a benchmark trains each dense model once per machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import tasks  # noqa: E402

CACHE = ROOT / ".nasprune" / "bench"
PAPER = {("paper_cnn", "mnist1d"): 0.94, ("mlp", "mnist1d"): 0.68}  # MNIST-1D paper, test


def _branch(channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv1d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm1d(channels),
        nn.ReLU(), nn.Conv1d(channels, channels, 3, padding=1, bias=False),
        nn.BatchNorm1d(channels),
    )  # fmt: skip


class ResCNN1d(nn.Module):
    """stem -> (h + b1(h)).relu() -> down -> h + b2(h) -> pool -> fc."""

    def __init__(self, classes: int = 10, width: int = 64) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv1d(1, width, 5, padding=2, bias=False),
                                  nn.BatchNorm1d(width), nn.ReLU())  # fmt: skip
        self.b1 = _branch(width)
        self.down = nn.Sequential(nn.Conv1d(width, 2 * width, 3, stride=2, padding=1, bias=False),
                                  nn.BatchNorm1d(2 * width), nn.ReLU())  # fmt: skip
        self.b2 = _branch(2 * width)
        self.fc = nn.Linear(2 * width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x)
        h = (h + self.b1(h)).relu()
        h = self.down(h)
        h = (h + self.b2(h)).relu()
        return self.fc(h.mean(dim=2))


class PaperCNN(nn.Module):
    """The MNIST-1D paper's CNN: three convolutions of 25 channels, then a linear layer."""

    def __init__(self, classes: int = 10, length: int = 40) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(1, 25, 5, stride=2, padding=1)
        self.conv2 = nn.Conv1d(25, 25, 3, stride=2, padding=1)
        self.conv3 = nn.Conv1d(25, 25, 3, stride=2, padding=1)
        self.fc = nn.Linear(25 * ((length + 7) // 8), classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv3(self.conv2(self.conv1(x).relu()).relu()).relu()
        return self.fc(h.flatten(1))


def mobilenet(classes: int = 10) -> nn.Module:
    """The zoo's MobileNetV2-style network for 1-channel images (seeded)."""
    sys.path.insert(0, str(ROOT / "tests" / "support"))
    import zoo  # the tests' model zoo: one definition of the network

    return zoo.mobilenet(in_channels=1, num_classes=classes)


def digits_resnet(classes: int = 10) -> nn.Module:
    from examples.byom.digits_resnet import build as build_resnet

    return build_resnet()


MODELS = {"rescnn": ResCNN1d, "paper_cnn": PaperCNN, "mobilenet": mobilenet,
          "digits_resnet": digits_resnet}  # fmt: skip
ENTRY_POINTS = {name: f"benchmarks.dense_models:{getattr(cls, '__name__', name)}"
                for name, cls in MODELS.items()}  # fmt: skip


def build(model: str, task: str) -> nn.Module:
    if model == "paper_cnn":
        return PaperCNN(tasks.CLASSES[task], tasks.INPUT_SHAPES[task][-1])
    return MODELS[model](tasks.CLASSES[task])


def trained(model: str, task: str, seed: int = 0, epochs: int = 60) -> tuple[nn.Module, Path]:
    """The dense model trained on the task (cached), and its weights' file."""
    revision = tasks.REVISIONS.get(task)
    path = CACHE / f"{model}-{task}{'' if revision is None else f'-r{revision}'}-s{seed}.pt"
    torch.manual_seed(seed)  # before the build: torch seeds its own generator anew per process
    net = build(model, task)
    if path.is_file():
        net.load_state_dict(torch.load(path, weights_only=True))
        return net.eval(), path
    train, val, _ = getattr(tasks, task)(seed=seed)
    loader = DataLoader(train, batch_size=64, shuffle=True,
                        generator=torch.Generator().manual_seed(seed))  # fmt: skip
    optimiser = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, 3e-3, total_steps=epochs * len(loader)
    )
    for _ in range(epochs):
        net.train()
        for x, y in loader:
            optimiser.zero_grad()
            F.cross_entropy(net(x), y).backward()
            optimiser.step()
            schedule.step()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), path)
    return net.eval(), path


@torch.no_grad()
def accuracy(net: nn.Module, data: torch.utils.data.TensorDataset) -> float:
    x, y = data.tensors
    return float((net.eval()(x).argmax(1) == y).float().mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=sorted(MODELS))
    parser.add_argument("task", choices=sorted(tasks.INPUT_SHAPES))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.monotonic()
    net, path = trained(args.model, args.task, args.seed)
    _, val, test = getattr(tasks, args.task)(seed=args.seed)
    params = sum(p.numel() for p in net.parameters())
    paper = PAPER.get((args.model, args.task))
    print(f"{args.model} on {args.task}: {params:,} params, val {accuracy(net, val):.1%}, "
          f"test {accuracy(net, test):.1%}" + ("" if paper is None else f" (paper {paper:.0%})")
          + f"; {path} ({time.monotonic() - started:.0f} s)")  # fmt: skip


if __name__ == "__main__":
    main()
