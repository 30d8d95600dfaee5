"""A provider kind for tests: OpenAI-compatible on the wire, refusing logprobs (as a kind
without them says through `chat_refusal`)."""

from routing.messages import ChatOptions
from routing.providers.openai_compatible import make_client

__all__ = ["chat_refusal", "make_client"]


def chat_refusal(options: ChatOptions) -> tuple[str, str] | None:
    if options.logprobs:
        return "logprobs", "logprobs not supported by refusing"
    return None
