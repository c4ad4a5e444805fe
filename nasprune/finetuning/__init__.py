"""After a search: fine-tuning a chosen subnet (``runs``) and checking how well the search's
cheap accuracy ranks candidates (``proxy``)."""
