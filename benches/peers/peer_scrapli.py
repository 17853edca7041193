"""scrapli's asyncio drivers (AsyncIOSXEDriver / AsyncNXOSDriver over
asyncssh), the fastest choice a Python user has, replacing an ACL: all
devices at once in one event loop; each connects (privilege escalation
with the enable secret), reads the ACL, sends the replacement (`no` +
recreate, send_configs), reads it again and saves. Like the Nornir peer it
does less than nightshift (no revert timer or checkpoint, no
make-before-break).

Usage: python peer_scrapli.py JOB.json  (written by benches/peers.rs)
Prints one JSON line: devices done and failed."""
import asyncio
import json
import sys

from scrapli.driver.core import AsyncIOSXEDriver, AsyncNXOSDriver


async def push(dev: dict, job: dict, gate: asyncio.Semaphore) -> None:
    acl, lines = job["acl_name"], job["acl_lines"]
    nxos = dev["platform"] == "cisco_nxos"
    driver = AsyncNXOSDriver if nxos else AsyncIOSXEDriver
    async with gate:
        conn = driver(
            host=dev["host"],
            port=dev["port"],
            auth_username="admin",
            auth_password=job["password"],
            auth_secondary=job["password"],
            auth_strict_key=False,
            transport="asyncssh",
            timeout_ops=120,
        )
        await conn.open()
        try:
            if nxos:
                show = "show running-config aclmgr"
                cmds = [f"no ip access-list {acl}", f"ip access-list {acl}"] + lines
                save = "copy running-config startup-config"
            else:
                show = f"show running-config | section ip access-list extended {acl}$"
                cmds = [f"no ip access-list extended {acl}", f"ip access-list extended {acl}"] + lines
                save = "write memory"
            await conn.send_command(show)
            r = await conn.send_configs(cmds, stop_on_failed=True)
            if r.failed:
                raise RuntimeError(r.result)
            await conn.send_command(show)
            await conn.send_command(save)
        finally:
            await conn.close()


async def main() -> None:
    job = json.load(open(sys.argv[1]))
    gate = asyncio.Semaphore(job["workers"])
    results = await asyncio.gather(
        *(push(d, job, gate) for d in job["devices"]), return_exceptions=True
    )
    failed = [(d["name"], r) for d, r in zip(job["devices"], results) if isinstance(r, BaseException)]
    for name, e in failed[:3]:
        print(f"{name}: {e!r}"[:300], file=sys.stderr)
    print(json.dumps({"done": len(results) - len(failed), "failed": len(failed)}))


if __name__ == "__main__":
    asyncio.run(main())
