"""Production settings plus the bench's own URLs (the bare DRF baseline of B2)."""

from portal.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
