"""Server reflection with the real grpcurl, including method symbols (grpc/grpc#34743)."""

from __future__ import annotations

from services.runtime.server import serving


async def test_grpcurl_lists_describes_and_calls(run_grpcurl) -> None:
    async with serving([]) as address:
        listed = await run_grpcurl(address, "list")
        assert listed.returncode == 0, listed.stderr
        assert "grpc.health.v1.Health" in listed.stdout.split()
        assert "grpc.reflection.v1alpha.ServerReflection" in listed.stdout.split()

        service = await run_grpcurl(address, "describe", "grpc.health.v1.Health")
        assert service.returncode == 0, service.stderr
        assert "rpc Watch" in service.stdout

        # grpcio-reflection alone answers "Symbol not found" for a method.
        method = await run_grpcurl(address, "describe", "grpc.health.v1.Health.Check")
        assert method.returncode == 0, method.stderr
        assert "rpc Check ( .grpc.health.v1.HealthCheckRequest )" in method.stdout

        message = await run_grpcurl(address, "describe", "grpc.health.v1.HealthCheckRequest")
        assert message.returncode == 0 and "string service = 1;" in message.stdout

        check = await run_grpcurl("-d", '{"service": ""}', address, "grpc.health.v1.Health/Check")
        assert check.returncode == 0, check.stderr
        assert check.json() == {"status": "SERVING"}

        unknown = await run_grpcurl(address, "describe", "trading.v1.Nope")
        assert unknown.returncode != 0
        assert "Symbol not found" in unknown.stderr
