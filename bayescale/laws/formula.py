"""Safe arithmetic formulas: parsed into a tree of closures, never ``eval``-ed.

A formula is a Python-syntax expression over numbers, names, ``+ - * / **``,
unary minus and a whitelist of functions.  :func:`parse` checks the syntax tree
node by node and builds a function of an environment (a mapping of names to
arrays), so a formula read from a file can do nothing but arithmetic.

Examples
--------
>>> import numpy as np
>>> f = parse("E + A * N**(-alpha)", names={"E", "A", "N", "alpha"})
>>> float(f({"E": 1.0, "A": 2.0, "N": 4.0, "alpha": 0.5}, np))
2.0
>>> sorted(f.names)
['A', 'E', 'N', 'alpha']
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ..errors import LawError

# name -> attribute of the array namespace (jax.numpy or numpy) that implements it
FUNCTIONS: dict[str, str] = {
    "log": "log",
    "log10": "log10",
    "log1p": "log1p",
    "exp": "exp",
    "expm1": "expm1",
    "sqrt": "sqrt",
    "abs": "abs",
    "tanh": "tanh",
    "minimum": "minimum",
    "maximum": "maximum",
    "sigmoid": "__sigmoid__",
    "softplus": "__softplus__",
}

_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos}
_SYMBOL = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}


def _function(xp, name: str) -> Callable:
    if name == "__sigmoid__":
        return lambda x: 1.0 / (1.0 + xp.exp(-x))
    if name == "__softplus__":
        return lambda x: xp.logaddexp(x, 0.0)
    return getattr(xp, name)


@dataclass(frozen=True)
class Formula:
    """A parsed formula: call it with an environment and an array namespace."""

    text: str
    names: frozenset[str]
    _fn: Callable

    def __call__(self, env: Mapping, xp=None):
        if xp is None:
            import jax.numpy as xp
        return self._fn(env, xp)


def parse(text: str, names: set[str] | None = None, what: str = "formula",
          extra: Mapping[str, tuple[int, Callable]] | None = None) -> Formula:
    """Parse ``text`` into a :class:`Formula`.

    Parameters
    ----------
    text : str
        The expression, e.g. ``"E + A * N**(-alpha)"``.
    names : set of str, optional
        Names the formula may use.  An unknown name is an error naming it and
        listing the allowed ones.  ``None`` accepts any name.
    what : str
        How to refer to the text in error messages (e.g. ``"formula of law 'power'"``).
    extra : dict, optional
        More functions: name -> (number of arguments, implementation).  Used for
        the per-run schedule functions of derived inputs (:mod:`bayescale.laws.schedule`).

    Raises
    ------
    LawError
        On a syntax error, a forbidden construct (attribute access, subscripts,
        keyword arguments, calls outside :data:`FUNCTIONS`, ...) or an unknown name.
    """
    if not isinstance(text, str) or not text.strip():
        raise LawError(f"{what} is empty; write an expression such as 'E + A * N**(-alpha)'.")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except RecursionError:
        raise LawError(f"{what} is nested too deeply to parse; simplify it.") from None
    except SyntaxError as exc:
        raise LawError(
            f"{what} {text!r} is not a valid expression: {exc.msg} at column {exc.offset}."
        ) from None
    used: set[str] = set()
    try:
        fn = _build(tree.body, text, what, used, extra or {})
    except RecursionError:
        raise LawError(f"{what} is nested too deeply to parse; simplify it.") from None
    if names is not None:
        unknown = sorted(used - set(names) - set(FUNCTIONS) - set(extra or {}))
        if unknown:
            raise LawError(
                f"{what} {text!r} uses unknown name(s) {unknown}; "
                f"allowed names are {sorted(names)}."
            )
    return Formula(text=text.strip(), names=frozenset(used), _fn=fn)


def _build(node: ast.AST, text: str, what: str, used: set[str], extra: Mapping) -> Callable:
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise LawError(f"{what} {text!r}: only numbers are allowed as constants, not {node.value!r}.")
        value = float(node.value)
        return lambda env, xp: value
    if isinstance(node, ast.Name):
        name = node.id
        if name in FUNCTIONS or name in extra:
            raise LawError(f"{what} {text!r}: '{name}' is a function; call it as {name}(...).")
        used.add(name)
        return lambda env, xp: env[name]
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        op = _BINARY[type(node.op)]
        left = _build(node.left, text, what, used, extra)
        right = _build(node.right, text, what, used, extra)
        return lambda env, xp: op(left(env, xp), right(env, xp))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        op = _UNARY[type(node.op)]
        operand = _build(node.operand, text, what, used, extra)
        return lambda env, xp: op(operand(env, xp))
    if isinstance(node, ast.Call):
        return _build_call(node, text, what, used, extra)
    raise LawError(
        f"{what} {text!r}: '{ast.unparse(node)}' is not allowed. Formulas may use numbers, "
        f"names, + - * / **, unary minus and the functions {sorted(FUNCTIONS)}."
    )


def _build_call(node: ast.Call, text: str, what: str, used: set[str], extra: Mapping) -> Callable:
    known = sorted([*FUNCTIONS, *extra])
    if not isinstance(node.func, ast.Name) or node.func.id not in known:
        raise LawError(
            f"{what} {text!r}: call of '{ast.unparse(node.func)}' is not allowed; "
            f"allowed functions are {known}."
        )
    if node.keywords:
        raise LawError(f"{what} {text!r}: keyword arguments are not allowed in '{ast.unparse(node)}'.")
    args = [_build(a, text, what, used, extra) for a in node.args]
    if node.func.id in extra:
        expected, call = extra[node.func.id]
        _arity(node.func.id, expected, len(args), text, what)
        return lambda env, xp: call(xp, *(a(env, xp) for a in args))
    impl = FUNCTIONS[node.func.id]
    expected = 2 if impl in ("minimum", "maximum") else 1
    _arity(node.func.id, expected, len(args), text, what)
    return lambda env, xp: _function(xp, impl)(*(a(env, xp) for a in args))


def _arity(name: str, expected: int, got: int, text: str, what: str) -> None:
    if got != expected:
        raise LawError(f"{what} {text!r}: {name}() takes {expected} argument(s), got {got}.")


def parse_call(text: str, allowed: Mapping[str, int], what: str) -> tuple[str, list[float]]:
    """Parse ``"name(number, ...)"`` with constant arguments, e.g. a prior.

    Arguments may be constant expressions (``log(0.3)``, ``-1.2``).  Returns the
    function name and the evaluated arguments.  ``allowed`` maps each allowed
    name to its number of arguments.
    """
    try:
        tree = ast.parse(str(text).strip(), mode="eval").body
    except SyntaxError as exc:
        raise LawError(f"{what} {text!r} is not valid: {exc.msg}.") from None
    if not (isinstance(tree, ast.Call) and isinstance(tree.func, ast.Name)):
        raise LawError(f"{what} {text!r} must look like name(arguments), e.g. 'normal(0, 1)'.")
    name = tree.func.id
    if name not in allowed:
        raise LawError(f"{what} {text!r}: unknown '{name}'; choose one of {sorted(allowed)}.")
    if tree.keywords or len(tree.args) != allowed[name]:
        raise LawError(
            f"{what} {text!r}: {name}() takes {allowed[name]} positional number(s)."
        )
    import numpy as np

    values = []
    for arg in tree.args:
        fn = _build(arg, text, what, set(), {})
        try:
            values.append(float(fn({}, np)))
        except KeyError as exc:
            raise LawError(f"{what} {text!r}: arguments must be numbers, found name {exc}.") from None
        except ArithmeticError as exc:
            raise LawError(f"{what} {text!r}: an argument cannot be computed ({exc}).") from None
    return name, values
