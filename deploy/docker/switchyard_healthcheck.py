"""Container health check for the switchyard images (Docker HEALTHCHECK, compose healthcheck).

    python /usr/local/lib/switchyard/healthcheck.py grpc 50051 [SERVICE]
    python /usr/local/lib/switchyard/healthcheck.py http 8080 [PATH]

``grpc`` asks the standard ``grpc.health.v1`` service on 127.0.0.1 (the empty service name by
default: the process is up; ``switchyard.v1.Inference`` is SERVING only while a model is loaded);
``http`` GETs ``/health``. ``SWITCHYARD_PORT``, when set, wins over the port given here, so a
container whose port was moved by environment is still checked on the right one. Exit status 0
means healthy, 1 unhealthy, 2 bad usage. Only grpcio and the standard library are used, so it
runs in every image without grpc_health_probe.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

TIMEOUT_S = 4.0


def check_grpc(port: int, service: str) -> int:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=TIMEOUT_S)
        except grpc.RpcError as exc:
            print(f"grpc health {service!r} on :{port}: {exc.code()} {exc.details()}", file=sys.stderr)
            return 1
    if reply.status != health_pb2.HealthCheckResponse.SERVING:
        print(f"grpc health {service!r} on :{port}: {health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)}")
        return 1
    return 0


def check_http(port: int, path: str) -> int:
    url = f"http://127.0.0.1:{port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            status = int(response.status)
    except (urllib.error.URLError, OSError) as exc:
        print(f"GET {url}: {exc}", file=sys.stderr)
        return 1
    return 0 if status == 200 else 1


def main(argv: list[str]) -> int:
    if len(argv) not in (3, 4) or argv[1] not in ("grpc", "http"):
        print(__doc__, file=sys.stderr)
        return 2
    kind = argv[1]
    port = int(os.environ.get("SWITCHYARD_PORT") or argv[2])
    if kind == "grpc":
        return check_grpc(port, argv[3] if len(argv) == 4 else "")
    return check_http(port, argv[3] if len(argv) == 4 else "/health")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
