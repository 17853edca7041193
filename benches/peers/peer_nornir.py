"""Nornir + netmiko replacing an ACL, as a Python user writes it: one
threaded Nornir run, each host connects and enables, reads the ACL, sends
the replacement (`no` + recreate, netmiko's send_config_set), reads it
again and saves. It does less than nightshift (no revert timer or
checkpoint, no make-before-break: the ACL is absent for a moment), so the
comparison favours it.

Usage: python peer_nornir.py JOB.json  (written by benches/peers.rs)
Prints one JSON line: devices done and failed."""
import json
import os
import sys
import tempfile

from nornir import InitNornir
from nornir.core.task import Result, Task


def push(task: Task, acl: str, lines: list) -> Result:
    net = task.host.get_connection("netmiko", task.nornir.config)
    nxos = task.host.platform == "cisco_nxos"
    net.enable()
    if nxos:
        show = "show running-config aclmgr"
        cmds = [f"no ip access-list {acl}", f"ip access-list {acl}"] + lines
    else:
        show = f"show running-config | section ip access-list extended {acl}$"
        cmds = [f"no ip access-list extended {acl}", f"ip access-list extended {acl}"] + lines
    net.send_command(show)
    out = net.send_config_set(cmds)
    if "% Invalid" in out:
        raise RuntimeError(out)
    net.send_command(show)
    net.save_config()
    return Result(host=task.host, result="ok")


def main() -> None:
    job = json.load(open(sys.argv[1]))
    with tempfile.TemporaryDirectory() as d:
        hosts = {
            dev["name"]: {
                "hostname": dev["host"],
                "port": dev["port"],
                "username": "admin",
                "password": job["password"],
                "platform": dev["platform"],
                "connection_options": {
                    "netmiko": {"extras": {"secret": job["password"], "fast_cli": True}}
                },
            }
            for dev in job["devices"]
        }
        # JSON is YAML: Nornir's SimpleInventory reads it.
        with open(os.path.join(d, "hosts.yaml"), "w") as f:
            json.dump(hosts, f)
        nr = InitNornir(
            runner={"plugin": "threaded", "options": {"num_workers": job["workers"]}},
            inventory={
                "plugin": "SimpleInventory",
                "options": {"host_file": os.path.join(d, "hosts.yaml")},
            },
            logging={"enabled": False},
        )
        result = nr.run(task=push, acl=job["acl_name"], lines=job["acl_lines"])
        nr.close_connections()
    failed = sorted(h for h, r in result.items() if r.failed)
    for h in failed[:3]:
        print(f"{h}: {result[h].exception!r}"[:300], file=sys.stderr)
    print(json.dumps({"done": len(result) - len(failed), "failed": len(failed)}))


if __name__ == "__main__":
    main()
