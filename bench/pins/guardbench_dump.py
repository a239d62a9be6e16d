"""Prints MCP-GuardBench's lab tool definitions as JSON, labelled by the fixtures' own ground truth.

Run by `make scanner-corpus` inside the base image (the package needs Python >= 3.12), with the
unpacked mcp-guardbench wheel and its dependencies on PYTHONPATH. Only reads class attributes and
tool_definitions(); never starts a server or calls a tool.
"""
import json
import sys

from guardbench.mcp_lab.fixtures import REGISTRY

out = []
for name, cls in sorted(REGISTRY.items()):
    poisoned = getattr(cls, "poisoned_tools", frozenset())
    for t in cls().tool_definitions():
        d = t.model_dump()
        out.append({"fixture": name, "name": d["name"], "description": d.get("description") or "",
                    "inputSchema": d.get("input_schema") or {}, "annotations": d.get("annotations") or {},
                    "poisoned": d["name"] in poisoned})
json.dump(out, sys.stdout, indent=1)
