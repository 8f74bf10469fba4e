"""The shape of a program, for telling a rephrased benchmark program from a different one.

Why: a GPT-4 rephrasing of a HumanEval program renames the function and its variables and
rewords the docstring, so its embedding is only about as close to the original (cosine 0.63-0.79)
as another HumanEval program or an unrelated code request is. What survives a rephrasing is the
shape of the code: keywords, operators, builtins and method names in the same order. Identifiers
become `v` and string literals `S` (numbers stay: constants such as 0, 1, 2 survive); comments and docstrings are dropped (the embedding
already compares the prose). Two programs share a shape when their word 4-grams over these tokens
overlap (Jaccard); a text without a function definition has no shape.

A program's examples survive too, as their literal skeleton: a rephrasing changes the values in
`incr_list([1, 2, 3])` and `[2, 3, 4]` but keeps their types, counts and brackets
(`augment_values([4, 7, 9])` / `[5, 8, 10]`). `literal_skeleton` keeps only brackets, separators,
arrows and literal kinds (integer, decimal, string, True / False / None) of the whole text, every
word dropped, and two skeletons are compared by the Jaccard of their word SKELETON_N-grams.
"""

from __future__ import annotations

import builtins
import hashlib
import keyword
import re

SHAPE_N = 4
_KEEP = frozenset(keyword.kwlist) | frozenset(dir(builtins))
_TOKEN = re.compile(
    r'("""[\s\S]*?"""|\'\'\'[\s\S]*?\'\'\'|"[^"\n]*"|\'[^\'\n]*\'|#[^\n]*'
    r"|\d+(?:\.\d+)?|[A-Za-z_]\w*|==|!=|<=|>=|\*\*|//|\+=|-=|\S)"
)
_DEF = re.compile(r"^\s*def\s+[A-Za-z_]\w*\s*\(", re.MULTILINE)

SKELETON_N = 5
_LITERAL = re.compile(
    r"\"[^\"\n]*\"|'[^'\n]*'|\d+\.\d+|\d+|[A-Za-z_]\w*|>>>|==>|=>|->|[\[\](){},:]"
)
_LITERAL_WORDS = frozenset(["True", "False", "None"])


def shape_tokens(code: str) -> list[str]:
    """The program's tokens with names abstracted (see the module docstring)."""
    out: list[str] = []
    prev = ""
    for tok in _TOKEN.findall(code):
        if tok.startswith(("#", '"""', "'''")):
            continue
        if tok[0] in "\"'":
            out.append("S")
        elif tok[0].isalpha() or tok[0] == "_":
            out.append(tok if tok in _KEEP or prev == "." else "v")
        else:
            out.append(tok)
        prev = tok
    return out


def code_shape(text: str) -> frozenset[bytes]:
    """Hashed SHAPE_N-grams of the shape tokens; empty when the text defines no function."""
    if not _DEF.search(text):
        return frozenset()
    toks = shape_tokens(text)
    return frozenset(
        hashlib.blake2b(" ".join(toks[i : i + SHAPE_N]).encode(), digest_size=8).digest()
        for i in range(len(toks) - SHAPE_N + 1)
    )


def shape_similarity(a: frozenset[bytes], b: frozenset[bytes]) -> float:
    """Jaccard of two shapes (0.0 when either is empty)."""
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


def skeleton_tokens(text: str) -> list[str]:
    """The literal skeleton's tokens: `S` for a string, `F` for a decimal, `N` for an integer,
    True / False / None, brackets, commas, colons and example arrows, in order."""
    out: list[str] = []
    for tok in _LITERAL.findall(text):
        if tok[0] in "\"'":
            out.append("S")
        elif tok[0].isdigit():
            out.append("F" if "." in tok else "N")
        elif tok[0].isalpha() or tok[0] == "_":
            if tok in _LITERAL_WORDS:  # other words (names, prose) are dropped
                out.append(tok)
        else:
            out.append(tok)
    return out


def literal_skeleton(text: str) -> frozenset[bytes]:
    """Hashed SKELETON_N-grams of the literal skeleton; empty when the text defines no function
    (prose has brackets and numbers too, but no examples of a program to keep)."""
    if not _DEF.search(text):
        return frozenset()
    toks = skeleton_tokens(text)
    return frozenset(
        hashlib.blake2b(" ".join(toks[i : i + SKELETON_N]).encode(), digest_size=8).digest()
        for i in range(len(toks) - SKELETON_N + 1)
    )
