"""Deterministic, cheap random draws for seeding: the same seed gives the same account."""

from __future__ import annotations

import random
from typing import Any

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"  # in ASCII order
_TOKEN_TABLE = bytes(ord(BASE62[i % 62]) for i in range(256))
_HEX_TABLE = bytes(ord("0123456789abcdef"[i % 16]) for i in range(256))


class Dice:
    """Small random draws, cheap: one getrandbits feeds many choices."""

    def __init__(self, rng: random.Random):
        self.rng, self.bits = rng, 0

    def below(self, n: int) -> int:
        if self.bits < n << 32:  # refill while plenty remains, so modulo bias stays negligible
            self.bits = self.rng.getrandbits(512)
        self.bits, value = divmod(self.bits, n)
        return value

    def pick(self, items: tuple) -> Any:
        return items[self.below(len(items))]

    def between(self, low: int, high: int) -> int:
        return low + self.below(high - low + 1)

    def chance(self, p: float) -> bool:
        return self.below(10_000) < p * 10_000

    def token(self, n: int) -> str:
        """n random alphanumerics: random bytes mapped onto base 62 (a slight bias is fine)."""
        return self.rng.randbytes(n).translate(_TOKEN_TABLE).decode()

    def hex(self, n: int) -> str:
        return self.rng.randbytes(n).translate(_HEX_TABLE).decode()


def dice_for(seed: int, stream: str) -> Dice:
    """The dice of one named stream of a seed: streams never shift each other's draws."""
    return Dice(random.Random(f"{seed}:{stream}"))


def names(dice: Dice, base: tuple[str, ...], n: int) -> list[str]:
    """n unique realistic names: the base list shuffled, then numbered ("Billing Bot 17"); "" without a list."""
    if not base:
        return [""] * n
    order = list(base)
    dice.rng.shuffle(order)
    return [order[i % len(order)] + (f" {i // len(order) + 1}" if i >= len(order) else "") for i in range(n)]


def rotated(items: tuple, start: int, count: int) -> tuple:
    """`count` distinct items from `start`, wrapping: one draw instead of a sample."""
    return (items + items)[start:start + min(count, len(items))]
