"""The SQL rules of api/analytics/thresholds.py equal the Python ones of figures.py, exactly,
on this run's database (SQLite or PostgreSQL), over a grid of one-decimal values."""

import random
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from sqlalchemy import Column, Connection, Float, MetaData, String, Table, insert, select

from api.analytics import thresholds
from api.analytics.figures import is_responder, is_worse
from api.state import app_state
from models.catalog import METRICS, METRICS_BY_SLUG


def _cases() -> list[tuple[str, float, float | None]]:
    generator = random.Random(19)
    cases: list[tuple[str, float, float | None]] = []
    for metric in METRICS:
        top = round(metric.max * 10)
        for _ in range(300):
            before = generator.randint(0, top)
            # Mostly near the thresholds, where binary rounding would bite.
            step = generator.choice([0, 1, -1, 2, -2, 5, -5, 20, -20, 50, -50, 3, -3, 19, -19, 21])
            after = min(max(before + step + generator.randint(-1, 1), 0), top)
            cases.append((metric.slug, before / 10, after / 10))
        cases += [(metric.slug, 0.0, 0.0), (metric.slug, 3.1, None), (metric.slug, 3.1, 5.1)]
        cases += [(metric.slug, 5.1, 3.1), (metric.slug, 4.2, 6.2), (metric.slug, 6.2, 4.2)]
    cases += [("pain", 10.0, 7.0), ("pain", 2.0, 1.4), ("pain", 2.0, 1.5), ("pain", 0.1, 0.0)]
    return cases


@contextmanager
def _scratch(app: Any, *columns: Column) -> Iterator[tuple[Connection, Table]]:
    """A temporary table of `columns` on this run's database, gone afterwards."""
    table = Table("threshold_cases", MetaData(), *columns, prefixes=["TEMPORARY"])
    with app_state(app).engine.connect() as connection:
        table.create(connection)
        try:
            yield connection, table
        finally:
            table.drop(connection)
            connection.commit()


def test_sql_worse_and_responder_equal_python(app):
    cases = _cases()
    columns = (Column("metric", String(16)), Column("before", Float), Column("after", Float))
    with _scratch(app, *columns) as (connection, table):
        rows_in = [dict(zip(("metric", "before", "after"), case, strict=True)) for case in cases]
        connection.execute(insert(table), rows_in)
        statement = select(
            table.c.metric,
            table.c.before,
            table.c.after,
            thresholds.worse(table.c.metric, table.c.before, table.c.after),
            thresholds.responder(table.c.metric, table.c.before, table.c.after),
        )
        rows = connection.execute(statement).all()
    assert len(rows) == len(cases)
    for metric, before, after, worse, responder in rows:
        case = (metric, before, after)
        exact_worse, exact_responder = _decimal_rules(metric, before, after)
        assert bool(worse) is exact_worse is is_worse(metric, before, after), case
        python = after is not None and is_responder(METRICS_BY_SLUG[metric], before, after)
        assert bool(responder) is exact_responder is python, case


def _decimal_rules(slug: str, before: float, after: float | None) -> tuple[bool, bool]:
    """(worse, responder) in exact decimal arithmetic, straight from the contract's words."""
    if after is None:
        return False, False
    metric = METRICS_BY_SLUG[slug]
    improvement = metric.direction * (Decimal(repr(after)) - Decimal(repr(before)))
    mcid_abs = Decimal(repr(metric.mcid_abs))
    reaches_pct = metric.mcid_pct is not None and improvement >= Decimal(
        repr(metric.mcid_pct)
    ) / 100 * Decimal(repr(before))
    responder = improvement > 0 and (improvement >= mcid_abs or reaches_pct)
    return improvement <= -mcid_abs, responder


def test_sql_at_least_is_exact(app):
    amounts = [299.9, 300.0, 300.1, 0.0, 3000.0, 0.3 + 299.6]  # the last is 299.90000000000003
    with _scratch(app, Column("ml", Float)) as (connection, table):
        connection.execute(insert(table), [{"ml": ml} for ml in amounts])
        statement = select(table.c.ml, thresholds.at_least(table.c.ml, 300))
        found = {round(ml, 1): bool(ok) for ml, ok in connection.execute(statement)}
    assert found == {299.9: False, 300.0: True, 300.1: True, 0.0: False, 3000.0: True}
