#!/usr/bin/python3
"""200 MiB bodies streamed through the proxy in both directions; the
sidecar's peak RSS stays far below the body size."""
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import unittest

from harness import Sidecar, Upstream, curl, proxy_config, run_tests

SIZE = 200 * 1024 * 1024
# Far below the body: buffers are 16 to 64 KiB per connection side. Under
# AddressSanitizer the process is bigger (shadow memory, quarantine) but
# still far from holding 200 MiB.
MAX_PEAK_RSS_KIB = (160 if os.environ.get("SIDECAR_SANITIZE") else 48) * 1024


class StreamingTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.up = Upstream()
        cls.sc = Sidecar(proxy_config(cls.up.address))
        cls.file = tempfile.NamedTemporaryFile(prefix="sidecar-200m-")
        block = bytes(range(256)) * 4096  # 1 MiB
        h = hashlib.sha256()
        for _ in range(SIZE // len(block)):
            cls.file.write(block)
            h.update(block)
        cls.file.flush()
        cls.sha256 = h.hexdigest()

    @classmethod
    def tearDownClass(cls):
        cls.file.close()
        cls.sc.stop()
        cls.up.stop()

    def check_rss(self):
        peak = self.sc.peak_rss_kib()
        print(f"  sidecar peak RSS {peak / 1024:.1f} MiB", file=sys.stderr)
        self.assertLess(peak, MAX_PEAK_RSS_KIB, f"peak RSS {peak} KiB")

    def test_upload_with_content_length(self):
        rc, out, err = curl("-T", self.file.name, "-X", "POST", self.sc.url("/sink"))
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out), {"bytes": SIZE, "sha256": self.sha256})
        self.check_rss()

    def test_upload_chunked(self):
        with open(self.file.name, "rb") as f:
            p = subprocess.run(["curl", "-sS", "-T", "-", "-X", "POST", self.sc.url("/sink")],
                               stdin=f, capture_output=True, timeout=300)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout), {"bytes": SIZE, "sha256": self.sha256})
        self.check_rss()

    def test_download(self):
        for query in ("", "?chunked=1"):
            rc, out, err = curl("-o", "/dev/null", "-w", "%{size_download} %{http_code}",
                                self.sc.url(f"/bytes/{SIZE}{query}"))
            self.assertEqual(rc, 0, err)
            self.assertEqual(out.decode(), f"{SIZE} 200")
        self.check_rss()


if __name__ == "__main__":
    run_tests()
