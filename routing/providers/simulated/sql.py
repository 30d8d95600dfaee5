"""SQL for a question about data ("Top 10 customers by revenue last quarter, with their region").

Reads the entity (customers, products, …), a measure (revenue, orders, …), "top N", a time
window and extra columns, and writes a fenced ```sql block: T-SQL (`TOP`, `DATEADD`) when the
prompt names SQL Server, Azure SQL or Synapse, else PostgreSQL. A model that errs at its
`code_generation` rate sorts ascending, so its "top 10" are the bottom 10.
"""

from __future__ import annotations

import re

from routing.providers.simulated.options import Profile
from routing.providers.simulated.task import Answer, Solver, Task, errs

ENTITIES = {
    "customer": ("customers", "c", "customer_id", "name"),
    "product": ("products", "p", "product_id", "name"),
    "employee": ("employees", "e", "employee_id", "full_name"),
    "user": ("users", "u", "user_id", "email"),
    "supplier": ("suppliers", "s", "supplier_id", "name"),
    "store": ("stores", "st", "store_id", "name"),
    "region": ("regions", "r", "region_id", "name"),
}
MEASURES = {
    "revenue": "SUM(o.amount)",
    "sales": "SUM(o.amount)",
    "spend": "SUM(o.amount)",
    "order": "COUNT(*)",
    "orders": "COUNT(*)",
    "purchases": "COUNT(*)",
    "quantity": "SUM(o.quantity)",
    "units": "SUM(o.quantity)",
}
_CUE = re.compile(r"\b(sql|t-sql|query|queries)\b", re.IGNORECASE)


def is_sql_request(task: Task) -> bool:
    return bool(_CUE.search(task.instruction)) and not re.search(r"```", task.user)


def _tsql(task: Task) -> bool:
    return bool(re.search(r"azure sql|synapse|sql server|t-sql|tsql|mssql", task.instruction, re.IGNORECASE))


def _window(text: str, tsql: bool) -> str | None:
    lowered = text.lower()
    days = re.search(r"last (\d+) days", lowered)
    for unit in ("quarter", "month", "year", "week"):
        if f"last {unit}" in lowered or f"previous {unit}" in lowered:
            if tsql:
                start = f"DATEADD({unit}, DATEDIFF({unit}, 0, GETDATE()) - 1, 0)"
                end = f"DATEADD({unit}, DATEDIFF({unit}, 0, GETDATE()), 0)"
            else:
                start = f"date_trunc('{unit}', now()) - interval '1 {unit}'"
                end = f"date_trunc('{unit}', now())"
            return f"o.order_date >= {start}\n  AND o.order_date < {end}"
    if days:
        n = int(days.group(1))
        return (
            f"o.order_date >= DATEADD(day, -{n}, GETDATE())"
            if tsql
            else f"o.order_date >= now() - interval '{n} days'"
        )
    return None


def build_query(task: Task, *, ascending: bool = False) -> str:
    text = task.user
    lowered = text.lower()
    tsql = _tsql(task)
    entity = next((e for e in ENTITIES if re.search(rf"\b{e}s?\b", lowered)), "customer")
    table, alias, key, label = ENTITIES[entity]
    measure_word = next((m for m in MEASURES if re.search(rf"\bby {m}\b|\b{m}\b", lowered)), "revenue")
    measure = MEASURES[measure_word]
    measure_name = "order_count" if measure == "COUNT(*)" else measure_word
    top = re.search(r"\b(?:top|first|best|largest|biggest)\s+(\d+)\b", lowered)
    limit = int(top.group(1)) if top else None
    extras = [c for c in ("region", "country", "email", "city", "segment") if re.search(rf"\b{c}\b", lowered)]
    extras = [c for c in extras if c != entity]
    columns = [f"{alias}.{key}", f"{alias}.{label}"] + [f"{alias}.{c}" for c in extras]
    select = "SELECT" + (f" TOP ({limit})" if tsql and limit else "")
    lines = [
        f"{select} {', '.join(columns)},",
        f"       {measure} AS {measure_name}",
        f"FROM {table} AS {alias}",
    ]
    lines.append(f"JOIN orders AS o ON o.{key} = {alias}.{key}" if table != "orders" else "")
    window = _window(text, tsql)
    if window:
        lines.append(f"WHERE {window}")
    lines.append(f"GROUP BY {', '.join(columns)}")
    lines.append(f"ORDER BY {measure_name} {'ASC' if ascending else 'DESC'}")
    if limit and not tsql:
        lines.append(f"LIMIT {limit}")
    return "\n".join(line for line in lines if line) + ";"


def answer(task: Task, model: Profile, solve: Solver) -> Answer:
    wrong = errs(model, task, "code_generation")
    query = build_query(task, ascending=wrong)
    text = f"```sql\n{query}\n```"
    if model.verbosity != "terse":
        hint = "an index on orders (order_date) covering the join key keeps this a range scan."
        text += f"\n\nFor speed, {hint}"
    return Answer(text=text, skill="code_generation", correct=not wrong, notes={"language": "sql"})
