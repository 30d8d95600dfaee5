"""The one internal message model: OpenAI's chat shape, parsed and validated once.

Every path (gateway, native API, Python API, playground, compare) hands the engine messages
in one canonical form, checked here once; each provider package translates that form to its
own wire (`routing/providers/anthropic/wire.py`, `routing/providers/gemini/wire.py`;
OpenAI-style providers send it as it is). The
canonical form is OpenAI's chat-completions shape, as plain dicts, because most traffic
arrives in it and most providers speak it: an OpenAI-style call passes the messages through
without re-encoding them.

Canonical message (a dict):

    {"role": "system" | "user" | "assistant" | "tool",
     "content": str | [part, ...] | None,     # parts only for user (text, image_url) and assistant (text)
     "name": str,                              # optional, kept
     "tool_calls": [{"id", "type": "function", "function": {"name", "arguments": str}}],  # assistant
     "tool_call_id": str}                      # tool

    part: {"type": "text", "text": str}
        | {"type": "image_url", "image_url": {"url": "https://…" | "data:image/png;base64,…", "detail"?}}

`developer` messages become `system` (the servers of several kinds refuse `developer`).
Tools are OpenAI function tools, `{"type": "function", "function": {"name", "description"?,
"parameters"?, "strict"?}}`; `tool_choice` is "none" | "auto" | "required" or
`{"type": "function", "function": {"name"}}`.
"""

from routing.messages.inspect import (
    TOOL_CALLS_MARK,
    ImageInfo,
    images_in,
    last_user_text,
    message_text,
    messages_have_images,
    record_view,
    response_parse,
    response_view,
)
from routing.messages.options import CHAT_OPTION_FIELDS, NO_CHAT_OPTIONS, ChatOptions, chat_options
from routing.messages.parse import (
    IMAGE_MAX_BYTES,
    Messages,
    ParsedMessages,
    ToolChoice,
    Tools,
    messages_parse,
    text_check,
    tool_choice_parse,
    tools_parse,
)

__all__ = [
    "TOOL_CALLS_MARK",
    "CHAT_OPTION_FIELDS",
    "NO_CHAT_OPTIONS",
    "ChatOptions",
    "chat_options",
    "IMAGE_MAX_BYTES",
    "ImageInfo",
    "Messages",
    "ParsedMessages",
    "ToolChoice",
    "Tools",
    "images_in",
    "last_user_text",
    "message_text",
    "messages_have_images",
    "messages_parse",
    "record_view",
    "response_parse",
    "response_view",
    "text_check",
    "tool_choice_parse",
    "tools_parse",
]
