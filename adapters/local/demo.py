"""`make demo`: the whole concierge story played as a script on a fresh SQLite file."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from pydantic import SecretStr

from adapters.local.playground import run_script
from concierge.database import upgrade
from concierge.settings import Settings

STORY = [
    "admin> /concierge member add alice premium",
    "admin> /concierge expert add bob nutrition",
    "carol> Hello? Can I ask something?",
    "alice> What should I eat before a 10k race?",
    "bob@1> Oats and a banana two hours before.",
    "bob@1> note: check her allergies next time",
    "alice> Thanks! And after the race?",
    "bob@1> Protein and carbohydrates within the hour.",
    "alice> /concierge member add alice vip",
    "bob@1> /concierge close",
    "admin> /concierge frobnicate",
    "admin> /concierge member add",
    # One desk for both platforms: Dana writes from Discord, the staff answer here as ever.
    "admin> /concierge member add discord:dana premium Dana",
    "dana@discord> Hi from Discord! How long should I stretch after a run?",
    "bob@2> Ten minutes, gently.",
    "dana@discord> /concierge my-questions",
]


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'demo.db'}"
        upgrade(url)
        settings = Settings(database_url=SecretStr(url), admins=["local:admin"], _env_file=None)
        asyncio.run(run_script(settings, STORY))


if __name__ == "__main__":
    main()
