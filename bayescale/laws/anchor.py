"""An additive offset sampled as the law's value at the reference point.

Saturating laws have a ridge where an exponent tends to 0.  In
``sigmoid(c - a * N**(-alpha) - b * D**(-beta))`` the data fix the logit at
the reference point (``c - a - b``, inputs divided by their references are 1
there) and the slopes ``a * alpha`` and ``b * beta``; as ``beta`` falls, ``b``
grows as ``1 / beta`` and ``c`` with it, a thin curved valley in ``(c, log
beta)`` that NUTS crosses with divergent transitions.  Sampling the value at
the reference, ``m = c - a - b``, in place of ``c`` straightens it: ``m`` is
pinned by the data, and ``log b + log beta`` is a straight line, which the
adapted mass matrix follows.  On the per-task Pythia laws of the convergence
corpus this took 14-29 divergent transitions per 4,000 draws to none, and the
leapfrog steps per draw from 27-36 to 10-14.

The change of variables is exact: ``c = m - g(a, b, ...)`` has unit Jacobian
(triangular, with 1 on the diagonal), so the posterior is the same and the
prior stays the one the law file declares on ``c`` (added as a factor).  It
applies to one parameter with a ``normal`` prior that enters the law's link
scale as a bare ``+`` term and nowhere else: ``sigmoid(c + ...)`` for a
``unit`` outcome, ``c + ...`` for a ``real`` one, ``exp(c + ...)`` for a
``positive`` one.  Every input must be divided by its reference, so the
reference point is where each is 1.  :func:`find` decides it from the formula's
syntax tree alone.

Examples
--------
>>> from bayescale import Law
>>> a = find(Law.named("offset_power"))
>>> a.parameter, a.predictor.text
('E', 'E - a * x ** (-alpha)')
>>> find(Law.named("chinchilla")) is None  # E has a floor() prior, on the log link
True
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from .formula import Formula, parse

# the call that undoes each outcome's link: the link-scale expression is its argument
INVERSE_LINK = {"unit": "sigmoid", "positive": "exp"}


@dataclass(frozen=True)
class Anchor:
    """The offset ``parameter`` and the law on its link scale (``predictor``)."""

    parameter: str
    predictor: Formula


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


def find(law) -> Anchor | None:
    """The law's anchorable offset, or ``None`` (see the module docstring for the rule)."""
    if any(spec.scale != "reference" or spec.derived is not None for spec in law.input_specs.values()):
        return None
    inner = _predictor(law)
    if inner is None:
        return None
    names = [n.id for n in ast.walk(inner) if isinstance(n, ast.Name)]
    whole = [n.id for n in ast.walk(ast.parse(law.formula.text, mode="eval")) if isinstance(n, ast.Name)]
    for term in _plus_terms(inner):
        if not isinstance(term, ast.Name) or term.id not in law.parameters:
            continue
        name = term.id
        if law.parameters[name].prior.kind == "normal" and names.count(name) == 1 == whole.count(name):
            return Anchor(name, parse(ast.unparse(inner), what=f"link-scale formula of law '{law.name}'"))
    return None
