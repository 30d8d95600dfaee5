"""The `simulated` kind: a small, deterministic, offline "model" that reads the prompt.

No network and no key; everything it returns is labelled simulated. It answers what it
recognises (one module per skill, tried in order by `answer.simulated_answer`):

- `judge`: the consensus judge's `{"best": n, "reason": …}` and compare's PASS / FAIL verdict;
- `json_schema`: JSON valid against the schema in `response_format` or in the prompt;
- `code`: a fenced block in the asked language, code reviews, and SQL (`sql`);
- `classification`: exactly one of the labels the prompt lists;
- `summarisation`: a shorter text built from the input's sentences;
- `arithmetic`: "What is 17 * 23?" → "17 * 23 = 391" (an AST walker, never eval);
- `facts`: capitals, chemical symbols, a few counts and authors;
- `chat`: everything else, shaped by the kind of question;

then `formatting` applies asks such as "only the number" or "uppercase". Each model gets
each skill right at the rate its options set (`skill`, `skills`, per model id under `models`:
see `options.py`), decided by a hash of (seed, model, prompt): the same model, seed and prompt
always give the same answer, and cheap models really are wrong more often. Latency, time to
first token, failures for drills and the sampling options (`stop`, `max_tokens`,
`response_format`) are the client's (`client.py`).
"""

from routing.providers.base import ProviderSpec
from routing.providers.simulated.answer import simulated_answer
from routing.providers.simulated.client import SimulatedClient, reset_random, stop_cut
from routing.providers.simulated.options import SimulatedOptions, profile_for
from routing.providers.simulated.task import Answer, Task, task_from_messages

__all__ = [
    "Answer",
    "SimulatedClient",
    "SimulatedOptions",
    "Task",
    "make_client",
    "reset_random",
    "simulated_answer",
    "simulated_text",
    "stop_cut",
]


def make_client(spec: ProviderSpec) -> SimulatedClient:
    return SimulatedClient(spec)


def simulated_text(
    prompt: str, *, voice: str = "simulated", options: dict | None = None, seed: int | None = None
) -> str:
    """What the model `voice` (a model id) says to the user message `prompt` (tests, scripts)."""
    profile = profile_for(SimulatedOptions.model_validate(options or {}), voice)
    task = task_from_messages([{"role": "user", "content": prompt}], seed=seed)
    return simulated_answer(task, profile).text
