"""What an engine service can serve from its model roots, with the state of each model.

Walking the roots reads the disk, so it runs in a worker thread and its result is kept for a
moment: a UI polling /v1/models, or a burst of requests for a name that is not there, costs
one walk, not one per call.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from pathlib import Path

from switchyard.engine.model_roots import list_model_entries, model_size, resolve_model_path
from switchyard.engine.presets import PresetFile
from switchyard.engine.protocol import EngineAdapter
from switchyard.engine.slot import ModelSlot
from switchyard.errors import EngineError
from switchyard.hub_names import HF_PREFIX
from switchyard.v1 import control_pb2 as pb

logger = logging.getLogger(__name__)

FRESH_S = 2.0  # a listing younger than this is reused


class Catalogue:
    def __init__(self, roots: list[Path], adapter: EngineAdapter, presets: PresetFile) -> None:
        self.roots = roots
        self.adapter = adapter
        self.presets = presets
        self._listed: tuple[float, list[pb.ModelEntry]] | None = None
        self._lock = asyncio.Lock()

    async def entries(self, slots: Iterable[ModelSlot]) -> list[pb.ModelEntry]:
        """The models under the roots, each with the state and names of its slots."""
        async with self._lock:
            if self._listed is None or time.monotonic() - self._listed[0] > FRESH_S:
                listed = await asyncio.to_thread(self._list)
                self._listed = (time.monotonic(), listed)
        entries = []
        for listed_entry in self._listed[1]:
            entry = pb.ModelEntry()
            entry.CopyFrom(listed_entry)
            entries.append(entry)
        by_path: dict[Path, list[ModelSlot]] = {}
        for slot in slots:
            by_path.setdefault(slot.spec.path, []).append(slot)
        for entry in entries:
            holders = by_path.get(Path(entry.path), [])
            entry.served_names.extend(name for slot in holders for name in slot.spec.names)
            entry.loaded = any(slot.state == pb.MODEL_STATE_LOADED for slot in holders)
            states = {slot.state for slot in holders}
            entry.state = next(
                (s for s in (pb.MODEL_STATE_LOADED, pb.MODEL_STATE_LOADING, pb.MODEL_STATE_ERROR) if s in states),
                pb.MODEL_STATE_IDLE,
            )
        return entries

    def names_now(self) -> dict[str, str]:
        """Model name -> path of what lies under the roots, listed now if the kept listing is
        stale (a walk of the disk on the caller's thread: for rare calls, as a load with
        aliases)."""
        if self._listed is None or time.monotonic() - self._listed[0] > FRESH_S:
            self._listed = (time.monotonic(), self._list())
        return {entry.name: entry.path for entry in self._listed[1]}

    def _list(self) -> list[pb.ModelEntry]:
        """The models under the roots, then the presets of the models file: a preset's entry
        stands for its source (its path, or its hub id until pulled) under the preset's name,
        and takes the place of a model of the roots with that name."""
        listed = list_model_entries(self.roots, self.adapter.kind, self.adapter.is_model)
        presets = []
        for name, loadable in self.presets.presets.items():
            source = loadable.request.model_path
            entry = pb.ModelEntry(name=name, engine=self.adapter.kind, path=source, aliases=loadable.request.aliases)
            if not source.startswith(HF_PREFIX):
                try:
                    path = resolve_model_path(source, self.roots)
                except EngineError as exc:
                    logger.warning("preset %s is not listed: %s", name, exc)
                    continue
                entry.path, entry.size_bytes = str(path), model_size(path)
            presets.append(entry)
        named = {entry.name for entry in presets}
        return [*(entry for entry in listed if entry.name not in named), *presets]

    def forget(self) -> None:
        """The roots changed (a pull finished): list them again next time."""
        self._listed = None
