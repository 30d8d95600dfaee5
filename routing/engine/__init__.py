"""The orchestration engine behind `routing.orchestrator` (see docs/engine.md).

config     the in-process snapshot of routing config, reloaded when an operator saves
selection  which models can serve a request, best first
planning   validating a request and turning it into a plan (ordered steps)
trace      what the attempts of one request share (Trace), a plan's Step, trace ids
attempts   the attempt policy: the one loop (skips, retries, backoff, breaker, fallover)
failures   the errors a plan ends with when nothing answered
records    the one CallRecord of each attempt (messages sent, cost, queueing)
execute    the plain path: the loop driving one provider call per attempt
streaming  the streamed path: the loop driving one stream per attempt (events, cancellation)
consensus  several models at once and the aggregators
breaker    the per-model circuit breaker (state in Django's cache)
stats      measured latency and quality scores, refreshed periodically
faults     fault injection for drills (the provider work)
reset      engine_reset(): forget every piece of engine state (tests)
"""
