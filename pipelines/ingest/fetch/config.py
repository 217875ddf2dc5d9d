"""Settings of the guarded fetch layer; the defaults are the safe ones (docs/download.md)."""

from __future__ import annotations

import ipaddress
import os
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

ALLOW_PRIVATE_ENV = "TESSERA_ALLOW_PRIVATE_NETWORK"
PILLOW_MAX_IMAGE_PIXELS = 89_478_485  # PIL.Image.MAX_IMAGE_PIXELS: 1024*1024*1024 // 4 // 3
OPT_OUT_DIRECTIVES = ("noai", "noimageai", "noindex", "noimageindex")


def _env_allows_private() -> bool:
    return os.environ.get(ALLOW_PRIVATE_ENV, "").strip() == "1"


class FetchConfig(BaseModel):
    """How image URLs are fetched: address guards, size and time limits, retries, politeness."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Off by default: URLs from scraped metadata must not reach loopback, the LAN or cloud metadata services.
    # `TESSERA_ALLOW_PRIVATE_NETWORK=1` switches it on (tests and the demo serve from 127.0.0.1).
    allow_private_network: bool = Field(False, validate_default=True)
    # Networks exempt from the private-address block even when it is on (e.g. an internal mirror), as CIDRs.
    allowed_networks: tuple[str, ...] = ()
    max_image_bytes: int = Field(32 * 1024 * 1024, ge=1)
    max_image_pixels: int = Field(PILLOW_MAX_IMAGE_PIXELS, ge=1)
    # Seconds for the whole fetch of one URL (connect, TLS, redirects, retries, body), not for one socket read.
    timeout: float = Field(10.0, gt=0)
    max_redirects: int = Field(5, ge=0, le=20)
    # Both caps hold per host for every process sharing `host_budget`: "machine" (default) counts all download
    # processes of this machine together, "cluster" every worker of the Ray cluster (set for --distributor ray),
    # "process" each process alone. A robots.txt Crawl-delay lowers the rate further: min(rate, 1/delay).
    per_host_connections: int = Field(4, ge=1)
    per_host_rate: float = Field(8.0, gt=0)  # request starts per second per host
    host_budget: Literal["process", "machine", "cluster"] = "machine"
    retries: int = Field(2, ge=0)
    backoff_base: float = Field(0.5, ge=0)
    backoff_max: float = Field(8.0, ge=0)
    # A Retry-After longer than this is not waited for: the URL fails as rate_limited, and so do the host's
    # other URLs until that time has passed.
    retry_after_cap: float = Field(60.0, ge=0)
    respect_robots: bool = True
    user_agent_token: str = Field("tessera", pattern=r"^[A-Za-z0-9_-]+$")
    disallowed_header_directives: tuple[str, ...] = OPT_OUT_DIRECTIVES

    @field_validator("allow_private_network", mode="after")
    @classmethod
    def _or_env(cls, value: bool) -> bool:
        return value or _env_allows_private()

    @field_validator("allowed_networks", mode="after")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for cidr in value:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError as err:
                raise ValueError(f"allowed_networks: {cidr!r} is not an IP network ({err})") from None
        return value

    @field_validator("disallowed_header_directives", mode="after")
    @classmethod
    def _lower(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(d.strip().lower() for d in value if d.strip())

    @property
    def user_agent(self) -> str:
        """The User-Agent header: browser-shaped (some CDNs refuse anything else) and naming our token."""
        return f"Mozilla/5.0 (compatible; {self.user_agent_token}; image ingest for dataset curation)"
