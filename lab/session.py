"""A lab session: which models play the base and chat roles, loaded once and shared.

Headless (no UI import). The app asks for a role's backend from a worker thread;
loading happens once per role and the result (or the error) is remembered, so a
failed load is reported, not retried in a loop, until the user asks again.

The logit lens needs hidden states, which llama.cpp does not expose: `load_lens(role)` loads
the transformers backend of that role's model once (shared by roles naming the same model) and
`close()` frees it with the others.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from lab.catalogue import BASE_DEFAULT, CHAT_DEFAULT
from lab.errors import LabError

MODEL_ROLES = ("chat", "base")  # the two models a session holds


@dataclass
class Settings:
    base_model: str = BASE_DEFAULT
    chat_model: str = CHAT_DEFAULT
    device: str = "auto"
    backend: str = "auto"


class Session:
    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self._lock = threading.Lock()
        self._role_locks = {role: threading.Lock() for role in MODEL_ROLES}
        self._backends: dict[str, object] = {}
        self._errors: dict[str, LabError] = {}
        self._lens_lock = threading.Lock()  # one lens load at a time
        self._lenses: dict[str, object] = {}  # model name -> its transformers backend
        self.loading = True  # False while the app runs without models (--no-models) until asked to load

    def model_name(self, role: str) -> str:
        return self.settings.chat_model if role == "chat" else self.settings.base_model

    def loaded(self, role: str):
        """The backend for `role` if it is loaded, else None (never blocks)."""
        with self._lock:
            return self._backends.get(role)

    def error(self, role: str) -> LabError | None:
        with self._lock:
            return self._errors.get(role)

    def role_status(self, role: str) -> str:
        """"" when the role's model is loaded, else a sentence for the screen: "the chat model
        (smollm2-135m-instruct) is loading…" or "the chat model failed to load: <why>"."""
        with self._lock:
            if role in self._backends:
                return ""
            err = self._errors.get(role)
        if err is not None:
            return f"the {role} model failed to load: {err.message}"
        if not self.loading:
            return f"the {role} model is not loaded (the lab started without models; palette: models: reload)"
        return f"the {role} model ({self.model_name(role)}) is loading…"

    def use(self, role: str, name: str) -> None:
        """Let model `name` play `role` from now on; call `load(role)` next. Never blocks on a
        load in progress: that load's result is dropped when it ends (see `load`)."""
        with self._lock:
            old = self._backends.pop(role, None)
            self._errors.pop(role, None)
            if role == "chat":
                self.settings.chat_model = name
            else:
                self.settings.base_model = name
            # A lens of a model no role uses any more goes too.
            self._lenses = {k: v for k, v in self._lenses.items()
                            if k in (self.settings.base_model, self.settings.chat_model)}
        # The old backend is not closed here: a stream may still hold it. It is freed when the
        # last reference goes (llama.cpp and torch free their memory then).
        del old

    def load(self, role: str):
        """Load (once) and return the backend for `role`. Blocks: call from a worker thread.

        Raises the `LabError` of a failed load; unexpected exceptions are wrapped in one.
        """
        from lab import catalogue

        with self._role_locks[role]:
            with self._lock:
                if role in self._backends:
                    return self._backends[role]
                self._errors.pop(role, None)
            name = self.model_name(role)
            other = "base" if role == "chat" else "chat"
            with self._lock:
                shared = self._backends.get(other) if self.model_name(other) == name else None
            try:
                backend = shared or catalogue.load(name, backend=self.settings.backend, device=self.settings.device)
            except LabError as exc:
                with self._lock:
                    if self.model_name(role) == name:  # not replaced meanwhile (`use`)
                        self._errors[role] = exc
                raise
            except Exception as exc:  # a bug or an unexpected library failure: still a message, not a crash
                err = LabError(f"loading {name} failed: {exc.__class__.__name__}: {exc}")
                with self._lock:
                    if self.model_name(role) == name:
                        self._errors[role] = err
                raise err from exc
            with self._lock:
                if self.model_name(role) != name:  # another model was picked while this one loaded
                    raise LabError(f"{name} was replaced by {self.model_name(role)} while it loaded.")
                self._backends[role] = backend
            return backend

    def lens_loaded(self, role: str):
        """A backend that exposes hidden states for `role`'s model if one is loaded, else None (never blocks)."""
        with self._lock:
            own = self._backends.get(role)
            if own is not None and own.capabilities.supports_hidden_states:
                return own
            return self._lenses.get(self.model_name(role))

    def load_lens(self, role: str):
        """Load (once) and return a backend with hidden states for `role`'s model: the role's own
        backend when it has them, else the model through transformers. Blocks: call from a worker.

        Raises a `LabError` when it cannot be loaded (the next call tries again)."""
        from lab import catalogue

        with self._lens_lock:
            found = self.lens_loaded(role)
            if found is not None:
                return found
            name = self.model_name(role)
            try:
                backend = catalogue.load(name, backend="transformers", device=self.settings.device)
            except LabError:
                raise
            except Exception as exc:  # e.g. torch missing: a message, not a crash
                raise LabError(f"loading {name} through transformers failed: {exc.__class__.__name__}: {exc}") from exc
            with self._lock:
                self._lenses[name] = backend
            return backend

    def close(self) -> None:
        with self._lock:
            backends, self._backends = list(self._backends.values()) + list(self._lenses.values()), {}
            self._lenses = {}
        seen: set[int] = set()
        for b in backends:
            if id(b) not in seen:
                seen.add(id(b))
                try:
                    b.close()
                except Exception:  # closing is best effort at exit
                    pass
