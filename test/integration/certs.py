"""Test certificates made with the openssl command line: a CA, leaves signed
by it (server and client, RSA 2048 or ECDSA P-256), expired ones, wrong
names. Everything goes in a directory the caller owns."""
import os
import subprocess


def _run(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


class CA:
    """A certificate authority in `directory` (files <name>.crt / <name>.key)."""

    def __init__(self, directory, name="ca", key="ec"):
        self.dir = directory
        self.name = name
        os.makedirs(directory, exist_ok=True)
        self.cert = os.path.join(directory, f"{name}.crt")
        self.key = os.path.join(directory, f"{name}.key")
        _run("req", "-x509", *self._keyopts(key), "-nodes", "-keyout", self.key, "-out", self.cert,
             "-days", "30", "-subj", f"/CN=Test CA {name}", cwd=directory)

    @staticmethod
    def _keyopts(key):
        if key == "rsa":
            return ["-newkey", "rsa:2048"]
        return ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]

    def issue(self, name, dns=(), uris=(), ips=(), key="ec", days=10, client=False,
              out_dir=None):
        """Issues a leaf; returns (cert path, key path)."""
        d = out_dir or self.dir
        os.makedirs(d, exist_ok=True)
        cert = os.path.join(d, f"{name}.crt")
        keyf = os.path.join(d, f"{name}.key")
        csr = os.path.join(d, f"{name}.csr")
        ext = os.path.join(d, f"{name}.ext")
        sans = [f"DNS:{n}" for n in dns] + [f"URI:{u}" for u in uris] + [f"IP:{i}" for i in ips]
        with open(ext, "w") as f:
            if sans:
                f.write("subjectAltName=" + ",".join(sans) + "\n")
            f.write("extendedKeyUsage=" + ("clientAuth" if client else "serverAuth") + "\n")
        cn = (list(dns) + [name])[0]
        _run("req", *self._keyopts(key), "-nodes", "-keyout", keyf, "-out", csr,
             "-subj", f"/CN={cn[:60]}", cwd=d)
        args = ["x509", "-req", "-in", csr, "-CA", self.cert, "-CAkey", self.key,
                "-set_serial", str(int.from_bytes(os.urandom(8), "big")), "-out", cert,
                "-extfile", ext, "-days", str(days)]
        _run(*args, cwd=d)
        return cert, keyf


def serial_of(cert_path):
    p = subprocess.run(["openssl", "x509", "-in", cert_path, "-noout", "-serial"],
                       capture_output=True, text=True, check=True)
    return p.stdout.strip().split("=", 1)[1]


def expired_pair(directory, ca, name="expired"):
    """An expired leaf: OpenSSL 3.0 cannot back-date with `x509 -req`, so the
    CA signs with `openssl ca` and explicit dates."""
    os.makedirs(directory, exist_ok=True)
    keyf = os.path.join(directory, f"{name}.key")
    csr = os.path.join(directory, f"{name}.csr")
    cert = os.path.join(directory, f"{name}.crt")
    _run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", keyf,
         "-out", csr, "-subj", "/CN=localhost", cwd=directory)
    db = os.path.join(directory, f"{name}-db")
    os.makedirs(db, exist_ok=True)
    open(os.path.join(db, "index.txt"), "w").close()
    with open(os.path.join(db, "serial"), "w") as f:
        f.write("1000\n")
    conf = os.path.join(directory, f"{name}-ca.cnf")
    with open(conf, "w") as f:
        f.write(f"""[ ca ]
default_ca = test
[ test ]
database = {db}/index.txt
serial = {db}/serial
new_certs_dir = {db}
default_md = sha256
policy = any
copy_extensions = none
x509_extensions = ext
[ any ]
commonName = supplied
[ ext ]
subjectAltName = DNS:localhost,IP:127.0.0.1
""")
    _run("ca", "-batch", "-config", conf, "-cert", ca.cert, "-keyfile", ca.key, "-in", csr,
         "-out", cert, "-startdate", "20200101000000Z", "-enddate", "20200102000000Z",
         "-notext", cwd=directory)
    return cert, keyf
