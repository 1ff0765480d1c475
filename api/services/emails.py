"""The emails the service sends, composed from templates (api/templates/email/): a plain-text
and an HTML body each, queued through api/services/mail_outbox.py in the transaction of the
change they tell about."""

from datetime import datetime
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from sqlmodel import Session

from api.services import mail_outbox
from models.user import User

# HTML is autoescaped (a display name is the person's own text); plain text is not.
_TEMPLATES = Environment(
    loader=PackageLoader("api", "templates/email"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
)


def reset_link(base_url: str, token: str | None = None) -> str:
    query = f"?{urlencode({'token': token})}" if token else ""
    return f"{base_url.rstrip('/')}/reset-password{query}"


def _queue(db: Session, user: User, subject: str, template: str, **values: object) -> None:
    values["display_name"] = user.display_name
    mail_outbox.queue_email(
        db,
        user_id=user.id,
        to=user.email,
        subject=subject,
        text=_TEMPLATES.get_template(f"{template}.txt").render(values),
        html=_TEMPLATES.get_template(f"{template}.html").render(values),
    )


def queue_password_reset(db: Session, user: User, token: str, base_url: str) -> None:
    link = reset_link(base_url, token)
    _queue(db, user, "Reset your releaselog password", "password_reset", link=link, token=token)


def queue_password_changed(db: Session, user: User, changed_at: datetime, base_url: str) -> None:
    when = changed_at.strftime("%Y-%m-%d %H:%M")
    link = reset_link(base_url)
    _queue(
        db,
        user,
        "Your releaselog password was changed",
        "password_changed",
        changed_at=when,
        reset_link=link,
    )
