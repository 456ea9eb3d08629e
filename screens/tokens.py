"""Tokens screen (placeholder until the Tokens issue lands)."""

from screens.placeholder import PlaceholderScreen


class TokensScreen(PlaceholderScreen):
    def __init__(self) -> None:
        super().__init__("Tokens", "Text → UTF-8 bytes → BPE tokens, live as you type.")
