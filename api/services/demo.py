"""The demo data of `releaselog demo`: a coach and three clients with about 120 days of
sessions up to today, shaped so that every part of the API has something to show.

- Ana (Europe/Berlin) works on her adductors. Her left adductor's range of motion lags the
  right (asymmetry, worse side left, slowly catching up); her left adductor pain drops a lot
  in a session but is back by the next one (carry-over that fades); the peanut ball helps her
  more than the foam roller (what works: tool, verdict better).
- Ben (America/New_York) rolls his lower back and hamstrings; his pain eases over the months,
  but the percussion gun now and then leaves his back worse than before, the latest two days
  ago (safety items; the roster's flagged_7d and pain_after_higher).
- Cleo (Australia/Sydney) runs. After a race about 40 days ago her calves were stiff for two
  weeks, and each session's relief lasted to the next (carry-over that lasts); her plantar
  fascia pain has been rising over the last four weeks (the roster's pain_worsening).

Everything goes through the services a request uses: accounts.register (Argon2 hashes by
accounts.new_account), the invite and redeem of api/services/coaching.py (real grants), and
sessions.create_batch (one transaction per client: feed positions, flagged_at and webhook
events as for any batch). The data is drawn from a random.Random seeded per client, on dates
relative to today in the client's time zone, so every run makes the same shape ending today.

How the demo knows the accounts it made: each demo account's id is uuid5(DEMO_NAMESPACE,
email). An account registered through the API gets a random uuid4 id, which nobody can choose,
so an account with one of the demo emails and any other id was not made by the demo, and
fill_demo refuses (DemoRefused) before writing anything. This needs no column of its own.

Running it again changes nothing: accounts that exist are kept, a client who ever granted the
demo coach (even if they revoked it since) is not linked again, and a client who has any
session (or tombstone) gets no new ones. A client's sessions are written in one transaction,
so a run that stopped half-way is completed by the next.
"""

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, select
from sqlmodel import Session, col

from api.errors import Conflict
from api.services.accounts import new_account, register
from api.services.coaching import create_invite, redeem_invite
from api.services.sessions import create_batch
from models.base import utc_now
from models.coaching import Grant
from models.release_session import ReleaseSession, SessionCreate
from models.user import User, UserCreate

DEMO_NAMESPACE = uuid.UUID("5a584f3d-14a4-4767-a7e4-32c93460594f")
DEMO_PASSWORD = "releaselog-demo"
DAYS = 120  # today and the 119 days before it


@dataclass(frozen=True)
class DemoPerson:
    email: str
    display_name: str
    timezone: str

    @property
    def id(self) -> uuid.UUID:
        return demo_id(self.email)


COACH = DemoPerson("coach@example.com", "Casey (demo coach)", "Europe/London")
ANA = DemoPerson("ana@example.com", "Ana", "Europe/Berlin")
BEN = DemoPerson("ben@example.com", "Ben", "America/New_York")
CLEO = DemoPerson("cleo@example.com", "Cleo", "Australia/Sydney")
CLIENTS = (ANA, BEN, CLEO)
PEOPLE = (COACH, *CLIENTS)


def demo_id(email: str) -> uuid.UUID:
    """The id of the demo account of `email` (see the module's docstring)."""
    return uuid.uuid5(DEMO_NAMESPACE, email)


class DemoRefused(Exception):
    """Accounts with demo emails exist that the demo did not make; nothing was written."""

    def __init__(self, emails: list[str]) -> None:
        super().__init__(
            f"refusing to touch existing accounts not made by the demo: {', '.join(emails)}. "
            "Nothing was changed; use an empty database (DATABASE_URL) for the demo."
        )
        self.emails = emails


@dataclass
class DemoSummary:
    """What fill_demo did; all empty when the demo was already there."""

    accounts_created: list[str] = field(default_factory=list)
    grants_created: list[str] = field(default_factory=list)  # the clients' emails
    sessions_created: dict[str, int] = field(default_factory=dict)  # per client email
    client_ids: dict[str, uuid.UUID] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return bool(self.accounts_created or self.grants_created or self.sessions_created)


def fill_demo(engine: Engine, now: datetime | None = None) -> DemoSummary:
    """Make whatever of the demo is missing (see the module's docstring); `now` is when the
    data ends (default: the current time). Raises DemoRefused, having written nothing, when
    an account of a demo email exists that the demo did not make."""
    now = now or utc_now()
    summary = DemoSummary(client_ids={person.email: person.id for person in CLIENTS})
    with Session(engine, expire_on_commit=False) as db:
        existing = _existing_accounts(db)
        foreign = [email for email, user_id in existing.items() if user_id != demo_id(email)]
        if foreign:
            raise DemoRefused(sorted(foreign))
        for person in PEOPLE:
            if person.email not in existing:
                _register(db, person)
                summary.accounts_created.append(person.email)
        for person in CLIENTS:
            if not _ever_granted(db, person.id):
                invite = create_invite(db, COACH.id)
                redeem_invite(db, person.id, invite.code)
                summary.grants_created.append(person.email)
        for person in CLIENTS:
            if _has_sessions(db, person.id):
                continue
            items = demo_sessions(person, now)
            for item in items:  # a generator bug fails here, before anything is written
                SessionCreate.model_validate(item)
            results = create_batch(db, person.id, items)
            refused = [result for result in results if result.status != "created"]
            if refused:
                raise RuntimeError(f"demo session refused: {refused[0]}")
            summary.sessions_created[person.email] = len(results)
    return summary


def _existing_accounts(db: Session) -> dict[str, uuid.UUID]:
    rows = db.execute(
        select(col(User.email), col(User.id)).where(
            col(User.email).in_([person.email for person in PEOPLE])
        )
    ).all()
    db.rollback()  # end the read
    return {row.email: row.id for row in rows}


def _register(db: Session, person: DemoPerson) -> None:
    data = UserCreate(
        email=person.email,
        password=DEMO_PASSWORD,
        display_name=person.display_name,
        timezone=person.timezone,
    )
    try:
        register(db, replace(new_account(data), id=person.id))
    except Conflict:  # registered through the API since we looked
        raise DemoRefused([person.email]) from None


def _ever_granted(db: Session, client_id: uuid.UUID) -> bool:
    """Has the client granted the demo coach, live or since revoked? A revocation made
    through the API is the client's choice, which a second run respects."""
    found = db.execute(
        select(col(Grant.id))
        .where(col(Grant.coach_id) == COACH.id, col(Grant.client_id) == client_id)
        .limit(1)
    ).first()
    db.rollback()
    return found is not None


def _has_sessions(db: Session, user_id: uuid.UUID) -> bool:
    count = db.execute(
        select(func.count())
        .select_from(ReleaseSession)
        .where(col(ReleaseSession.user_id) == user_id)
    ).scalar_one()
    db.rollback()
    return bool(count)


# --- the data ----------------------------------------------------------------------------


def demo_sessions(person: DemoPerson, now: datetime) -> list[dict[str, Any]]:
    """The create bodies of one client's demo sessions, oldest first."""
    plan = _PLANS[person.email]
    return _Calendar(person, now).sessions(plan)


def _value(value: float, low: float, high: float) -> float:
    """A rating or amount as a client sends it: within its range, one decimal."""
    return round(min(max(value, low), high), 1)


def _pair(before: float, relief: float, high: float = 10) -> tuple[float, float]:
    """(before, after) of a lower-is-better rating that eases by `relief`."""
    before = _value(before, 0, high)
    return before, _value(before - relief, 0, high)


def _rating(region: str, side: str, metric: str, values: tuple[float, float]) -> dict[str, Any]:
    before, after = values
    return {"region": region, "side": side, "metric": metric, "before": before, "after": after}


@dataclass
class _Day:
    """One session's choices, made by a plan."""

    tool: str
    ratings: list[dict[str, Any]]
    notes: str | None = None
    felt_unwell: bool | None = None


# A plan draws one day's session: (rng, days ago, progress 0..1 over the 120 days) -> the
# session, or None for a day without one.
Plan = Callable[[random.Random, int, float], _Day | None]


class _Calendar:
    """Turns a plan's days into create bodies at local times of the person's days."""

    def __init__(self, person: DemoPerson, now: datetime) -> None:
        self.person = person
        self.zone = ZoneInfo(person.timezone)
        self.now = now
        self.today = now.astimezone(self.zone).date()

    def sessions(self, plan: Plan) -> list[dict[str, Any]]:
        rng = random.Random(f"releaselog-demo/{self.person.email}")
        bodies = []
        for days_ago in range(DAYS - 1, -1, -1):
            progress = (DAYS - 1 - days_ago) / (DAYS - 1)
            # Every draw happens whether or not the day has a session: the same days each run.
            hour, minute = rng.choice(((7, 0), (7, 30), (8, 15), (18, 30), (19, 45), (21, 0)))
            minutes = rng.randint(8, 25)
            water = (rng.gauss(420, 140), rng.gauss(380, 140))
            unwell_draw = rng.random()
            day = plan(rng, days_ago, progress)
            if day is None:
                continue
            local_date = self.today - timedelta(days=days_ago)
            started = self._start(local_date, time(hour, minute), days_ago)
            water_before, water_after = (round(_value(ml, 50, 900), -1) for ml in water)
            hydrated = water_before >= 300 and water_after >= 300
            unwell = day.felt_unwell
            if unwell is None:
                unwell = unwell_draw < (0.03 if hydrated else 0.3)
            bodies.append(
                {
                    "id": str(uuid.uuid5(DEMO_NAMESPACE, f"{self.person.email}/{local_date}")),
                    "started_at": started,
                    "ended_at": started + timedelta(minutes=minutes),
                    "tool": day.tool,
                    "water_before_ml": water_before,
                    "water_after_ml": water_after,
                    "felt_unwell_after": unwell,
                    "notes": day.notes,
                    "ratings": day.ratings,
                }
            )
        return bodies

    def _start(self, local_date: date, at: time, days_ago: int) -> datetime:
        started = datetime.combine(local_date, at, self.zone)
        if days_ago == 0:  # today's session has already happened
            started = min(started, self.now.astimezone(self.zone) - timedelta(minutes=40))
            if started.date() != local_date:  # just after midnight
                started = datetime.combine(local_date, time(0, 0), self.zone)
        return started


def _sometimes(rng: random.Random, notes: tuple[str, ...], rate: float = 0.2) -> str | None:
    note = rng.choice(notes)
    return note if rng.random() < rate else None


_ANA_NOTES = (
    "Left inner thigh tight after squats.",
    "Peanut ball along the inner thigh: looser for the whole morning.",
    "Right side fine, left still tight near the knee.",
    "Short session before work.",
    "Foam roller only, travelling.",
)


def _ana(rng: random.Random, days_ago: int, progress: float) -> _Day | None:
    """Adductors: left pain eases a lot in a session and is back by the next (fading
    carry-over); the peanut ball helps more than the foam roller; the left ROM lags the
    right by about 10 degrees and slowly catches up."""
    peanut = rng.random() < 0.45
    draws = [rng.gauss(0, 1) for _ in range(8)]
    note = _sometimes(rng, _ANA_NOTES)
    if rng.random() > 6 / 7 and days_ago > 0:
        return None
    left_relief = (3.0 if peanut else 1.2) + 0.5 * draws[1]
    left_rom = 30 + 10 * progress + 1.5 * draws[4]
    right_rom = 47 + 1.5 * draws[6]
    return _Day(
        tool="peanut_ball" if peanut else "foam_roller",
        notes=note,
        ratings=[
            _rating("adductors", "left", "pain", _pair(5.6 + 0.7 * draws[0], max(left_relief, 0))),
            _rating(
                "adductors",
                "right",
                "pain",
                _pair(3.0 + 0.6 * draws[2], max(1 + 0.4 * draws[3], 0)),
            ),
            _rating(
                "adductors",
                "left",
                "rom",
                (_value(left_rom, 0, 180), _value(left_rom + max(6 + 1.5 * draws[5], 0), 0, 180)),
            ),
            _rating(
                "adductors",
                "right",
                "rom",
                (_value(right_rom, 0, 180), _value(right_rom + max(3 + draws[7], 0), 0, 180)),
            ),
        ],
    )


_BEN_NOTES = (
    "Lower back stiff after a long drive.",
    "Hamstrings tight after the Saturday hike.",
    "Slow session, lots of breathing.",
    "Desk day, back ached by the evening.",
)
# Days (ago) when the percussion gun left Ben's back worse; the latest one flags him on the
# roster (a worse rating within 7 days).
_BEN_WORSE_DAYS = frozenset({2, 38, 71, 104})


def _ben(rng: random.Random, days_ago: int, progress: float) -> _Day | None:
    """Lower back pain easing over the months, hamstrings stiffness and mobility; percussion
    now and then leaves the back worse (safety items)."""
    tool = rng.choices(("foam_roller", "percussion", "ball"), weights=(5, 3, 2))[0]
    draws = [rng.gauss(0, 1) for _ in range(6)]
    note = _sometimes(rng, _BEN_NOTES)
    skipped = rng.random() > 5.5 / 7
    worse = days_ago in _BEN_WORSE_DAYS
    if skipped and days_ago > 0 and not worse:
        return None
    back_before = 6.5 - 3 * progress + 0.6 * draws[0]
    if worse:
        tool = "percussion"
        back = _pair(4.0 + 0.3 * draws[0], -2.5)
        note = "Percussion gun on the lower back: more pain afterwards, stopped early."
    else:
        relief = {"foam_roller": 1.8, "ball": 1.5, "percussion": 1.0}[tool] + 0.6 * draws[1]
        back = _pair(back_before, max(relief, -1))
    mobility = 4 + 2 * progress + 0.5 * draws[4]
    return _Day(
        tool=tool,
        notes=note,
        felt_unwell=True if worse else None,
        ratings=[
            _rating("lower_back", "both", "pain", back),
            _rating(
                "hamstrings",
                "both",
                "stiffness",
                _pair(6 - 1.5 * progress + 0.7 * draws[2], max(1.5 + 0.6 * draws[3], 0)),
            ),
            _rating(
                "hamstrings",
                "both",
                "mobility",
                (_value(mobility, 0, 10), _value(mobility + max(1.2 + 0.5 * draws[5], 0), 0, 10)),
            ),
        ],
    )


_CLEO_NOTES = (
    "Plantar fascia sore on the morning run.",
    "Rolled the quads after intervals.",
    "Stick on the quads in the evening.",
    "Easy week, legs fresh.",
)
# Her calves after the race 40 days ago, rated every other day for two weeks: (days ago,
# before, after). Each session's relief mostly lasts until the next (carry-over that lasts).
_CLEO_CALVES = {
    39: (8.0, 5.5),
    37: (6.0, 4.5),
    35: (4.8, 3.5),
    33: (3.8, 2.8),
    31: (3.0, 2.2),
    29: (2.4, 1.8),
    27: (2.0, 1.6),
}


def _cleo(rng: random.Random, days_ago: int, progress: float) -> _Day | None:  # noqa: ARG001
    """Quadriceps stiffness; left plantar fascia pain rising over the last four weeks (the
    roster's pain_worsening); the calves after a race (lasting carry-over)."""
    tool = rng.choice(("foam_roller", "stick", "ball", "hands"))
    draws = [rng.gauss(0, 1) for _ in range(4)]
    note = _sometimes(rng, _CLEO_NOTES)
    skipped = rng.random() > 5 / 7
    calves = _CLEO_CALVES.get(days_ago)
    if skipped and days_ago > 0 and calves is None:
        return None
    rising = 3 * max(0, 28 - days_ago) / 28
    ratings = [
        _rating(
            "plantar_fascia",
            "left",
            "pain",
            _pair(3 + rising + 0.4 * draws[0], max(1.5 + 0.5 * draws[1], 0)),
        ),
        _rating(
            "quadriceps",
            "both",
            "stiffness",
            _pair(4 + 0.7 * draws[2], max(1.5 + 0.5 * draws[3], 0)),
        ),
    ]
    if calves is not None:
        ratings.append(_rating("calves", "both", "stiffness", calves))
        if days_ago == 39:
            note = "Race on Sunday: calves very stiff."
        elif days_ago == 33:
            note = "Calves: the relief held until the next session."
    return _Day(tool=tool, notes=note, ratings=ratings)


_PLANS: dict[str, Plan] = {ANA.email: _ana, BEN.email: _ben, CLEO.email: _cleo}
