"""Drives a running Switchboard through a client generated from its own
/openapi.json by openapi-python-client: every operation of the API, called
only through the generated functions and models.

Usage: python3 drive.py <generated client dir> <base_url> <accounts json>

<accounts json> maps provider keys to the account each uses (Talkover
agent, Bird workspace, Telegent account); Sendblue has none. The tenant's
token is read from DRIVE_TOKEN, an admin token from DRIVE_ADMIN_TOKEN.

The client is built with raise_on_unexpected_status=True, so an answer
whose status the document does not describe fails the run. Prints one
"ok - ..." line per check and "all checks passed" at the end; exits
non-zero at the first failed check.
"""

import json
import os
import sys

if len(sys.argv) != 4:
    print("usage: drive.py <client dir> <base_url> <accounts json>", file=sys.stderr)
    sys.exit(2)
sys.path.insert(0, sys.argv[1])

from switchboard_client import AuthenticatedClient, Client  # noqa: E402
from switchboard_client.api.audit import list_audit_entries  # noqa: E402
from switchboard_client.api.catalog import list_events, list_providers  # noqa: E402
from switchboard_client.api.health import get_health, get_readiness  # noqa: E402
from switchboard_client.api.reconciliation import get_reconciliation  # noqa: E402
from switchboard_client.api.subscriptions import (  # noqa: E402
    create_subscription,
    delete_subscription,
    delete_subscription_by_key,
    disable_subscription,
    enable_subscription,
    get_subscription,
    get_subscription_by_key,
    list_subscription_operations,
    list_subscriptions,
    preview_subscription,
    put_subscription_by_key,
    reconcile_subscription,
    rotate_subscription_secret,
    update_subscription,
)
from switchboard_client.models import (  # noqa: E402
    AuthRequest,
    FilterBody,
    ListSubscriptionsStatus,
    PlanAction,
    Problem,
    RotateRequest,
    SubscriptionRequest,
    SubscriptionRequestHeadersType0,
    SubscriptionRequestMetadataType0,
    SubscriptionView,
    UpdateSubscriptionBody,
)
from switchboard_client.types import UNSET  # noqa: E402

PROBLEM_JSON = "application/problem+json"


def check(condition, what):
    if not condition:
        print(f"FAILED - {what}", flush=True)
        sys.exit(1)
    print(f"ok - {what}", flush=True)


def problem(response, status, what):
    """Checks that `response` is a problem+json of `status`, parsed by the
    generated client into its `Problem` model; returns the problem."""
    check(response.status_code == status, f"{what}: status {status} (got {response.status_code})")
    check(
        response.headers.get("content-type", "").startswith(PROBLEM_JSON),
        f"{what}: {PROBLEM_JSON}",
    )
    p = response.parsed
    check(isinstance(p, Problem), f"{what}: parsed as Problem")
    check(p.status == status, f"{what}: the problem's status is {status}")
    check(p.type_.startswith("urn:switchboard:problem:"), f"{what}: a Switchboard problem type")
    return p


def view(response, status, what):
    """The SubscriptionView of a `status` answer."""
    check(response.status_code == status, f"{what}: status {status} (got {response.status_code})")
    check(isinstance(response.parsed, SubscriptionView), f"{what}: parsed as SubscriptionView")
    return response.parsed


def request(provider, account, n, **extra):
    """A create body for `provider`: one event its kind supports."""
    events = {
        "talkover": ["call.ended", "native:event_action"],
        "telegent": ["call.ended"],
        "bird": ["message.received"],
        "sendblue": ["message.received"],
    }[provider]
    fields = {"events": events, "name": f"drive {provider} {n}", **extra}
    body = SubscriptionRequest(provider=provider, url=f"https://hooks.example.com/drive/{provider}/{n}", **fields)
    if account is not None:
        body.account = account
    if provider == "bird":
        # Bird allows five subscriptions per event and filter set.
        body.filters = [FilterBody(key="channelId", value=f"drive-{n}")]
    return body


def every_page(fetch):
    """Follows `next_cursor` from the first page; the pages' items."""
    items, cursor, pages = [], UNSET, 0
    while True:
        page = fetch(cursor)
        pages += 1
        items.extend(page.data)
        if not page.next_cursor:
            return items, pages
        cursor = page.next_cursor


def health(base_url):
    anonymous = Client(base_url=base_url, raise_on_unexpected_status=True)
    live = get_health.sync(client=anonymous)
    check(live.status == "ok", "getHealth: ok")
    ready = get_readiness.sync(client=anonymous)
    check(ready.status == "ready", "getReadiness: ready")
    check(ready.database in ("sqlite", "postgres"), f"getReadiness: database {ready.database}")


def catalogs(client):
    providers = list_providers.sync(client=client)
    kinds = {p.key: p.kind for p in providers.data}
    check(
        kinds
        == {
            "talkover": "talkover",
            "bird": "accesskey-workspace",
            "telegent": "telegent",
            "sendblue": "account-v2",
        },
        f"listProviders: the four configured instances ({kinds})",
    )
    talkover = next(p for p in providers.data if p.key == "talkover")
    check(
        talkover.events.additional_properties.get("call.ended") == "event_phone_call_ended",
        "listProviders: talkover maps call.ended to its native name",
    )
    events = list_events.sync(client=client)
    ended = next((e for e in events.data if e.name == "call.ended"), None)
    check(ended is not None, "listEvents: call.ended is in the catalog")
    check(
        ended.native.additional_properties.get("telegent") == "Call_Completed",
        "listEvents: call.ended's telegent name",
    )
    check(
        "event_action" in events.native.additional_properties.get("talkover", []),
        "listEvents: talkover's native catalog",
    )


def preview(client, accounts):
    r = preview_subscription.sync_detailed(
        client=client, body=request("bird", accounts["bird"], 0)
    )
    check(r.status_code == 200, f"previewSubscription: 200 (got {r.status_code})")
    p = r.parsed
    check(p.provider == "bird" and p.kind == "accesskey-workspace", "previewSubscription: provider and kind")
    check(p.action == PlanAction.CREATE, "previewSubscription: would create")
    check(len(p.requests) == 1 and len(p.native) == 1, "previewSubscription: one native request")
    unsupported = preview_subscription.sync_detailed(
        client=client, body=request("talkover", accounts["talkover"], 0, events=["line.assigned"])
    )
    p = problem(unsupported, 422, "previewSubscription: an event Talkover does not offer")
    check(p.provider == "talkover", "previewSubscription: the problem names the provider")


def create_all(client, accounts):
    """One subscription per provider kind, oldest first; the talkover one
    through Idempotency-Key (and its replay)."""
    talkover_body = request(
        "talkover",
        accounts["talkover"],
        1,
        auth=AuthRequest(type_="basic", username="hook", password="pw-drive"),
        signing_secret="whsec-drive-1",
        headers=SubscriptionRequestHeadersType0.from_dict({"X-Team": "billing"}),
        metadata=SubscriptionRequestMetadataType0.from_dict({"team": "billing"}),
    )
    first = create_subscription.sync_detailed(
        client=client, body=talkover_body, idempotency_key="drive-create-1"
    )
    talkover = view(first, 201, "createSubscription talkover")
    check(
        first.headers.get("location") == f"/v1/subscriptions/{talkover.id}",
        "createSubscription: Location names the subscription",
    )
    check(first.headers.get("etag") == f'"{talkover.version}"', "createSubscription: ETag is the version")
    check(talkover.auth.password_set is True, "createSubscription: the password is stored, not shown")
    check(talkover.signing_secret_set is True, "createSubscription: the signing secret is stored")
    check(len(talkover.native) == 1, "createSubscription: one native Talkover webhook")
    again = create_subscription.sync_detailed(
        client=client, body=talkover_body, idempotency_key="drive-create-1"
    )
    check(
        again.status_code == 201 and again.parsed.id == talkover.id,
        "createSubscription: the same Idempotency-Key replays the first answer",
    )
    check(again.headers.get("idempotent-replayed") == "true", "createSubscription: marked as a replay")
    other = create_subscription.sync_detailed(
        client=client, body=request("talkover", accounts["talkover"], 9), idempotency_key="drive-create-1"
    )
    problem(other, 422, "createSubscription: the key with another body")

    created = [talkover]
    for n, provider in enumerate(["sendblue", "bird", "telegent"], start=2):
        body = request(provider, accounts.get(provider), n)
        if provider != "telegent":
            body.signing_secret = f"whsec-drive-{n}"
        created.append(view(create_subscription.sync_detailed(client=client, body=body), 201, f"createSubscription {provider}"))
    check(
        [s.provider for s in created] == ["talkover", "sendblue", "bird", "telegent"],
        "createSubscription: four kinds",
    )
    return created


def listing(client, created):
    ids = [s.id for s in created]
    page = list_subscriptions.sync(client=client)
    check([s.id for s in page.data] == ids and page.next_cursor is None, "listSubscriptions: all, oldest first")
    items, pages = every_page(lambda cursor: list_subscriptions.sync(client=client, limit=1, cursor=cursor))
    check([s.id for s in items] == ids, "listSubscriptions: limit=1 pages, following next_cursor")
    check(pages == len(ids), f"listSubscriptions: {len(ids)} pages of one")
    only = list_subscriptions.sync(client=client, provider="sendblue")
    check([s.id for s in only.data] == [created[1].id], "listSubscriptions: provider filter")
    active = list_subscriptions.sync(client=client, status=ListSubscriptionsStatus.ACTIVE)
    check([s.id for s in active.data] == ids, "listSubscriptions: status filter, all active")
    bad = list_subscriptions.sync_detailed(client=client, limit=0)
    p = problem(bad, 422, "listSubscriptions: limit=0")
    check([e.pointer for e in p.errors] == ["/limit"], "listSubscriptions: the problem points at /limit")


def read_and_patch(client, sub):
    got = get_subscription.sync_detailed(sub.id, client=client)
    current = view(got, 200, "getSubscription")
    check(current.id == sub.id and current.url == sub.url, "getSubscription: the subscription")
    check(current.headers.additional_properties == {"X-Team": "billing"}, "getSubscription: its headers")
    etag = got.headers.get("etag")
    check(etag == f'"{current.version}"', "getSubscription: ETag is the version")
    patch = UpdateSubscriptionBody.from_dict({"name": "renamed by the client", "metadata": {"team": "ops"}})
    changed = view(
        update_subscription.sync_detailed(sub.id, client=client, body=patch, if_match=etag),
        200,
        "updateSubscription",
    )
    check(changed.name == "renamed by the client", "updateSubscription: name changed")
    check(changed.metadata.additional_properties == {"team": "ops"}, "updateSubscription: metadata changed")
    check(changed.version > current.version, "updateSubscription: a new version")
    stale = update_subscription.sync_detailed(
        sub.id, client=client, body=UpdateSubscriptionBody.from_dict({"name": "lost"}), if_match=etag
    )
    problem(stale, 412, "updateSubscription: a stale If-Match")
    invalid = update_subscription.sync_detailed(
        sub.id, client=client, body=UpdateSubscriptionBody.from_dict({"url": "not a url"})
    )
    p = problem(invalid, 422, "updateSubscription: an invalid url")
    check([e.pointer for e in p.errors] == ["/url"], "updateSubscription: the problem points at /url")


def actions(client, created):
    talkover, sendblue, _, telegent = created
    off = view(disable_subscription.sync_detailed(sendblue.id, client=client), 200, "disableSubscription")
    check(off.enabled is False and off.status == "disabled", "disableSubscription: disabled")
    disabled = list_subscriptions.sync(client=client, status=ListSubscriptionsStatus.DISABLED)
    check([s.id for s in disabled.data] == [sendblue.id], "listSubscriptions: status=disabled")
    active = list_subscriptions.sync(client=client, status=ListSubscriptionsStatus.ACTIVE)
    check(sendblue.id not in [s.id for s in active.data], "listSubscriptions: status=active leaves it out")
    on = view(enable_subscription.sync_detailed(sendblue.id, client=client), 200, "enableSubscription")
    check(on.enabled is True and on.status == "active", "enableSubscription: active again")

    generated = rotate_subscription_secret.sync_detailed(talkover.id, client=client)
    check(generated.status_code == 200, f"rotateSubscriptionSecret: 200 without a body (got {generated.status_code})")
    check(len(generated.parsed.signing_secret) >= 16, "rotateSubscriptionSecret: a generated secret")
    check(generated.headers.get("cache-control") == "no-store", "rotateSubscriptionSecret: no-store")
    chosen = rotate_subscription_secret.sync(
        talkover.id, client=client, body=RotateRequest(signing_secret="whsec-drive-rotated")
    )
    check(chosen.signing_secret == "whsec-drive-rotated", "rotateSubscriptionSecret: the given secret")
    check(chosen.subscription.signing_secret_set is True, "rotateSubscriptionSecret: stored")
    unsigned = rotate_subscription_secret.sync_detailed(telegent.id, client=client)
    problem(unsigned, 422, "rotateSubscriptionSecret: Telegent does not sign")

    reconciled = view(
        reconcile_subscription.sync_detailed(talkover.id, client=client, remove_unknown=False),
        200,
        "reconcileSubscription",
    )
    check(reconciled.findings == [], "reconcileSubscription: nothing drifted")
    check(reconciled.last_reconciled_at, "reconcileSubscription: last_reconciled_at set")
    plain = reconcile_subscription.sync_detailed(talkover.id, client=client)
    check(plain.status_code == 200, "reconcileSubscription: remove_unknown is optional")

    ops, pages = every_page(
        lambda cursor: list_subscription_operations.sync(talkover.id, client=client, limit=2, cursor=cursor)
    )
    kinds = [o.kind.value for o in ops]
    check(
        kinds == ["reconcile", "reconcile", "rotate_secret", "rotate_secret", "update", "create"],
        f"listSubscriptionOperations: the history, newest first, over {pages} pages ({kinds})",
    )
    check(all(o.state.value == "succeeded" for o in ops), "listSubscriptionOperations: all succeeded")


def by_key(client, accounts):
    body = request("talkover", accounts["talkover"], 7)
    made = view(put_subscription_by_key.sync_detailed("drive-by-key", client=client, body=body), 201, "putSubscriptionByKey: create")
    check(made.key == "drive-by-key", "putSubscriptionByKey: the key is stored")
    same = view(put_subscription_by_key.sync_detailed("drive-by-key", client=client, body=body), 200, "putSubscriptionByKey: again")
    check(same.id == made.id and same.version == made.version, "putSubscriptionByKey: unchanged, same version")
    body.name = "renamed by key"
    renamed = view(put_subscription_by_key.sync_detailed("drive-by-key", client=client, body=body), 200, "putSubscriptionByKey: replace")
    check(renamed.id == made.id and renamed.name == "renamed by key", "putSubscriptionByKey: replaced in place")
    got = view(get_subscription_by_key.sync_detailed("drive-by-key", client=client), 200, "getSubscriptionByKey")
    check(got.id == made.id, "getSubscriptionByKey: the subscription")
    gone = delete_subscription_by_key.sync_detailed("drive-by-key", client=client)
    check(gone.status_code == 204, "deleteSubscriptionByKey: 204")
    problem(get_subscription_by_key.sync_detailed("drive-by-key", client=client), 404, "getSubscriptionByKey: deleted")


def admin(admin_client, client):
    entries, _ = every_page(
        lambda cursor: list_audit_entries.sync(client=admin_client, tenant="tenant-r", limit=5, cursor=cursor)
    )
    operations = [e.additional_properties.get("operation") for e in entries]
    check("create" in operations and "rotate_secret" in operations, f"listAuditEntries: the changes ({operations})")
    problem(list_audit_entries.sync_detailed(client=client), 403, "listAuditEntries: a tenant token")
    state = get_reconciliation.sync(client=admin_client)
    check(isinstance(state.recent_accounts, list), "getReconciliation: the reconciler's state")


def problems(client):
    missing = get_subscription.sync_detailed("sub_01J00000000000000000000000", client=client)
    p = problem(missing, 404, "getSubscription: an unknown id")
    check(p.type_ == "urn:switchboard:problem:not-found", "getSubscription: not-found type")
    bad = create_subscription.sync_detailed(
        client=client,
        body=SubscriptionRequest(provider="talkover", url="ftp://example.com/hook", events=["call.ended"]),
    )
    p = problem(bad, 422, "createSubscription: an invalid url")
    check("/url" in [e.pointer for e in p.errors], "createSubscription: the problem points at /url")


def delete_all(client, created):
    for sub in created:
        r = delete_subscription.sync_detailed(sub.id, client=client)
        check(r.status_code == 204, f"deleteSubscription {sub.provider}: 204")
    problem(get_subscription.sync_detailed(created[0].id, client=client), 404, "getSubscription: deleted")
    check(list_subscriptions.sync(client=client).data == [], "listSubscriptions: nothing left")


def main():
    base_url, accounts = sys.argv[2], json.loads(sys.argv[3])

    def authenticated(token):
        return AuthenticatedClient(base_url=base_url, token=token, raise_on_unexpected_status=True, timeout=30.0)

    client = authenticated(os.environ["DRIVE_TOKEN"])
    admin_client = authenticated(os.environ["DRIVE_ADMIN_TOKEN"])
    health(base_url)
    catalogs(client)
    preview(client, accounts)
    created = create_all(client, accounts)
    listing(client, created)
    read_and_patch(client, created[0])
    actions(client, created)
    by_key(client, accounts)
    admin(admin_client, client)
    problems(client)
    delete_all(client, created)
    print("all checks passed", flush=True)


if __name__ == "__main__":
    main()
