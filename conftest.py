"""Test-session defaults: quick profile for the notebooks (nbval kernels inherit this environment)."""

import os

os.environ.setdefault("CIFAR_PROFILE", "quick")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")
