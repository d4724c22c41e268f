"""Forecasts built on fits: compute-optimal allocation, two-stage (loss -> metric) chains."""
