"""Interop check of the NetMonitor MCP server with the official Python SDK (`pip install mcp`).

Driven by tests/mcp/interop.rs, which starts the server with demo tools and passes
MCP_TEST_URL (base URL) and MCP_TEST_TOKEN (an admin token). Each scenario prints
"OK <name>"; any failure raises and exits non-zero.

Scenarios: Streamable HTTP with the initialize handshake (mode="legacy"), Streamable HTTP
with server/discover (mode="auto", protocol 2026-07-28), the legacy 2024-11-05 HTTP+SSE
transport, and a rejected token.
"""

import asyncio
import os
import sys
import warnings

import httpx2
import mcp
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import PromptReference, ResourceTemplateReference

BASE = os.environ["MCP_TEST_URL"].rstrip("/")
TOKEN = os.environ["MCP_TEST_TOKEN"]
HEADERS = {"Authorization": f"Bearer {TOKEN}"}

warnings.simplefilter("ignore")


def check(cond, what):
    if not cond:
        raise AssertionError(what)


async def exercise(client, label, handshake):
    tools = await client.list_tools()
    names = [t.name for t in tools.tools]
    check("echo" in names and "set_value" in names, f"{label}: tools {names}")
    echo = next(t for t in tools.tools if t.name == "echo")
    check(echo.annotations is not None and echo.annotations.read_only_hint is True, f"{label}: annotations")
    check(echo.output_schema is not None, f"{label}: output schema")

    res = await client.call_tool("echo", {"text": "py", "repeat": 2})
    check(not res.is_error, f"{label}: echo error {res}")
    check(res.structured_content == {"text": "pypy"}, f"{label}: structured {res.structured_content}")
    check(res.content and res.content[0].type == "text", f"{label}: text content")

    bad = await client.call_tool("echo", {"text": "x", "repeat": 99})
    check(bad.is_error, f"{label}: invalid args must be isError")
    check("repeat" in bad.content[0].text, f"{label}: names field: {bad.content[0].text}")

    seen = []

    async def on_progress(progress, total, message):
        seen.append(progress)

    slow = await client.call_tool("slow", {"steps": 3, "delay_ms": 5}, progress_callback=on_progress)
    check(not slow.is_error and slow.structured_content == {"done": 3}, f"{label}: slow {slow}")
    check(seen == [1.0, 2.0, 3.0], f"{label}: progress {seen}")

    resources = await client.list_resources()
    uris = [str(r.uri) for r in resources.resources]
    check("test://status" in uris, f"{label}: resources {uris}")
    read = await client.read_resource("test://item/abc?verbose=1")
    check('"abc"' in read.contents[0].text, f"{label}: read {read}")
    templates = await client.list_resource_templates()
    check(templates.resource_templates[0].uri_template == "test://item/{id}{?verbose}", f"{label}: templates")

    prompts = await client.list_prompts()
    check([p.name for p in prompts.prompts] == ["triage_ip"], f"{label}: prompts")
    prompt = await client.get_prompt("triage_ip", {"ip": "10.0.0.5"})
    check("10.0.0.5" in prompt.messages[0].content.text, f"{label}: prompt text")

    comp = await client.complete(PromptReference(type="ref/prompt", name="triage_ip"), {"name": "window", "value": "7"})
    check(comp.completion.values == ["7d"], f"{label}: completion {comp.completion.values}")
    comp = await client.complete(
        ResourceTemplateReference(type="ref/resource", uri="test://item/{id}{?verbose}"), {"name": "id", "value": "b"}
    )
    check(comp.completion.values == ["beta"], f"{label}: template completion {comp.completion.values}")

    try:
        await client.read_resource("test://nothing")
        raise AssertionError(f"{label}: missing resource must fail")
    except mcp.MCPError:
        pass

    if handshake:
        await client.send_ping()
        await client.set_logging_level("info")
        await client.subscribe_resource("test://status")
    print(f"OK {label}", flush=True)


async def streamable(mode, label, handshake):
    async with httpx2.AsyncClient(headers=HEADERS, timeout=30) as http:
        async with Client(streamable_http_client(f"{BASE}/mcp", http_client=http), mode=mode) as client:
            version = client.protocol_version
            if handshake:
                check(version == "2025-11-25", f"{label}: negotiated {version}")
            else:
                check(version == "2026-07-28", f"{label}: negotiated {version}")
            check(client.server_info is None or client.server_info.name == "netmonitor", f"{label}: server info")
            await exercise(client, label, handshake)


async def legacy_sse():
    async with Client(sse_client(f"{BASE}/sse", headers=HEADERS), mode="legacy") as client:
        await exercise(client, "legacy-sse", True)


async def bad_token():
    try:
        async with httpx2.AsyncClient(headers={"Authorization": "Bearer nmt_wrong"}, timeout=10) as http:
            async with Client(streamable_http_client(f"{BASE}/mcp", http_client=http), mode="legacy") as client:
                await client.list_tools()
    except BaseException as e:  # noqa: BLE001 - any failure to connect is the expected outcome
        print(f"OK bad-token ({type(e).__name__})", flush=True)
        return
    raise AssertionError("a wrong token must not connect")


async def main():
    from importlib.metadata import version as _v

    print(f"mcp {_v('mcp')}", flush=True)
    await streamable("legacy", "streamable-handshake", True)
    await streamable("auto", "streamable-discover", False)
    await legacy_sse()
    await bad_token()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except BaseException as e:  # noqa: BLE001
        import traceback

        traceback.print_exc()
        print(f"FAILED: {e!r}", flush=True)
        sys.exit(1)
