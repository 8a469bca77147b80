"""Background components of a running server (scoring workers, capture rules, runs, maintenance).

Started in this order after the store and ingest log, each with `async def start(services)`, and
stopped in reverse before the loader stops. Each lands in its own typed attribute of `Services`,
so code that needs another component names it (`services.maintenance`), never by a string.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from spanlake.capture import component as capture_component
from spanlake.runs import component as runs_component
from spanlake.scoring import component as scoring_component
from spanlake.store import maintenance

if TYPE_CHECKING:
    from spanlake.server import Services

log = logging.getLogger(__name__)

# Scoring first: capture checks the rules' `score:` names against its scorers.
_ORDER = ("scoring", "capture", "runs", "maintenance")


async def start_components(services: "Services") -> None:
    services.scoring = await scoring_component.start(services)
    services.capture = await capture_component.start(services)
    services.runs = await runs_component.start(services)
    services.maintenance = await maintenance.start(services)


async def stop_components(services: "Services") -> None:
    for name in reversed(_ORDER):
        component = getattr(services, name)
        if component is None:
            continue
        try:
            await component.stop()
        except Exception:  # one component failing to stop must not keep the others running
            log.exception("stopping the %s component failed", name)
        setattr(services, name, None)
