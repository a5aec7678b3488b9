"""Bearer tokens, their hashes, scopes and the per-token rate limit.

A token is ``btk_<id>_<secret>``: the id finds the record, the secret (256 random bits) is never
stored. The record keeps HMAC-SHA256 of the whole token under a server key. A keyed hash, not a
slow one, is the right tool here: a slow hash defends guessable passwords, and these tokens
have 256 bits of entropy; the key means a stolen database alone cannot even be used to check a
guess. Digests are compared with :func:`hmac.compare_digest` (constant time).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import math
import os
import re
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from bt_server.db import Database

SCOPES = ("admin", "user")
_TOKEN_RE = re.compile(r"^btk_([0-9a-f]{12})_([A-Za-z0-9_-]{20,100})$")
USER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's id, its user and its scope."""

    token_id: str
    user: str
    scope: str

    @property
    def is_admin(self) -> bool:
        return self.scope == "admin"


def load_key(data_dir: Path, configured: str | None) -> bytes:
    """The HMAC key: the configured secret, else ``data_dir/secret.key`` (created once, 0600)."""
    if configured:
        return configured.encode()
    path = data_dir / "secret.key"
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = data_dir / f".secret.key.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
            f.flush()
            os.fsync(f.fileno())
        # link() fails if another process made the key first: then theirs is the key.
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return bytes.fromhex(path.read_text().strip())


#: Seconds a verified token is trusted without another look at its record: a revocation
#: takes effect within this time. It spares every request a database read under load.
VERIFY_CACHE_SECONDS = 2.0


class TokenService:
    """Creates, checks and revokes tokens in the run store."""

    def __init__(self, db: Database, key: bytes) -> None:
        self.db = db
        self._key = key
        self._cache: dict[str, tuple[float, Principal]] = {}
        self._cache_lock = threading.Lock()

    def _digest(self, token: str) -> str:
        return hmac.new(self._key, token.encode(), hashlib.sha256).hexdigest()

    def create(self, user: str, scope: str = "user") -> tuple[str, str]:
        """A new token for ``user``; returns (id, token). The token is shown once, never stored."""
        if not USER_RE.match(user):
            raise ValueError(
                f"user name {user!r}: 1-64 letters, digits, '_', '.', '@' or '-', "
                "starting with a letter or digit"
            )
        if scope not in SCOPES:
            raise ValueError(f"scope {scope!r}: expected one of {', '.join(SCOPES)}")
        token_id = secrets.token_hex(6)
        token = f"btk_{token_id}_{secrets.token_urlsafe(32)}"
        self.db.add_token(token_id, user, scope, self._digest(token))
        return token_id, token

    def verify(self, token: str) -> Principal | None:
        m = _TOKEN_RE.match(token)
        if m is None:
            return None
        digest = self._digest(token)
        now = time.monotonic()
        with self._cache_lock:
            hit = self._cache.get(digest)
        if hit is not None and hit[0] > now:
            return hit[1]
        row = self.db.get_token(m.group(1))
        if row is None or row["revoked_at"] is not None:
            return None
        if not hmac.compare_digest(row["hash"], digest):
            return None
        principal = Principal(token_id=row["id"], user=row["user"], scope=row["scope"])
        with self._cache_lock:
            if len(self._cache) > 10_000:  # only live tokens get here; keep it bounded anyway
                self._cache.clear()
            self._cache[digest] = (now + VERIFY_CACHE_SECONDS, principal)
        return principal

    def forget(self) -> None:
        """Drop cached verifications (after a revocation in this process)."""
        with self._cache_lock:
            self._cache.clear()


class RateLimiter:
    """A token bucket per token: ``rate`` requests per second sustained, ``burst`` at once."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """0 if the request may go ahead, else the seconds to wait before the next one."""
        now = time.monotonic()
        with self._lock:
            level, then = self._buckets.get(key, (self.burst, now))
            level = min(self.burst, level + (now - then) * self.rate)
            if level >= 1.0:
                self._buckets[key] = (level - 1.0, now)
                return 0.0
            self._buckets[key] = (level, now)
            return (1.0 - level) / self.rate


def retry_after(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))


__all__ = ["SCOPES", "USER_RE", "Principal", "RateLimiter", "TokenService", "load_key"]
