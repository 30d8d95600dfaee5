"""Arithmetic: "What is 17 * 23?" → "17 * 23 = 391", wrong now and then at the `math` rate.

Expressions are parsed with `ast` and evaluated by a walker that knows numbers, + - * / ** %,
unary minus and parentheses, with bounds on size, depth and exponents (never `eval`). Words
("plus", "times", "divided by", "squared") and "15% of 80" are turned into symbols first.
"""

from __future__ import annotations

import ast
import operator
import re
from decimal import Decimal
from fractions import Fraction

from routing.providers.simulated.options import Profile
from routing.providers.simulated.task import Answer, Solver, Task, errs, pick

MAX_CHARS = 200
MAX_DEPTH = 32
MAX_MAGNITUDE = 10**30
MAX_EXPONENT = 64

_WORDS = [
    (r"\bmultiplied by\b|\btimes\b|×", "*"),
    (r"\bdivided by\b|÷", "/"),
    (r"\bplus\b|\badded to\b", "+"),
    (r"\bminus\b", "-"),
    (r"\bto the power of\b|\^", "**"),
    (r"\bmodulo\b|\bmod\b", "%"),
    (r"\bsquared\b", "** 2"),
    (r"\bcubed\b", "** 3"),
    (r"(?<=\d),(?=\d{3}\b)", ""),  # 1,000 → 1000
]
_PERCENT_OF = re.compile(r"(\d+(?:\.\d+)?)\s*%\s*of\s*(\d+(?:\.\d+)?)", re.IGNORECASE)
_EXPRESSION = re.compile(r"[-+(]*\s*\d[\d\s.+\-*/%()]*")
_OPERATORS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}


class NotArithmetic(ValueError):
    pass


def find_expression(text: str) -> str | None:
    """The longest arithmetic expression in `text` with at least one operator, normalised."""
    lowered = text
    for pattern, symbol in _WORDS:
        lowered = re.sub(pattern, f" {symbol} " if symbol else symbol, lowered, flags=re.IGNORECASE)
    lowered = _PERCENT_OF.sub(lambda m: f"({m.group(1)} / 100 * {m.group(2)})", lowered)
    best = None
    for match in _EXPRESSION.finditer(lowered):
        candidate = match.group(0).strip().rstrip(".").strip()
        if not re.search(r"\d\s*(\*\*|[-+*/%])\s*[-+(]*\s*\d", candidate):
            continue
        candidate = _balance(candidate)
        if best is None or len(candidate) > len(best):
            best = candidate
    if best is None or len(best) > MAX_CHARS:
        return None
    return " ".join(best.split())


def _balance(text: str) -> str:
    """Drop unmatched parentheses at the ends (an expression cut out of a sentence)."""
    while text.count("(") > text.count(")") and text.startswith("("):
        text = text[1:].strip()
    while text.count(")") > text.count("(") and text.endswith(")"):
        text = text[:-1].strip()
    return text


def evaluate(expression: str) -> Fraction:
    """The exact value of `expression`; NotArithmetic when it is not one we accept."""
    try:
        tree = ast.parse(expression, mode="eval")
    except (SyntaxError, ValueError):
        raise NotArithmetic(expression) from None
    return _walk(tree.body, 0)


def _walk(node: ast.AST, depth: int) -> Fraction:
    if depth > MAX_DEPTH:
        raise NotArithmetic("too deep")
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        value = Fraction(Decimal(str(node.value)))
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        inner = _walk(node.operand, depth + 1)
        value = -inner if isinstance(node.op, ast.USub) else inner
    elif isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        left, right = _walk(node.left, depth + 1), _walk(node.right, depth + 1)
        if isinstance(node.op, ast.Div | ast.Mod) and right == 0:
            raise ZeroDivisionError
        if isinstance(node.op, ast.Pow):
            if right.denominator != 1 or abs(right) > MAX_EXPONENT or (left == 0 and right < 0):
                raise NotArithmetic("exponent out of bounds")
            value = left ** int(right)
        else:
            value = Fraction(_OPERATORS[type(node.op)](left, right))
    else:
        raise NotArithmetic(type(node).__name__)
    if abs(value) > MAX_MAGNITUDE or value.denominator > MAX_MAGNITUDE:
        raise NotArithmetic("out of bounds")
    return value


def number_text(value: Fraction) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    text = f"{float(value):.6f}".rstrip("0").rstrip(".")
    return text if text not in ("-0", "") else "0"


def wrong_value(model: Profile, task: Task, value: Fraction) -> Fraction:
    """A plausible slip: a carry off by ten, a digit swapped, off by one, a sign lost."""
    slips: list[Fraction] = [value + 10, value - 10, value + 1, value - 1, value * 10]
    if value.denominator == 1 and abs(value) >= 10:
        digits = str(abs(value.numerator))
        swapped = digits[:-2] + digits[-1] + digits[-2]
        if swapped != digits:
            slips.append(Fraction(int(swapped)) * (1 if value >= 0 else -1))
    if value != 0:
        slips.append(-value)
    if value.denominator != 1:
        slips.append(Fraction(round(value)))
    return pick(model, task, "math-slip", [s for s in slips if s != value])


_CUE = re.compile(
    r"\b(what(?:'s| is)|how much|calculate|compute|evaluate|solve|work out|result of)\b|=\s*\??\s*$",
    re.IGNORECASE,
)


def answer(task: Task, model: Profile, solve: Solver) -> Answer | None:
    expression = find_expression(task.user)
    if expression is None:
        return None
    # A date or a page range is not a sum: ask for a cue, or the expression to be the message.
    bare = len(re.sub(r"\s", "", expression)) >= 0.6 * len(re.sub(r"[\s?.!]", "", task.user))
    if not (bare or _CUE.search(task.user)):
        return None
    try:
        value = evaluate(expression)
    except NotArithmetic:
        return None
    except ZeroDivisionError:
        return Answer(
            text=f"{expression} is undefined: it divides by zero.",
            skill="math",
            key="undefined",
            correct=True,
        )
    wrong = errs(model, task, "math")
    shown = wrong_value(model, task, value) if wrong else value
    key = number_text(shown)
    return Answer(text=f"{expression} = {key}", skill="math", key=key, correct=not wrong)
