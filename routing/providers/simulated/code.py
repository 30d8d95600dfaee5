"""Code: a fenced block in the asked language for "write a function…", a review that finds
the bug in pasted code (with the corrected snippet), and SQL for a question about data.

A model that errs at its `code_generation` rate writes the function with an off-by-one slip,
misses the bug it was shown, or sorts the wrong way. SQL lives in `sql.py`.
"""

from __future__ import annotations

import re

from routing.providers.simulated import sql
from routing.providers.simulated.options import Profile
from routing.providers.simulated.task import Answer, Solver, Task, errs

LANGUAGES = {
    "python": "python",
    "javascript": "javascript",
    "js": "javascript",
    "node": "javascript",
    "typescript": "typescript",
    "ts": "typescript",
    "go": "go",
    "golang": "go",
    "rust": "rust",
    "java": "java",
    "c#": "csharp",
    "csharp": "csharp",
    "c++": "cpp",
    "ruby": "ruby",
    "php": "php",
    "bash": "bash",
    "shell": "bash",
    "kotlin": "kotlin",
    "swift": "swift",
}
_LANGUAGE = re.compile(
    r"(?<![\w#+])(python|javascript|js|node|typescript|ts|golang|go|rust|java|c#|csharp|c\+\+|ruby|php|"
    r"bash|shell|kotlin|swift)(?![\w#+])",
    re.IGNORECASE,
)
_WRITE = re.compile(
    r"\b(write|implement|create|code|generate|give me)\b.{0,40}\b(function|method|script|program|class|snippet|code)\b",
    re.IGNORECASE | re.DOTALL,
)
_REVIEW = re.compile(r"\b(review|bugs?|fix|what(?:'s| is) wrong)\b", re.IGNORECASE)

# task → (function name, good python, buggy python, good javascript, buggy javascript)
FUNCTIONS: list[tuple[str, str, tuple[str, str, str, str]]] = [
    (
        r"revers\w* (?:a |the )?string",
        "reverse_string",
        (
            "def reverse_string(text: str) -> str:\n    return text[::-1]",
            "def reverse_string(text: str) -> str:\n    return text[:0:-1]",
            "function reverseString(text) {\n  return [...text].reverse().join('');\n}",
            "function reverseString(text) {\n  return text.split('').reverse().join('').slice(1);\n}",
        ),
    ),
    (
        r"factorial",
        "factorial",
        (
            "def factorial(n: int) -> int:\n    result = 1\n    for i in range(2, n + 1):\n"
            "        result *= i\n    return result",
            "def factorial(n: int) -> int:\n    result = 1\n    for i in range(2, n):\n"
            "        result *= i\n    return result",
            "function factorial(n) {\n  let result = 1;\n  for (let i = 2; i <= n; i++) result *= i;\n"
            "  return result;\n}",
            "function factorial(n) {\n  let result = 1;\n  for (let i = 2; i < n; i++) result *= i;\n"
            "  return result;\n}",
        ),
    ),
    (
        r"fibonacci",
        "fibonacci",
        (
            "def fibonacci(n: int) -> int:\n    a, b = 0, 1\n    for _ in range(n):\n"
            "        a, b = b, a + b\n    return a",
            "def fibonacci(n: int) -> int:\n    a, b = 0, 1\n    for _ in range(n - 1):\n"
            "        a, b = b, a + b\n    return a",
            "function fibonacci(n) {\n  let [a, b] = [0, 1];\n  for (let i = 0; i < n; i++) [a, b] = [b, a + b];\n"
            "  return a;\n}",
            "function fibonacci(n) {\n  let [a, b] = [0, 1];\n  for (let i = 1; i < n; i++) [a, b] = [b, a + b];\n"
            "  return a;\n}",
        ),
    ),
    (
        r"\bprime\b",
        "is_prime",
        (
            "def is_prime(n: int) -> bool:\n    if n < 2:\n        return False\n"
            "    i = 2\n    while i * i <= n:\n        if n % i == 0:\n            return False\n"
            "        i += 1\n    return True",
            "def is_prime(n: int) -> bool:\n    i = 2\n    while i * i < n:\n        if n % i == 0:\n"
            "            return False\n        i += 1\n    return True",
            "function isPrime(n) {\n  if (n < 2) return false;\n  for (let i = 2; i * i <= n; i++) {\n"
            "    if (n % i === 0) return false;\n  }\n  return true;\n}",
            "function isPrime(n) {\n  for (let i = 2; i * i < n; i++) {\n    if (n % i === 0) return false;\n"
            "  }\n  return true;\n}",
        ),
    ),
    (
        r"palindrome",
        "is_palindrome",
        (
            "def is_palindrome(text: str) -> bool:\n    letters = [c.lower() for c in text if c.isalnum()]\n"
            "    return letters == letters[::-1]",
            "def is_palindrome(text: str) -> bool:\n    return text == text[::-1]",
            "function isPalindrome(text) {\n  const letters = text.toLowerCase().replace(/[^a-z0-9]/g, '');\n"
            "  return letters === [...letters].reverse().join('');\n}",
            "function isPalindrome(text) {\n  return text === text.split('').reverse().join('');\n}",
        ),
    ),
    (
        r"fizz ?buzz",
        "fizzbuzz",
        (
            "def fizzbuzz(n: int) -> list[str]:\n    out = []\n    for i in range(1, n + 1):\n"
            '        word = ("Fizz" if i % 3 == 0 else "") + ("Buzz" if i % 5 == 0 else "")\n'
            "        out.append(word or str(i))\n    return out",
            "def fizzbuzz(n: int) -> list[str]:\n    out = []\n    for i in range(1, n):\n"
            '        word = ("Fizz" if i % 3 == 0 else "") + ("Buzz" if i % 5 == 0 else "")\n'
            "        out.append(word or str(i))\n    return out",
            "function fizzbuzz(n) {\n  const out = [];\n  for (let i = 1; i <= n; i++) {\n"
            "    const word = (i % 3 === 0 ? 'Fizz' : '') + (i % 5 === 0 ? 'Buzz' : '');\n"
            "    out.push(word || String(i));\n  }\n  return out;\n}",
            "function fizzbuzz(n) {\n  const out = [];\n  for (let i = 1; i < n; i++) {\n"
            "    const word = (i % 3 === 0 ? 'Fizz' : '') + (i % 5 === 0 ? 'Buzz' : '');\n"
            "    out.push(word || String(i));\n  }\n  return out;\n}",
        ),
    ),
    (
        r"(?:sum|total) of (?:a |the )?(?:list|array|numbers)",
        "total",
        (
            "def total(numbers: list[float]) -> float:\n    result = 0.0\n    for x in numbers:\n"
            "        result += x\n    return result",
            "def total(numbers: list[float]) -> float:\n    result = 0.0\n    for x in numbers[1:]:\n"
            "        result += x\n    return result",
            "function total(numbers) {\n  return numbers.reduce((sum, x) => sum + x, 0);\n}",
            "function total(numbers) {\n  return numbers.slice(1).reduce((sum, x) => sum + x, 0);\n}",
        ),
    ),
]


def language_asked(text: str) -> str | None:
    match = _LANGUAGE.search(text)
    if match is None:
        return None
    word = match.group(1).lower()
    if word == "go" and not re.search(r"\b(in|using|with) go\b|\bgo (function|code|program)", text, re.I):
        return None  # "go" as a verb
    return LANGUAGES[word]


def language_of(code: str) -> str:
    if re.search(r"^\s*(def|class|import|from)\s|\bprint\(|:\s*$", code, re.MULTILINE):
        return "python"
    if re.search(r"\bfunc\s+\w+\(|\bpackage main\b|:=", code):
        return "go"
    if re.search(r"\bfn\s+\w+\(|\blet mut\b", code):
        return "rust"
    if re.search(r"\b(function|const|let|var)\b|=>", code):
        return "javascript"
    if re.search(r"^\s*(select|insert|update|delete|with)\b", code, re.IGNORECASE | re.MULTILINE):
        return "sql"
    return "python"


def pasted_code(task: Task) -> str | None:
    """Code the user pasted: a fenced block, or a message that reads like code."""
    fenced = re.search(r"```[\w+#-]*\n(.*?)```", task.user, re.DOTALL)
    if fenced:
        return fenced.group(1).rstrip()
    lines = task.user.strip().splitlines()
    while lines and (not lines[0].strip() or lines[0].rstrip().endswith(":") and not _codeish(lines[0])):
        lines = lines[1:]  # "Review this code:" before the code
    filled = [line for line in lines if line.strip()]
    codeish = sum(_codeish(line) for line in filled)
    return "\n".join(lines).rstrip() if filled and codeish >= max(1, len(filled) * 0.6) else None


def _codeish(line: str) -> bool:
    return bool(re.search(r"[(){};=]|^\s{2,}|^\s*(def|for|if|return|function|class|import)\b", line))


def answer(task: Task, model: Profile, solve: Solver) -> Answer | None:
    instruction = task.instruction
    code = pasted_code(task)
    reviewing = code is not None and (_REVIEW.search(instruction) or "review" in task.system.lower())
    if reviewing and code is not None:
        return _review(task, model, code)
    if sql.is_sql_request(task):
        return sql.answer(task, model, solve)
    if _WRITE.search(task.user) or (
        code is None and language_asked(task.user) and "code" in instruction.lower()
    ):
        return _write(task, model)
    return None


def _write(task: Task, model: Profile) -> Answer:
    language = language_asked(task.user) or language_asked(task.system) or "python"
    wrong = errs(model, task, "code_generation")
    for pattern, name, (good_py, bad_py, good_js, bad_js) in FUNCTIONS:
        if re.search(pattern, task.user, re.IGNORECASE):
            if language == "python":
                body = bad_py if wrong else good_py
            elif language in ("javascript", "typescript"):
                body = bad_js if wrong else good_js
            else:
                body = _skeleton(language, name, task, wrong=wrong)
            break
    else:
        body = _skeleton(language, "solve", task, wrong=wrong)
    intro = "" if model.verbosity == "terse" else _intro(task, language)
    text = f"{intro}```{language}\n{body}\n```"
    if model.verbosity == "thorough":
        text += "\n\nIt runs in linear time; add a test for the empty input before relying on it."
    return Answer(text=text, skill="code_generation", correct=not wrong, notes={"language": language})


def _intro(task: Task, language: str) -> str:
    return f"Here is one way to do it in {language.capitalize()}:\n\n"


_SKELETONS = {
    "go": "func {name}(input []int) int {{\n\tresult := 0\n\tfor _, x := range input{cut} {{\n"
    "\t\tresult += x\n\t}}\n\treturn result\n}}",
    "rust": "fn {name}(input: &[i64]) -> i64 {{\n    input{cut_rs}.iter().sum()\n}}",
    "java": "static int {name}(int[] input) {{\n    int result = 0;\n    for (int i = {start}; i < input.length; i++) {{\n"
    "        result += input[i];\n    }}\n    return result;\n}}",
    "csharp": "static int {name}(int[] input)\n{{\n    var result = 0;\n    for (var i = {start}; i < input.Length; i++)\n"
    "        result += input[i];\n    return result;\n}}",
    "bash": '{name}() {{\n  local total=0\n  for x in "$@"; do\n    total=$((total + x))\n  done\n  echo "$total"\n}}',
}


def _skeleton(language: str, name: str, task: Task, *, wrong: bool) -> str:
    """A small, complete function in `language` for a task we have no template for."""
    camel = re.sub(r"_(\w)", lambda m: m.group(1).upper(), name)
    template = _SKELETONS.get(language)
    if template is not None:
        return template.format(
            name=camel if language in ("java", "csharp") else name,
            cut="[1:]" if wrong else "",
            cut_rs="[1..]" if wrong else "",
            start=1 if wrong else 0,
        )
    if language in ("javascript", "typescript"):
        start = 1 if wrong else 0
        return f"function {camel}(input) {{\n  let result = 0;\n  for (let i = {start}; i < input.length; i++) result += input[i];\n  return result;\n}}"
    rest = "[1:]" if wrong else ""
    return f"def {name}(values: list[int]) -> int:\n    result = 0\n    for x in values{rest}:\n        result += x\n    return result"


# -- review ----------------------------------------------------------------------------------

# (pattern, finding, replacement (re.sub) or None)
FINDINGS: list[tuple[str, str, str | None]] = [
    (
        r"(def\s+(?:add|sum|plus|total)\w*\s*\([^)]*\)\s*(?:->\s*\w+\s*)?:\s*\n?\s*return\s+\w+\s*)-(\s*\w+)",
        "**Bug**: the function is named for addition but returns a difference (`-` instead of `+`).",
        r"\1+\2",
    ),
    (
        r"for (\w+) in range\(len\((\w+)\)\):(\s*)(.*?)\2\[\1\]",
        "**Style**: `range(len(...))` with indexing; iterate over the items directly.",
        r"for item in \2:\3\4item",
    ),
    (
        r"except\s*:",
        "**Bug risk**: a bare `except:` also swallows `KeyboardInterrupt` and typos.",
        "except Exception:",
    ),
    (r"(\w+)\s*==\s*None", "**Style**: compare with `is None`, not `== None`.", r"\1 is None"),
    (r"(\w+)\s*!=\s*None", "**Style**: compare with `is not None`, not `!= None`.", r"\1 is not None"),
    (
        r"def (\w+)\(([^)]*?)(\w+)=\[\]",
        "**Bug**: a mutable default argument (`=[]`) is shared between calls; default to `None`.",
        r"def \1(\2\3=None",
    ),
    (
        r"execute\((f[\"'].*?\{.*?\}.*?[\"']|[\"'].*?[\"']\s*\+\s*\w+|[\"'].*?%s.*?[\"']\s*%\s*\w+)\)",
        "**Security**: SQL built from a string with user input is open to SQL injection; pass parameters.",
        None,
    ),
    (r"(?<![=!])==(?!=)(?=[^\n]*;)", "**Bug risk**: `==` coerces types in JavaScript; use `===`.", "==="),
    (r"\bvar\s+", "**Style**: `var` is function-scoped; use `let` or `const`.", "let "),
]


def review_findings(code: str, *, miss: int = 0) -> list[tuple[str, str]]:
    """(finding, code after its fix) for each issue found, applied one after another; the
    first `miss` issues go unnoticed (and unfixed)."""
    found: list[tuple[str, str]] = []
    current = code
    for pattern, finding, replacement in FINDINGS:
        if re.search(pattern, current, re.DOTALL):
            if miss:
                miss -= 1
                continue
            if replacement is not None:
                current = re.sub(pattern, replacement, current, flags=re.DOTALL)
            found.append((finding, current))
    return found


def _review(task: Task, model: Profile, code: str) -> Answer:
    language = language_of(code)
    findings = review_findings(code)
    wrong = bool(findings) and errs(model, task, "code_generation")
    if wrong:
        findings = review_findings(code, miss=1)  # misses the main issue
    if not findings:
        text = (
            "I found no bugs. Two small suggestions: add type hints and a test for the edge cases "
            "(empty input, negative numbers)."
        )
        return Answer(text=text, skill="code_generation", key="no issues", correct=not wrong)
    fixed = findings[-1][1]
    points = "\n".join(f"- {finding}" for finding, _ in findings)
    lead = "" if model.verbosity == "terse" else f"I found {len(findings)} issue(s):\n\n"
    text = f"{lead}{points}\n\nCorrected:\n\n```{language}\n{fixed.rstrip()}\n```"
    return Answer(text=text, skill="code_generation", correct=not wrong, notes={"language": language})
