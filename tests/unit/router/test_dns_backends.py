"""DNS backends follow the addresses a name resolves to, as replicas come and go."""

from __future__ import annotations

from services.router.backends import Backend, BackendPool, BackendSpec, resolve_addresses


async def test_replicas_are_added_and_removed_as_the_name_changes() -> None:
    answers = [{"10.0.0.1:50062", "10.0.0.2:50062"}, {"10.0.0.2:50062", "10.0.0.3:50062"}]
    changes: list[Backend] = []

    async def resolve(host: str, port: int) -> set[str]:
        assert (host, port) == ("engine-llamacpp", 50062)
        return answers.pop(0)

    spec = BackendSpec.parse("llamacpp=dns:engine-llamacpp:50062")
    static = BackendSpec.parse("llamacpp=127.0.0.1:1")
    pool = BackendPool([static], resolve_interval_s=60, backoff_max_s=1, on_change=changes.append, resolve=resolve)
    await pool.start()
    try:
        await pool.resolve_once(spec)
        assert {b.address for b in pool.backends()} == {"127.0.0.1:1", "10.0.0.1:50062", "10.0.0.2:50062"}
        await pool.resolve_once(spec)
        # the replica that left is dropped; the static backend of the same engine stays
        assert {b.address for b in pool.backends()} == {"127.0.0.1:1", "10.0.0.2:50062", "10.0.0.3:50062"}
    finally:
        await pool.close()
    assert pool.backends() == []


async def test_a_failed_lookup_keeps_the_known_replicas() -> None:
    async def resolve(host: str, port: int) -> set[str]:
        raise OSError("name resolution failed")

    pool = BackendPool([], resolve_interval_s=60, backoff_max_s=1, on_change=lambda b: None, resolve=resolve)
    await pool.resolve_once(BackendSpec.parse("vllm=dns:gone:50061"))
    assert pool.backends() == []


async def test_real_lookup_of_localhost() -> None:
    assert "127.0.0.1:50051" in await resolve_addresses("localhost", 50051)
