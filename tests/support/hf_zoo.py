"""Tiny Hugging Face transformer classifiers, built offline from configs (no download).

Each factory takes keyword arguments (config overrides) and returns a fresh ``nn.Module`` in
eval mode with a seeded initialisation. Its forward takes one float tensor ``x`` of shape
(batch, seq, hidden), passed to the transformer as ``inputs_embeds``, and returns logits
(batch, num_labels), so that tests can name them as ``"hf_zoo:bert"`` in a config.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

HIDDEN = 32
SEQ = 8
LABELS = 3


class SequenceClassifier(nn.Module):
    """A Hugging Face ``*ForSequenceClassification`` model fed with ``inputs_embeds``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        return self.model(inputs_embeds=x).logits


class LastTokenClassifier(nn.Module):
    """A Hugging Face decoder (``GPT2Model``, ``LlamaModel``), a linear head on the last token."""

    def __init__(self, backbone: nn.Module, hidden: int, num_labels: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(hidden, num_labels)

    def forward(self, x: Tensor) -> Tensor:
        hidden = self.backbone(inputs_embeds=x).last_hidden_state
        return self.head(hidden[:, -1])


def _common(kwargs: dict) -> dict:
    """Defaults shared by every family; keyword arguments override them."""
    return {
        "vocab_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_labels": LABELS,
        "attn_implementation": "eager",
        # std of the initial weights: HF's 0.02 makes attention almost uniform, so a head
        # pruned wrongly (channels of different heads mixed) would go unnoticed in tests
        "initializer_range": 0.2,
        **kwargs,
    }


def bert(**kwargs) -> nn.Module:
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(
        **_common(
            {
                "hidden_size": HIDDEN,
                "intermediate_size": 2 * HIDDEN,
                "max_position_embeddings": 64,
                "hidden_dropout_prob": 0.0,
                "attention_probs_dropout_prob": 0.0,
                **kwargs,
            }
        )
    )
    torch.manual_seed(0)
    return SequenceClassifier(BertForSequenceClassification(config)).eval()


def gpt2(**kwargs) -> nn.Module:
    from transformers import GPT2Config, GPT2Model

    config = GPT2Config(
        **_common(
            {
                "n_embd": HIDDEN,
                "n_inner": 2 * HIDDEN,
                "n_positions": 64,
                "resid_pdrop": 0.0,
                "embd_pdrop": 0.0,
                "attn_pdrop": 0.0,
                "use_cache": False,
                "bos_token_id": 0,
                "eos_token_id": 0,
                **kwargs,
            }
        )
    )
    torch.manual_seed(0)
    return LastTokenClassifier(GPT2Model(config), config.n_embd, config.num_labels).eval()


def llama(**kwargs) -> nn.Module:
    """Llama with grouped-query attention: 4 query heads sharing 2 key/value heads."""
    from transformers import LlamaConfig, LlamaModel

    config = LlamaConfig(
        **_common(
            {
                "hidden_size": HIDDEN,
                "intermediate_size": 2 * HIDDEN,
                "num_key_value_heads": 2,
                "max_position_embeddings": 64,
                "use_cache": False,
                **kwargs,
            }
        )
    )
    torch.manual_seed(0)
    return LastTokenClassifier(LlamaModel(config), config.hidden_size, config.num_labels).eval()


# name -> (factory, input shape without the batch)
FAMILIES = {
    "bert": (bert, (SEQ, HIDDEN)),
    "gpt2": (gpt2, (SEQ, HIDDEN)),
    "llama": (llama, (SEQ, HIDDEN)),
}
