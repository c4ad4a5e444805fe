"""Peers that the quality benchmark compares nasprune's strategies against, at the same latency.

Each peer is a thin wrapper around a real library's public API: it takes the trained dense model
and returns a physically pruned, standalone ``nn.Module`` (the dense model is left untouched).

* ``torch_pruning_peer``: Torch-Pruning's ``MetaPruner`` with L2 magnitude importance, one ratio
  for every layer (``uniform``) or one ratio over all layers (``global_magnitude``), and a
  bisection over the ratio to a latency target (``to_latency``). Torch-Pruning is a runtime
  dependency of nasprune.
* ``fastnas_peer``: NVIDIA Model Optimizer's FastNAS (``mtp.prune(mode="fastnas")``) under a
  params or FLOPs bound, on CPU. Optional: ``available()`` says why it cannot run and how to
  install it (the ``peers`` extra).

Nothing here downloads at run time.
"""
