"""GET /v1/export.csv and the coach's /v1/clients/{id}/export.csv, parsed back with csv."""

import csv
import io

import pytest

from api.services import csv_export
from api.state import app_state
from tests.factories import link
from tests.summary_data import log_session, rating

HEADER = [
    "session_id",
    "started_at",
    "ended_at",
    "tool",
    "region",
    "side",
    "metric",
    "before",
    "after",
    "change",
    "water_before_ml",
    "water_after_ml",
    "felt_unwell_after",
    "notes",
]


def _export(client, person, path="/v1/export.csv", params=None):
    response = client.get(path, params=params, headers=person.headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert "attachment" in response.headers["content-disposition"]
    assert 'filename="' in response.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == HEADER
    return [dict(zip(HEADER, row, strict=True)) for row in rows[1:]]


def test_csv_rows_numbers_and_formula_neutralising(client, alice):
    hyperlink = '=HYPERLINK("http://evil.example","click")'
    first = log_session(
        client,
        alice,
        "2026-10-05T08:00:00+02:00",
        rating("pain", 6, 3),  # change 3 - 6 = -3, a number
        rating("rom", 35.5, 42, side="left"),  # change 6.5
        ended_at="2026-10-05T08:15:00+02:00",
        tool="foam_roller",
        water_before_ml=0,
        water_after_ml=350.5,
        felt_unwell_after=False,
        notes=hyperlink,
    )
    second = log_session(
        client,
        alice,
        "2026-10-06T08:00:00Z",
        rating("pain", 0, 0),  # zeros are 0, never empty
        rating("mobility", 4, None),  # no after: after and change empty
        notes="-2 after rolling, +1 stiffness; @home\tok",
    )
    rows = _export(client, alice)
    assert len(rows) == 4
    assert rows[0] == {
        "session_id": first,
        "started_at": "2026-10-05T06:00:00Z",
        "ended_at": "2026-10-05T06:15:00Z",
        "tool": "foam_roller",
        "region": "adductors",
        "side": "both",
        "metric": "pain",
        "before": "6",
        "after": "3",
        "change": "-3",
        "water_before_ml": "0",
        "water_after_ml": "350.5",
        "felt_unwell_after": "false",
        "notes": "'" + hyperlink,
    }
    assert (rows[1]["metric"], rows[1]["side"], rows[1]["before"]) == ("rom", "left", "35.5")
    assert (rows[1]["after"], rows[1]["change"]) == ("42", "6.5")
    assert rows[2]["session_id"] == second
    assert (rows[2]["before"], rows[2]["after"], rows[2]["change"]) == ("0", "0", "0")
    assert (rows[2]["ended_at"], rows[2]["tool"], rows[2]["water_before_ml"]) == ("", "", "")
    assert rows[2]["felt_unwell_after"] == ""
    assert rows[2]["notes"] == "'-2 after rolling, +1 stiffness; @home\tok"
    assert (rows[3]["metric"], rows[3]["after"], rows[3]["change"]) == ("mobility", "", "")
    # The numbers parse back as numbers, the negative change too.
    assert float(rows[0]["change"]) == -3


def test_change_keeps_one_decimal(client, alice):
    log_session(client, alice, "2026-10-05T08:00:00Z", rating("pain", 6.2, 4.2))
    # 4.2 - 6.2 = -2.0000000000000004 in floats: written as -2.
    assert _export(client, alice)[0]["change"] == "-2"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("\rcmd", "'\rcmd"),
        ("fine = good", "fine = good"),
        ("", ""),
        (None, ""),
    ],
)
def test_text_cell(text, expected):
    assert csv_export.text_cell(text) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(6.0, "6"), (0.0, "0"), (-3.0, "-3"), (6.5, "6.5"), (-0.0, "0"), (None, ""), (180, "180")],
)
def test_number_cell(value, expected):
    assert csv_export.number_cell(value) == expected


def test_export_streams_in_keyset_batches(client, app, alice, monkeypatch):
    # Batches of 2 sessions: 5 sessions take 3 batches; two share a started_at, so the
    # keyset must break the tie by id without losing or repeating one.
    monkeypatch.setattr(app_state(app).settings, "export_batch_sessions", 2)
    starts = [
        "2026-10-01T08:00:00Z",
        "2026-10-02T08:00:00Z",
        "2026-10-02T08:00:00Z",
        "2026-10-03T08:00:00Z",
        "2026-10-04T08:00:00Z",
    ]
    ids = [log_session(client, alice, start) for start in reversed(starts)]
    rows = _export(client, alice)
    assert sorted(row["session_id"] for row in rows) == sorted(ids)
    assert [row["started_at"] for row in rows] == sorted(row["started_at"] for row in rows)
    tied = [row["session_id"] for row in rows if row["started_at"] == "2026-10-02T08:00:00Z"]
    assert tied == sorted(tied)


def test_empty_export_is_the_header(client, alice):
    assert _export(client, alice) == []


def test_export_privacy(client, alice, bob):
    log_session(client, alice, "2026-10-05T08:00:00Z")
    deleted = log_session(client, alice, "2026-10-06T08:00:00Z")
    assert client.delete(f"/v1/sessions/{deleted}", headers=alice.headers).status_code == 204
    # Bob's export has nothing of Alice's; a deleted session is gone from hers.
    assert _export(client, bob) == []
    assert len(_export(client, alice)) == 1
    # Without a grant: 404, as for an unknown person.
    response = client.get(f"/v1/clients/{alice.id}/export.csv", headers=bob.headers)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    granted = link(client, bob, alice)
    path = f"/v1/clients/{alice.id}/export.csv"
    assert _export(client, bob, path) == _export(client, alice)
    assert client.delete(f"/v1/grants/{granted['id']}", headers=alice.headers).status_code == 204
    assert client.get(path, headers=bob.headers).status_code == 404
    assert client.get("/v1/export.csv").status_code == 401


def test_from_and_to_select_sessions_by_started_at(client, alice):
    for day in ("01", "02", "03"):
        log_session(client, alice, f"2026-10-{day}T08:00:00Z")
    rows = _export(client, alice, params={"from": "2026-10-02T00:00:00+00:00"})
    assert [row["started_at"] for row in rows] == ["2026-10-02T08:00:00Z", "2026-10-03T08:00:00Z"]
    rows = _export(client, alice, params={"to": "2026-10-02T08:00:00Z"})
    assert [row["started_at"] for row in rows] == ["2026-10-01T08:00:00Z", "2026-10-02T08:00:00Z"]
    response = client.get("/v1/export.csv", params={"to": "2026-10-02"}, headers=alice.headers)
    assert response.status_code == 422
