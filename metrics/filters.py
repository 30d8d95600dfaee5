"""Dashboard and call-log filters: the URL's query string parsed into a bounded query.

Nothing here raises on bad input: a malformed or reversed range, an unknown filter value or
an absurd window becomes a note the page shows, and the query falls back or is clamped.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from django.http import QueryDict
from django.utils import timezone

from metrics.models import LIVE_SOURCES, TEST_SOURCES, CallStatus, Endpoint, RollupGrain, Source
from metrics.rollups import MINUTE_RETENTION, floor_hour, floor_to, local_zone, step_after

PRESETS: dict[str, tuple[str, timedelta]] = {
    "1h": ("Last hour", timedelta(hours=1)),
    "24h": ("Last 24 hours", timedelta(hours=24)),
    "7d": ("Last 7 days", timedelta(days=7)),
    "30d": ("Last 30 days", timedelta(days=30)),
}
DEFAULT_PRESET = "24h"
MAX_SPAN = timedelta(days=400)
MAX_POINTS = 1000
GRAIN_SECONDS: dict[str, int] = {RollupGrain.MINUTE: 60, RollupGrain.HOUR: 3600, RollupGrain.DAY: 86400}
GRAIN_ORDER: list[str] = [RollupGrain.MINUTE, RollupGrain.HOUR, RollupGrain.DAY]
FILTER_FIELDS = {
    "model": "model_name",
    "provider": "provider_name",
    "route": "task_type",
    "key": "api_key_id",
    "status": "status",
    "source": "source",
    "endpoint": "endpoint",
}
# Source filter values beyond a single source: groups, and "all" (no source filter).
SOURCE_GROUPS: dict[str, tuple[str, tuple[str, ...]]] = {
    "live": ("Live traffic (gateway, API, playground)", LIVE_SOURCES),
    "test": ("Drills, compare runs, simulations", TEST_SOURCES),
}
SOURCE_ALL = "all"


@dataclass
class FilterChoices:
    models: list[str]
    providers: list[str]
    routes: list[str]
    keys: list[tuple[int, str]]
    statuses: list[tuple[str, str]] = field(default_factory=lambda: list(CallStatus.choices))
    sources: list[tuple[str, str]] = field(
        default_factory=lambda: [
            *((k, label) for k, (label, _) in SOURCE_GROUPS.items()),
            (SOURCE_ALL, "All sources"),
            *Source.choices,
        ]
    )
    endpoints: list[tuple[str, str]] = field(default_factory=lambda: list(Endpoint.choices))


@dataclass
class Query:
    start: datetime
    end: datetime
    grain: str
    preset: str  # a PRESETS key, "custom" or "all" (call log only)
    filters: dict[str, str | int] = field(default_factory=dict)  # FILTER_FIELDS key → value
    notes: list[str] = field(default_factory=list)
    params: dict[str, str] = field(default_factory=dict)  # cleaned, for links

    @property
    def span(self) -> timedelta:
        return self.end - self.start

    @property
    def previous(self) -> tuple[datetime, datetime]:
        """The window of the same length just before, its start rounded to the nearest bucket
        edge (rollups answer whole buckets)."""
        lo = self.start - self.span
        down = floor_to(self.grain, lo)
        up = down if down == lo else step_after(self.grain, down)
        return (down if lo - down <= up - lo else up), self.start

    def lookups(self) -> dict[str, str | int | tuple[str, ...]]:
        """ORM lookups (on CallRecord and both rollups alike) for the dimension filters; a
        source group is an `__in` lookup."""
        out: dict[str, str | int | tuple[str, ...]] = {}
        for k, v in self.filters.items():
            if k == "source" and v in SOURCE_GROUPS:
                out["source__in"] = SOURCE_GROUPS[str(v)][1]
            else:
                out[FILTER_FIELDS[k]] = v
        return out

    @property
    def source(self) -> str:
        """The source filter: a SOURCE_GROUPS key, a Source value or "all"."""
        return str(self.filters.get("source", SOURCE_ALL))

    def with_source(self, source: str) -> Query:
        """The same query for another source filter (e.g. what the default view leaves out)."""
        filters = {k: v for k, v in self.filters.items() if k != "source"}
        if source != SOURCE_ALL:
            filters["source"] = source
        return replace(self, filters=filters, notes=[])

    def query_string(self, **extra: str) -> str:
        params = {**self.params, **extra}
        return urlencode({k: v for k, v in params.items() if v not in ("", None)})


def fit_grain(span: timedelta) -> str:
    if span <= timedelta(hours=6):
        return RollupGrain.MINUTE
    if span <= timedelta(days=8):
        return RollupGrain.HOUR
    return RollupGrain.DAY


def _parse_when(raw: str) -> datetime | None:
    """An ISO date or date-time; naive values are in settings.TIME_ZONE."""
    raw = raw.strip()
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=local_zone())
    return value.astimezone(UTC)


def parse_filters(
    params: QueryDict, *, choices: FilterChoices, notes: list[str], default_source: str = SOURCE_ALL
) -> dict[str, str | int]:
    """The dimension filters asked for. No source asked: `default_source` ("all" is no filter)."""
    filters: dict[str, str | int] = {}
    known: dict[str, set[str]] = {
        "model": set(choices.models),
        "provider": set(choices.providers),
        "route": set(choices.routes),
        "key": {str(k) for k, _ in choices.keys},
        "status": {s for s, _ in choices.statuses},
        "source": {s for s, _ in choices.sources},
        "endpoint": {e for e, _ in choices.endpoints},
    }
    for name in FILTER_FIELDS:
        value = params.get(name, "").strip()
        if name == "source" and not value:
            value = default_source
        if not value:
            continue
        if value not in known[name]:
            if name == "source":
                labels = {"all": "all sources", **{k: label for k, (label, _) in SOURCE_GROUPS.items()}}
                notes.append(f"Unknown source {value[:100]!r}: showing {labels[default_source].lower()}.")
                value = default_source
            else:
                notes.append(f"Unknown {name} {value[:100]!r}: that filter is ignored.")
                continue
        if name == "source" and value == SOURCE_ALL:
            continue
        filters[name] = int(value) if name == "key" else value
    return filters


def parse_query(
    params: QueryDict, *, choices: FilterChoices, now: datetime | None = None, allow_all: bool = False
) -> Query:
    """The window, granularity and filters asked for, clamped to what we can answer fast."""
    now = now or timezone.now()
    notes: list[str] = []
    preset = params.get("range", "").strip() or ("all" if allow_all else DEFAULT_PRESET)
    start: datetime | None = None
    end: datetime | None = None
    if preset == "custom":
        raw_from, raw_to = params.get("from", ""), params.get("to", "")
        start, end = _parse_when(raw_from), _parse_when(raw_to)
        if raw_from.strip() and start is None:
            notes.append(f"Could not read the start {raw_from[:40]!r} (use YYYY-MM-DD HH:MM).")
        if raw_to.strip() and end is None:
            notes.append(f"Could not read the end {raw_to[:40]!r} (use YYYY-MM-DD HH:MM).")
        end = min(end or now, now)
        if start is None:
            notes.append("No start given: showing the 24 hours before the end.")
            start = end - PRESETS[DEFAULT_PRESET][1]
        if start > end:
            notes.append("The start was after the end: swapped them.")
            start, end = end, start
        if end - start < timedelta(minutes=1):
            notes.append("The window was shorter than a minute: widened to one minute.")
            start = end - timedelta(minutes=1)
    elif preset == "all" and allow_all:
        start, end = now - MAX_SPAN, now
    else:
        if preset not in PRESETS:
            notes.append(f"Unknown range {preset[:20]!r}: showing the last 24 hours.")
            preset = DEFAULT_PRESET
        end = now
        start = now - PRESETS[preset][1]
    if end - start > MAX_SPAN:
        notes.append(f"Windows are limited to {MAX_SPAN.days} days: showing the last {MAX_SPAN.days} of it.")
        start = end - MAX_SPAN

    span = end - start
    grain = fit_grain(span)
    asked = params.get("grain", "").strip()
    if asked and asked != "auto":
        if asked not in GRAIN_SECONDS:
            notes.append(f"Unknown granularity {asked[:20]!r}: chose {grain}.")
        else:
            grain = asked
            points = span.total_seconds() / GRAIN_SECONDS[grain]
            while points > MAX_POINTS and grain != RollupGrain.DAY:
                coarser = GRAIN_ORDER[GRAIN_ORDER.index(grain) + 1]
                notes.append(
                    f"{grain.capitalize()} granularity over {span.days} days would be {int(points):,} points "
                    f"(limit {MAX_POINTS:,}): showing {coarser} instead."
                )
                grain = coarser
                points = span.total_seconds() / GRAIN_SECONDS[grain]
    if grain == RollupGrain.MINUTE and start < floor_hour(now - MINUTE_RETENTION):
        hours = int(MINUTE_RETENTION.total_seconds() // 3600)
        notes.append(f"Minute detail is kept for {hours} hours: showing hourly figures for this window.")
        grain = RollupGrain.HOUR

    start = floor_to(grain, start)
    if end < now:
        last = floor_to(grain, end - timedelta(microseconds=1))
        end = min(now, step_after(grain, last))

    # The dashboard shows live traffic unless asked otherwise; the call log every source.
    filters = parse_filters(
        params, choices=choices, notes=notes, default_source=SOURCE_ALL if allow_all else "live"
    )
    clean: dict[str, str] = {"range": preset}
    if preset == "custom":
        fmt = "%Y-%m-%dT%H:%M"
        clean["from"] = start.astimezone(local_zone()).strftime(fmt)
        clean["to"] = end.astimezone(local_zone()).strftime(fmt)
    if asked and asked in GRAIN_SECONDS:
        clean["grain"] = grain
    clean.update({k: str(v) for k, v in filters.items()})
    if "source" not in filters and not allow_all:
        clean["source"] = SOURCE_ALL
    return Query(start=start, end=end, grain=grain, preset=preset, filters=filters, notes=notes, params=clean)
