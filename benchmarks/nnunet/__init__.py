"""The head-to-head against nnU-Net v2 (``benchmarks/against_nnunet.py`` runs it): both
pipelines through their own command lines on the same cases, scored by ``scseg evaluate``."""
