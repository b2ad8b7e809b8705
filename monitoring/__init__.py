"""The operators' HTTP endpoint (aiohttp): `/metrics`, `/healthz`, `/readyz` for one runtime.

Outside the core (which imports no web server): the runtime starts it when CONCIERGE_METRICS_PORT
is set (`concierge.bootstrap.Runtime.run_background`), in every run mode; Slack's HTTP mode also
serves the same routes on its own events server (`add_routes`).

- `GET /healthz`: 200 `ok` while the process runs its event loop.
- `GET /readyz`: 200 `ready` when the database answers and every platform is connected; else
  503 with one line per problem (`database: unreachable (OperationalError)`).
- `GET /metrics`: the Prometheus text format (`concierge.metrics`).
"""

from __future__ import annotations

import logging

from aiohttp import web

from concierge.health import METRICS_CONTENT_TYPE, Health

log = logging.getLogger(__name__)


def add_routes(app: web.Application, health: Health, *, healthz: bool = True) -> None:
    """Serve `/readyz` and `/metrics` (and `/healthz` unless the application has its own) on `app`."""

    async def alive(_request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def ready(_request: web.Request) -> web.Response:
        problems = await health.problems()
        if problems:
            return web.Response(status=503, text="".join(f"{part}: {problem}\n" for part, problem in problems.items()))
        return web.Response(text="ready")

    async def metrics(_request: web.Request) -> web.Response:
        body = await health.metrics_text()
        return web.Response(body=body, headers={"Content-Type": METRICS_CONTENT_TYPE})

    if healthz:
        app.router.add_get("/healthz", alive)
    app.router.add_get("/readyz", ready)
    app.router.add_get("/metrics", metrics)


class Endpoint:
    """The small server of the three routes; `await stop()` closes it."""

    def __init__(self, runner: web.AppRunner, port: int) -> None:
        self.runner = runner
        self.port = port  # the port bound (useful with port 0)

    async def stop(self) -> None:
        await self.runner.cleanup()


async def start(health: Health, host: str, port: int) -> Endpoint:
    """Listen on `host:port` (0: any free port) and serve the routes until `stop()`."""
    app = web.Application()
    add_routes(app, health)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    bound = runner.addresses[0][1] if runner.addresses else port
    log.info("serving /metrics, /healthz and /readyz at http://%s:%s", host, bound)
    return Endpoint(runner, bound)
