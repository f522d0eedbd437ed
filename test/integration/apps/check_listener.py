#!/usr/bin/python3
"""A Job-like app: at start, checks that the sidecar's listener on port
argv[1] already accepts connections, writes "ok" or the error to argv[2],
then runs for a second and exits 0."""
import socket
import sys
import time

try:
    socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2).close()
    result = "ok"
except OSError as e:
    result = f"error: {e}"
with open(sys.argv[2], "w") as f:
    f.write(result)
time.sleep(1)
sys.exit(0)
