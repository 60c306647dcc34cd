"""Generated regions inside hand-written files (compose.yaml, Prometheus' config and alerts).

Those files are mostly written by hand, comments included, and only a few lines list the services.
Those lines sit between two marker comments and are rewritten by `protomesh gen`; the rest of the
file is kept byte for byte:

    depends_on:
      # >>> protomesh gen: envoy-depends-on (anything after the name is a free-form note)
      agent:
        condition: service_healthy
      # <<< protomesh gen: envoy-depends-on

The content is indented like the opening marker, so a region can sit at any depth of a YAML file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

BEGIN = "# >>> protomesh gen: "
END = "# <<< protomesh gen: "
_BEGIN = re.compile(r"^(?P<indent>[ \t]*)# >>> protomesh gen: (?P<name>[a-z0-9-]+)(?:\s.*)?$")
_END = re.compile(r"^[ \t]*# <<< protomesh gen: (?P<name>[a-z0-9-]+)\s*$")


class RegionError(ValueError):
    """Markers missing, unknown, repeated or unclosed; the message names the file and line."""


def fill_regions(text: str, contents: Mapping[str, str], *, where: str) -> str:
    """`text` with every region's lines replaced by `contents[name]`; each region must appear exactly once."""
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    seen: set[str] = set()
    index = 0
    while index < len(lines):
        begin = _BEGIN.match(lines[index].rstrip("\n"))
        if _END.match(lines[index].rstrip("\n")):
            raise RegionError(f"{where}:{index + 1}: end marker without a begin marker")
        out.append(lines[index])
        index += 1
        if begin is None:
            continue
        name = begin["name"]
        if name not in contents:
            raise RegionError(f"{where}:{index}: unknown region {name!r}; known: {', '.join(sorted(contents))}")
        if name in seen:
            raise RegionError(f"{where}:{index}: region {name!r} appears twice")
        seen.add(name)
        close = _find_end(lines, index, name, where)
        indent = begin["indent"]
        out.extend(f"{indent}{line}\n" if line else "\n" for line in contents[name].splitlines())
        out.append(lines[close])
        index = close + 1
    missing = sorted(contents.keys() - seen)
    if missing:
        raise RegionError(f"{where}: no region {', '.join(missing)}; add the markers "
                          f"`{BEGIN}<name>` and `{END}<name>` where its lines belong")
    return "".join(out)


def _find_end(lines: list[str], start: int, name: str, where: str) -> int:
    for index in range(start, len(lines)):
        line = lines[index].rstrip("\n")
        if _BEGIN.match(line):
            break
        end = _END.match(line)
        if end is not None:
            if end["name"] != name:
                raise RegionError(f"{where}:{index + 1}: region {name!r} closed as {end['name']!r}")
            return index
    raise RegionError(f"{where}:{start}: region {name!r} is not closed with `{END}{name}`")
