"""The per-host politeness budget of a whole Ray cluster: one named, detached actor holds every host's record.

Every worker of `--distributor ray` (on any node) takes its slots and start times from it, so the caps hold per host
for the cluster. A slot costs one actor round trip to take; giving it back is sent without waiting for the answer.
The actor keeps the records with `pipelines.ingest.fetch.host_budget.take_slot`, as the machine budget does; a worker
that dies holding slots loses them when their leases expire (the fetch deadline plus a margin).
"""

from __future__ import annotations

import time

from pipelines.ingest.fetch.host_budget import Grant, idle, take_slot

ACTOR_NAME = "tessera-host-budget"
NAMESPACE = "tessera"


class HostBudgetActor:
    """Per-host records in one process (run as a Ray actor); times are seconds from the caller's now."""

    def __init__(self) -> None:
        self._hosts: dict[str, dict] = {}
        self._calls = 0

    def _record(self, host: str) -> dict:
        return self._hosts.setdefault(host, {})

    def _sweep(self, now: float) -> None:
        self._calls += 1
        if self._calls % 1024 == 0:  # drop the records that limit nobody, so the table stays small
            for name in [h for h, r in self._hosts.items() if idle(r, now)]:
                del self._hosts[name]

    def take(self, host: str, connections: int, interval: float, hold: float, max_delay: float | None) -> Grant:
        now = time.monotonic()
        self._sweep(now)
        return take_slot(self._record(host), now, connections, interval, hold, max_delay, 0, lambda _pid: True)

    def give(self, host: str, lease: str) -> None:
        self._record(host).get("l", {}).pop(lease, None)

    def defer(self, host: str, seconds: float) -> None:
        record = self._record(host)
        record["n"] = max(record.get("n", 0.0), time.monotonic() + seconds)

    def close(self, host: str, seconds: float) -> None:
        record = self._record(host)
        record["c"] = max(record.get("c", 0.0), time.monotonic() + seconds)

    def hosts(self) -> int:
        """Records held now (for tests and operators)."""
        return len(self._hosts)


def budget_actor():
    """The cluster's budget actor, started on first use (needs `ray.init` done, as in a Ray worker)."""
    import ray

    actor = ray.remote(HostBudgetActor).options(
        name=ACTOR_NAME, namespace=NAMESPACE, lifetime="detached", get_if_exists=True, num_cpus=0,
        max_concurrency=1,
    )
    return actor.remote()


class ClusterBudget:
    """A `SharedBudget` backed by the cluster's actor."""

    def __init__(self) -> None:
        self._actor = budget_actor()

    def take(self, host: str, connections: int, interval: float, hold: float, max_delay: float | None) -> Grant:
        import ray

        return ray.get(self._actor.take.remote(host, connections, interval, hold, max_delay))

    def give(self, host: str, lease: str) -> None:
        self._actor.give.remote(host, lease)

    def defer(self, host: str, seconds: float) -> None:
        self._actor.defer.remote(host, seconds)

    def close(self, host: str, seconds: float) -> None:
        self._actor.close.remote(host, seconds)
