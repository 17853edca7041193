#!/usr/bin/python3
"""Runs a command under a seccomp filter that refuses the kernel keyring
system calls with EPERM, as Docker's default profile and systemd-nspawn's
do. Debian: apt-get install python3-seccomp.

    no_keyring.py COMMAND [ARG...]
"""
import errno
import os
import sys

import seccomp

f = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
for call in ("add_key", "keyctl", "request_key"):
    f.add_rule(seccomp.ERRNO(errno.EPERM), call)
f.load()
os.execvp(sys.argv[1], sys.argv[1:])
