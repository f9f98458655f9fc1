"""Registers one endpoint and stays alive, so a test can SIGKILL a registered process.

Usage: python register_helper.py <etcd endpoints> <key prefix> <service> <instance> <ttl>
Prints "registered <lease id>" once the key is in etcd, then sleeps (at most a minute, so
a test that forgets us cannot leave us behind for long).
"""

from __future__ import annotations

import asyncio
import sys

from discovery import Endpoint, EtcdClient, Registration

LIFETIME = 60.0


async def main(endpoints: str, prefix: str, service: str, instance: str, ttl: str) -> None:
    async with EtcdClient.from_endpoints(endpoints) as client:
        endpoint = Endpoint(instance, service, "127.0.0.1:50051")
        async with Registration(client, endpoint, ttl=int(ttl), prefix=prefix) as registration:
            print(f"registered {registration.lease_id}", flush=True)
            await asyncio.sleep(LIFETIME)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
