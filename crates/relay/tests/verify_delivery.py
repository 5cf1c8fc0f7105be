"""Verifies relay deliveries with the independent Standard Webhooks
library (PyPI `standardwebhooks`), the way a subscriber would.

Reads a JSON list of cases from stdin (secrets travel on stdin, never in
argv); each case is {"secret": "whsec_...", "headers": {...},
"body_b64": "...", "json": true|false}. Prints one JSON line per case:
{"ok": true, "id": <the parsed envelope's id or null>} or
{"ok": false, "error": "..."}.
"""

import base64
import json
import sys

from standardwebhooks.webhooks import Webhook


def check(case):
    body = base64.b64decode(case["body_b64"])
    try:
        parsed = Webhook(case["secret"]).verify(
            body, case["headers"], json_parse=case["json"]
        )
    except Exception as e:  # the library raises several types; report all
        return {"ok": False, "error": f"{type(e).__name__}: {e}"}
    return {"ok": True, "id": parsed.get("id") if case["json"] else None}


for case in json.load(sys.stdin):
    print(json.dumps(check(case)))
