"""Webhooks for coach dashboards: subscribe to events about the coach's clients."""

import uuid

from fastapi import APIRouter, Response, status

from api.deps import AccountOwner, Cursor, Limit, SessionDep, SettingsDep
from api.openapi import problem_responses
from api.services import webhooks as service
from models.webhook import DeliveryList, WebhookCreate, WebhookCreated, WebhookList

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])


DESCRIPTION = """
Events about the clients who granted the caller access are POSTed to `url`. `events` picks
them (default: all of them):

- `session.created`, `session.updated`, `session.deleted`: a client's session changed. Sent
  only while the grant is live (an event queued before the link ended is not sent after it),
  and an event that carries a session's content only while the session exists: a queued
  `session.created`, `session.updated` or `session.flagged` of a session deleted since is
  dropped, never sent (its `session.deleted` still is). The body is
  `{"type", "timestamp", "data": {"client_id", "session_id", "session" | null}}`, `session` in
  the shape of `GET /v1/sessions/{id}` (null for `session.deleted`).
- `session.flagged`: a client's session has a **worse** rating: one whose improvement (after
  - before, signed so that positive is better) is at most minus its metric's `mcid_abs` (see
  the catalog), compared exactly on the one-decimal values (pain 3 → 5 and 3.1 → 5.1 are
  worse, 3 → 4 is not; a rating without `after` never is). Sent besides `session.created` /
  `session.updated`, queued in the same transaction, by the write (a create, a batch item or a
  PATCH) that leaves the session worse when it was not; a later write that keeps it worse
  sends none. A write that leaves it with no worse rating clears the flag, so a later write
  that makes it worse again sends a new `session.flagged`. Same body as `session.updated`,
  with the session as that write left it.
- `grant.ended`: the caller lost a client and should drop the data it holds of them. Sent once
  per ended link, whichever side ended it: the client revoked the grant
  (`revoked_by_client`), the caller ended it (`ended_by_coach`, `DELETE /v1/clients/{id}`), or
  the client erased their account (`account_deleted`). The one event delivered after the grant
  is gone, also when the client's account no longer exists. The body is
  `{"type": "grant.ended", "timestamp", "data": {"client_id", "grant_id", "reason"}}`; it
  carries the client's bare id and nothing else of theirs.

Deliveries follow [Standard Webhooks](https://www.standardwebhooks.com/): headers `webhook-id`
(the delivery id; the same on every retry, so deduplicate on it), `webhook-timestamp` (Unix
seconds) and `webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` keyed with
the base64-decoded part of the secret after `whsec_`. Any 2xx answer is success; anything else,
a timeout or a connection error is retried with exponential backoff and jitter for about a day,
then the delivery is `failed`. Delivery is at least once and not ordered: order by the
session's `version` and `updated_at`. Redirects are not followed.
"""


DELIVERIES_DESCRIPTION = """
Every event queued for the webhook, newest first, with its outcome: `pending` (to be sent or
retried, at `next_attempt_at`), `delivered` (a 2xx answer) or `failed`. `failed` means either
that the receiver never answered 2xx within the retry window, or that the event was dropped
before it could be sent: the grant ended (session events only), or the event carried the
content of a session deleted since. A dropped event keeps the `attempts` it had (0 when it was
never tried) and its `last_status_code`. An entry stays in the log after its body is deleted:
the server keeps an event's body (the session's content) only while the event may still be
sent. `session_id` is null for `grant.ended`.
"""


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=WebhookCreated,
    responses=problem_responses(400, 401, 403, 409, 413, 422),
    summary="Create a webhook; the signing secret is shown only in this response",
    description=DESCRIPTION,
)
def create_webhook(
    data: WebhookCreate, caller: AccountOwner, db: SessionDep, settings: SettingsDep
) -> WebhookCreated:
    return service.create_webhook(
        db, caller.user_id, data, allow_private_targets=settings.webhook_allow_private_targets
    )


@router.get(
    "",
    response_model=WebhookList,
    responses=problem_responses(400, 401, 403, 422),
    summary="List the caller's webhooks, oldest first (without secrets)",
)
def list_webhooks(
    caller: AccountOwner, db: SessionDep, limit: Limit = 50, cursor: Cursor = None
) -> WebhookList:
    return service.list_webhooks(db, caller.user_id, limit, cursor)


@router.delete(
    "/{webhook_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(400, 401, 403, 404, 422),
    summary="Delete a webhook; its pending deliveries are dropped",
)
def delete_webhook(webhook_id: uuid.UUID, caller: AccountOwner, db: SessionDep) -> Response:
    service.delete_webhook(db, caller.user_id, webhook_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{webhook_id}/deliveries",
    response_model=DeliveryList,
    responses=problem_responses(400, 401, 403, 404, 422),
    summary="The webhook's delivery log, newest first",
    description=DELIVERIES_DESCRIPTION,
)
def list_deliveries(
    webhook_id: uuid.UUID,
    caller: AccountOwner,
    db: SessionDep,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> DeliveryList:
    return service.list_deliveries(db, caller.user_id, webhook_id, limit, cursor)
