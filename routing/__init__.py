"""What is called and how: providers, models, capabilities, task routes, prompts, chains, the engine.

`from routing import orchestrator` gives the Python API (imported lazily so that
importing this app during Django's start-up stays cheap).
"""

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "orchestrator":
        from routing import orchestrator

        return orchestrator
    raise AttributeError(name)
