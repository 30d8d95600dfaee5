"""The admission rule, in Redis (one Lua script per step) and in process (the same rule).

Per API key:

rpm       a sliding-window log: the admission times of the last 60 s (a sorted set). A request
          is admitted while fewer than `rpm` are in it, so no 60 s span ever holds more than
          `rpm` admissions, minute boundaries or not.
tpm       a sliding-window log of settled usage ("<request>:<tokens>" at the time it settled)
          with its running sum beside it (entries leave the sum as they leave the window, so
          a check costs the same at 10 or 100,000 entries), plus the tokens reserved by
          requests in flight.
budget    the period's spend counter (nano-dollars, seeded from the records) plus the cost
          reserved by requests in flight.
in flight each admitted request holds a reservation (estimated nano-dollars and tokens) until
          it is settled with the real figures, or until RESERVATION_TTL_S if it never is (a
          crashed process). A request is refused while spend + reserved reaches the budget
          (or tokens used + reserved reach tpm), so concurrent requests pass a limit by at
          most one request's worth. The estimate is the caller's, else the largest cost and
          token count this key has settled (kept for a week); a key with none settled yet
          reserves the rest of its budget/tpm, so its first request runs alone.

`admit` returns a `Verdict`; `settle` removes a reservation and adds the real usage.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

WINDOW_MS = 60_000
MAX_TTL_S = 7 * 24 * 3600

ADMITTED, RPM, TPM, BUDGET, COLD = "admitted", "rpm", "tpm", "budget", "cold"


@dataclass(frozen=True)
class Verdict:
    outcome: str  # ADMITTED, RPM, TPM, BUDGET (refused) or COLD (seed the spend counter first)
    spent_nano: int = 0  # the period's settled spend (budget keys)
    retry_ms: int = 0  # refusals: when a slot frees up (in-flight refusals: a guess of 1 s)
    in_flight: bool = False  # refused because of reservations, not settled usage


# KEYS: 1 rpm log, 2 tpm log, 3 spend counter, 4 reservation expiries, 5 reservation amounts,
#       6 the key's largest settled request ("nano", "tokens"), 7 the tpm log's running sum
# ARGV: 1 now (ms), 2 request id, 3 rpm, 4 tpm, 5 budget (nano), 6 estimated nano,
#       7 estimated tokens (-1: none / unknown), 8 reservation ttl (ms), 9 window (ms), 10 max ttl (s)
ADMIT_LUA = """
local function tokens_of(members)
  local total = 0
  for _, m in ipairs(members) do total = total + tonumber(string.sub(m, string.find(m, ':', 1, true) + 1)) end
  return total
end
local now = tonumber(ARGV[1])
local rid = ARGV[2]
local rpm, tpm, budget = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local ttl, window = tonumber(ARGV[8]), tonumber(ARGV[9])
local spent = 0
if budget >= 0 then
  local raw = redis.call('GET', KEYS[3])
  if not raw then return {0} end
  spent = tonumber(raw)
end
local expired = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now)
for _, id in ipairs(expired) do redis.call('HDEL', KEYS[5], id) end
if #expired > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now) end
local held_nano, held_tokens = 0, 0
for _, v in ipairs(redis.call('HVALS', KEYS[5])) do
  local sep = string.find(v, ':', 1, true)
  held_nano = held_nano + tonumber(string.sub(v, 1, sep - 1))
  held_tokens = held_tokens + tonumber(string.sub(v, sep + 1))
end
if rpm >= 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
  if redis.call('ZCARD', KEYS[1]) >= rpm then
    local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
    local retry = 1000
    if oldest[2] then retry = tonumber(oldest[2]) + window - now end
    return {1, spent, retry, 0}
  end
end
local used = 0
if tpm >= 0 then
  local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now - window)
  local sum = redis.call('GET', KEYS[7])
  if #gone > 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
    if sum then sum = redis.call('DECRBY', KEYS[7], tokens_of(gone)) end
  end
  if not sum then
    -- No running sum (first use, or an older deployment's log): rebuild it once from the
    -- log, expiring with it.
    sum = tokens_of(redis.call('ZRANGE', KEYS[2], 0, -1))
    local left = redis.call('PTTL', KEYS[2])
    if left > 0 then redis.call('SET', KEYS[7], sum, 'PX', left) end
  end
  used = math.max(0, tonumber(sum))
  if used + held_tokens >= tpm then
    local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
    if used >= tpm and oldest[2] then return {2, spent, tonumber(oldest[2]) + window - now, 0} end
    return {2, spent, 1000, 1}
  end
end
if budget >= 0 and spent + held_nano >= budget then
  if spent >= budget then return {3, spent, 0, 0} end
  return {3, spent, 1000, 1}
end
local est_nano, est_tokens = tonumber(ARGV[6]), tonumber(ARGV[7])
if est_nano < 0 or est_tokens < 0 then
  local seen = redis.call('HMGET', KEYS[6], 'nano', 'tokens')
  if est_nano < 0 and seen[1] then est_nano = tonumber(seen[1]) end
  if est_tokens < 0 and seen[2] then est_tokens = tonumber(seen[2]) end
end
if est_nano < 0 then est_nano = budget >= 0 and (budget - spent - held_nano) or 0 end
if est_tokens < 0 then est_tokens = tpm >= 0 and (tpm - used - held_tokens) or 0 end
if rpm >= 0 then
  redis.call('ZADD', KEYS[1], now, rid)
  redis.call('PEXPIRE', KEYS[1], window)
end
if budget >= 0 or tpm >= 0 then
  redis.call('HSET', KEYS[5], rid, string.format('%d:%d', est_nano, est_tokens))
  redis.call('ZADD', KEYS[4], now + ttl, rid)
  redis.call('PEXPIRE', KEYS[4], ttl)
  redis.call('PEXPIRE', KEYS[5], ttl)
end
return {4, spent, 0, 0}
"""

# KEYS: 1 tpm log, 2 spend counter, 3 reservation expiries, 4 reservation amounts, 5 largest,
#       6 the tpm log's running sum
# ARGV: 1 now (ms), 2 request id, 3 tokens, 4 nano, 5 window (ms), 6 max ttl (s),
#       7 "1" if the key has a tpm limit, 8 "1" if it has a budget
# Returns the spend counter after adding (nil when the counter is cold: it is re-seeded).
SETTLE_LUA = """
redis.call('HDEL', KEYS[4], ARGV[2])
redis.call('ZREM', KEYS[3], ARGV[2])
if ARGV[7] == '1' then
  local added = redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2] .. ':' .. ARGV[3])
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
  -- The sum moves with the log (a request settled twice counts once); with no sum yet the
  -- next admission rebuilds it from the log.
  if redis.call('EXISTS', KEYS[6]) == 1 then
    if added == 1 then redis.call('INCRBY', KEYS[6], ARGV[3]) end
    redis.call('PEXPIRE', KEYS[6], ARGV[5])
  end
end
local seen = redis.call('HMGET', KEYS[5], 'nano', 'tokens')
if not seen[1] or tonumber(seen[1]) < tonumber(ARGV[4]) then redis.call('HSET', KEYS[5], 'nano', ARGV[4]) end
if not seen[2] or tonumber(seen[2]) < tonumber(ARGV[3]) then redis.call('HSET', KEYS[5], 'tokens', ARGV[3]) end
redis.call('EXPIRE', KEYS[5], ARGV[6])
if ARGV[8] == '1' and redis.call('EXISTS', KEYS[2]) == 1 then
  return redis.call('INCRBY', KEYS[2], ARGV[4])
end
return false
"""

_OUTCOMES = {0: COLD, 1: RPM, 2: TPM, 3: BUDGET, 4: ADMITTED}


def verdict_from_reply(reply: list[int]) -> Verdict:
    if int(reply[0]) == 0:
        return Verdict(COLD)
    return Verdict(
        _OUTCOMES[int(reply[0])],
        spent_nano=int(reply[1]),
        retry_ms=max(0, int(reply[2])),
        in_flight=bool(int(reply[3])),
    )


# -- The same rule in process (no Redis: `make run`, one server process) -------------------


@dataclass
class _KeyState:
    admitted: deque[float] = field(default_factory=deque)  # admission times, ms
    used: deque[tuple[float, int]] = field(default_factory=deque)  # (settled at ms, tokens)
    used_total: int = 0  # the tokens in `used`, kept as entries come and go
    held: dict[str, tuple[int, int, float]] = field(default_factory=dict)  # id → (nano, tokens, expiry)
    largest: tuple[int, int] | None = None  # (nano, tokens)


class LocalLimits:
    """Exact within one process: one lock, the Lua scripts' rule line for line."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: dict[int, _KeyState] = {}
        self._spend: dict[str, tuple[int, float]] = {}  # counter → (nano-dollars, expiry, monotonic)

    def clear(self) -> None:
        with self._lock:
            self._keys.clear()
            self._spend.clear()

    def _spent(self, spend_key: str) -> int | None:
        hit = self._spend.get(spend_key)
        if hit is None or hit[1] <= time.monotonic():
            self._spend.pop(spend_key, None)
            return None
        return hit[0]

    def spend_get(self, spend_key: str) -> int | None:
        with self._lock:
            return self._spent(spend_key)

    def spend_seed(self, spend_key: str, nano: int, ttl_s: float) -> None:
        """Set the counter from the records unless another caller already did."""
        with self._lock:
            if self._spent(spend_key) is None:
                self._spend[spend_key] = (nano, time.monotonic() + ttl_s)

    def admit(
        self,
        *,
        key_id: int,
        spend_key: str,
        now_ms: float,
        request_id: str,
        rpm: int | None,
        tpm: int | None,
        budget_nano: int | None,
        est_nano: int | None,
        est_tokens: int | None,
        ttl_ms: int,
    ) -> Verdict:
        with self._lock:
            spent = 0
            if budget_nano is not None:
                seeded = self._spent(spend_key)
                if seeded is None:
                    return Verdict(COLD)
                spent = seeded
            state = self._keys.setdefault(key_id, _KeyState())
            for rid in [rid for rid, (_, _, expiry) in state.held.items() if expiry <= now_ms]:
                del state.held[rid]
            held_nano = sum(n for n, _, _ in state.held.values())
            held_tokens = sum(t for _, t, _ in state.held.values())
            if rpm is not None:
                while state.admitted and state.admitted[0] <= now_ms - WINDOW_MS:
                    state.admitted.popleft()
                if len(state.admitted) >= rpm:
                    retry = state.admitted[0] + WINDOW_MS - now_ms if state.admitted else 1000
                    return Verdict(RPM, spent_nano=spent, retry_ms=int(retry))
            used = 0
            if tpm is not None:
                while state.used and state.used[0][0] <= now_ms - WINDOW_MS:
                    state.used_total -= state.used.popleft()[1]
                used = state.used_total
                if used + held_tokens >= tpm:
                    if used >= tpm and state.used:
                        retry = state.used[0][0] + WINDOW_MS - now_ms
                        return Verdict(TPM, spent_nano=spent, retry_ms=int(retry))
                    return Verdict(TPM, spent_nano=spent, retry_ms=1000, in_flight=True)
            if budget_nano is not None and spent + held_nano >= budget_nano:
                if spent >= budget_nano:
                    return Verdict(BUDGET, spent_nano=spent)
                return Verdict(BUDGET, spent_nano=spent, retry_ms=1000, in_flight=True)
            if est_nano is None and state.largest is not None:
                est_nano = state.largest[0]
            if est_tokens is None and state.largest is not None:
                est_tokens = state.largest[1]
            if est_nano is None:
                est_nano = budget_nano - spent - held_nano if budget_nano is not None else 0
            if est_tokens is None:
                est_tokens = tpm - used - held_tokens if tpm is not None else 0
            if rpm is not None:
                state.admitted.append(now_ms)
            if budget_nano is not None or tpm is not None:
                state.held[request_id] = (est_nano, est_tokens, now_ms + ttl_ms)
            return Verdict(ADMITTED, spent_nano=spent)

    def settle(
        self,
        *,
        key_id: int,
        spend_key: str,
        now_ms: float,
        request_id: str,
        tokens: int,
        nano: int,
        has_tpm: bool,
        has_budget: bool,
    ) -> int | None:
        with self._lock:
            state = self._keys.setdefault(key_id, _KeyState())
            state.held.pop(request_id, None)
            if has_tpm:
                state.used.append((now_ms, tokens))
                state.used_total += tokens
            largest = state.largest or (nano, tokens)
            state.largest = (max(largest[0], nano), max(largest[1], tokens))
            seeded = self._spent(spend_key) if has_budget else None
            if seeded is None:
                return None
            self._spend[spend_key] = (seeded + nano, self._spend[spend_key][1])
            return seeded + nano
