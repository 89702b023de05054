"""The daemon's connection to Hydrus: connect when it is up, wait quietly when it is not.

While Hydrus is down (or the key is refused) the push worker claims nothing: pushes
stay queued and local stages go on. One line is logged when Hydrus goes away and one
when it is back, not one per retry. Started without an access key, it looks for one in
the config file at every retry, so clips queued meanwhile go out once a key is saved
there (no restart needed; a key in the environment needs one).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from pathlib import Path

from hydrus_motion.config import Config, access_key
from hydrus_motion.hydrus.gateway import ApiGateway, HydrusError

log = logging.getLogger(__name__)


class HydrusLink:
    def __init__(self, cfg: Config, stop: threading.Event, config_path: Path | None = None):
        self.cfg = cfg
        self.stop = stop
        self.config_path = config_path
        self._gateway: ApiGateway | None = None
        self._down_reason: str | None = None

    def connect(self) -> bool:
        # No retries here: the caller asks again every daemon.hydrus_retry_s.
        if access_key(self.cfg) is None:
            self._key_from_file()
        quick = dataclasses.replace(self.cfg.hydrus, retries=0)
        probe = ApiGateway(quick, access_key(self.cfg))
        try:
            probe.connect()
        except HydrusError as exc:
            if exc.message != self._down_reason:
                log.warning("hydrus: unavailable, pushes wait (asking again every %g s): %s",
                            self.cfg.daemon.hydrus_retry_s, exc.message)
            self._down_reason = exc.message
            return False
        # The working gateway retries (waits end early on a stop request).
        gateway = ApiGateway(self.cfg.hydrus, access_key(self.cfg), sleep=self.stop.wait)
        gateway.tag_service_key = probe.tag_service_key
        gateway.permissions = probe.permissions
        gateway.key_name = probe.key_name
        self._gateway = gateway
        if self._down_reason is not None:
            log.info("hydrus: reachable again; queued pushes go out now")
        else:
            log.info("hydrus: connected (key '%s')", probe.key_name)
        self._down_reason = None
        return True

    def _key_from_file(self) -> None:
        """Take hydrus.access_key from the config file if one was saved there since."""
        from hydrus_motion.config import load_config
        from hydrus_motion.errors import HydrusMotionError

        if self.config_path is None:
            return
        try:
            key = load_config(self.config_path).hydrus.access_key
        except HydrusMotionError:  # half-edited or invalid: the next retry reads it again
            return
        if key is not None:
            hydrus = dataclasses.replace(self.cfg.hydrus, access_key=key)
            self.cfg = dataclasses.replace(self.cfg, hydrus=hydrus)
            log.info("hydrus: an access key is now in %s; connecting", self.config_path)

    def gateway(self) -> ApiGateway:
        if self._gateway is None:
            raise AssertionError("gateway() before connect()")
        return self._gateway

    def lost(self) -> None:
        self._gateway = None
