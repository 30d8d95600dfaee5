"""The words that tell what a tool's property is about (by its name) and where its value is in
the text."""

from __future__ import annotations

import re

PLACE = {"city", "location", "place", "country", "destination", "origin", "region", "town", "address"}
PLACE |= {"airport", "state", "where", "departure", "arrival", "venue", "area", "locality"}
STREET = {"street", "line", "line1", "road"}
PERSON = {"name", "person", "author", "user", "username", "customer", "recipient", "contact", "owner"}
PERSON |= {"assignee", "who", "first", "last", "full", "attendee", "sender", "employee"}
CODE = {"currency", "symbol", "ticker", "code", "iso"}
FREE_TEXT = {"query", "q", "search", "text", "message", "content", "body", "prompt", "question"}
FREE_TEXT |= {"term", "keyword", "keywords", "input", "request", "instruction", "note", "comment"}
PLACE_WORDS = {"in", "at", "on", "near", "from", "of"}  # a name after these is a place, not a person
EXPRESSION = {"expression", "formula", "equation", "calculation", "math"}
EMAIL = {"email", "mail", "recipient", "sender", "cc", "bcc", "to"}
LINK = {"url", "link", "uri", "website", "site", "href", "page"}
FROM = {"from", "origin", "source", "departure", "start", "base"}
TO = {"to", "destination", "target", "arrival", "end", "into", "quote"}
# Fields the JSON skill gives a meaning to (the answer to the question, a summary…): worth
# filling even when optional.
MEANINGFUL = re.compile(r"answer|result|summary|reason|explanation|rationale|total|title|topic")
SAID = re.compile(r"summary|answer|result|response|output|explanation|reason|text|message|content|reply")
NUMBER_WORDS = {
    "age": {"years", "old", "aged", "age"},
    "count": {"results", "items", "top", "first"},
    "limit": {"results", "items", "top", "first", "limit"},
    "days": {"days", "day"},
    "amount": {"usd", "eur", "gbp", "dollars", "euros", "$", "€", "£"},
}
