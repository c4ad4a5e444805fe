"""Small models with the shapes of the common families, written here (no torchvision on CPU).

Each factory takes keyword arguments only and returns a fresh ``nn.Module`` in eval mode with a
seeded initialisation, so that tests can name them as ``"zoo:resnet"`` in a config.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class BasicBlock(nn.Module):
    """ResNet basic block; a strided 1x1 convolution shortcut when the shape changes."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
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
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + self.shortcut(x))


class ResNet(nn.Module):
    def __init__(self, in_channels: int = 3, num_classes: int = 10, widths=(16, 32, 64), blocks=2):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(),
        )
        layers = []
        c = widths[0]
        for i, w in enumerate(widths):
            stage = [BasicBlock(c, w, 1 if i == 0 else 2)]
            stage += [BasicBlock(w, w) for _ in range(blocks - 1)]
            layers.append(nn.Sequential(*stage))
            c = w
        self.layer1, self.layer2, self.layer3 = layers
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.layer3(self.layer2(self.layer1(self.stem(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand, 3x3 depthwise, 1x1 project; residual when shapes match."""

    def __init__(self, c_in: int, c_out: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = c_in * expand
        self.use_res = stride == 1 and c_in == c_out
        self.conv = nn.Sequential(
            nn.Conv2d(c_in, hidden, 1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(),
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(),
            nn.Conv2d(hidden, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv(x) if self.use_res else self.conv(x)


class MobileNetV2(nn.Module):
    def __init__(self, in_channels: int = 3, num_classes: int = 10) -> None:
        super().__init__()
        spec = [(16, 1, 1), (24, 2, 4), (24, 1, 4), (32, 2, 4), (32, 1, 4)]
        layers: list[nn.Module] = [
            nn.Sequential(
                nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU6()
            )
        ]
        c = 16
        for c_out, stride, expand in spec:
            layers.append(InvertedResidual(c, c_out, stride, expand))
            c = c_out
        layers.append(
            nn.Sequential(nn.Conv2d(c, 64, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU6())
        )
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(0.1), nn.Linear(64, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        x = self.features(x)
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class DenseLayer(nn.Module):
    def __init__(self, c_in: int, growth: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(c_in)
        self.conv = nn.Conv2d(c_in, growth, 3, 1, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([x, self.conv(F.relu(self.bn(x)))], dim=1)


class DenseNet(nn.Module):
    """A stem, one dense block of concatenating layers, a transition, a classifier."""

    def __init__(self, in_channels: int = 3, num_classes: int = 10, growth: int = 12) -> None:
        super().__init__()
        self.stem = nn.Conv2d(in_channels, 24, 3, 1, 1, bias=False)
        c = 24
        dense = []
        for _ in range(3):
            dense.append(DenseLayer(c, growth))
            c += growth
        self.block = nn.Sequential(*dense)
        self.transition = nn.Sequential(
            nn.BatchNorm2d(c), nn.ReLU(), nn.Conv2d(c, 32, 1, bias=False), nn.AvgPool2d(2)
        )
        self.norm = nn.BatchNorm2d(32)
        self.fc = nn.Linear(32, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.transition(self.block(self.stem(x)))
        x = F.relu(self.norm(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class Attention(nn.Module):
    """Multi-head self-attention in the timm layout: one qkv projection, ``num_heads`` heads."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        b, n, _ = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        attn = (q @ k.transpose(-2, -1)) * self.scale
        x = attn.softmax(dim=-1) @ v
        return self.proj(x.transpose(1, 2).reshape(b, n, self.num_heads * self.head_dim))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim: int, num_heads: int, mlp_ratio: int = 2) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, dim * mlp_ratio)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViT(nn.Module):
    """Patch embedding, a class token, position embeddings, transformer blocks, a head."""

    def __init__(
        self,
        in_channels: int = 3,
        image_size: int = 32,
        patch: int = 8,
        dim: int = 64,
        depth: int = 2,
        num_heads: int = 4,
        num_classes: int = 10,
    ) -> None:
        super().__init__()
        self.patch_embed = nn.Conv2d(in_channels, dim, patch, patch)
        tokens = (image_size // patch) ** 2 + 1
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.randn(1, tokens, dim) * 0.02)
        self.blocks = nn.Sequential(*[Block(dim, num_heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        x = self.norm(self.blocks(x))
        return self.head(x[:, 0])


class CNN1d(nn.Module):
    """A 1-D CNN for sequences (N, channels, length), with residual blocks."""

    def __init__(self, in_channels: int = 4, num_classes: int = 5, width: int = 32) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv1d(in_channels, width, 7, 2, 3), nn.BatchNorm1d(width), nn.ReLU()
        )
        self.res1 = Res1d(width)
        self.down = nn.Sequential(
            nn.Conv1d(width, 2 * width, 3, 2, 1), nn.BatchNorm1d(2 * width), nn.ReLU()
        )
        self.res2 = Res1d(2 * width)
        self.fc = nn.Linear(2 * width, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.res2(self.down(self.res1(self.stem(x))))
        return self.fc(x.mean(dim=2))


class Res1d(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(c, c, 5, 1, 2, bias=False)
        self.bn1 = nn.BatchNorm1d(c)
        self.conv2 = nn.Conv1d(c, c, 5, 1, 2, bias=False)
        self.bn2 = nn.BatchNorm1d(c)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x + self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))))


def _seeded(cls, **kwargs) -> nn.Module:
    torch.manual_seed(0)
    return cls(**kwargs).eval()


def resnet(**kwargs) -> nn.Module:
    return _seeded(ResNet, **kwargs)


def mobilenet(**kwargs) -> nn.Module:
    return _seeded(MobileNetV2, **kwargs)


def densenet(**kwargs) -> nn.Module:
    return _seeded(DenseNet, **kwargs)


def vit(**kwargs) -> nn.Module:
    return _seeded(ViT, **kwargs)


def cnn1d(**kwargs) -> nn.Module:
    return _seeded(CNN1d, **kwargs)


# name -> (factory, input shape without the batch)
FAMILIES = {
    "resnet": (resnet, (3, 32, 32)),
    "mobilenet": (mobilenet, (3, 32, 32)),
    "densenet": (densenet, (3, 32, 32)),
    "vit": (vit, (3, 32, 32)),
    "cnn1d": (cnn1d, (4, 128)),
}


class Gated(nn.Module):
    """A residual block with data-dependent control flow: torch.fx cannot trace it."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        if x.mean() > 0:
            return x + self.conv(x)
        return x


class Untraceable(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, 1, 1)
        self.gate = Gated(16)
        self.fc = nn.Linear(16, 10)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.gate(self.stem(x)).mean(dim=(2, 3)))


def untraceable(**kwargs) -> nn.Module:
    return _seeded(Untraceable, **kwargs)


# ---- models that torch-pruning alone would prune wrongly (tests/search_spaces/test_verify.py)


class PermuteHead(nn.Module):
    """conv -> permute -> reshape (or view) -> linear: a channels-last flatten. torch-pruning
    1.6.1 maps a pruned channel to the wrong columns of the classifier."""

    def __init__(
        self, view: bool = False, width: int = 16, in_channels: int = 3, size: int = 4
    ) -> None:
        super().__init__()
        self.stem = nn.Conv2d(in_channels, width, 3, 1, 1)
        self.bn = nn.BatchNorm2d(width)
        self.conv = nn.Conv2d(width, width, 3, 1, 1)
        self.fc = nn.Linear(width * size * size, 10)
        self.view = view

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(self.bn(self.stem(x)))
        x = F.relu(self.conv(x)).permute(0, 2, 3, 1)
        x = x.contiguous().view(x.shape[0], -1) if self.view else x.reshape(x.shape[0], -1)
        return self.fc(x)


class StoredWidth(nn.Module):
    """A forward that reshapes with a width stored as an integer: it crashes once pruned."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, 1, 1)
        self.mix = Regroup(16)
        self.fc = nn.Linear(16, 10)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.mix(F.relu(self.stem(x))).mean(dim=(2, 3)))


class Regroup(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.conv = nn.Conv2d(channels, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        b, _, h, w = x.shape
        return self.conv(x.view(b, self.channels, h, w))


class Branch(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.conv(x))


class SkipInParent(nn.Module):
    """``h + branch(h)`` written in the parent: ``branch`` alone is no residual block."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, 1, 1)
        self.branch = Branch(16)
        self.fc = nn.Linear(16, 10)

    def forward(self, x: Tensor) -> Tensor:
        h = F.relu(self.stem(x))
        return self.fc((h + self.branch(h)).mean(dim=(2, 3)))


class Refine(nn.Module):
    """A stage whose forward holds a residual branch: ``h = proj(x)``, then ``h + refine(h)``."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.proj = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()
        )
        self.refine = nn.Sequential(nn.Conv2d(c_out, c_out, 3, 1, 1), nn.BatchNorm2d(c_out))

    def forward(self, x: Tensor) -> Tensor:
        h = self.proj(x)
        return torch.add(h, self.refine(h))


class ParentSkips(nn.Module):
    """Both forms of residual: skips written in a parent's forward around branches that hold
    none (``b1``, ``b2``, ``stage.refine``, the entries of ``extra``), and a block holding its
    own skip (``block``)."""

    def __init__(self, in_channels: int = 3, num_classes: int = 10, width: int = 16) -> None:
        super().__init__()
        w = width
        self.stem = nn.Sequential(nn.Conv2d(in_channels, w, 3, 1, 1), nn.BatchNorm2d(w), nn.ReLU())
        self.b1 = nn.Sequential(
            nn.Conv2d(w, w, 3, 1, 1), nn.BatchNorm2d(w), nn.ReLU(), nn.Conv2d(w, w, 3, 1, 1)
        )
        self.b2 = nn.Sequential(nn.Conv2d(w, w, 1), nn.BatchNorm2d(w))
        self.block = BasicBlock(w, w)
        self.stage = Refine(w, 2 * w)
        self.extra = nn.ModuleList([nn.Conv2d(2 * w, 2 * w, 3, 1, 1) for _ in range(2)])
        self.drop = nn.Dropout(0.1)
        self.head = nn.Linear(2 * w, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        h = self.stem(x)
        h = (h + self.b1(h)).relu()
        h = self.b2(h) + h
        h = self.stage(self.block(h))
        for branch in self.extra:
            h = h + self.drop(branch(h))
        return self.head(h.mean(dim=(2, 3)))


class GatedParent(nn.Module):
    """``h + branch(h)`` behind data-dependent control flow: torch.fx cannot read the add."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, 1, 1)
        self.branch = Branch(16)
        self.fc = nn.Linear(16, 10)

    def forward(self, x: Tensor) -> Tensor:
        h = F.relu(self.stem(x))
        if h.mean() > 0:
            h = h + self.branch(h)
        return self.fc(h.mean(dim=(2, 3)))


class Wide50(nn.Module):
    """Fifty hidden channels: not a multiple of round_to's 8."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 50, 3, 1, 1)
        self.fc = nn.Linear(50, 10)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(F.relu(self.conv(x)).mean(dim=(2, 3)))


class Normalized(nn.Module):
    """Channels L2-normalised before the next convolution reads them: physical pruning is
    exact, channel masks are not (the norm still counts the masked channels)."""

    def __init__(self, in_channels: int = 3) -> None:
        super().__init__()
        self.stem = nn.Conv2d(in_channels, 16, 3, 1, 1)
        self.conv = nn.Conv2d(16, 16, 3, 1, 1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x: Tensor) -> Tensor:
        x = F.normalize(F.relu(self.stem(x)), dim=1)
        return self.fc(F.relu(self.conv(x)).mean(dim=(2, 3)))


def normalized(**kwargs) -> nn.Module:
    return _seeded(Normalized, **kwargs)


def permute_head(**kwargs) -> nn.Module:
    return _seeded(PermuteHead, **kwargs)


def stored_width(**kwargs) -> nn.Module:
    return _seeded(StoredWidth, **kwargs)


def skip_in_parent(**kwargs) -> nn.Module:
    return _seeded(SkipInParent, **kwargs)


def parent_skips(**kwargs) -> nn.Module:
    return _seeded(ParentSkips, **kwargs)


def gated_parent(**kwargs) -> nn.Module:
    return _seeded(GatedParent, **kwargs)


def wide50(**kwargs) -> nn.Module:
    return _seeded(Wide50, **kwargs)


class Stalling(nn.Module):
    """A forward that takes ten seconds: derive's time limit must stop it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, 1, 1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x: Tensor) -> Tensor:
        import time

        time.sleep(10)
        return self.fc(F.relu(self.conv(x)).mean(dim=(2, 3)))


def stalling(**kwargs) -> nn.Module:
    return _seeded(Stalling, **kwargs)
