"""What is called and how: providers, models, capabilities, task routes, prompts, chains, the engine.

`from routing import orchestrator` gives the Python API (imported lazily so that
importing this app during Django's start-up stays cheap).
"""

import importlib
from typing import Any


def __getattr__(name: str) -> Any:
    if name == "orchestrator":
        # import_module, not `from routing import orchestrator`: that asks this very
        # __getattr__ again before importing the submodule (infinite recursion).
        return importlib.import_module("routing.orchestrator")
    raise AttributeError(name)
