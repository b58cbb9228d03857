"""The models of one engine service: slots by name, loads one at a time, eviction, keep-alive,
load on demand, the catalogue under the model roots, and the engine's status.

Like llama-swap and Ollama: a request names a model and it is there. A model that is loading
is waited for; one that is not loaded but lies under the model roots is loaded on demand
(``autoload``); when ``max_models`` are resident the least recently used idle one makes room;
an idle model past its keep-alive is unloaded. An explicit load (the seed's API) may evict a
busy model, aborting its requests, as the seed's "load switches the model" did; a load on
demand only evicts idle ones and waits a bounded time for one to become idle.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

from switchyard.engine.hub import HF_PREFIX, ModelRef
from switchyard.engine.model_roots import list_model_entries, model_name, resolve_model_path
from switchyard.engine.params import check_name
from switchyard.engine.protocol import EngineAdapter, LoadSpec
from switchyard.engine.pulls import Pulls
from switchyard.engine.slot import ModelSlot, SlotPolicy
from switchyard.engine.status import StatusBoard
from switchyard.engines import ENGINE_NAMES
from switchyard.errors import Conflict, FailedPrecondition, InvalidArgument, NotFound, ResourceExhausted, Unavailable
from switchyard.runtime.settings import EngineSettings
from switchyard.v1 import control_pb2 as pb

logger = logging.getLogger(__name__)
MAX_ALIASES = 16


def _retrieve(task: asyncio.Task[ModelSlot]) -> None:
    """A load outlives its callers; its failure is in the slot's status, not an asyncio warning."""
    if not task.cancelled():
        task.exception()


def slot_policy(settings: EngineSettings) -> SlotPolicy:
    return SlotPolicy(
        poll_s=settings.status_poll_s,
        restart_on_crash=settings.restart_on_crash,
        max_restarts=settings.max_restarts,
        restart_window_s=settings.restart_window_s,
        restart_backoff_s=settings.restart_backoff_s,
        stop_timeout_s=settings.stop_timeout_s,
    )


@dataclass
class LoadTicket:
    """An explicit load under way: its task, its slot once known, and how its pull (for a hub
    model) went. Progress: a pull is the first half, the load the second."""

    slot: ModelSlot | None
    task: asyncio.Task[ModelSlot] | None = None
    pulled: pb.PullProgress | None = None

    def event(self) -> tuple[pb.ModelState.ValueType, float, str]:
        """(state, progress, message) for a LoadModel event now."""
        pulled = self.pulled
        if self.slot is None:
            if pulled is None:
                return pb.MODEL_STATE_LOADING, 0.0, "resolving the hub model"
            if pulled.state == pb.PULL_STATE_FAILED:
                return pb.MODEL_STATE_ERROR, 0.0, pulled.error
            fraction = pulled.bytes_done / pulled.bytes_total if pulled.bytes_total else 0.0
            mib = 2**20
            message = f"downloading {pulled.bytes_done / mib:.1f} of {pulled.bytes_total / mib:.1f} MiB"
            return pb.MODEL_STATE_LOADING, 0.5 * fraction, message
        model = self.slot.status()
        progress = model.load_progress if pulled is None else 0.5 + 0.5 * model.load_progress
        return model.state, progress, model.load_message or model.error


class ModelHost:
    def __init__(self, adapter: EngineAdapter, settings: EngineSettings) -> None:
        self.adapter = adapter
        self.settings = settings
        self.engine = ENGINE_NAMES[adapter.kind]
        self.policy = slot_policy(settings)
        self.board = StatusBoard(adapter.kind, adapter.version)
        self._slots: dict[str, ModelSlot] = {}  # by served name
        self._queued: list[ModelSlot] = []  # asked for, waiting for their turn to load
        self._load_lock = asyncio.Lock()  # one load at a time: never two models fighting for memory
        self._explicit_load: asyncio.Task[ModelSlot] | None = None
        self._autoloads: dict[str, asyncio.Task[ModelSlot]] = {}
        self._reaper: asyncio.Task[None] | None = None
        self.pulls = Pulls(settings, adapter.kind, self.publish)
        self.publish()

    # --- status ---------------------------------------------------------------------------

    def slots(self) -> list[ModelSlot]:
        """Every slot, queued ones included, the most recently asked for first."""
        return sorted([*self._slots.values(), *self._queued], key=lambda slot: slot.asked_at, reverse=True)

    def publish(self) -> None:
        """Compose the engine's status from its slots; watchers see it if anything changed."""
        models = [slot.status() for slot in self.slots()]
        states = {m.state for m in models}
        for state in (pb.MODEL_STATE_LOADING, pb.MODEL_STATE_LOADED, pb.MODEL_STATE_ERROR, pb.MODEL_STATE_IDLE):
            if state in states or state == pb.MODEL_STATE_IDLE:
                break
        status = pb.EngineStatus(
            engine=self.adapter.kind,
            state=state,
            engine_version=self.adapter.version,
            models=models,
            max_models=self.settings.max_models,
            autoload=self.settings.autoload,
            process_alive=any(m.process_alive for m in models),
            pulls=self.pulls.progress() if hasattr(self, "pulls") else [],
            load=pb.Load(
                running_requests=sum(m.load.running_requests for m in models),
                waiting_requests=sum(m.load.waiting_requests for m in models),
                kv_cache_usage=max((m.load.kv_cache_usage for m in models), default=0.0),
            ),
        )
        if models:
            lead = models[0]
            status.model, status.model_path, status.error = lead.name, lead.model_path, lead.error
            status.load_progress, status.load_message = lead.load_progress, lead.load_message
            status.device, status.max_model_len = lead.device, lead.max_model_len
        self.board.publish(status)

    async def refresh(self) -> None:
        """Read every model's occupancy now (GetStatus answers with fresh figures)."""
        await asyncio.gather(*(slot.refresh() for slot in self.slots()), return_exceptions=True)

    # --- names ----------------------------------------------------------------------------

    def _live(self) -> list[ModelSlot]:
        """Slots a request may use: every slot but those being stopped."""
        return [slot for slot in self.slots() if not slot.removed]

    def find(self, name: str) -> ModelSlot | None:
        """The slot serving ``name`` (its served name or an alias)."""
        slot = self._slots.get(name)
        if slot is not None and not slot.removed:
            return slot
        return next((s for s in self._live() if name in s.spec.names), None)

    def _default(self) -> ModelSlot | None:
        """The model a request naming none gets: the most recent that serves, else the most
        recent that will (loading or restarting), else the most recent at all (in error)."""
        slots = self._live()
        return (
            next((s for s in slots if s.state == pb.MODEL_STATE_LOADED), None)
            or next((s for s in slots if s.resident), None)
            or next(iter(slots), None)
        )

    def _loaded_names(self) -> str:
        return ", ".join(repr(s.name) for s in self.slots()) or "none"

    # --- loading --------------------------------------------------------------------------

    def prepare(self, request: pb.LoadModelRequest) -> LoadSpec:
        """Validate a load without side effects: path, names, keep-alive and engine options."""
        resolved = resolve_model_path(request.model_path, self.settings.model_roots)
        path = self.adapter.model_path(resolved, request.model_path)
        name = check_name("served_model_name", request.served_model_name) or model_name(path)
        aliases = tuple(dict.fromkeys(check_name("aliases", a) for a in request.aliases))
        if len(aliases) > MAX_ALIASES:
            raise InvalidArgument(f"at most {MAX_ALIASES} aliases, got {len(aliases)}")
        if "" in aliases or name in aliases:
            raise InvalidArgument("aliases must be non-empty and differ from the served name")
        for slot in self.slots():
            if slot.name != name and set(slot.spec.names) & {name, *aliases}:
                taken = sorted(set(slot.spec.names) & {name, *aliases})[0]
                raise InvalidArgument(f"name {taken!r} is already used by model {slot.name!r}")
        keep_alive = request.keep_alive_s if request.HasField("keep_alive_s") else self.settings.keep_alive_s
        if not math.isfinite(keep_alive) or keep_alive < 0:
            raise InvalidArgument(f"keep_alive_s must be 0 (never) or a positive number, got {keep_alive}")
        launch = self.adapter.launch_args(path, name, request)
        return LoadSpec(path=path, name=name, aliases=aliases, keep_alive_s=keep_alive, request=request, launch=launch)

    def begin_load(self, request: pb.LoadModelRequest) -> LoadTicket:
        """Start an explicit load (the caller may go away; the load goes on). Refused while
        another load runs on this engine. ``hf:ORG/REPO[:QUANT]`` is pulled first."""
        running = self._explicit_load is not None and not self._explicit_load.done()
        pull = ModelRef.parse(request.model_path) if request.model_path.startswith(HF_PREFIX) else None
        spec = self.prepare(request) if pull is None else None
        if running or self._load_lock.locked():
            raise Conflict(f"a load is already running on the {self.engine} engine")
        ticket = LoadTicket(slot=self._queue(spec) if spec is not None else None)
        work = self._load(ticket.slot, explicit=True) if ticket.slot is not None else None
        if pull is not None:
            work = self._pull_then_load(ticket, request, pull, explicit=True)
        assert work is not None
        ticket.task = asyncio.create_task(work, name=f"load {request.model_path}")
        ticket.task.add_done_callback(_retrieve)
        self._explicit_load = ticket.task
        return ticket

    async def _pull_then_load(
        self, ticket: LoadTicket, request: pb.LoadModelRequest, ref: ModelRef, explicit: bool
    ) -> ModelSlot:
        async for progress in self.pulls.pull(pb.PullModelRequest(engine=self.adapter.kind, model=ref.name)):
            ticket.pulled = progress
        assert ticket.pulled is not None  # a pull yields progress until DONE, or raises
        load = pb.LoadModelRequest()
        load.CopyFrom(request)
        load.model_path = ticket.pulled.model_path
        load.served_model_name = request.served_model_name or ticket.pulled.name
        ticket.slot = self._queue(self.prepare(load))
        return await self._load(ticket.slot, explicit)

    def _queue(self, spec: LoadSpec) -> ModelSlot:
        """A slot for ``spec``, shown in the status (LOADING, queued) at once."""
        slot = ModelSlot(spec, self.adapter, self.policy, self.publish)
        self._queued.append(slot)
        self.publish()
        return slot

    async def _load(self, slot: ModelSlot, explicit: bool) -> ModelSlot:
        try:
            async with self._load_lock:
                logger.info("load %s from %s%s", slot.name, slot.spec.path, "" if explicit else " (on demand)")
                await self._make_room(slot.spec, explicit)
                self._queued.remove(slot)
                self._slots[slot.name] = slot
                await slot.start()
                return slot
        except BaseException as exc:
            if slot in self._queued:  # it never got its turn: its waiters learn why
                self._queued.remove(slot)
                slot.abandon(str(exc) or type(exc).__name__)
            raise

    async def _make_room(self, spec: LoadSpec, explicit: bool) -> None:
        """Unload what the new model replaces, drop failed slots, evict until it fits."""
        for slot in list(self._slots.values()):
            if slot.name == spec.name or not slot.resident:
                await self._remove(slot, "replaced" if slot.name == spec.name else "cleared after its failure")
        deadline = time.monotonic() + self.settings.evict_wait_s
        while True:
            resident = sorted((s for s in self._slots.values() if s.resident), key=lambda s: s.last_used)
            if len(resident) < self.settings.max_models:
                return
            idle = [s for s in resident if s.in_flight == 0 and s.state == pb.MODEL_STATE_LOADED]
            if idle or explicit:
                victim = (idle or resident)[0]
                await self._remove(victim, f"least recently used; making room for {spec.name}")
                continue
            _, changed = self.board.snapshot()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ResourceExhausted(
                    f"all {len(resident)} models of the {self.engine} engine are busy (max_models "
                    f"{self.settings.max_models}); {spec.name} cannot be loaded now, retry later"
                )
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await changed.wait()

    async def _remove(self, slot: ModelSlot, why: str) -> None:
        logger.info("unload %s (%s)", slot.name, why)
        await slot.stop()
        if self._slots.get(slot.name) is slot:
            del self._slots[slot.name]
        if slot in self._queued:
            self._queued.remove(slot)
        self.publish()

    async def load_at_start(self, request: pb.LoadModelRequest) -> None:
        await self._load(self._queue(self.prepare(request)), explicit=True)

    # --- unloading and keep-alive ---------------------------------------------------------

    async def unload(self, name: str) -> None:
        """Unload one model by name or alias, or every model when ``name`` is empty."""
        if not name:
            if self._load_lock.locked():
                raise Conflict(f"a load is running on the {self.engine} engine; unload after it")
            for each in self.slots():
                await self._remove(each, "unload")
            return
        slot = self.find(check_name("model", name))
        if slot is None:
            raise NotFound(f"model {name!r} is not loaded on the {self.engine} engine")
        if slot.state == pb.MODEL_STATE_LOADING:
            raise Conflict(f"model {slot.name!r} is loading on the {self.engine} engine; unload after it")
        await self._remove(slot, "unload")

    def start(self) -> None:
        """Start the keep-alive timer (needs the running loop)."""
        self._reaper = asyncio.create_task(self._unload_idle(), name="keep-alive")

    async def _unload_idle(self) -> None:
        """Unload each model that stayed idle past its keep-alive; sleep until the next is due
        or the status changes (a request, a load)."""
        while True:
            _, changed = self.board.snapshot()
            now = time.monotonic()
            waits = [(slot.expires_in(now), slot) for slot in self.slots()]
            for remaining, slot in waits:
                if remaining is not None and remaining <= 0:
                    await self._remove(slot, f"idle for {slot.spec.keep_alive_s:g}s")
            pending = [r for r, _ in waits if r is not None and r > 0]
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(pending) if pending else None):
                    await changed.wait()

    async def close(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
        await self.pulls.close()
        for slot in self.slots():
            await self._remove(slot, "shutdown")
        await self.adapter.close()

    # --- serving --------------------------------------------------------------------------

    async def serving(self, name: str) -> ModelSlot:
        """The slot to serve a request naming ``name`` (empty: the default model), waiting for
        it while it loads and loading it on demand; bounded by ``load_wait_s``."""
        async with asyncio.timeout(self.settings.load_wait_s) as scope:
            try:
                while True:
                    _, changed = self.board.snapshot()
                    slot = self.find(name) if name else self._default()
                    if slot is None:
                        if not name:
                            raise FailedPrecondition(f"no model loaded on the {self.engine} engine")
                        slot = await asyncio.shield(self._load_on_demand(name))
                    await slot.settled()
                    if slot.state == pb.MODEL_STATE_LOADED and slot.running is not None:
                        return slot
                    if not slot.removed:
                        raise Unavailable(f"model {slot.name!r} on the {self.engine} engine is in error: {slot.error}")
                    await changed.wait()  # stopped while we waited: look again once the status moves on
            except TimeoutError:
                if scope.expired():
                    what = repr(name) if name else f"the {self.engine} engine's model"
                    raise Unavailable(f"{what} is still loading after {self.settings.load_wait_s:g}s") from None
                raise

    def _load_on_demand(self, name: str) -> asyncio.Task[ModelSlot]:
        """The load of ``name`` from the catalogue (or, with autopull, from the hub), shared by
        every request that asks for it."""
        task = self._autoloads.get(name)
        if task is not None:
            return task
        entry = next((e for e in self.catalogue() if e.name == name), None)
        pull = entry is None and self.settings.autopull and ModelRef.looks_like(name)
        if not self.settings.autoload or (entry is None and not pull):
            why = "; load it first (autoload is off)" if entry is not None else ""
            raise FailedPrecondition(
                f"model {name!r} is not loaded on the {self.engine} engine (loaded: {self._loaded_names()}){why}"
            )
        if entry is not None:
            request = pb.LoadModelRequest(engine=self.adapter.kind, model_path=entry.path, served_model_name=name)
            work = self._load(self._queue(self.prepare(request)), explicit=False)
        else:
            request = pb.LoadModelRequest(engine=self.adapter.kind)
            work = self._pull_then_load(LoadTicket(slot=None), request, ModelRef.parse(name), explicit=False)
        task = asyncio.create_task(work, name=f"load {name} on demand")
        self._autoloads[name] = task
        task.add_done_callback(_retrieve)
        task.add_done_callback(lambda _: self._autoloads.pop(name, None))
        return task

    # --- catalogue ------------------------------------------------------------------------

    def catalogue(self) -> list[pb.ModelEntry]:
        """Models under the roots this engine can load, with the state of those in a slot."""
        entries = list_model_entries(self.settings.model_roots, self.adapter.kind, self.adapter.is_model)
        by_path: dict[Path, list[ModelSlot]] = {}
        for slot in self.slots():
            by_path.setdefault(slot.spec.path, []).append(slot)
        for entry in entries:
            slots = by_path.get(Path(entry.path), [])
            entry.served_names.extend(name for slot in slots for name in slot.spec.names)
            entry.loaded = any(slot.state == pb.MODEL_STATE_LOADED for slot in slots)
            states = {slot.state for slot in slots}
            for state in (pb.MODEL_STATE_LOADED, pb.MODEL_STATE_LOADING, pb.MODEL_STATE_ERROR):
                if state in states:
                    entry.state = state
                    break
            else:
                entry.state = pb.MODEL_STATE_IDLE
        return entries
