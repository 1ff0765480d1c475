"""`releaselog demo` (api/services/demo.py): the data shows in every part of the API, a second
run changes nothing, and an account of a demo email that the demo did not make is refused."""

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlmodel import Session, SQLModel

from api.db import create_db_engine
from api.services.accounts import new_account, register
from api.services.demo import ANA, BEN, CLEO, CLIENTS, COACH, DEMO_PASSWORD, DemoRefused, fill_demo
from api.state import app_state
from models.base import utc_now
from models.user import UserCreate
from tests.conftest import ROOT, TEST_SECRET, make_settings, migrate


def _engine(app: FastAPI) -> Engine:
    return app_state(app).engine


def _headers(client: TestClient, email: str, password: str = DEMO_PASSWORD) -> dict[str, str]:
    token = client.post("/v1/auth/token", data={"username": email, "password": password})
    assert token.status_code == 200, token.text
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


def _row_counts(engine: Engine) -> dict[str, Any]:
    """Every table's row count, and every account's feed position and credential version."""
    with engine.connect() as connection:
        counts: dict[str, Any] = {
            table.name: connection.execute(select(func.count()).select_from(table)).scalar_one()
            for table in SQLModel.metadata.sorted_tables
        }
        users = SQLModel.metadata.tables["user_account"]
        counts["accounts"] = sorted(
            (str(row.id), row.feed_seq, row.token_version)
            for row in connection.execute(select(users))
        )
    return counts


def _entry(items: list[dict[str, Any]], **wanted: str) -> dict[str, Any]:
    found = [item for item in items if all(item[key] == value for key, value in wanted.items())]
    assert len(found) == 1, (wanted, items)
    return found[0]


def test_the_demo_shows_in_roster_insights_and_summaries(app: FastAPI, client: TestClient) -> None:
    summary = fill_demo(_engine(app), utc_now())
    assert sorted(summary.accounts_created) == sorted(person.email for person in (COACH, *CLIENTS))
    assert sorted(summary.grants_created) == sorted(person.email for person in CLIENTS)
    assert all(count >= 80 for count in summary.sessions_created.values())

    coach = _headers(client, COACH.email)
    roster = client.get("/v1/clients", headers=coach)
    assert roster.status_code == 200, roster.text
    by_name = {item["client"]["display_name"]: item for item in roster.json()["items"]}
    assert set(by_name) == {person.display_name for person in CLIENTS}
    assert "flagged_7d" in by_name[BEN.display_name]["flags"]
    assert "pain_after_higher" in by_name[BEN.display_name]["flags"]
    assert "pain_worsening" in by_name[CLEO.display_name]["flags"]
    assert all(item["sessions_7d"] > 0 for item in by_name.values())  # data up to today

    insights = {}
    for person in CLIENTS:
        # Real grants: the coach reads each client; each client logs in and sees the coach.
        answer = client.get(f"/v1/clients/{person.id}/insights", headers=coach)
        assert answer.status_code == 200, answer.text
        insights[person.email] = answer.json()
        own = _headers(client, person.email)
        grants = client.get("/v1/grants", headers=own).json()["items"]
        assert [grant["coach"]["id"] for grant in grants] == [str(COACH.id)]
        assert client.get("/v1/insights", headers=own).status_code == 200

        summary_answer = client.get("/v1/summary", headers=own)
        assert summary_answer.status_code == 200, summary_answer.text
        charted = [
            metric
            for metric in summary_answer.json()["metrics"]
            if sum(
                1
                for week in metric["series"]
                if week["sessions"] and week["mean_before"] is not None and week["mean_after"]
            )
            >= 10
        ]
        assert len(charted) >= 2, person.email

    ana, ben, cleo = (insights[person.email] for person in (ANA, BEN, CLEO))
    lasting = _entry(cleo["carry_over"], region="calves", side="both", metric="stiffness")
    assert lasting["retention_pct"] >= 50
    fading = _entry(ana["carry_over"], region="adductors", side="left", metric="pain")
    assert fading["mean_relief"] >= 1
    assert fading["retention_pct"] <= 20
    lagging = _entry(ana["asymmetry"], region="adductors", metric="rom")
    assert lagging["worse_side"] == "left"
    assert lagging["mean_diff_before"] <= -5
    helps = _entry(
        ana["what_works"],
        region="adductors",
        side="left",
        metric="pain",
        factor="tool",
        level="peanut_ball",
    )
    assert helps["verdict"] == "better"
    assert ben["safety"]["flagged_sessions"] >= 1
    assert ben["safety"]["items"]
    assert all(item["worsening"] >= 2 for item in ben["safety"]["items"])


def test_a_second_run_changes_nothing(app: FastAPI) -> None:
    engine = _engine(app)
    assert fill_demo(engine, utc_now()).changed
    before = _row_counts(engine)
    again = fill_demo(engine, utc_now())
    assert not again.changed
    assert _row_counts(engine) == before


def test_a_second_run_respects_a_revoked_grant(app: FastAPI, client: TestClient) -> None:
    engine = _engine(app)
    fill_demo(engine, utc_now())
    ana = _headers(client, ANA.email)
    grant = client.get("/v1/grants", headers=ana).json()["items"][0]
    assert client.delete(f"/v1/grants/{grant['id']}", headers=ana).status_code == 204
    before = _row_counts(engine)
    assert not fill_demo(engine, utc_now()).changed
    assert _row_counts(engine) == before
    assert client.get("/v1/grants", headers=ana).json()["items"] == []


def test_an_account_the_demo_did_not_make_is_refused(app: FastAPI, client: TestClient) -> None:
    registered = client.post(
        "/v1/auth/register",
        json={"email": "Ana@Example.com", "password": "someone else's", "display_name": "Ana"},
    )
    assert registered.status_code == 201, registered.text
    engine = _engine(app)
    before = _row_counts(engine)
    with pytest.raises(DemoRefused) as refused:
        fill_demo(engine, utc_now())
    assert refused.value.emails == ["ana@example.com"]
    assert _row_counts(engine) == before
    _headers(client, "ana@example.com", "someone else's")  # untouched


def _releaselog(database_url: str, *arguments: str) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).parent / "releaselog"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "api.cli"]
    env = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": TEST_SECRET}
    return subprocess.run(
        [*command, *arguments],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_command_loads_once_and_refuses_a_foreign_account(
    fresh_database_url: Callable[[], str],
) -> None:
    url = fresh_database_url()
    first = _releaselog(url, "demo")
    assert first.returncode == 0, first.stderr
    assert "Demo loaded: 4 accounts, 3 grants" in first.stdout
    assert "/v1/report.html" in first.stdout
    second = _releaselog(url, "demo")
    assert second.returncode == 0, second.stderr
    assert "nothing changed" in second.stdout

    foreign_url = fresh_database_url()
    migrate(foreign_url)
    engine = create_db_engine(make_settings(foreign_url))
    try:
        with Session(engine) as db:
            data = UserCreate(email="ana@example.com", password="not the demo's", display_name="A")
            register(db, new_account(data))
        before = _row_counts(engine)
        refused = _releaselog(foreign_url, "demo")
        assert refused.returncode != 0
        assert "ana@example.com" in refused.stderr
        assert "Demo loaded" not in refused.stdout
        assert _row_counts(engine) == before
    finally:
        engine.dispose()
