"""A loopback fake chat platform that enforces a rate limit (token bucket) and answers 429 beyond it.

Run as a separate process: `python -m bench.fake_platform_server --rate 200`; it prints its port,
then serves POST /send ({"key", "user"}) and GET /stats.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from aiohttp import web


class Bucket:
    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self.tokens, self.updated = burst, time.monotonic()

    def take(self) -> float:
        """0 when a token was taken, else the seconds until one is there."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


def make_app(rate: float, burst: float) -> web.Application:
    bucket = Bucket(rate, burst)
    stats = {"accepted": 0, "rejected_429": 0, "duplicates": 0, "first": None, "last": None}
    seen: set[str] = set()

    async def send(request: web.Request) -> web.Response:
        body = await request.json()
        wait = bucket.take()
        if wait:
            stats["rejected_429"] += 1
            return web.json_response({"error": "rate_limited"}, status=429, headers={"Retry-After": f"{wait:.3f}"})
        if body["key"] in seen:
            stats["duplicates"] += 1
        seen.add(body["key"])
        stats["accepted"] += 1
        now = time.monotonic()
        stats["first"] = stats["first"] or now
        stats["last"] = now
        return web.json_response({"ok": True, "id": str(stats["accepted"])})

    async def read_stats(request: web.Request) -> web.Response:
        return web.json_response(stats)

    app = web.Application()
    app.router.add_post("/send", send)
    app.router.add_get("/stats", read_stats)
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--burst", type=float, default=None)
    args = parser.parse_args()

    app = make_app(args.rate, args.burst or args.rate)

    async def start() -> None:
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        print(site._server.sockets[0].getsockname()[1], flush=True)
        while True:
            await asyncio.sleep(3600)

    asyncio.run(start())


if __name__ == "__main__":
    main()
