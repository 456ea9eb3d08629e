"""Data shipped with deepdive-lab (installed as the `deepdive_lab_assets` package)."""
