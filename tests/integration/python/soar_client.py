"""An approver's assistant with the official MCP Python SDK: subscribes to soar://pending over
Streamable HTTP, waits to be told (no polling) that an approval is waiting, reads the pending
list, and checks that its read_only token may not approve.

Environment: NM_URL (base URL), NM_READ_TOKEN (read_only).
Prints "SUBSCRIBED" once subscribed, then "PENDING <json>"; any failure exits non-zero.
"""

import asyncio
import json
import os
import sys
import warnings

import httpx2
import mcp.types as types
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

BASE = os.environ["NM_URL"].rstrip("/")
READ = os.environ["NM_READ_TOKEN"]

warnings.simplefilter("ignore")


def check(cond, what):
    if not cond:
        raise AssertionError(what)


async def main():
    updates = asyncio.Queue()

    async def on_message(message):
        n = getattr(message, "root", message)
        if isinstance(n, types.ResourceUpdatedNotification):
            await updates.put(str(n.params.uri))

    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {READ}"}, timeout=60) as http:
        async with Client(
            streamable_http_client(f"{BASE}/mcp", http_client=http), mode="legacy", message_handler=on_message
        ) as client:
            resources = [str(r.uri) for r in (await client.list_resources()).resources]
            check("soar://pending" in resources, f"resources {resources}")
            await client.subscribe_resource("soar://pending")
            print("SUBSCRIBED", flush=True)
            uri = await asyncio.wait_for(updates.get(), timeout=180)
            check(uri == "soar://pending", f"updated {uri}")
            read = await client.read_resource("soar://pending")
            pending = json.loads(read.contents[0].text)
            check(pending["count"] >= 1, f"pending {pending}")
            denied = await client.call_tool(
                "approve_soar_action", {"action_id": pending["actions"][0]["id"], "approved": True}
            )
            check(denied.is_error, f"a read_only token approved: {denied.content}")
            print("PENDING " + json.dumps(pending), flush=True)


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except BaseException as e:  # noqa: BLE001
        import traceback

        traceback.print_exc()
        print(f"FAILED: {e!r}", flush=True)
        sys.exit(1)
