"""The engine's view of routing config: an immutable in-process snapshot of the database.

Loaded with the ORM once, then reused by every call. `routing.signals` bumps a version key
in Django's cache whenever an operator saves a change (Redis when configured, so every
process notices); the engine re-reads that key at most once a second and reloads when it
changed. Nothing here touches the database per call.

The async path never waits on the cache: when the version is due for a check, the check
runs in a worker thread and the call goes on with the snapshot it has; a changed version
makes the next call reload. A stalled Redis therefore delays noticing a change, never a
request. If a reload fails (the database is down), the last snapshot keeps serving and the
reload is tried again a second later.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from asgiref.sync import sync_to_async

from routing.cache_guard import cache_failed, cache_recovered, cache_usable
from routing.models import Capability, FallbackChain, ModelConfig, PromptVariant, Provider, TaskRoute
from routing.pricing import UNKNOWN, UnitPrices, model_prices
from routing.providers.base import ProviderSpec
from routing.shared_cache import shared_cache

logger = logging.getLogger(__name__)

VERSION_KEY = "orchestrator:config-version"
CHECK_INTERVAL_S = 1.0
# Reload anyway after this long, for a cache that is not shared between processes (LocMem).
MAX_AGE_S = 30.0
RELOAD_WAIT_S = 2.0  # how long a call waits for a reload before using the snapshot it has


@dataclass(frozen=True)
class ProviderSnap:
    id: int
    name: str
    kind: str
    enabled: bool
    needs_key: bool
    api_key_env: str
    key_status: str
    spec: ProviderSpec


@dataclass(frozen=True)
class ModelSnap:
    id: int
    name: str
    provider: ProviderSnap
    model_id: str
    capabilities: frozenset[str]
    context_window: int
    latency_ms: int
    quality_rank: int | None
    enabled: bool
    input_price_per_1k: Decimal | None
    output_price_per_1k: Decimal | None
    price_source: str  # override | catalogue | unknown
    cached_input_price_per_1k: Decimal | None = None  # None: cached tokens cost the input price
    embedding_dimensions: int | None = None  # an embedding model's vector size (config)

    @property
    def price_known(self) -> bool:
        return self.input_price_per_1k is not None and self.output_price_per_1k is not None


@dataclass(frozen=True)
class StepSnap:
    position: int
    model_name: str
    timeout_s: float | None


@dataclass(frozen=True)
class ChainSnap:
    id: int
    name: str
    steps: tuple[StepSnap, ...]


@dataclass(frozen=True)
class PromptSnap:
    id: int
    version: int
    system_prompt: str


@dataclass(frozen=True)
class RouteSnap:
    id: int
    task_type: str
    enabled: bool
    model_name: str | None
    capabilities: frozenset[str]
    optimize_for: str
    chain_name: str | None
    preprocessor: str
    postprocessor: str
    prompt: PromptSnap | None
    variants: dict[str, PromptSnap] = field(default_factory=dict)  # model name → active variant

    def prompt_for(self, model_name: str) -> PromptSnap | None:
        return self.variants.get(model_name, self.prompt)


@dataclass(frozen=True)
class Snapshot:
    version: str
    models: dict[str, ModelSnap]
    chains: dict[str, ChainSnap]
    routes: dict[str, RouteSnap]
    capabilities: frozenset[str]
    loaded_at: float


def _unit_prices(model: Any) -> UnitPrices:
    """Prices from routing.pricing (override or catalogue); unknown when it cannot say."""
    try:
        return model_prices(model)
    except Exception:  # a broken catalogue must not stop the engine
        logger.exception("pricing failed for model %s; treating its price as unknown", model.name)
        return UNKNOWN


def snapshot_build(version: str = "") -> Snapshot:
    """Read the whole routing config with a handful of queries (sync ORM)."""
    providers: dict[int, ProviderSnap] = {}
    for p in Provider.objects.all():
        providers[p.id] = ProviderSnap(
            id=p.id,
            name=p.name,
            kind=p.kind,
            enabled=p.enabled,
            needs_key=p.needs_key,
            api_key_env=p.api_key_env,
            key_status=p.key_status,
            spec=ProviderSpec(
                name=p.name,
                kind=p.kind,
                base_url=p.base_url,
                api_version=p.api_version,
                api_key_env=p.api_key_env,
                options=dict(p.options or {}),
            ),
        )
    models: dict[str, ModelSnap] = {}
    for m in ModelConfig.objects.select_related("provider").prefetch_related("capabilities"):
        prices = _unit_prices(m)
        models[m.name] = ModelSnap(
            id=m.id,
            name=m.name,
            provider=providers[m.provider_id],
            model_id=m.model_id,
            capabilities=frozenset(c.slug for c in m.capabilities.all()),
            context_window=m.context_window,
            latency_ms=m.latency_ms,
            quality_rank=m.quality_rank,
            enabled=m.enabled,
            input_price_per_1k=prices.input_per_1k,
            output_price_per_1k=prices.output_per_1k,
            price_source=prices.source,
            cached_input_price_per_1k=prices.cached_input_per_1k,
            embedding_dimensions=m.embedding_dimensions,
        )
    chains: dict[str, ChainSnap] = {}
    for c in FallbackChain.objects.prefetch_related("steps__model"):
        steps = sorted(c.steps.all(), key=lambda s: s.position)
        chains[c.name] = ChainSnap(
            id=c.id,
            name=c.name,
            steps=tuple(StepSnap(s.position, s.model.name, s.timeout_s) for s in steps),
        )
    variants: dict[int, dict[str, PromptSnap]] = {}
    for v in PromptVariant.objects.select_related("model", "active_prompt"):
        variants.setdefault(v.route_id, {})[v.model.name] = PromptSnap(
            v.active_prompt.id, v.active_prompt.version, v.active_prompt.system_prompt
        )
    routes: dict[str, RouteSnap] = {}
    for r in TaskRoute.objects.select_related("model", "fallback_chain", "active_prompt").prefetch_related(
        "capabilities"
    ):
        prompt = r.active_prompt
        routes[r.task_type] = RouteSnap(
            id=r.id,
            task_type=r.task_type,
            enabled=r.enabled,
            model_name=r.model.name if r.model else None,
            capabilities=frozenset(c.slug for c in r.capabilities.all()),
            optimize_for=r.optimize_for,
            chain_name=r.fallback_chain.name if r.fallback_chain else None,
            preprocessor=r.preprocessor,
            postprocessor=r.postprocessor,
            prompt=PromptSnap(prompt.id, prompt.version, prompt.system_prompt) if prompt else None,
            variants=variants.get(r.id, {}),
        )
    return Snapshot(
        version=version,
        models=models,
        chains=chains,
        routes=routes,
        capabilities=frozenset(Capability.objects.values_list("slug", flat=True)),
        loaded_at=time.monotonic(),
    )


class _State:
    snapshot: Snapshot | None = None
    checked_at: float = 0.0
    stale: bool = False  # a background check saw another version: reload on the next call
    checking: bool = False
    lock = threading.Lock()


def _remote_version() -> str:
    """The published config version (sync: may wait up to the Redis timeout)."""
    current = _State.snapshot.version if _State.snapshot else ""
    if not cache_usable():
        return current
    try:
        version = shared_cache().get(VERSION_KEY)
    except Exception as exc:  # the cache being down must not stop calls: keep what we have
        cache_failed(what="config version check", exc=exc)
        return current
    cache_recovered()
    return version or ""


# One long-lived thread for the checks: it keeps its own cache connection between them.
_checker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="config-version")


def _check_in_background() -> None:
    """Run in a worker thread: compare the published version with ours."""
    try:
        snap = _State.snapshot
        if snap is not None and _remote_version() != snap.version:
            _State.stale = True
    finally:
        _State.checking = False


def _fresh() -> Snapshot | None:
    """The cached snapshot if it is known to be current (cheap; no DB)."""
    snap = _State.snapshot
    if snap is None:
        return None
    now = time.monotonic()
    if now - snap.loaded_at > MAX_AGE_S:
        return None
    if now - _State.checked_at < CHECK_INTERVAL_S:
        return snap
    version = _remote_version()
    _State.checked_at = now
    if version == snap.version:
        return snap
    return None


def _load_sync() -> Snapshot:
    with _State.lock:
        snap = None if _State.stale else _fresh()
        if snap is not None:
            return snap
        version = _remote_version()
        try:
            snap = snapshot_build(version)
        except Exception:
            old = _State.snapshot
            if old is None:
                raise
            # The database is unreachable: keep serving what we have, try again in a second.
            logger.warning("routing config reload failed; serving the last snapshot", exc_info=True)
            _State.checked_at = time.monotonic()
            return old
        _State.snapshot = snap
        _State.stale = False
        _State.checked_at = time.monotonic()
        return snap


async def snapshot_aget() -> Snapshot:
    """The current snapshot, without ever waiting on the cache in the event loop."""
    snap = _State.snapshot
    now = time.monotonic()
    if snap is not None and not _State.stale and now - snap.loaded_at <= MAX_AGE_S:
        if now - _State.checked_at >= CHECK_INTERVAL_S and not _State.checking:
            _State.checking = True
            _State.checked_at = now
            try:
                _checker.submit(_check_in_background)
            except BaseException:
                _State.checking = False
                raise
        return snap
    if snap is None:
        return await sync_to_async(_load_sync, thread_sensitive=True)()
    # A reload of a snapshot we still have: wait for it a bounded time (the database may
    # hang), then serve the old one while the reload goes on.
    slot = id(asyncio.get_running_loop())
    if slot in _reloads:
        return snap  # another call waits for it already
    reload = _reloads[slot] = asyncio.ensure_future(sync_to_async(_load_sync, thread_sensitive=True)())
    reload.add_done_callback(_reload_done(slot))
    try:
        return await asyncio.wait_for(asyncio.shield(reload), RELOAD_WAIT_S)
    except TimeoutError:
        return snap


_reloads: dict[int, asyncio.Future[Snapshot]] = {}  # event loop → the reload under way


def _reload_done(slot: int) -> Any:
    def done(reload: asyncio.Future[Snapshot]) -> None:
        _reloads.pop(slot, None)
        if not reload.cancelled():
            reload.exception()  # retrieved (the next call tries again)

    return done


def snapshot_get() -> Snapshot:
    """Sync twin (for sync code outside an event loop)."""
    return _fresh() or _load_sync()


def config_invalidate() -> None:
    """Forget the local snapshot and tell every process (via the cache) to reload."""
    _State.snapshot = None
    _State.checked_at = 0.0
    _State.stale = False
    try:
        shared_cache().set(VERSION_KEY, uuid.uuid4().hex, timeout=None)
    except Exception:
        logger.warning("could not publish the config version; other processes reload within their TTL")
