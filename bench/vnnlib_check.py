"""Does a VNN-LIB 1.0 file's formula hold at a point? An evaluator of the bench's own.

``holds(text, x, y)`` reads the file as s-expressions and evaluates every ``assert`` at inputs
``x`` and outputs ``y`` in exact rational arithmetic (``Fraction``; decimals read exactly), with
``and``, ``or``, ``not``, ``=>``, comparisons (chained too), ``+``, ``-``, ``*`` and ``/``. It
shares no code with the kit's reader (``verifier.vnnlib_reader``), so the bench can confirm a
counterexample against it; unlike the ``vnnlib`` package's ``read_vnnlib_simple``, it reads input
constraints over several inputs (ACC's ``1.5 X_1 - X_2 <= -5``) as what they say.
"""
from __future__ import annotations

import re
from fractions import Fraction

_TOKEN = re.compile(r"\(|\)|[^\s()]+")


def _parse(text: str) -> list:
    text = re.sub(r";[^\n]*", " ", text)
    stack: list = [[]]
    for tok in _TOKEN.findall(text):
        if tok == "(":
            stack.append([])
        elif tok == ")":
            done = stack.pop()
            stack[-1].append(done)
        else:
            stack[-1].append(tok)
    if len(stack) != 1:
        raise ValueError("unbalanced parentheses")
    return stack[0]


def _value(e, point: dict):
    if isinstance(e, str):
        if e in point:
            return point[e]
        if e in ("true", "false"):
            return e == "true"
        return Fraction(e)
    op, args = e[0], [_value(a, point) for a in e[1:]]
    if op == "and":
        return all(args)
    if op == "or":
        return any(args)
    if op == "not":
        return not args[0]
    if op == "=>":
        return (not args[0]) or args[1]
    if op in ("<=", ">=", "<", ">", "="):
        test = {"<=": lambda a, b: a <= b, ">=": lambda a, b: a >= b, "<": lambda a, b: a < b,
                ">": lambda a, b: a > b, "=": lambda a, b: a == b}[op]
        return all(test(a, b) for a, b in zip(args, args[1:]))
    if op == "+":
        return sum(args, Fraction(0))
    if op == "-":
        return -args[0] if len(args) == 1 else args[0] - sum(args[1:], Fraction(0))
    if op == "*":
        out = Fraction(1)
        for a in args:
            out *= a
        return out
    if op == "/":
        out = args[0]
        for a in args[1:]:
            out /= a
        return out
    raise ValueError(f"operator {op!r} not read")


def holds(text: str, x: list, y: list) -> bool:
    """Do all the file's asserts hold at inputs ``x`` and outputs ``y`` (numbers or decimal
    strings, read exactly)?"""
    point = {f"X_{i}": Fraction(v) for i, v in enumerate(x)}
    point.update({f"Y_{j}": Fraction(v) for j, v in enumerate(y)})
    return all(_value(cmd[1], point) for cmd in _parse(text)
               if isinstance(cmd, list) and cmd and cmd[0] == "assert")


def inside(text: str, x: list) -> bool:
    """Do the asserts that mention only inputs hold at ``x``?"""
    point = {f"X_{i}": Fraction(v) for i, v in enumerate(x)}

    def inputs_only(e) -> bool:
        if isinstance(e, str):
            return not e.startswith("Y_")
        return all(inputs_only(a) for a in e)

    return all(_value(cmd[1], point) for cmd in _parse(text)
               if isinstance(cmd, list) and cmd and cmd[0] == "assert" and inputs_only(cmd[1]))
