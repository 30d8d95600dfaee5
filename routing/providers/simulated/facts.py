"""Simple facts from a small table: capitals, chemical symbols, a few counts and authors.

A model errs at its `knowledge` rate by naming another entry of the same table (a
believable mistake: "The capital of Australia is Sydney" is not on offer, but Wellington is).
"""

from __future__ import annotations

import re

from routing.providers.simulated.options import Profile
from routing.providers.simulated.task import Answer, Solver, Task, errs, pick

CAPITALS = {
    "argentina": "Buenos Aires",
    "australia": "Canberra",
    "austria": "Vienna",
    "brazil": "Brasília",
    "canada": "Ottawa",
    "china": "Beijing",
    "egypt": "Cairo",
    "france": "Paris",
    "germany": "Berlin",
    "greece": "Athens",
    "india": "New Delhi",
    "ireland": "Dublin",
    "italy": "Rome",
    "japan": "Tokyo",
    "kenya": "Nairobi",
    "mexico": "Mexico City",
    "netherlands": "Amsterdam",
    "new zealand": "Wellington",
    "nigeria": "Abuja",
    "norway": "Oslo",
    "poland": "Warsaw",
    "portugal": "Lisbon",
    "russia": "Moscow",
    "south korea": "Seoul",
    "spain": "Madrid",
    "sweden": "Stockholm",
    "switzerland": "Bern",
    "turkey": "Ankara",
    "united kingdom": "London",
    "united states": "Washington, D.C.",
}
SYMBOLS = {
    "carbon": "C",
    "copper": "Cu",
    "gold": "Au",
    "helium": "He",
    "hydrogen": "H",
    "iron": "Fe",
    "lead": "Pb",
    "mercury": "Hg",
    "nitrogen": "N",
    "oxygen": "O",
    "potassium": "K",
    "silver": "Ag",
    "sodium": "Na",
    "tin": "Sn",
}
# (pattern, answer sentence with {}, key, wrong keys)
COUNTS = [
    (r"how many days (?:are )?in a week", "There are {} days in a week.", "7", ["5", "6", "8"]),
    (r"how many days (?:are )?in a leap year", "A leap year has {} days.", "366", ["365", "364"]),
    (r"how many planets", "There are {} planets in the Solar System.", "8", ["9", "7"]),
    (r"how many continents", "There are {} continents.", "7", ["6", "5"]),
    (r"how many legs (?:does )?a spider", "A spider has {} legs.", "8", ["6", "10"]),
    (r"how many sides (?:does )?a hexagon", "A hexagon has {} sides.", "6", ["8", "5"]),
    (r"how many bits (?:are )?in a byte", "A byte has {} bits.", "8", ["16", "4"]),
    (r"boiling point of water", "Water boils at {} °C at sea level.", "100", ["90", "212"]),
]
AUTHORS = {
    "hamlet": "William Shakespeare",
    "pride and prejudice": "Jane Austen",
    "1984": "George Orwell",
    "war and peace": "Leo Tolstoy",
    "the odyssey": "Homer",
    "don quixote": "Miguel de Cervantes",
}
_ALIASES = {
    "uk": "united kingdom",
    "britain": "united kingdom",
    "usa": "united states",
    "us": "united states",
}


def _lookup(text: str) -> tuple[str, str, list[str]] | None:
    """(sentence with {}, right key, the other keys of its table) for the question, or None."""
    lowered = " ".join(text.lower().split())
    match = re.search(r"capital (?:city )?of (?:the )?([a-z ]+?)\s*(?:\?|\.|$|,| and\b)", lowered)
    if match:
        country = _ALIASES.get(match.group(1).strip(), match.group(1).strip())
        if country in CAPITALS:
            others = [c for k, c in CAPITALS.items() if k != country]
            return f"The capital of {country.title()} is {{}}.", CAPITALS[country], others
    match = re.search(r"(?:chemical )?symbol (?:for|of) ([a-z]+)", lowered)
    if match and match.group(1) in SYMBOLS:
        element = match.group(1)
        others = [s for k, s in SYMBOLS.items() if k != element]
        return f"The chemical symbol for {element} is {{}}.", SYMBOLS[element], others
    match = re.search(r"who wrote ([a-z0-9 ]+?)\s*(?:\?|\.|$)", lowered)
    if match:
        title = match.group(1).strip()
        if title in AUTHORS:
            others = [a for k, a in AUTHORS.items() if k != title]
            return f"{title.title()} was written by {{}}.", AUTHORS[title], others
    for pattern, sentence, key, wrong in COUNTS:
        if re.search(pattern, lowered):
            return sentence, key, wrong
    return None


def answer(task: Task, model: Profile, solve: Solver) -> Answer | None:
    found = _lookup(task.user)
    if found is None:
        return None
    sentence, key, others = found
    wrong = errs(model, task, "knowledge")
    shown = pick(model, task, "fact-slip", others) if wrong else key
    return Answer(text=sentence.format(shown), skill="knowledge", key=shown, correct=not wrong)
