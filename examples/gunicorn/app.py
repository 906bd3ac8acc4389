"""A small WSGI app for `allocbench measure`.

The master imports it once (`--preload`) and builds a catalogue (about 14 MiB
of dicts and strings) that the workers share after the fork; every request
builds and drops a few hundred KiB of dicts, strings and lists, keeping some
pages in a small LRU cache so that objects of different ages mix in the heap,
as in a real app.
"""

import random
from collections import OrderedDict

CATALOG = tuple(
    {"id": i, "name": f"item-{i}", "text": f"description of item {i} " * 8, "tags": ["new", str(i % 7)]}
    for i in range(20_000)
)

# Up to CACHE_PAGES rendered pages, least recently used first.
CACHE_PAGES = 64
CACHE = OrderedDict()


def render(first):
    page = [dict(it, score=len(it["name"]) * 1.5, body=it["text"] * 2) for it in CATALOG[first : first + 500]]
    return "\n".join(f"{it['id']}\t{it['name']}\t{it['score']}\t{len(it['body'])}" for it in page).encode()


def app(environ, start_response):
    first = random.randrange(256) * 64
    body = CACHE.pop(first, None) or render(first)
    CACHE[first] = body
    while len(CACHE) > CACHE_PAGES:
        CACHE.popitem(last=False)
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
