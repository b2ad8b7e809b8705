"""A loopback fake chat platform for `bench.scale`: it hands inbound events to the bot processes
that ask for them (each event to one of them, as Slack spreads Socket Mode events over the app's
connections) and records every message the bots send.

Run as a separate process: `python -m bench.scale_platform [ROUND_TRIP_S]`; it prints its port, then
serves (each send answered after ROUND_TRIP_S seconds, a real platform's round trip: 0 by default)
    POST /load   the events to hand out (neutral event dicts), counters reset
    GET  /events?max=K&worker=W  up to K events not handed out yet; {"stop": true} once stopped
    POST /send   {"key", "channel", "user", "thread"}: a message (or a thread opened) -> {"id"}
    GET  /stats  keys delivered (with repeats), when the load came and when the last send arrived
    POST /stop   every later /events answers stop
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import time
from collections import Counter, deque

from aiohttp import web


def make_app(round_trip_s: float = 0.0) -> web.Application:
    queue: deque[dict] = deque()
    state: dict = {"stopped": False, "loaded_at": None, "last_send": None}
    pollers: set[str] = set()  # the processes that asked for events: they are up
    delivered: Counter[str] = Counter()
    ids = itertools.count(1)

    async def load(request: web.Request) -> web.Response:
        queue.extend(await request.json())
        delivered.clear()
        state["loaded_at"], state["last_send"] = time.monotonic(), None
        return web.json_response({"queued": len(queue)})

    async def events(request: web.Request) -> web.Response:
        pollers.add(request.query.get("worker", ""))
        if state["stopped"]:
            return web.json_response({"stop": True})
        most = int(request.query.get("max", "20"))
        handed = [queue.popleft() for _ in range(min(most, len(queue)))]
        return web.json_response({"events": handed})

    async def send(request: web.Request) -> web.Response:
        body = await request.json()
        if round_trip_s:
            await asyncio.sleep(round_trip_s)
        delivered[body["key"]] += 1
        state["last_send"] = time.monotonic()
        return web.json_response({"id": str(next(ids))})

    async def stats(request: web.Request) -> web.Response:
        return web.json_response({"delivered": dict(delivered), "loaded_at": state["loaded_at"],
                                  "last_send": state["last_send"], "queued": len(queue),
                                  "pollers": len(pollers)})

    async def stop(request: web.Request) -> web.Response:
        state["stopped"] = True
        return web.json_response({"ok": True})

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/load", load)
    app.router.add_get("/events", events)
    app.router.add_post("/send", send)
    app.router.add_get("/stats", stats)
    app.router.add_post("/stop", stop)
    return app


def main() -> None:
    round_trip_s = float(sys.argv[1]) if len(sys.argv) > 1 else 0.0

    async def start() -> None:
        runner = web.AppRunner(make_app(round_trip_s))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        print(site._server.sockets[0].getsockname()[1], flush=True)  # type: ignore[union-attr]
        while True:
            await asyncio.sleep(3600)

    asyncio.run(start())


if __name__ == "__main__":
    main()
