"""The parts of a running server, as routes and pages reach them (`spanlake.api.state.services_of`).

One typed object, built by the wiring (server.py) once every part has started, so no field is
ever missing while requests are served. It is how requests find the parts, not how parts find
each other: each component is constructed with exactly what it needs and never sees this object.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from spanlake.auth import KeyRing
from spanlake.capture.component import CaptureRules
from spanlake.ingest.loader import Loader
from spanlake.ingest.log import IngestLog
from spanlake.ingest.receiver import Receiver
from spanlake.lifecycle import Lifecycle
from spanlake.maintenance import Maintenance
from spanlake.metrics import Metrics
from spanlake.outbound import OutboundPolicy
from spanlake.runs.component import RunsComponent
from spanlake.scoring.component import ScoringComponent
from spanlake.settings import Settings
from spanlake.store import Store
from spanlake.ui.sessions import Sessions


@dataclass
class Services:
    settings: Settings
    store: Store
    log: IngestLog
    loader: Loader
    receiver: Receiver
    metrics: Metrics
    keys: KeyRing
    ui_sessions: Sessions
    outbound: OutboundPolicy  # where URLs that arrive through the API may point (outbound.py)
    scoring: ScoringComponent
    capture: CaptureRules
    runs: RunsComponent
    maintenance: Maintenance
    parts: Lifecycle = field(repr=False)  # everything above that runs, to stop in reverse
    # Set when shutdown begins: job workers claim nothing new while requests drain.
    shutdown: asyncio.Event = field(default_factory=asyncio.Event)
    ready: bool = False

    @property
    def stopping(self) -> bool:
        return self.shutdown.is_set()

    def begin_stop(self) -> None:
        """Say so on /readyz and start no new background work; requests in flight still finish."""
        self.ready = False
        self.shutdown.set()

    async def stop(self) -> None:
        """Stop taking spans, then stop every part in reverse start order.

        The loader stops after its transaction in progress: the log holds the rest, fsynced."""
        self.begin_stop()
        self.log.stop_accepting()
        await self.parts.stop()
