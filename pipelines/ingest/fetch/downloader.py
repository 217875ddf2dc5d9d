"""img2dataset's Downloader, fetching through our guarded `Fetcher` instead of urllib.

img2dataset's `Downloader.download_shard` reaches its fetch, the module-level `download_image_with_retry`, by
global name lookup from a lambda inside the method. Rather than assign that module attribute (which would
change every Downloader in the process, ours or not), `GuardedDownloader` runs img2dataset's own
`download_shard` code object with a private copy of that module's globals in which that one name is our
fetch. No img2dataset code is copied and nothing shared is modified; if a new img2dataset stops calling
that name, construction fails loudly instead of silently fetching unguarded.
"""

from __future__ import annotations

import os
import threading
import types
from typing import Any

from pipelines.ingest.fetch.address import Resolver
from pipelines.ingest.fetch.config import FetchConfig
from pipelines.ingest.fetch.fetcher import Fetcher

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # albumentations phones home on import otherwise

import img2dataset.downloader as i2d_downloader  # noqa: E402  (after the environment above)

_FETCH_NAME = "download_image_with_retry"
_fetchers: dict[tuple[FetchConfig, Resolver | None], Fetcher] = {}
_fetchers_lock = threading.Lock()


def _calls(code: types.CodeType, name: str) -> bool:
    """Whether `code` or a function nested in it looks up the global `name`."""
    return name in code.co_names or any(
        isinstance(c, types.CodeType) and _calls(c, name) for c in code.co_consts
    )


def process_fetcher(config: FetchConfig, resolver: Resolver | None = None) -> Fetcher:
    """This process's Fetcher for `config`: shards handled by one process share host limits and robots.txt."""
    key = (config, resolver)
    with _fetchers_lock:
        if key not in _fetchers:
            _fetchers[key] = Fetcher(config, resolver=resolver)
        return _fetchers[key]


def _forget_after_fork() -> None:
    global _fetchers_lock
    _fetchers.clear()  # their locks and threads belong to the parent
    _fetchers_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)


class GuardedDownloader(i2d_downloader.Downloader):
    """img2dataset's Downloader whose shards fetch with our `Fetcher`; picklable for every distributor.

    Takes img2dataset's Downloader arguments except the four the fetch config decides: timeout, retries,
    user_agent_token and disallowed_header_directives. `resolver` must be picklable (a module-level function).
    """

    def __init__(self, fetch_config: FetchConfig, *, resolver: Resolver | None = None, **downloader_kwargs: Any):
        if not _calls(i2d_downloader.Downloader.download_shard.__code__, _FETCH_NAME):
            raise RuntimeError(
                f"img2dataset's Downloader.download_shard no longer calls {_FETCH_NAME}: "
                "GuardedDownloader cannot route its fetches and must be updated for this img2dataset version"
            )
        super().__init__(
            timeout=fetch_config.timeout,
            retries=fetch_config.retries,
            user_agent_token=fetch_config.user_agent_token,
            disallowed_header_directives=list(fetch_config.disallowed_header_directives) or None,
            **downloader_kwargs,
        )
        self.fetch_config = fetch_config
        self.resolver = resolver

    def download_shard(self, row):
        """img2dataset's download_shard, with every image fetched by this process's `Fetcher`."""
        fetcher = process_fetcher(self.fetch_config, self.resolver)

        def fetch(row, timeout=None, retries=None, user_agent_token=None, disallowed_header_directives=None):
            # img2dataset passes its own settings; ours came from fetch_config when this object was built.
            return fetcher.fetch(row)

        base = i2d_downloader.Downloader.download_shard
        scope = {**vars(i2d_downloader), _FETCH_NAME: fetch}
        run = types.FunctionType(base.__code__, scope, base.__name__, base.__defaults__, base.__closure__)
        return run(self, row)
