"""The models file: a preset per model name (its engine, source, load options, aliases,
keep-alive, preload), so that a load on demand, a load by name and a restart all get the same
options instead of the service's defaults (llama-swap's YAML and llama-server's presets do the
same job).

One file serves every engine service; each keeps the presets of its own engine::

    models:
      demo-short:
        engine: llamacpp
        source: switchyard-demo.gguf     # under the model roots, or hf:ORG/REPO[:QUANT]
        description: the demo model with a short context
        aliases: [short]
        keep_alive_s: 300
        preload: true
        options: {ctx_size: 1024}        # the contract's LlamacppOptions / VllmOptions fields

The file is validated whole, with errors naming the file, the model and the key; a service
started with a bad file does not start, and a bad edit of a running one is logged and the last
good file kept (``PresetFile.reload``).
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from google.protobuf import json_format
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from switchyard.engines import ENGINES_BY_NAME
from switchyard.errors import InvalidArgument
from switchyard.v1 import common_pb2
from switchyard.v1 import control_pb2 as pb

logger = logging.getLogger(__name__)

MAX_FILE_BYTES = 1024 * 1024
MAX_PRESETS = 1000
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$")
OPTION_MESSAGES = {"llamacpp": "llamacpp", "vllm": "vllm"}  # the load request's field per engine


class PresetError(ValueError):
    """A models file that cannot be used: the message names the file, the model and the key."""


class Preset(BaseModel):
    model_config = ConfigDict(extra="forbid")

    engine: Literal["llamacpp", "vllm"]
    source: str = Field(min_length=1, max_length=4096)
    description: str = Field("", max_length=1000)
    aliases: list[str] = Field(default_factory=list, max_length=16)
    keep_alive_s: float | None = Field(None, ge=0, le=365 * 86400)
    preload: bool = False
    task: Literal["generate", "embed"] = "generate"
    pooling: Literal["mean", "cls", "last"] | None = None
    tool_parser: str | None = Field(None, max_length=64)
    reasoning_parser: str | None = Field(None, max_length=64)
    options: dict[str, Any] = Field(default_factory=dict)

    def request(self, name: str) -> pb.LoadModelRequest:
        """The load this preset stands for, served under ``name``."""
        body: dict[str, Any] = {
            "engine": common_pb2.Engine.Name(ENGINES_BY_NAME[self.engine]),
            "model_path": self.source,
            "served_model_name": name,
            "aliases": self.aliases,
            "task": "MODEL_TASK_EMBED" if self.task == "embed" else "MODEL_TASK_GENERATE",
            "tool_parser": self.tool_parser or "",
            "reasoning_parser": self.reasoning_parser or "",
            OPTION_MESSAGES[self.engine]: self.options,
        }
        if self.keep_alive_s is not None:
            body["keep_alive_s"] = self.keep_alive_s
        if self.pooling is not None:
            body["pooling"] = f"POOLING_{self.pooling.upper()}"
        return json_format.ParseDict(body, pb.LoadModelRequest())


class ModelsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    models: dict[str, Preset] = Field(default_factory=dict, max_length=MAX_PRESETS)

    @field_validator("models")
    @classmethod
    def _names(cls, models: dict[str, Preset]) -> dict[str, Preset]:
        names: dict[str, str] = {}
        for name, preset in models.items():
            if not NAME.match(name):
                raise ValueError(f"model name {name[:80]!r}: letters, digits and ._:/- only, at most 128")
            for each in (name, *preset.aliases):
                if not NAME.match(each):
                    raise ValueError(f"alias {each[:80]!r} of {name}: letters, digits and ._:/- only")
                owner = names.setdefault(f"{preset.engine}/{each}", name)
                if owner != name:
                    raise ValueError(f"name {each!r} is used by both {owner} and {name} on {preset.engine}")
        return models


@dataclass(frozen=True)
class Loadable:
    """A preset as the engine service uses it: the load it stands for, and whether it is loaded
    at start (and when it appears in the file)."""

    request: pb.LoadModelRequest
    preload: bool


def parse(text: str, where: str) -> dict[str, Loadable]:
    """Every preset of the file, by name; PresetError otherwise."""
    if len(text.encode()) > MAX_FILE_BYTES:
        raise PresetError(f"{where}: larger than {MAX_FILE_BYTES} bytes")
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise PresetError(f"{where}: not YAML: {str(exc)[:300]}") from None
    try:
        models = ModelsFile.model_validate(raw).models
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(part) for part in first["loc"]) or "(top)"
        raise PresetError(f"{where}: {key}: {first['msg']}") from None
    loadables = {}
    for name, preset in models.items():
        try:
            loadables[name] = Loadable(preset.request(name), preset.preload)
        except json_format.ParseError as exc:
            raise PresetError(f"{where}: models.{name}.options: {str(exc)[:300]}") from None
    return loadables


@dataclass
class PresetFile:
    """The presets of one engine from the models file, re-read when the file changes."""

    path: Path | None
    engine: str
    presets: dict[str, Loadable]
    digest: str = ""  # of the file the presets come from
    refused: str = ""  # of the last bad file, so that its error is logged once

    @classmethod
    def open(cls, path: Path | None, engine: str) -> PresetFile:
        """The file's presets for ``engine``; a bad file is an error here (at start)."""
        presets = cls(path, engine, {})
        if path is not None:
            presets.digest, every = _read(path)
            presets.presets = _of_engine(every, engine)
        return presets

    def reload(self) -> tuple[set[str], set[str]] | None:
        """Re-read the file if it changed: (names added or changed, names removed or changed),
        or None when nothing changed or the new file is bad (the old presets kept, the error
        logged)."""
        if self.path is None:
            return None
        try:
            digest, data = _bytes(self.path)
        except PresetError as exc:
            self._refuse(str(exc), exc)
            return None
        if digest in (self.digest, self.refused):
            return None
        try:
            every = _parse_bytes(data, self.path)
        except PresetError as exc:
            self._refuse(digest, exc)
            return None
        new = _of_engine(every, self.engine)
        changed = {n for n in new if n in self.presets and new[n] != self.presets[n]}
        added = {n for n in new if n not in self.presets} | changed
        gone = {n for n in self.presets if n not in new} | changed
        self.presets, self.digest = new, digest
        logger.info("models file reloaded: %d presets for %s", len(new), self.engine)
        return added, gone

    def _refuse(self, what: str, error: PresetError) -> None:
        """A bad or unreadable file: logged once, tried again when it changes."""
        if what != self.refused:
            logger.error("models file not reloaded, the last good one stays: %s", error)
            self.refused = what

    def find(self, name: str) -> pb.LoadModelRequest | None:
        """The load a preset's name or one of its aliases stands for (a copy)."""
        found = self.presets.get(name) or next((p for p in self.presets.values() if name in p.request.aliases), None)
        if found is None:
            return None
        request = pb.LoadModelRequest()
        request.CopyFrom(found.request)
        return request

    def preloads(self, names: set[str] | None = None) -> list[str]:
        """The presets loaded at start (of ``names`` only, when given)."""
        return [n for n, p in self.presets.items() if p.preload and (names is None or n in names)]


def _bytes(path: Path) -> tuple[str, bytes]:
    try:
        with path.open("rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise PresetError(f"{path}: cannot be read: {exc.strerror}") from None
    return hashlib.sha256(data).hexdigest(), data


def _parse_bytes(data: bytes, path: Path) -> dict[str, Loadable]:
    return parse(data.decode(errors="replace"), str(path))


def _read(path: Path) -> tuple[str, dict[str, Loadable]]:
    digest, data = _bytes(path)
    return digest, _parse_bytes(data, path)


def _of_engine(every: dict[str, Loadable], engine: str) -> dict[str, Loadable]:
    kind = ENGINES_BY_NAME[engine]
    return {name: loadable for name, loadable in every.items() if loadable.request.engine == kind}


def merged(preset: pb.LoadModelRequest, request: pb.LoadModelRequest) -> pb.LoadModelRequest:
    """A load through the API that names a preset's model: what it sets wins, the preset fills
    the rest (its aliases are kept, the request's added)."""
    if preset.engine != request.engine:
        raise InvalidArgument("the preset of this model is for another engine")
    result = pb.LoadModelRequest()
    result.CopyFrom(preset)
    aliases = list(dict.fromkeys([*preset.aliases, *request.aliases]))
    result.MergeFrom(request)
    del result.aliases[:]
    result.aliases.extend(aliases)
    return result
