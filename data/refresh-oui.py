#!/usr/bin/env python3
"""Rebuilds data/oui.tsv.gz, the MAC vendor table the device inventory ships with.

Source: the IEEE Registration Authority's public registries (MA-L, MA-M, MA-S), as CSV files
with the columns Registry,Assignment,Organization Name,Organization Address. Debian's
`ieee-data` package keeps a copy in /usr/share/ieee-data (`update-ieee-data` refreshes it from
standards-oui.ieee.org); the same files can be downloaded from the IEEE directly.

Usage: python3 data/refresh-oui.py [DIR]   (DIR defaults to /usr/share/ieee-data)
Output lines: assignment in hex (6, 7 or 9 digits: a 24-, 28- or 36-bit prefix), a tab, the
organization name. The first line is a comment naming the source and its date.
"""
import csv
import gzip
import os
import sys

src = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/ieee-data"
rows = {}
for name in ("oui.csv", "mam.csv", "oui36.csv"):
    path = os.path.join(src, name)
    if not os.path.exists(path):
        continue
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        for rec in csv.DictReader(f):
            prefix = (rec.get("Assignment") or "").strip().upper()
            org = " ".join((rec.get("Organization Name") or "").split())
            if prefix and org and all(c in "0123456789ABCDEF" for c in prefix):
                rows[prefix] = org
if len(rows) < 1000:
    sys.exit(f"only {len(rows)} assignments found under {src}: not an IEEE registry copy")
stamp = "unknown date"
try:
    with open(os.path.join(src, ".lastupdate")) as f:
        raw = f.read().strip()
        stamp = raw
        if raw.isdigit():
            import datetime
            stamp = datetime.datetime.fromtimestamp(int(raw), datetime.timezone.utc).strftime("%Y-%m-%d")
except OSError:
    pass
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "oui.tsv.gz")
with gzip.GzipFile(out, "wb", mtime=0) as gz:
    gz.write(f"# IEEE Registration Authority MA-L/MA-M/MA-S registries ({stamp}), {len(rows)} assignments\n".encode())
    for prefix in sorted(rows):
        gz.write(f"{prefix}\t{rows[prefix]}\n".encode())
print(f"{out}: {len(rows)} assignments from {src} ({stamp})")
