"""A search at work: prepared from its config, then workers take turns on it.

``setup`` prepares, executes and joins a search; ``loop`` is a worker's turns; ``leases`` the
heartbeats that keep a trial or the supernet lock held; ``proposer`` stands between the
strategy and the loop; ``trial`` measures one trial; ``executors`` start more workers (local
processes, Ray tasks).
"""

from nasprune.search.setup import SearchResult, execute, join, prepare
from nasprune.search.worker import Observer, Parts, Silent

__all__ = ["Observer", "Parts", "SearchResult", "Silent", "execute", "join", "prepare"]
