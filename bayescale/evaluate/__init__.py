"""Evaluation of fits: backtests, calibration of bands beyond the data, comparison (LOO,
stacking, contrasts), posterior predictive checks, simulation-based calibration."""
