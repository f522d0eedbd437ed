#!/usr/bin/python3
"""The command line: validate, version, help, and exit codes for bad input."""
import os
import socket
import subprocess
import tempfile
import unittest

from harness import BIN, run_tests


def sidecar(*args, timeout=10):
    p = subprocess.run([BIN, *args], capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


class CliTest(unittest.TestCase):
    def write(self, text):
        f = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
        f.write(text)
        f.close()
        self.addCleanup(os.unlink, f.name)
        return f.name

    def test_validate_good_config(self):
        path = self.write("clusters: [ { name: a, endpoints: [ '127.0.0.1:1' ] } ]\n"
                          "listeners: [ { name: l, address: '127.0.0.1:0', routes: [ { cluster: a } ] } ]\n")
        code, out, err = sidecar("validate", "-c", path)
        self.assertEqual(code, 0, err)
        self.assertEqual(out, f"{path}: ok\n")

    def test_validate_bad_config_prints_file_line_col(self):
        path = self.write("listeners:\n  - name: l\n    address: 127.0.0.1:0\n    timeout: 5s\n"
                          "    routes: [ { cluster: nope } ]\n")
        code, out, err = sidecar("validate", "-c", path)
        self.assertEqual(code, 64)
        self.assertIn(f"{path}:4:5: unknown key 'timeout' in listeners[0]", err)
        self.assertIn(f"{path}:5:26: listeners[0].routes[0].cluster: no cluster named 'nope'", err)

    def test_run_with_bad_config_exits_64(self):
        path = self.write("workers: -1\n")
        code, out, err = sidecar("run", "-c", path)
        self.assertEqual(code, 64)
        self.assertIn(f"{path}:1:10:", err)
        code, out, err = sidecar("run", "-c", "/nonexistent.yaml")
        self.assertEqual(code, 64)
        self.assertIn("/nonexistent.yaml: cannot open", err)

    def test_address_in_use_exits_70(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        try:
            path = self.write(f"admin: {{ address: 127.0.0.1:0 }}\n"
                              f"clusters: [ {{ name: a, endpoints: [ '127.0.0.1:1' ] }} ]\n"
                              f"listeners: [ {{ name: l, address: '127.0.0.1:{port}', "
                              f"routes: [ {{ cluster: a }} ] }} ]\n")
            code, out, err = sidecar("run", "-c", path)
            self.assertEqual(code, 70)
            self.assertIn(f"cannot bind 127.0.0.1:{port}", err)
        finally:
            s.close()

    def test_usage_errors_exit_64(self):
        self.assertEqual(sidecar()[0], 64)
        self.assertEqual(sidecar("frobnicate")[0], 64)
        self.assertEqual(sidecar("validate")[0], 64)

    def test_help_and_version(self):
        code, out, err = sidecar("--help")
        self.assertEqual(code, 0)
        self.assertIn("sidecar run -- python3 app.py", out)
        code, out, err = sidecar("version")
        self.assertEqual(code, 0)
        self.assertRegex(out, r"^sidecar \d+\.\d+\.\d+ \(\w+\)\n$")


if __name__ == "__main__":
    run_tests()
