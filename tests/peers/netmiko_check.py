"""Drives the lab with netmiko as a new user would (default settings).

Usage: netmiko_check.py HOST IOS_PORT NXOS_PORT PASSWORD
Prints one JSON object with each step's output.
"""
import json
import sys

from netmiko import ConnectHandler

host, ios_port, nxos_port, password = sys.argv[1:5]
out = {}

ios = ConnectHandler(device_type="cisco_ios", host=host, port=int(ios_port),
                     username="admin", password=password, secret=password)
ios.enable()
out["ios_prompt"] = ios.find_prompt()
out["ios_show"] = ios.send_command("show ip access-lists LOCK_IT_DOWN")
out["ios_config"] = ios.send_config_set([
    "ip access-list extended NETMIKO",
    "permit tcp any any eq 22",
    "deny ip any any",
])
out["ios_after"] = ios.send_command("show ip access-lists NETMIKO")
out["ios_save"] = ios.save_config()
ios.disconnect()

nx = ConnectHandler(device_type="cisco_nxos", host=host, port=int(nxos_port),
                    username="admin", password=password)
out["nxos_prompt"] = nx.find_prompt()
out["nxos_show"] = nx.send_command("show ip access-lists LOCK_IT_DOWN")
out["nxos_config"] = nx.send_config_set([
    "ip access-list NETMIKO",
    "10 permit tcp any any eq 22",
])
out["nxos_after"] = nx.send_command("show ip access-lists NETMIKO")
nx.disconnect()

print(json.dumps(out))
