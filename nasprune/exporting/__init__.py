"""Out of nasprune: a chosen subnet as a standalone model (``subnet``), a search as an Optuna
study (``optuna``)."""
