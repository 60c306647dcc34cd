"""What the workflow service's lifespan opens and its servicer and loops use."""

from __future__ import annotations

from dataclasses import dataclass

from services.workflow.engine.clock import Clock
from services.workflow.engine.runner import Engine
from services.workflow.settings import WorkflowSettings
from services.workflow.store import Store


@dataclass(frozen=True)
class WorkflowDeps:
    """The workflow replica's dependencies, typed."""

    settings: WorkflowSettings
    store: Store
    engine: Engine
    clock: Clock
