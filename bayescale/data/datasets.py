"""Real scaling-law data sets (read from a data directory) and simulated ladders."""

from .loaders import available, data_dir, info, load
from .simulate import simulate

__all__ = ["available", "data_dir", "info", "load", "simulate"]
