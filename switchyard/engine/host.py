"""The models of one engine service: slots by name, loads one at a time, eviction, keep-alive,
load on demand (from the model roots, or pulled from the hub), and the engine's status.

Like llama-swap and Ollama: a request names a model and it is there. A model that is loading
is waited for; one that is not loaded but lies under the model roots is loaded on demand
(``autoload``); when ``max_models`` are resident the least recently used idle one makes room;
an idle model past its keep-alive is unloaded. A request waiting for a model counts as using
it, so no other load on demand can evict it from under it. An explicit load (the seed's API)
may evict a busy model, aborting its requests, as the seed's "load switches the model" did; a
load on demand only evicts idle ones and waits, without blocking other loads, a bounded time
for one to become idle.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import Counter
from collections.abc import AsyncIterator, Coroutine
from pathlib import Path
from typing import Any

from switchyard.engine.catalogue import Catalogue
from switchyard.engine.hub import HF_PREFIX, ModelRef, canonical
from switchyard.engine.loads import LoadTicket
from switchyard.engine.model_roots import model_name, resolve_model_path
from switchyard.engine.params import check_name, check_served_name
from switchyard.engine.presets import PresetFile, merged
from switchyard.engine.protocol import TASK_NAMES, EngineAdapter, LoadSpec, ModelInfo, RunningModel
from switchyard.engine.pulls import Pulls
from switchyard.engine.slot import ModelSlot, SlotPolicy
from switchyard.engine.status import StatusBoard
from switchyard.engines import ENGINE_NAMES
from switchyard.errors import (
    Conflict,
    EngineError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    QueueFull,
    ResourceExhausted,
    Unavailable,
)
from switchyard.runtime.settings import EngineSettings
from switchyard.v1 import control_pb2 as pb

logger = logging.getLogger(__name__)
MAX_ALIASES = 16
MAX_KEEP_ALIVE_S = 366 * 24 * 3600.0  # a year: longer is "never", which is 0
RETRY_FAILED_LOAD_S = 10.0  # a model whose load failed is tried again on demand after this long


def _retrieve(task: asyncio.Task[Any]) -> None:
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
        self._awaited: Counter[str] = Counter()  # names requests wait for while they are pulled
        self._reaper: asyncio.Task[None] | None = None
        self.presets = PresetFile.open(settings.models_file, self.engine)  # a bad file stops the start here
        self._stale: set[str] = set()  # loaded under a preset since changed or removed: unloaded once idle
        self._preloads: set[asyncio.Task[None]] = set()
        self._follower: asyncio.Task[None] | None = None
        self.catalogue = Catalogue(settings.model_roots, adapter, self.presets)
        self.pulls = Pulls(settings, adapter.kind, self._pulled)
        self.publish()

    # --- status ---------------------------------------------------------------------------

    def slots(self) -> list[ModelSlot]:
        """Every slot, queued ones included, the most recently asked for first."""
        return sorted([*self._slots.values(), *self._queued], key=lambda slot: slot.asked_at, reverse=True)

    def publish(self) -> None:
        """Compose the engine's status from its slots; watchers see it if anything changed."""
        models = [slot.status() for slot in self.slots()]
        states = {m.state for m in models}
        order = (pb.MODEL_STATE_LOADING, pb.MODEL_STATE_LOADED, pb.MODEL_STATE_ERROR)
        status = pb.EngineStatus(
            engine=self.adapter.kind,
            state=next((s for s in order if s in states), pb.MODEL_STATE_IDLE),
            engine_version=self.adapter.version,
            models=models,
            max_models=self.settings.max_models,
            autoload=self.settings.autoload,
            max_in_flight=self.settings.max_in_flight,
            service_restarts=self.settings.service_restarts,
            autopull=self.settings.autoload and self.settings.autopull,
            process_alive=any(m.process_alive for m in models),
            pulls=self.pulls.progress(),
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

    def _pulled(self) -> None:
        self.catalogue.forget()  # a finished pull added a model to the roots
        self.publish()

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

    def prepare(self, request: pb.LoadModelRequest, path: Path | None = None) -> LoadSpec:
        """Validate a load without side effects: path, names, keep-alive and engine options.
        ``path``: the model is not there yet (a pull comes first): check all but the path."""
        if path is None:
            resolved = resolve_model_path(request.model_path, self.settings.model_roots)
            path = self.adapter.model_path(resolved, request.model_path)
        if len(request.aliases) > MAX_ALIASES:
            raise InvalidArgument(f"at most {MAX_ALIASES} aliases, got {len(request.aliases)}")
        served = check_served_name("served_model_name", request.served_model_name, hub_id_ok=True)
        name = served or model_name(path)
        aliases = tuple(dict.fromkeys(check_served_name("aliases", a) for a in request.aliases))
        if "" in aliases or name in aliases:
            raise InvalidArgument("aliases must be non-empty and differ from the served name")
        self._check_names_free(name, aliases, path)
        keep_alive = request.keep_alive_s if request.HasField("keep_alive_s") else self.settings.keep_alive_s
        if not math.isfinite(keep_alive) or not 0 <= keep_alive <= MAX_KEEP_ALIVE_S:
            raise InvalidArgument(
                f"keep_alive_s must be 0 (never) or a number of seconds up to {MAX_KEEP_ALIVE_S:g}, got {keep_alive}"
            )
        if request.pooling != pb.POOLING_UNSPECIFIED and request.task != pb.MODEL_TASK_EMBED:
            raise InvalidArgument("pooling is for models loaded with task embed")
        launch = self.adapter.launch_args(path, name, request)
        return LoadSpec(path=path, name=name, aliases=aliases, keep_alive_s=keep_alive, request=request, launch=launch)

    def _check_names_free(self, name: str, aliases: tuple[str, ...], path: Path) -> None:
        """A model's names are its own: no other loaded model's name or alias, and no alias
        that is the name of another model under the roots (it would take over its on-demand
        loads). Reloading a model under its own name is fine."""
        for slot in self._live():
            if slot.name != name and set(slot.spec.names) & {name, *aliases}:
                taken = sorted(set(slot.spec.names) & {name, *aliases})[0]
                raise InvalidArgument(f"name {taken!r} is already used by model {slot.name!r}")
        listed = self.catalogue.names_now() if aliases else {}
        for alias in aliases:
            other = listed.get(alias)
            if other is not None and Path(other).resolve() != path.resolve():
                raise InvalidArgument(f"alias {alias!r} is the name of another model under the model roots ({other})")

    def begin_load(self, request: pb.LoadModelRequest) -> LoadTicket:
        """Start an explicit load (the caller may go away; the load goes on). Refused while
        another load runs on this engine. ``hf:ORG/REPO[:QUANT]`` is pulled first."""
        running = self._explicit_load is not None and not self._explicit_load.done()
        ticket = LoadTicket()
        work: Coroutine[Any, Any, ModelSlot]
        preset = self.presets.find(request.served_model_name) if request.served_model_name else None
        if preset is not None:
            request = merged(preset, request)  # the models file's options, what the load names winning
        if request.model_path.startswith(HF_PREFIX):
            ref = ModelRef.parse(request.model_path)
            # everything but the path is checked before a byte is pulled
            self.prepare(request, path=Path(self.settings.model_roots[0], *ref.repo.split("/")))
            work = self._pull_then_load(ticket, request, ref, explicit=True)
        else:
            ticket.slot = self._queue(self.prepare(request))
            work = self._load(ticket.slot, explicit=True)
        if running or self._load_lock.locked():
            work.close()
            if ticket.slot is not None:
                self._queued.remove(ticket.slot)
                self.publish()
            raise Conflict(f"a load is already running on the {self.engine} engine")
        ticket.task = self._explicit_load = asyncio.create_task(work, name=f"load {request.model_path}")
        ticket.task.add_done_callback(_retrieve)
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

    def _load_preset(self, request: pb.LoadModelRequest) -> Coroutine[Any, Any, ModelSlot]:
        """A preset's load on demand: from the roots, or pulled first when its source is a hub id."""
        if request.model_path.startswith(HF_PREFIX):
            return self._pull_then_load(LoadTicket(), request, ModelRef.parse(request.model_path), explicit=False)
        return self._load(self._queue(self.prepare(request)), explicit=False)

    def _queue(self, spec: LoadSpec) -> ModelSlot:
        """A slot for ``spec``, shown in the status (LOADING, queued) at once."""
        slot = ModelSlot(spec, self.adapter, self.policy, self.publish, self._load_lock)
        self._queued.append(slot)
        self.publish()
        return slot

    async def _load(self, slot: ModelSlot, explicit: bool) -> ModelSlot:
        """Wait for room (without holding the lock, so other loads are not refused meanwhile),
        then load under the lock."""
        deadline = time.monotonic() + self.settings.evict_wait_s
        try:
            while True:
                async with self._load_lock:
                    if slot.removed or slot not in self._queued:
                        raise Unavailable(f"the load of {slot.name} was cancelled: the model was unloaded")
                    if await self._make_room(slot.spec, explicit):
                        logger.info("load %s from %s%s", slot.name, slot.spec.path, "" if explicit else " (on demand)")
                        self._queued.remove(slot)
                        self._slots[slot.name] = slot
                        await slot.start()
                        return slot
                    changed = self.board.changed
                    busy = len([s for s in self._slots.values() if s.resident])
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ResourceExhausted(
                        f"all {busy} models of the {self.engine} engine are busy (max_models "
                        f"{self.settings.max_models}); {slot.name} cannot be loaded now, retry later"
                    )
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(remaining):
                        await changed.wait()
        except BaseException as exc:
            if slot in self._queued:  # it never got its turn: its waiters learn why
                self._queued.remove(slot)
                slot.abandon(exc if isinstance(exc, EngineError) else Unavailable(f"the load of {slot.name} stopped"))
            raise

    async def _make_room(self, spec: LoadSpec, explicit: bool) -> bool:
        """Unload what the new model replaces, drop failed slots, evict idle models until it
        fits (an explicit load also busy ones); False when it cannot fit yet."""
        for slot in list(self._slots.values()):
            if slot.name == spec.name and slot.resident and not explicit:
                raise Conflict(f"model {spec.name!r} is already loaded on the {self.engine} engine")
            if slot.name == spec.name or not slot.resident:
                await self._remove(slot, "replaced" if slot.name == spec.name else "cleared after its failure")
        while True:
            resident = sorted((s for s in self._slots.values() if s.resident), key=lambda s: s.last_used)
            if len(resident) < self.settings.max_models:
                return True
            idle = [
                s for s in resident if not s.busy and s.state == pb.MODEL_STATE_LOADED and not self._awaited[s.name]
            ]
            if not idle and not explicit:
                return False
            victim = (idle or resident)[0]
            await self._remove(victim, f"least recently used; making room for {spec.name}")

    async def _remove(self, slot: ModelSlot, why: str) -> None:
        """Stop a slot and forget it once stopped; the stop runs to its end (and the slot stays
        listed until then) even if this caller is cancelled."""
        logger.info("unload %s (%s)", slot.name, why)
        stopping = slot.stop()
        stopping.add_done_callback(lambda _: self._forget(slot))
        await asyncio.shield(stopping)

    def _forget(self, slot: ModelSlot) -> None:
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
        slot = self.find(canonical(check_name("model", name)))
        if slot is None:
            raise NotFound(f"model {name!r} is not loaded on the {self.engine} engine")
        if slot.state == pb.MODEL_STATE_LOADING:
            raise Conflict(f"model {slot.name!r} is loading on the {self.engine} engine; unload after it")
        await self._remove(slot, "unload")

    def start(self) -> None:
        """Start the keep-alive timer, the preloads and the models file's follower (needs the
        running loop)."""
        self._reaper = asyncio.create_task(self._unload_idle(), name="keep-alive")
        self._preload(self.presets.preloads())
        if self.presets.path is not None:
            self._follower = asyncio.create_task(self._follow_models_file(), name="models file")

    def _preload(self, names: list[str]) -> None:
        """Load these presets in the background, as a request naming each would."""
        for name in names:
            task = asyncio.create_task(self._preload_one(name), name=f"preload {name}")
            self._preloads.add(task)
            task.add_done_callback(self._preloads.discard)

    async def _preload_one(self, name: str) -> None:
        preset = self.presets.find(name)
        if preset is None:
            return
        try:
            await self._on_demand(name, preset.task)
        except EngineError as exc:
            logger.error("preloading %s failed: %s", name, exc)

    async def _follow_models_file(self) -> None:
        """Apply edits of the models file: new presets listed (and preloaded), removed or
        changed ones unloaded once idle so that their next use loads the new preset; a bad edit
        is logged and changes nothing (presets.py)."""
        while True:
            await asyncio.sleep(self.settings.models_file_poll_s)  # a poll: files give no portable event
            try:
                changes = await asyncio.to_thread(self.presets.reload)
                if changes is not None:
                    added, gone = changes
                    self.catalogue.forget()
                    self._stale |= {n for n in gone if n in self._slots}
                    self._preload(self.presets.preloads(added))
                await self._retire_stale()
            except Exception:
                logger.exception("applying the models file failed")

    async def _retire_stale(self) -> None:
        for name in list(self._stale):
            slot = self._slots.get(name)
            if slot is None or slot.removed:
                self._stale.discard(name)
            elif slot.state == pb.MODEL_STATE_LOADED and not slot.busy:
                self._stale.discard(name)
                await self._remove(slot, "its preset changed or was removed")

    async def _unload_idle(self) -> None:
        """Unload each model that stayed idle past its keep-alive; sleep until the next is due
        or the status changes (a request, a load)."""
        while True:
            changed = self.board.changed
            try:
                for slot in self.slots():
                    remaining = slot.expires_in(time.monotonic())  # now, not before the last stop
                    if remaining is not None and remaining <= 0:
                        await self._remove(slot, f"idle for {slot.spec.keep_alive_s:g}s")
            except Exception:
                logger.exception("unloading idle models failed")
            now = time.monotonic()
            pending = [r for r in (s.expires_in(now) for s in self.slots()) if r is not None]
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(min(pending), 0.0) if pending else None):
                    await changed.wait()

    async def close(self) -> None:
        """Stop everything: pending loads first, so none starts a model after the stops."""
        tasks = [
            t
            for t in (self._reaper, self._follower, self._explicit_load, *self._autoloads.values(), *self._preloads)
            if t is not None
        ]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.pulls.close()
        for slot in self.slots():
            await self._remove(slot, "shutdown")
        await self.adapter.close()

    # --- serving --------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def request(
        self,
        name: str,
        task: pb.ModelTask.ValueType | None = pb.MODEL_TASK_GENERATE,
        loaded_only: bool = False,
        group_size: int = 1,
    ) -> AsyncIterator[tuple[ModelSlot, RunningModel, ModelInfo]]:
        """The model for one request (empty name: the default model), waited for while it
        loads and loaded on demand (for ``task``), bounded by ``load_wait_s``; held as busy
        while used. FailedPrecondition when the model is loaded for another task (None: any
        task will do, as for tokenizing). ``loaded_only``: never load on demand (a caller
        that may not load models), PermissionDenied instead."""
        slot = await self._claim(canonical(name), task or pb.MODEL_TASK_GENERATE, loaded_only)
        try:
            bound = self.settings.max_in_flight
            if bound and group_size > bound:
                raise InvalidArgument(
                    f"n: {group_size} choices at once can never run on model {slot.name!r}: it takes {bound} requests "
                    "at most (max_in_flight); ask for fewer"
                )
            if bound and slot.in_flight > bound:  # this request counted: refused before the engine sees it
                raise QueueFull(f"model {slot.name!r} has {bound} requests running or waiting (max_in_flight); retry")
            if task is not None and slot.spec.task != task:
                raise FailedPrecondition(
                    f"model {slot.name!r} is loaded for {TASK_NAMES[slot.spec.task]}, not {TASK_NAMES[task]}; "
                    f"load it with task {TASK_NAMES[task]!r} (under another name to keep both)"
                )
            running, info = slot.running, slot.info
            if running is None or info is None:  # stopped between the claim and now
                raise Unavailable(f"model {slot.name!r} is not running ({pb.ModelState.Name(slot.state)})")
            yield slot, running, info
        finally:
            slot.release()

    async def _claim(self, name: str, task: pb.ModelTask.ValueType, loaded_only: bool) -> ModelSlot:
        slot = self.find(name) if name else self._default()
        if slot is not None and slot.state == pb.MODEL_STATE_LOADED and slot.running is not None:
            slot.claim()  # the common case: no waiting, no timer
            return slot
        try:
            async with asyncio.timeout(self.settings.load_wait_s):
                return await self._wait_for(name, task, loaded_only)
        except TimeoutError:
            what = repr(name) if name else f"the {self.engine} engine's model"
            raise Unavailable(f"{what} is still loading after {self.settings.load_wait_s:g}s") from None

    async def _wait_for(self, name: str, task: pb.ModelTask.ValueType, loaded_only: bool) -> ModelSlot:
        while True:
            changed = self.board.changed
            slot = self.find(name) if name else self._default()
            if slot is None or self._retry_on_demand(slot):
                if not name:
                    raise FailedPrecondition(f"no model loaded on the {self.engine} engine")
                if loaded_only:
                    raise PermissionDenied(
                        f"model {name!r} is not loaded on the {self.engine} engine, and this caller may not load "
                        "models on demand (an admin key may)"
                    )
                slot = await self._on_demand(name, task)
            slot.claim()
            try:
                await slot.settled()
            except BaseException:
                slot.release()
                raise
            if slot.state == pb.MODEL_STATE_LOADED and slot.running is not None:
                return slot
            slot.release()
            if not slot.removed:
                if slot.load_error is not None:
                    raise slot.load_error  # the load's own error (its code: 429 when no room)
                raise Unavailable(f"model {slot.name!r} on the {self.engine} engine is in error: {slot.error}")
            await changed.wait()  # stopped while we waited: look again once the status moves on

    def _pending_load(self, name: str) -> asyncio.Task[ModelSlot] | None:
        task = self._autoloads.get(name)
        return task if task is not None and not task.done() else None

    def _retry_on_demand(self, slot: ModelSlot) -> bool:
        """A model whose load failed a while ago is loaded again when a request names it."""
        failed = slot.state == pb.MODEL_STATE_ERROR and not slot.restarting and not slot.running
        return failed and self.settings.autoload and time.monotonic() - slot.failed_at > RETRY_FAILED_LOAD_S

    async def _on_demand(self, name: str, purpose: pb.ModelTask.ValueType) -> ModelSlot:
        """The slot a load on demand of ``name`` fills: from the roots, or pulled from the hub
        first (autopull); one load per name however many requests ask for it."""
        task = self._pending_load(name)
        preset = self.presets.find(name)
        if task is None:
            entries = [] if preset is not None else await self.catalogue.entries(self.slots())
            entry = next((e for e in entries if e.name == name), None)
            pull = entry is None and preset is None and self.settings.autopull and ModelRef.looks_like(name)
            if not self.settings.autoload or (entry is None and preset is None and not pull):
                why = "; load it first (autoload is off)" if entry is not None else ""
                raise FailedPrecondition(
                    f"model {name!r} is not loaded on the {self.engine} engine (loaded: {self._loaded_names()}){why}"
                )
            task = self._pending_load(name)  # another request may have started it meanwhile,
            slot = self.find(name)  # or even finished it
            if task is None and slot is not None and not self._retry_on_demand(slot):
                return slot
        if task is None:
            work: Coroutine[Any, Any, ModelSlot]
            if preset is not None:
                preset.task = purpose
                work = self._load_preset(preset)
            elif entry is not None:
                request = pb.LoadModelRequest(
                    engine=self.adapter.kind, model_path=entry.path, served_model_name=name, task=purpose
                )
                work = self._load(self._queue(self.prepare(request)), explicit=False)
            else:
                request = pb.LoadModelRequest(engine=self.adapter.kind, task=purpose)
                work = self._pull_then_load(LoadTicket(), request, ModelRef.parse(name), explicit=False)
            task = self._autoloads[name] = asyncio.create_task(work, name=f"load {name} on demand")
            task.add_done_callback(_retrieve)
            task.add_done_callback(lambda _: self._autoloads.pop(name, None))
        slot = self.find(name)  # a load from the roots shows its (queued) slot at once
        if slot is not None and not self._retry_on_demand(slot):
            return slot
        self._awaited[name] += 1  # pulled first: the slot comes later; keep it from eviction
        try:
            return await asyncio.shield(task)
        finally:
            self._awaited[name] -= 1
            if not self._awaited[name]:
                del self._awaited[name]
