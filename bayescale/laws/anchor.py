"""The law's value at the reference point, sampled in place of one parameter.

Saturating laws have a ridge where an exponent tends to 0.  In
``sigmoid(c - a * N**(-alpha) - b * D**(-beta))`` the data fix the logit at
the reference point (``c - a - b``, inputs divided by their references are 1
there) and the slopes ``a * alpha`` and ``b * beta``; as ``beta`` falls, ``b``
grows as ``1 / beta`` and ``c`` with it, a thin curved valley in ``(c, log
beta)`` that NUTS crosses with divergent transitions.  Sampling the value at
the reference, where the data pin it, in place of one parameter straightens it.
Two forms, found in the formula's syntax tree alone by :func:`candidates`:

- **offset**: a parameter with a ``normal`` prior added on the link scale as a
  bare ``+`` term and used nowhere else: ``sigmoid(c + ...)`` for a ``unit``
  outcome, ``c + ...`` for a ``real`` one, ``exp(c + ...)`` for a ``positive``
  one.  ``c = m - rest``, with ``m`` the link-scale value at the reference.
- **amplitude**: a positive law that is a sum of a bare parameter (the floor)
  and terms each with a ``lognormal`` factor used nowhere else,
  ``E + a * x**(-alpha)`` or ``E + a * N**(-alpha) + b * D**(-beta)``:
  ``a = (V - rest) / h``, with ``V = exp(m)`` the law's value at the reference,
  ``rest`` the law there without the term and ``h`` the term there with ``a = 1``
  (1 for a power).  Only where the data leave the term's exponent weakly
  identified: its sd in the Laplace approximation at the posterior mode, on the
  prior's scale, above :data:`WEAK` times the prior's sd (:func:`weakness`); of
  several such terms, the weakest.  Measured on the corpus's one-input curves:
  0.36-0.76 on the 10 BIG-bench curves, whose fits diverged, 0.02-0.18 on the 20
  language-model, translation and OLMo curves, which converged, and there the
  anchor made the sampler slower (one curve from 10 to 52 leapfrog steps per
  draw), because a small amplitude is then a steep function of the value at the
  reference.  And only where that value stays :data:`CLEAR` Laplace sds above the
  wall where the amplitude reaches 0 (:func:`clear`).

Every input must be divided by its reference, so the reference point is where
each is 1.  The change of variables is exact: the model adds the parameter's
declared prior and the log-Jacobian of the change as a factor
(:func:`bayescale.model.family_values`), so the posterior is the one the law
file defines; SBC checks it.  Measured on the convergence corpus: the 14
per-task Pythia accuracy laws (offset) went from 1-163 divergent transitions
per fit to none and from 26-59 leapfrog steps per draw to 10-14; the 10
BIG-bench curves of ``revisiting_nsl`` (amplitude) from 1-240 divergent
transitions per fit (default backend) to none in 9 of them and 2 in the last.

Examples
--------
>>> from bayescale import Law
>>> [(a.parameter, a.kind, a.predictor.text) for a in candidates(Law.named("offset_power"))]
[('E', 'offset', 'E - a * x ** (-alpha)')]
>>> [(a.parameter, a.kind, a.term) for a in candidates(Law.named("chinchilla"))]
[('a', 'amplitude', ('alpha',)), ('b', 'amplitude', ('beta',))]
>>> candidates(Law.named("bnsl"))
[]
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from .formula import Formula, parse

# the call that undoes each outcome's link: the link-scale expression is its argument
INVERSE_LINK = {"unit": "sigmoid", "positive": "exp"}


@dataclass(frozen=True)
class Anchor:
    """The parameter sampled at the reference point and the law it is solved from.

    ``kind="offset"``: ``parameter`` is added on the link scale and ``predictor``
    is the law on that scale.  ``kind="amplitude"``: ``parameter`` multiplies the one
    term of a positive law ``E + a * h(x)`` and ``predictor`` is the law itself.
    """

    parameter: str
    predictor: Formula
    kind: str = "offset"
    term: tuple[str, ...] = ()  # an amplitude's term: its other parameters (the exponents)


def _predictor(law) -> ast.expr | None:
    body = ast.parse(law.formula.text, mode="eval").body
    kind = law.outcome.kind
    if kind == "real":
        return body
    call = INVERSE_LINK.get(kind)
    if isinstance(body, ast.Call) and isinstance(body.func, ast.Name) and body.func.id == call:
        return body.args[0] if len(body.args) == 1 else None
    return None


def _plus_terms(node: ast.expr) -> list[ast.expr]:
    """The terms added with a ``+`` sign in a chain of ``+`` and ``-``."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _plus_terms(node.left) + _plus_terms(node.right)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Sub):
        return _plus_terms(node.left)
    return [node]


def _factors(node: ast.expr) -> list[ast.expr]:
    """The factors of a chain of ``*``."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
        return _factors(node.left) + _factors(node.right)
    return [node]


def _once(law, name: str) -> bool:
    tree = ast.parse(law.formula.text, mode="eval")
    return [n.id for n in ast.walk(tree) if isinstance(n, ast.Name)].count(name) == 1


def _offset(law) -> Anchor | None:
    inner = _predictor(law)
    if inner is None:
        return None
    for term in _plus_terms(inner):
        if isinstance(term, ast.Name) and term.id in law.parameters and _once(law, term.id) \
                and law.parameters[term.id].prior.kind == "normal":
            return Anchor(term.id, parse(ast.unparse(inner), what=f"link-scale formula of law '{law.name}'"))
    return None


def _amplitudes(law) -> list[Anchor]:
    body = ast.parse(law.formula.text, mode="eval").body
    terms = _plus_terms(body)
    if law.outcome.kind != "positive" or len(terms) < 2 or any(
            isinstance(n, ast.BinOp) and isinstance(n.op, ast.Sub) for n in _chain(body)):
        return []
    floors = [t for t in terms if isinstance(t, ast.Name) and t.id in law.parameters]
    if len(floors) != 1:
        return []
    found = []
    for term in terms:
        if term is floors[0]:
            continue
        amplitude = [f.id for f in _factors(term) if isinstance(f, ast.Name) and f.id in law.parameters
                     and _once(law, f.id) and law.parameters[f.id].prior.kind == "lognormal"]
        if not amplitude:
            return []  # a term without an amplitude of its own: not of this form
        others = sorted({n.id for n in ast.walk(term) if isinstance(n, ast.Name)}
                        & set(law.parameters) - {amplitude[0]})
        found.append(Anchor(amplitude[0], law.formula, kind="amplitude", term=tuple(others)))
    return found


def _chain(node: ast.expr) -> list[ast.expr]:
    """The ``+``/``-`` nodes of the top-level chain of sums."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Sub):
        return [node, *_chain(node.left), *_chain(node.right)]
    return []


WEAK = 0.25  # Laplace sd of an amplitude's exponent, as a share of its prior sd, that anchors it


def weakness(anchor: Anchor, law, laplace_sd: dict) -> float:
    """How weakly the data identify the exponents of ``anchor``'s term: the largest Laplace
    sd among them over its prior sd (weak above :data:`WEAK`).

    ``laplace_sd`` maps site names (``alpha_z``, or ``alpha_pop_z`` for a pooled
    exponent) to their sd in the Laplace approximation at the mode; a missing or
    non-finite one counts as infinitely weak (a mode without a proper curvature).
    """
    worst = 0.0
    for name in anchor.term:
        sd = laplace_sd.get(f"{name}_z", laplace_sd.get(f"{name}_pop_z"))
        if sd is None or not all(v == v and v < float("inf") for v in sd):
            return float("inf")
        worst = max(worst, max(sd) / law.parameters[name].prior.scale)
    return worst


CLEAR = 4.0  # distance of the value at the reference from the amplitude's wall, in its sds


def clear(value, wall, sd: float) -> bool:
    """Whether the value at the reference (per family, on the link scale) stays at least
    :data:`CLEAR` Laplace sds ``sd`` above the ``wall`` where the amplitude reaches 0.

    Near the wall the amplitude is a steep function of the value (its log falls to
    minus infinity there), and a start or a trajectory that crosses it has zero density.
    """
    import numpy as np

    gap = np.min(np.asarray(value, dtype=float) - np.asarray(wall, dtype=float))
    return bool(sd > 0 and np.isfinite(sd) and gap >= CLEAR * sd) or bool(sd == 0 and gap > 0)


def candidates(law) -> list[Anchor]:
    """The parameters the law may sample at its reference point: its offset, or its
    amplitudes (see the module docstring for the rule), or none."""
    if any(spec.scale != "reference" or spec.derived is not None for spec in law.input_specs.values()):
        return []
    offset = _offset(law)
    return [offset] if offset is not None else _amplitudes(law)
