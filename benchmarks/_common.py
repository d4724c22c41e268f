"""What every benchmark records: the machine, date and versions, and its JSON result."""

from __future__ import annotations

import json
import os
import platform
import time


def header(**extra_versions) -> dict:
    """Machine, date and package versions, the head of every result."""
    from bayescale.result.io import versions

    return {"machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.platform()}",
            "date": time.strftime("%Y-%m-%d"), "versions": versions() | extra_versions}


def save(results: dict, path: str | None) -> dict:
    """Print the result and, given a path, write it as JSON."""
    print(json.dumps(results, indent=1, default=str), flush=True)
    if path:
        with open(path, "w") as fh:
            json.dump(results, fh, indent=1, default=str)
    return results
