"""Inference: a model and its data in, an ArviZ DataTree and its diagnostics verdict out.

- :mod:`~bayescale.inference.config`: :class:`SamplerConfig`, the typed sampler settings;
- :mod:`~bayescale.inference.sample`: the one interface, ``sample(model, data, config)``, and a
  single fit of a design (:func:`run_design`);
- :mod:`~bayescale.inference.start`: the MAP start; :mod:`~bayescale.inference.nuts`: the NumPyro
  NUTS backend; :mod:`~bayescale.inference.stacked`: many data sets of one shape, compiled once;
- :mod:`~bayescale.inference.gate`: the diagnostics gate; :mod:`~bayescale.inference.device`,
  :mod:`~bayescale.inference.runtime`, :mod:`~bayescale.inference.executor`: where and how runs execute.
"""

from .config import SamplerConfig

__all__ = ["SamplerConfig"]
