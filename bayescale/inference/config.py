"""Typed sampler settings: what a user may choose about how a posterior is sampled.

One frozen record travels from the public calls (``bs.fit``, ``bs.fit_many``,
``bs.sweep``, ``bs.backtest``, SBC) down to the backend, and is saved with
every fit, so a fit says exactly how it was made.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from ..errors import FitError

BACKENDS = ("numpyro", "lowrank")
DEVICES = (None, "auto", "cpu", "gpu")


@dataclass(frozen=True)
class SamplerConfig:
    """How to sample a posterior.

    Parameters
    ----------
    backend : {"numpyro", "lowrank"}
        ``"numpyro"``: NumPyro's NUTS with its windowed dense mass-matrix adaptation from draws.
        ``"lowrank"``: BlackJAX's NUTS with a low-rank-modified diagonal mass matrix adapted
        from draws and gradients by minimising the Fisher divergence
        (:mod:`bayescale.inference.lowrank`).
    chains, warmup, draws : int
        Number of chains, warm-up (adaptation) iterations and kept draws per chain.
    target_accept : float, optional
        NUTS target acceptance probability; ``None`` lets the fit choose (0.99
        with random effects, whose funnels otherwise cost occasional divergent
        transitions, 0.95 without).
    max_tree_depth : int
        NUTS's limit on trajectory doubling (2**depth - 1 leapfrog steps at most).
    seed : int
        The same seed gives identical draws.
    device : {"cpu", "gpu", "auto"}, optional
        Where to sample; ``None``/``"auto"``: the CPU unless JAX sees a GPU and the
        work is large (:func:`bayescale.inference.device.choose_device`).
    progress : bool, optional
        ``None`` (the default) or ``True``: a bar (chains, draws, divergent transitions,
        time left) in a terminal or Jupyter, one line per phase in a log (stderr
        redirected, or the ``logging`` logger ``"bayescale"``); ``False``: nothing.  Never
        changes the draws (:mod:`bayescale.inference.progress`).

    Examples
    --------
    >>> from bayescale.inference import SamplerConfig
    >>> SamplerConfig(chains=2, draws=500).with_(seed=3).seed
    3
    >>> SamplerConfig(chains=0)
    Traceback (most recent call last):
    ...
    bayescale.errors.FitError: SamplerConfig: chains=0 must be a whole number >= 1.
    """

    backend: str = "numpyro"
    chains: int = 4
    warmup: int = 1000
    draws: int = 1000
    target_accept: float | None = None
    max_tree_depth: int = 10
    seed: int = 0
    device: str | None = None
    progress: bool | None = None

    def __post_init__(self):
        if self.backend not in BACKENDS:
            raise FitError(f"SamplerConfig: backend={self.backend!r}; choose one of {', '.join(BACKENDS)}.")
        for name, low in (("chains", 1), ("warmup", 0), ("draws", 1), ("max_tree_depth", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise FitError(f"SamplerConfig: {name}={value!r} must be a whole number >= {low}.")
        if self.target_accept is not None and not 0 < float(self.target_accept) < 1:
            raise FitError(f"SamplerConfig: target_accept={self.target_accept!r} must lie strictly "
                           f"between 0 and 1 (e.g. 0.95), or be None for the default.")
        device = None if self.device is None else str(self.device).lower()
        if device not in DEVICES:
            raise FitError(f"SamplerConfig: device={self.device!r}; choose 'cpu', 'gpu' or 'auto'.")
        object.__setattr__(self, "device", device)

    def with_(self, **changes) -> SamplerConfig:
        """A copy with ``changes`` (keywords of the constructor)."""
        return replace(self, **changes)

    def record(self) -> dict:
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict) -> SamplerConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in record.items() if k in names})


def take(settings: dict, config_type, base=None):
    """``base`` (or the default ``config_type()``) with the keywords in ``settings`` that name its
    fields applied; those keywords are removed from ``settings``."""
    names = {f.name for f in fields(config_type)}
    given = {k: settings.pop(k) for k in list(settings) if k in names}
    base = config_type() if base is None else base
    if not isinstance(base, config_type):
        raise FitError(f"expected a {config_type.__name__}, not {type(base).__name__}.")
    return replace(base, **given) if given else base


__all__ = ["SamplerConfig", "take"]
