"""A number box that shows a bad value as bad and keeps the last good one in use.

`NumberField` is an `Input` with a Textual validator (`Number` or `Integer`, with bounds).
While what is typed is invalid ("abc", "-1" where 0..5 is allowed) the box is tinted as
invalid and a hint beside it says which value is still in use ("✗ using 0.8"); `number` is
always that value, never a silent fallback.
"""

from __future__ import annotations

from textual.validation import Integer, Number, ValidationResult
from textual.widgets import Input, Static


class NumberHint(Static):
    """The "✗ using 0.8" beside an invalid `NumberField` (hidden while the value is good)."""

    DEFAULT_CSS = """
    NumberHint { width: auto; height: 1; color: $text-error; padding: 0 1 0 0; display: none; }
    NumberHint.-shown { display: block; }
    """


class NumberField(Input):
    """An int or float box with bounds. Read `number` for the value in use."""

    DEFAULT_CSS = """
    NumberField { width: 8; }
    """

    def __init__(self, value: str = "", *, kind: type = float, lo: float | None = None, hi: float | None = None,
                 compact: bool = True, **kwargs) -> None:
        self.kind, self.lo, self.hi = kind, lo, hi
        self._good = self._parse(value)
        if self._good is None:
            raise ValueError(f"NumberField: the initial value {value!r} is not valid")
        words = "a whole number" if kind is int else "a number"
        bounds = (f" from {self._show(lo)} to {self._show(hi)}" if lo is not None and hi is not None
                  else f" of at least {self._show(lo)}" if lo is not None else "")
        self.rule = words + bounds
        validator = (Integer if kind is int else Number)(minimum=lo, maximum=hi,
                                                          failure_description=f"Type {self.rule}.")
        self.hint = NumberHint()
        super().__init__(str(value), validators=[validator], compact=compact, **kwargs)

    def _show(self, value) -> str:
        return str(int(value)) if self.kind is int or float(value).is_integer() else str(value)

    def _parse(self, text: str):
        try:
            value = self.kind(text.strip())
        except (TypeError, ValueError):
            return None
        if value != value or value in (float("inf"), float("-inf")):
            return None
        if (self.lo is not None and value < self.lo) or (self.hi is not None and value > self.hi):
            return None
        return value

    @property
    def number(self):
        """The value in use: what is typed when it is valid, else the last good value."""
        return self._good

    @property
    def invalid(self) -> bool:
        return self._parse(self.value) is None

    def on_mount(self) -> None:
        if self.parent is not None and self.hint.parent is None:
            self.parent.mount(self.hint, after=self)

    def validate(self, value: str) -> ValidationResult | None:
        result = super().validate(value)
        parsed = self._parse(value)
        if parsed is not None:
            self._good = parsed
            self.hint.remove_class("-shown")
            self.tooltip = None
        else:
            self.hint.update(f"✗ using {self._show(self._good)}")
            self.hint.add_class("-shown")
            self.tooltip = f"Type {self.rule}; {self._show(self._good)} is in use until then."
        return result
