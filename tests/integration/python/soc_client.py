"""Drives `netmonitor run` with the official MCP Python SDK (`pip install mcp`), as an assistant
would: Streamable HTTP with the initialize handshake, Streamable HTTP in auto mode (stateless
2026-07-28 via server/discover), and the legacy 2024-11-05 SSE transport.

Environment: NM_URL (base URL), NM_READ_TOKEN (read_only), NM_WRITE_TOKEN (read_write).
The service was started with the Kerberos oracle pcap, so real Kerberos figures exist.
Prints "OK <scenario>" per scenario; any failure raises and exits non-zero.
"""

import asyncio
import json
import os
import sys
import warnings

import httpx2
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

BASE = os.environ["NM_URL"].rstrip("/")
READ = os.environ["NM_READ_TOKEN"]
WRITE = os.environ["NM_WRITE_TOKEN"]

warnings.simplefilter("ignore")


def check(cond, what):
    if not cond:
        raise AssertionError(what)


async def analyst(client, label):
    tools = {t.name: t for t in (await client.list_tools()).tools}
    check(len(tools) >= 20, f"{label}: only {len(tools)} tools: {sorted(tools)}")
    for name in ("get_sensor_status", "list_hosts", "get_kerberos_stats", "get_tls_metadata"):
        check(name in tools, f"{label}: {name} missing")
        check(tools[name].output_schema is not None, f"{label}: {name} has no output schema")
        check(tools[name].annotations.read_only_hint is True, f"{label}: {name} not read-only")
    check("add_whitelist_entry" not in tools, f"{label}: read_only token sees a write tool")

    status = await client.call_tool("get_sensor_status", {})
    check(not status.is_error, f"{label}: status error {status.content}")
    sources = status.structured_content["sources"]
    check(sources and sources[0]["counters"]["packets"] > 0, f"{label}: no packets in {sources}")
    check(json.loads(status.content[0].text) == status.structured_content, f"{label}: text copy differs")

    # Events carry capture time and the pcap is from 2015: ask for everything since 2000.
    krb = await client.call_tool("get_kerberos_stats", {"since": "2000-01-01T00:00:00Z"})
    check(not krb.is_error, f"{label}: kerberos stats error {krb.content}")
    check("KRB_AS_REQ" in json.dumps(krb.structured_content), f"{label}: no AS-REQ in {krb.structured_content}")

    hosts = await client.call_tool("list_hosts", {"limit": 50})
    check(not hosts.is_error, f"{label}: list_hosts error {hosts.content}")
    check(json.dumps(hosts.structured_content).count('"ip"') >= 2, f"{label}: hosts {hosts.structured_content}")

    bad = await client.call_tool("list_hosts", {"limit": "lots"})
    check(bad.is_error and "limit" in bad.content[0].text, f"{label}: bad argument must name the field")

    denied = await client.call_tool("add_whitelist_entry", {"ip_cidr": "10.9.9.9", "description": "x"})
    check(denied.is_error, f"{label}: a read_only token must not whitelist")
    print(f"OK {label}", flush=True)


async def streamable(mode, label, extra):
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {READ}"}, timeout=30) as http:
        async with Client(streamable_http_client(f"{BASE}/mcp", http_client=http), mode=mode) as client:
            await analyst(client, label)
            if extra:
                resources = [str(r.uri) for r in (await client.list_resources()).resources]
                check("network://hosts" in resources, f"{label}: resources {resources}")
                read = await client.read_resource("network://hosts")
                check('"ip"' in read.contents[0].text, f"{label}: network://hosts {read.contents[0].text[:200]}")
                # Seed 002's templates, expanded by hand as a client would (RFC 6570 level 3).
                templates = [t.uri_template for t in (await client.list_resource_templates()).resource_templates]
                for t in ("network://hosts{?q,source,limit}",
                          "network://host/{host_id}{?include_events,events_limit}",
                          "network://events{?host_id,type,since,limit}"):
                    check(t in templates, f"{label}: template {t} missing from {templates}")
                host_id = json.loads(read.contents[0].text)["hosts"][0]["ip"]
                host = await client.read_resource(f"network://host/{host_id}?include_events=true&events_limit=2")
                got = json.loads(host.contents[0].text)
                check(got["host"]["ip"] == host_id and len(got["events"]) <= 2, f"{label}: host {got}")
                evs = await client.read_resource(
                    f"network://events?host_id={host_id}&since=2000-01-01T00%3A00%3A00Z&limit=3")
                got = json.loads(evs.contents[0].text)["events"]
                check(0 < len(got) <= 3 and all(host_id in (e["src_ip"], e["dest_ip"]) for e in got),
                      f"{label}: events {got}")
                prompts = [p.name for p in (await client.list_prompts()).prompts]
                check("triage_ip" in prompts, f"{label}: prompts {prompts}")
                prompt = await client.get_prompt("triage_ip", {"ip": "10.0.0.5"})
                check("10.0.0.5" in prompt.messages[0].content.text, f"{label}: prompt text")
                await client.send_ping()
                print(f"OK {label}-resources-prompts", flush=True)


async def writer():
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {WRITE}"}, timeout=30) as http:
        async with Client(streamable_http_client(f"{BASE}/mcp", http_client=http), mode="legacy") as client:
            names = [t.name for t in (await client.list_tools()).tools]
            check("add_whitelist_entry" in names, f"write token lacks add_whitelist_entry: {names}")
            res = await client.call_tool("add_whitelist_entry", {"ip_cidr": "10.9.9.0/24", "description": "lab"})
            check(not res.is_error, f"whitelist add failed: {res.content}")
            listed = await client.call_tool("get_whitelist_entries", {})
            check("10.9.9.0/24" in json.dumps(listed.structured_content), f"whitelist {listed.structured_content}")
            print("OK read-write", flush=True)


async def legacy():
    async with Client(sse_client(f"{BASE}/sse", headers={"Authorization": f"Bearer {READ}"}), mode="legacy") as client:
        await analyst(client, "legacy-sse")


async def main():
    from importlib.metadata import version

    print(f"mcp {version('mcp')}", flush=True)
    await streamable("legacy", "streamable-handshake", True)
    await streamable("auto", "streamable-discover", False)
    await legacy()
    await writer()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except BaseException as e:  # noqa: BLE001
        import traceback

        traceback.print_exc()
        print(f"FAILED: {e!r}", flush=True)
        sys.exit(1)
