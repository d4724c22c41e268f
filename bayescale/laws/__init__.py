"""Laws as data: the safe formula parser, priors, outcomes, derived inputs, the catalogue."""
