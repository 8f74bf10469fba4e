"""Final answers of SFT responses and benchmark items, and whether two records agree on theirs.

Why: an embedding says two texts are about the same thing, not that they are the same task. GSM8K
holds "inverse" problems (the same story asking for another unknown, cosine 0.98+), and MMLU
questions share stems; removing one of such a pair as a "duplicate" deletes a distinct task. For
SFT a duplicate is the same task *with the same answer*, so a semantic link is checked against the
answers before it may remove a record (see `dedup_audit.pipeline._semantic_split`).

An answer is extracted only where the text says what it is:

- GSM8K style: ``#### 72``; "The answer is 72"; ``\\boxed{72}``;
- multiple choice: a lone letter ("C", "(C)", "Answer: C");
- code: the names of the top-level functions it defines (the entry point);
- otherwise the last number of the response (GSM8K worked solutions end with the result).

Responses without any of these have no answer (None): the caller then falls back to comparing
the prompt and response views.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_NUM = r"-?\$?\d[\d,]*(?:\.\d+)?"
_HASHES = re.compile(r"####\s*(" + _NUM + ")")
_ANSWER_IS = re.compile(r"(?i:answer\s+is)\s*:?\s*\(?(" + _NUM + r"|[A-J])\)?(?!\w)")
_BOXED = re.compile(r"\\boxed\{([^{}]*)\}")
_CHOICE = re.compile(r"^\s*(?i:answer\s*[:\-]?\s*)?\(?([A-J])\)?[.)]?\s*$")
_DEF = re.compile(r"^def\s+([A-Za-z_]\w*)\s*\(", re.MULTILINE)
_NUMBER = re.compile(_NUM)


def _number(text: str) -> str | None:
    """A canonical form of a number ("1,200.0" -> "1200", "$0.50" -> "0.5")."""
    cleaned = text.replace(",", "").replace("$", "").rstrip(".")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        return None
    if value == value.to_integral_value():
        return str(value.quantize(Decimal(1)))
    return format(value.normalize(), "f")


def final_answer(response: str) -> str | None:
    """The final answer a response states, canonicalised (see the module docstring), or None."""
    text = response.strip()
    if not text:
        return None
    m = _HASHES.search(text)
    if m:
        return _number(m[1])
    m = _BOXED.search(text)
    if m:
        inner = m[1].strip()
        return _number(inner) or inner.lower()
    m = _CHOICE.match(text)
    if m:
        return f"choice:{m[1].upper()}"
    matches = list(_ANSWER_IS.finditer(text))
    if matches:
        value = matches[-1][1]
        return f"choice:{value.upper()}" if value.isalpha() else _number(value)
    defs = _DEF.findall(text)
    if defs:
        return "def:" + ",".join(sorted(set(defs)))
    numbers = _NUMBER.findall(text)
    for raw in reversed(numbers):
        canon = _number(raw)
        if canon is not None:
            return canon
    return None


def task_numbers(text: str) -> tuple[str, ...]:
    """The quantities a task states, canonicalised and sorted: two phrasings of one task state
    the same ones, while GSM8K's template siblings ("270 miles in 3 hours" / "360 miles in 3
    hours") differ here even when their answers happen to coincide."""
    found = (_number(n) for n in _NUMBER.findall(text))
    return tuple(sorted(n for n in found if n is not None))


def answers_agree(a: str | None, b: str | None) -> bool | None:
    """True / False when both answers are known, None when either is unknown."""
    if a is None or b is None:
        return None
    return a == b
