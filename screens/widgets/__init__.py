"""Widgets shared by the screens."""

from screens.widgets.model_status import ModelStatus

__all__ = ["ModelStatus"]
