"""Progress of long calls: a bar in a terminal or Jupyter, a line per step in a log, or nothing.

One :class:`Reporter` decides the form, once, where a public call starts
(:func:`reporting`), and every layer below asks for it with :func:`current`:

- ``progress=False``: nothing at all;
- ``progress=None`` (the default) or ``True``:

  - in Jupyter (an IPython kernel): a bar (``tqdm.notebook`` when ipywidgets is
    installed, else tqdm's text bar on stderr, which the notebook redraws in place);
  - when stderr is a terminal: tqdm's text bar on stderr;
  - otherwise (stderr redirected to a file or a pipe, a batch job's log): one line per
    step (compiling, warm-up, sampling, done, each calibration origin, each group of a
    sweep), written to stderr as ``[bayescale] ...``; or, when a handler is attached to
    the :mod:`logging` logger ``"bayescale"`` itself
    (``logging.getLogger("bayescale").addHandler(...)``, level ``INFO``), as its records
    instead.  Handlers of the root logger do not count: a program that configures
    logging for itself still gets the lines on stderr unless it asks for them.

A sampler bar shows chains, iterations, divergent transitions and the time left; its
ticks come from a host callback inside the compiled sampler (:class:`Chains`), which
reads the sampler's state and never changes it: the same seed gives the same draws with
progress on and off, and no result depends on progress.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib.util
import logging
import sys
import threading
import time

FORMS = ("off", "bar", "notebook", "log")
LOGGER = "bayescale"
TICKS = 50  # host callbacks per chain over a run (the bar moves in steps of 2%), plus one per
# divergent transition; their cost: benchmarks/bench_progress.py

_active: contextvars.ContextVar[Reporter | None] = contextvars.ContextVar("bayescale_progress", default=None)


def in_jupyter() -> bool:
    """Whether this process is a Jupyter (IPython kernel) session; never imports IPython itself."""
    ipython = sys.modules.get("IPython")
    get = getattr(ipython, "get_ipython", None)
    shell = get() if callable(get) else None
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def choose_form(setting: bool | None, stream=None) -> str:
    """The form of progress for ``setting`` (``progress=``) here: one of :data:`FORMS`.

    Examples
    --------
    >>> import io
    >>> choose_form(False), choose_form(None, io.StringIO())
    ('off', 'log')
    """
    if setting is False:
        return "off"
    if in_jupyter():
        return "notebook"
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    return "bar" if callable(isatty) and isatty() else "log"


class Reporter:
    """Where progress goes: a form (:data:`FORMS`) and a stream (stderr by default).

    :meth:`line` writes one line; :meth:`bar` opens a bar (or, in a log, nothing but the
    lines its owner writes); :meth:`steps` counts the steps of a long call.
    """

    def __init__(self, form: str = "off", stream=None):
        if form not in FORMS:
            raise ValueError(f"progress form {form!r}; one of {FORMS}")
        self.form, self._stream = form, stream
        self._steps: list[Steps] = []

    @classmethod
    def choose(cls, setting: bool | None = None, stream=None) -> Reporter:
        """The reporter for ``progress=setting`` in this session (:func:`choose_form`)."""
        return cls(choose_form(setting, stream), stream)

    @property
    def enabled(self) -> bool:
        return self.form != "off"

    @property
    def stream(self):
        return sys.stderr if self._stream is None else self._stream

    def line(self, text: str) -> None:
        """One line of progress: above any open bar, or into the log."""
        if self.form == "off":
            return
        if self.form == "log":
            logger = logging.getLogger(LOGGER)
            if logger.handlers:
                logger.info(text)
            else:
                print(f"[{LOGGER}] {text}", file=self.stream, flush=True)
            return
        from tqdm import tqdm

        tqdm.write(text, file=self.stream)

    def bar(self, total: int, desc: str, unit: str = "it", initial: int = 0):
        """A bar of ``total`` units (tqdm's), ``initial`` of them done, or None in a log or when off."""
        if self.form in ("off", "log"):
            return None
        if self.form == "notebook" and importlib.util.find_spec("ipywidgets") is not None:
            from tqdm.notebook import tqdm as notebook_bar

            return notebook_bar(total=total, desc=desc, unit=unit, initial=initial, leave=True)
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, unit=unit, initial=initial, file=self.stream, leave=True,
                    dynamic_ncols=True)

    def steps(self, what: str, total: int, per_fit: bool = False, done: int = 0) -> Steps:
        """Count ``total`` steps of ``what``, ``done`` of them already (a context manager, or
        :meth:`Steps.open` and :meth:`Steps.close`); with ``per_fit``, each fit of many that ends
        inside it (:meth:`fitted`) is one step."""
        return Steps(self, what, total, per_fit, done)

    def fitted(self, label, rows: int, seconds: float) -> None:
        """A fit of many (``bayescale.inference.stacked``) ended: one step of the innermost
        :meth:`steps` that counts fits, if any is open."""
        for steps in reversed(self._steps):
            if steps.per_fit:
                steps.advance(f"{rows} rows, {seconds:.1f} s")
                return


class Steps:
    """The steps of one long call (origins of a backtest, groups of a sweep, SBC replicates):
    a bar, or a line per step in a log."""

    def __init__(self, reporter: Reporter, what: str, total: int, per_fit: bool = False, done: int = 0):
        self.reporter, self.what, self.total, self.per_fit = reporter, what, total, per_fit
        self.count, self._bar = done, None

    def open(self) -> Steps:
        self._bar = self.reporter.bar(self.total, self.what, unit="step", initial=self.count)
        self.reporter._steps.append(self)
        return self

    __enter__ = open

    def advance(self, detail: str = "", n: int = 1) -> None:
        """``n`` more steps done; ``detail`` says how the last one went."""
        self.count += n
        if self._bar is not None:
            if detail:  # before the update, which draws it
                self._bar.set_postfix_str(detail, refresh=False)
            self._bar.update(n)
        else:
            tail = f": {detail}" if detail else ""
            self.reporter.line(f"{self.what} {self.count} of {self.total}{tail}")

    def close(self) -> None:
        if self in self.reporter._steps:
            self.reporter._steps.remove(self)
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __exit__(self, *exc) -> None:
        self.close()


class Chains:
    """Progress of one sampler run of ``chains`` chains x (``warmup`` + ``draws``) iterations.

    :meth:`tick` is the host callback the compiled sampler calls every :attr:`every`
    iterations of each chain and at every divergent transition, with the chain's iteration
    number (1-based; warm-up up to ``warmup``) and whether it diverged.  Ticks may come
    from several devices' threads at once and out of order.
    """

    def __init__(self, reporter: Reporter, chains: int, warmup: int, draws: int, label: str = "NUTS"):
        self.reporter, self.chains, self.warmup, self.draws = reporter, chains, warmup, draws
        self.label = label
        self.every = max(1, (warmup + draws) // TICKS)
        self.done = self.divergences = 0
        self.phase = "compiling"
        self._lock = threading.Lock()
        self._bar = None
        self._started = time.perf_counter()

    def __enter__(self) -> Chains:
        self.reporter.line(f"{self.label}: compiling {self.chains} chain(s) x ({self.warmup} warm-up + "
                           f"{self.draws} draws)")
        return self

    def _enter_phase(self, phase: str) -> None:
        self.phase = phase
        what = (f"warm-up: {self.chains} chain(s) x {self.warmup} iterations" if phase == "warm-up"
                else f"sampling: {self.chains} chain(s) x {self.draws} draws")
        if self.reporter.form == "log":
            self.reporter.line(f"{self.label}: {what}")
            return
        if self._bar is None:
            self._bar = self.reporter.bar(self.chains * (self.warmup + self.draws), self.label)
        if self._bar is not None:
            self._bar.set_description_str(f"{self.label} ({phase})", refresh=False)

    def tick(self, i, diverging) -> None:
        """Host side of the sampler's callback (see the class docstring)."""
        i, diverging = int(i), bool(diverging)
        with self._lock:
            if self.phase == "compiling":
                self._enter_phase("warm-up" if self.warmup else "sampling")
            if i > self.warmup and self.phase == "warm-up":
                self._enter_phase("sampling")
            if diverging and i > self.warmup:
                self.divergences += 1
            step = self.every if i % self.every == 0 else 0
            self.done += step
            if self._bar is not None:
                self._bar.set_postfix_str(f"{self.chains} chains, {self.divergences} divergent",
                                          refresh=False)
                self._bar.update(step)

    def __exit__(self, kind, *exc) -> None:
        seconds = time.perf_counter() - self._started
        if self._bar is not None:
            self._bar.update(self._bar.total - self._bar.n)
            self._bar.close()
        if kind is None:
            self.reporter.line(f"{self.label}: done, {self.chains * self.draws} draws, "
                               f"{self.divergences} divergent transition(s), {seconds:.1f} s")


OFF = Reporter("off")


def current(setting: bool | None = None) -> Reporter:
    """The reporter for a call with ``progress=setting``: nothing when ``setting`` is False, else
    the one an outer call made (:func:`reporting`), else one chosen here (:meth:`Reporter.choose`)."""
    if setting is False:
        return OFF
    active = _active.get()
    return active if active is not None else Reporter.choose(setting)


@contextlib.contextmanager
def reporting(setting: bool | None = None, reporter: Reporter | None = None):
    """Make the reporter of a public call the one every layer below it finds (:func:`current`).

    Inside an outer call's reporting, the outer reporter stays (its ``progress=`` decides),
    unless ``reporter`` is given or ``setting`` is False, which silences this call.
    """
    outer = _active.get()
    if reporter is None:
        reporter = OFF if setting is False else outer if outer is not None else Reporter.choose(setting)
    chosen = reporter
    token = _active.set(chosen)
    try:
        yield chosen
    finally:
        _active.reset(token)


__all__ = ["Chains", "FORMS", "Reporter", "Steps", "choose_form", "current", "in_jupyter", "reporting"]
