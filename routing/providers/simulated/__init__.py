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

then `formatting` applies asks such as "only the number" or "uppercase".

Beyond text (`reply.py` puts a reply together): when tools are offered it calls the one that
fits the ask, with arguments valid against its JSON Schema and taken from the prompt where it
can (`tools`, `arguments`), several at once when the ask names several things, and answers
from the tools' results on the next turn; it says what it can tell of the images it is sent
without seeing them (`images`); `n` choices come back in one call (`NATIVE_N`); logprobs it
cannot give (`chat_refusal`). Each model gets
each skill right at the rate its options set (`skill`, `skills`, per model id under `models`:
see `options.py`), decided by a hash of (seed, model, prompt): the same model, seed and prompt
always give the same answer, and cheap models really are wrong more often. Latency, time to
first token, failures for drills and the sampling options (`stop`, `max_tokens`,
`response_format`) are the client's (`client.py`).
"""

from routing.messages import ChatOptions
from routing.providers.base import ProviderSpec
from routing.providers.simulated.answer import simulated_answer
from routing.providers.simulated.client import SimulatedClient, reset_random
from routing.providers.simulated.options import SimulatedOptions, profile_for
from routing.providers.simulated.reply import stop_cut
from routing.providers.simulated.task import Answer, Task, task_from_messages

__all__ = [
    "NATIVE_N",
    "Answer",
    "SimulatedClient",
    "SimulatedOptions",
    "Task",
    "chat_refusal",
    "make_client",
    "reset_random",
    "simulated_answer",
    "simulated_text",
    "stop_cut",
]


# n > 1 is answered in one call: choices 1… in Completion.more_choices, their usage summed.
NATIVE_N = True


def make_client(spec: ProviderSpec) -> SimulatedClient:
    return SimulatedClient(spec)


def chat_refusal(options: ChatOptions) -> tuple[str, str] | None:
    """(param, reason) of a chat option a simulated model cannot honour: it has no logprobs to
    give, and inventing them would mislead whoever reads them."""
    if options.logprobs:
        return "logprobs", "logprobs not supported by simulated"
    return None


def simulated_text(
    prompt: str, *, voice: str = "simulated", options: dict | None = None, seed: int | None = None
) -> str:
    """What the model `voice` (a model id) says to the user message `prompt` (tests, scripts)."""
    profile = profile_for(SimulatedOptions.model_validate(options or {}), voice)
    task = task_from_messages([{"role": "user", "content": prompt}], seed=seed)
    return simulated_answer(task, profile).text
