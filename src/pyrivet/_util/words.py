"""Small helpers for the sentences of error messages."""

from __future__ import annotations

__all__ = ["a_or_an"]

_VOWELS = frozenset("aeiouAEIOU")


def a_or_an(word: str) -> str:
    """``word`` with its indefinite article: ``"an ActorDefinition"``, ``"a Registry"``.

    Goes by the first letter, which is right for the type and value names the error
    messages use (it would say "an user", but no message names one).
    """
    return f"an {word}" if word[:1] in _VOWELS else f"a {word}"
