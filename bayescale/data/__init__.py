"""Data: tables validated into a design for a law, real data sets, simulated ladders."""
