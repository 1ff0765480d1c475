"""SQLModel tables and API schemas. Importing this package registers every table."""

from models.api_key import ApiKey
from models.coaching import Grant, Invite
from models.mail import MailOutbox
from models.password_reset import PasswordResetToken
from models.release_session import Rating, ReleaseSession
from models.report_link import ReportLink
from models.user import User
from models.webhook import Webhook, WebhookDelivery

__all__ = [
    "ApiKey",
    "Grant",
    "Invite",
    "MailOutbox",
    "PasswordResetToken",
    "Rating",
    "ReleaseSession",
    "ReportLink",
    "User",
    "Webhook",
    "WebhookDelivery",
]
