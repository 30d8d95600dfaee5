"""The Python API: the seed's ModelOrchestrator, TaskRouter, ParallelOrchestrator and
FallbackChain in one place, reading config from the database. Async functions are the
engine; the plain names are sync wrappers for Django views, Celery tasks and scripts.

    from routing import orchestrator
    r = orchestrator.route("code_review", python_code)   # r.text, r.model, r.trace_id, r.cost_usd, r.attempts

Keyword arguments common to every call:
    source       "api" | "playground" | "gateway" | "batch" | "drill" | "simulation" (stored on records)
    api_key_id   gateway.ApiKey id the spend is attributed to
    trace_id     join an existing trace (a new one is made otherwise)
    temperature, max_tokens (or max_completion_tokens, OpenAI's newer name; it wins if both)
    top_p, stop, seed, presence_penalty, frequency_penalty, response_format, user
                 the sampling options, as OpenAI names them (or `sampling=SamplingOptions(...)`,
                 from routing.sampling); every attempt, fallbacks included, sends the same ones
    tools, tool_choice, parallel_tool_calls, n, logprobs, top_logprobs, reasoning_effort
                 the chat options, as OpenAI names them (or `chat=ChatOptions(...)`, from
                 routing.messages), carried the same way; a model whose kind cannot honour
                 them is passed over with the reason, and a request with tools needs models
                 with the `tool_use` capability (images: `vision`)
    role         a label stored on the records (e.g. "arena", "cell"); by default each record
                 says primary / fallback / consensus / judge
    system       a system prompt that replaces the route's (playground)
    endpoint     the gateway endpoint the call came through (stored on records)
    created_at   backdate the records (simulated traffic)
    processor_options  keyword arguments for the route's processors (e.g. labels=[...])

Messages are OpenAI's chat shape (routing.messages: text or parts with images, assistant
tool_calls, tool results); they are parsed and checked once (a list `messages_parse` made is
taken as it is). A Result carries `tool_calls` (OpenAI's shape, never post-processed),
`logprobs`, and `more_choices` for n > 1.

Errors are `routing.errors.OrchestratorError` subclasses, each with an HTTP status. Bad
input (unknown task type, model or chain, empty messages, a capability no model has, a
missing key, a prompt too long for every candidate) fails before anything is sent or
recorded. The sync wrappers cannot run inside an event loop: await the `a…` twin there.
They write the call records before they return; async callers can `await arecords_flush()`.
"""

from routing.engine.breaker import breaker_reset, breaker_scope, breaker_states
from routing.engine.consensus import AnswerGroup, answer_groups
from routing.engine.faults import FaultSpec, inject_faults
from routing.engine.selection import estimate_prompt_tokens
from routing.engine.trace import trace_id_new
from routing.engine.types import (
    AttemptInfo,
    ConsensusResult,
    MemberOutcome,
    Result,
    SkipInfo,
    StreamEvent,
    ToolCallDelta,
    Usage,
)
from routing.errors import AllAttemptsFailed, InvalidRequest, NoCandidate, NotFound, OrchestratorError
from routing.messages import (
    CHAT_OPTION_FIELDS,
    NO_CHAT_OPTIONS,
    ChatOptions,
    ParsedMessages,
    chat_options,
    messages_parse,
)
from routing.orchestrator.calls import (
    Messages,
    acomplete,
    aconsensus,
    aconsensus_decide,
    aexecute_parallel,
    aexecute_with_fallback,
    arecords_flush,
    aroute,
    aselect_model,
    astream,
)
from routing.orchestrator.embeddings import (
    EmbeddingResult,
    aembed,
    embed_dimensions_check,
    embed_inputs_check,
    embed_user_check,
)
from routing.orchestrator.sync import (
    complete,
    consensus,
    embed,
    execute_parallel,
    execute_with_fallback,
    records_flush,
    route,
    select_model,
)
from routing.sampling import (
    NO_SAMPLING,
    SAMPLING_FIELDS,
    SEED_RANGE,
    SamplingOptions,
    number_in_range,
    sampling_options,
    type_name,
)

# The public engine API: callers (the gateway, scripts, fault drills: breaker scopes and fault
# injection) import these names from here, never from routing.engine.*, so the engine's
# modules can move without breaking them.
__all__ = [
    "CHAT_OPTION_FIELDS",
    "NO_CHAT_OPTIONS",
    "NO_SAMPLING",
    "SAMPLING_FIELDS",
    "SEED_RANGE",
    "AllAttemptsFailed",
    "AnswerGroup",
    "AttemptInfo",
    "ChatOptions",
    "ConsensusResult",
    "EmbeddingResult",
    "FaultSpec",
    "InvalidRequest",
    "MemberOutcome",
    "Messages",
    "NoCandidate",
    "NotFound",
    "OrchestratorError",
    "ParsedMessages",
    "Result",
    "SamplingOptions",
    "SkipInfo",
    "StreamEvent",
    "ToolCallDelta",
    "Usage",
    "aconsensus",
    "aconsensus_decide",
    "aembed",
    "acomplete",
    "aexecute_parallel",
    "aexecute_with_fallback",
    "answer_groups",
    "arecords_flush",
    "aroute",
    "aselect_model",
    "astream",
    "breaker_reset",
    "breaker_scope",
    "breaker_states",
    "chat_options",
    "complete",
    "consensus",
    "embed",
    "embed_dimensions_check",
    "embed_inputs_check",
    "embed_user_check",
    "estimate_prompt_tokens",
    "execute_parallel",
    "execute_with_fallback",
    "inject_faults",
    "messages_parse",
    "number_in_range",
    "records_flush",
    "route",
    "sampling_options",
    "select_model",
    "trace_id_new",
    "type_name",
]
