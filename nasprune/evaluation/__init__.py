"""How a candidate is evaluated: the data, the supernet, the candidate made ready (activated
or cut, recalibrated, fine-tuned in prune mode), accuracy and loss, and the one
:class:`~nasprune.evaluation.stored.StoredSearch` every post-search command opens."""
