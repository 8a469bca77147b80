"""Background components of a running server (capture rules, scoring workers, runs, retention).

Each is a module with `async def start(services) -> Component`; the server starts them after the
store and ingest log, in this order (the loader starts after them), and stops them in reverse
before the loader stops.
A module that is not present (a package not built yet) is skipped.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from spanlake.server import Services

log = logging.getLogger(__name__)

# Scoring first: capture checks the rules' `score:` names against its scorers.
COMPONENT_MODULES = (
    "spanlake.scoring.component",
    "spanlake.capture.component",
    "spanlake.datasets.component",
    "spanlake.store.maintenance",
)


class Component(Protocol):
    async def stop(self) -> None: ...


async def start_components(services: "Services") -> list[Component]:
    started: list[Component] = []
    for name in COMPONENT_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        component = await module.start(services)
        services.components[name] = component
        started.append(component)
    return started


async def stop_components(services: "Services") -> None:
    for name, component in reversed(list(services.components.items())):
        try:
            await component.stop()
        except Exception:  # one component failing to stop must not keep the others running
            log.exception("stopping %s failed", name)
    services.components.clear()
