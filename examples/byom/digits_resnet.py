"""A residual CNN for scikit-learn's 8x8 digits, and the script that trains it dense.

This is the "user's own model" of the bring-your-own-model example and benchmark:

    python examples/byom/digits_resnet.py --out .nasprune/byom/digits_resnet.pt
    nasprune run examples/byom/digits-resnet.yaml

The factory is ``examples.byom.digits_resnet:build`` (run from the repository root).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class Block(nn.Module):
    """conv-bn-relu-conv-bn plus a shortcut (a strided 1x1 conv when the shape changes)."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: Tensor) -> Tensor:
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(y + self.shortcut(x))


class DigitsResNet(nn.Module):
    def __init__(self, widths: tuple[int, ...] = (32, 64, 128), blocks: int = 3) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, widths[0], 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(widths[0]), nn.ReLU())  # fmt: skip
        stages, c = [], widths[0]
        for i, w in enumerate(widths):
            layers = [Block(c, w, 1 if i == 0 else 2)] + [Block(w, w, 1) for _ in range(blocks - 1)]
            stages.append(nn.Sequential(*layers))
            c = w
        self.stages = nn.Sequential(*stages)
        self.fc = nn.Linear(c, 10)

    def forward(self, x: Tensor) -> Tensor:
        x = self.stages(self.stem(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def build() -> nn.Module:
    """The factory a config names: the architecture, randomly initialised (seeded)."""
    torch.manual_seed(0)
    return DigitsResNet().eval()


def train(out: Path, epochs: int = 40, seed: int = 0) -> dict[str, float]:
    """Train the dense model on the digits train split; save its state dict to ``out``."""
    from nasprune.evaluation.data import digits
    from nasprune.evaluation.metrics import accuracy_and_loss

    train_set, val_set, test_set = digits((1, 8, 8))
    torch.manual_seed(seed)
    model = DigitsResNet()
    loader = torch.utils.data.DataLoader(
        train_set, batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(seed)
    )
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, epochs)
    for _ in range(epochs):
        model.train()
        for x, y in loader:
            optimiser.zero_grad()
            F.cross_entropy(model(x), y).backward()
            optimiser.step()
        schedule.step()
    model.eval()
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), out)
    val = torch.utils.data.DataLoader(val_set, batch_size=256)
    test = torch.utils.data.DataLoader(test_set, batch_size=256)
    return {"val": accuracy_and_loss(model, val)[0], "test": accuracy_and_loss(model, test)[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(".nasprune/byom/digits_resnet.pt"))
    parser.add_argument("--epochs", type=int, default=40)
    args = parser.parse_args()
    started = time.perf_counter()
    scores = train(args.out, args.epochs)
    print(f"trained {args.out} in {time.perf_counter() - started:.0f} s: "
          f"val {scores['val']:.4f}, test {scores['test']:.4f}")  # fmt: skip


if __name__ == "__main__":
    main()
