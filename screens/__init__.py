"""deepdive-lab's Textual UI: one screen per file, shared widgets in `screens.widgets`."""

from screens.app import LabApp, make_app

__all__ = ["LabApp", "make_app"]
