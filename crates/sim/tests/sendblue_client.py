"""Drives the Sendblue simulator with the official Sendblue Python client.

The client is sendblue-py (PyPI `sendblue`, imported as `sendblue_api`),
version 1.33.0, used unchanged: `SendblueAPI(api_key, api_secret, base_url)`
and `client.webhooks.list/create/update/delete`, which call GET, POST, PUT
(replace all) and DELETE on /api/account/webhooks.

Usage: python3 sendblue_client.py <base_url>

Prints one "ok - ..." line per check and "all checks passed" at the end;
exits non-zero at the first failed check.
"""

import sys

from sendblue_api import AuthenticationError, BadRequestError, SendblueAPI

KEY_ID = "sb_demo_key_id"
SECRET_KEY = "sb_demo_secret"


def check(condition, what):
    if not condition:
        print(f"FAILED - {what}", flush=True)
        sys.exit(1)
    print(f"ok - {what}", flush=True)


def urls(items):
    """Bucket items as (url, secret) pairs; strings have no secret."""
    return [(i, None) if isinstance(i, str) else (i.url, i.secret) for i in items or []]


def main():
    if len(sys.argv) != 2:
        print("usage: sendblue_client.py <base_url>", file=sys.stderr)
        sys.exit(2)
    base_url = sys.argv[1]
    # No retries: a failing request must fail the check, not be repeated.
    client = SendblueAPI(
        api_key=KEY_ID, api_secret=SECRET_KEY, base_url=base_url, max_retries=0
    )

    listed = client.webhooks.list()
    check(listed.status == "OK", "list: status OK")
    check(urls(listed.webhooks.receive) == [], "list: a fresh account has no receive webhooks")

    created = client.webhooks.create(
        webhooks=[{"url": "https://py.example.com/in", "secret": "py-secret"}],
        type="receive",
        global_secret="py-global",
    )
    check(created.status == "OK", "create: status OK")
    check(created.message == "Webhooks added successfully", "create: documented message")
    check(
        urls(created.webhooks.receive) == [("https://py.example.com/in", "py-secret")],
        "create: {url, secret} object appended to receive",
    )
    check(created.webhooks.global_secret == "py-global", "create: globalSecret stored")

    created = client.webhooks.create(webhooks=["http://py.example.com/contacts"], type="contact_created")
    check(
        urls(created.webhooks.contact_created) == [("https://py.example.com/contacts", None)],
        "create: http URL upgraded to https in contact_created",
    )
    try:
        client.webhooks.create(
            webhooks=[{"url": "https://py.example.com/c", "secret": "s"}], type="contact_created"
        )
        check(False, "create: a secret on contact_created is refused")
    except BadRequestError as e:
        check(e.status_code == 400, "create: a secret on contact_created is refused with 400")

    updated = client.webhooks.update(
        webhooks={
            "outbound": ["https://py.example.com/out"],
            "receive": [{"url": "https://py.example.com/in", "secret": "rotated"}],
        }
    )
    check(updated.status == "OK", "update: status OK")
    check(updated.message == "Webhooks updated successfully", "update: documented message")
    listed = client.webhooks.list()
    check(urls(listed.webhooks.outbound) == [("https://py.example.com/out", None)], "update: outbound replaced")
    check(
        urls(listed.webhooks.receive) == [("https://py.example.com/in", "rotated")],
        "update: receive replaced with the new secret",
    )
    check(urls(listed.webhooks.contact_created) == [], "update: buckets left out are cleared")
    check(listed.webhooks.global_secret is None, "update: globalSecret left out is cleared")

    deleted = client.webhooks.delete(webhooks=["https://py.example.com/out"], type="outbound")
    check(deleted.status == "OK", "delete: status OK")
    deleted = client.webhooks.delete(webhooks=["https://py.example.com/in"])
    check(deleted.status == "OK", "delete: type defaults to receive")
    listed = client.webhooks.list()
    check(
        urls(listed.webhooks.outbound) == [] and urls(listed.webhooks.receive) == [],
        "delete: both entries gone",
    )

    bad = SendblueAPI(api_key="nope", api_secret="nope", base_url=base_url, max_retries=0)
    try:
        bad.webhooks.list()
        check(False, "auth: unknown keys are refused")
    except AuthenticationError as e:
        check(e.status_code == 401, "auth: unknown keys are refused with 401")

    print("all checks passed", flush=True)


if __name__ == "__main__":
    main()
