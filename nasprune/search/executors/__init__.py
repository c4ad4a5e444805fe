"""Where a search's other workers run: local processes (``local``) or Ray tasks (``ray``)."""
