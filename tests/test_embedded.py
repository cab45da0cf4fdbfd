"""The embedded redis-server: a fresh machine needs no Redis installed."""

from __future__ import annotations

from pathlib import Path

import redis

from worker.embedded import RedisServer, ensure_redis, ping_redis, stop_recorded


def test_ensure_redis_starts_a_private_server_and_reuses_it(tmp_path: Path) -> None:
    """The first call starts redis-server under the home folder; the second finds the same one."""
    url, started = ensure_redis(tmp_path / ".smspipe")
    try:
        again, started_again = ensure_redis(tmp_path / ".smspipe")
        assert (started, started_again) == (True, False)
        assert again == url
        assert redis.Redis.from_url(url).ping()
    finally:
        assert stop_recorded(tmp_path / ".smspipe", "redis")
    assert not ping_redis(url)


def test_embedded_redis_keeps_data_across_a_crash(tmp_path: Path) -> None:
    """AOF with fsync always: a key acknowledged before a SIGKILL is there after the restart."""
    server = RedisServer(tmp_path, unix_socket=False)
    server.start()
    client = redis.Redis.from_url(server.url)
    client.set("job", "state")
    client.close()
    server.kill()
    server.start()
    try:
        assert redis.Redis.from_url(server.url).get("job") == b"state"
    finally:
        server.stop()


def test_stop_recorded_says_when_nothing_was_running(tmp_path: Path) -> None:
    """Stopping with no record is a no-op that reports False."""
    assert stop_recorded(tmp_path, "redis") is False
