"""The system under attack: a release `host serve` on PostgreSQL + Redis, as a company runs it.

Everything here is real: the host binary as built by `cargo build --release`, a fresh PostgreSQL
database, a Redis namespace of its own, plugins installed with `host plugin install`.
"""

import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request

from . import client

PG_ADMIN = os.environ.get("ATTACK_POSTGRES", "postgres://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("ATTACK_REDIS", "redis://127.0.0.1:6379")

# The load generator and each attack connect from their own loopback address, so per-address
# limits apply to the attack and not to the load that measures payment latency.
LOAD_ADDR = "127.0.0.2"
PROXY_ADDR = "127.0.0.1"  # the one trusted proxy: its X-Forwarded-For is believed


def attacker_addr(index):
    """A loopback address of its own for each attack, so the limits one attack runs into (per
    address, per provider and address) are not what the next one meets."""
    return f"127.0.1.{index + 1}"

ADMIN_EMAIL = "admin@attack.test"
PASSWORD = "correct horse battery staple"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def psql(sql, url=PG_ADMIN):
    subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", url, "-c", sql], check=True,
                   stdout=subprocess.DEVNULL)


class Host:
    """One `host serve` process and the command line beside it."""

    def __init__(self, root, extra_env=None):
        self.root = root
        self.binary = os.environ.get("ATTACK_HOST_BINARY") or os.path.join(root, "target", "release", "host")
        self.packages = os.path.join(root, "target", "plugins")
        self.dir = tempfile.mkdtemp(prefix="lessor-attack-")
        self.db_name = f"lessor_attack_{os.getpid()}"
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.jwt_secret = secrets.token_hex(32)
        self.log_path = os.path.join(self.dir, "host.log")
        base_url = PG_ADMIN.rsplit("/", 1)[0]
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("LESSOR_")},
            "LESSOR_ADDR": f"127.0.0.1:{self.port}",
            "LESSOR_DATA_DIR": self.dir,
            "LESSOR_DATABASE_URL": f"{base_url}/{self.db_name}",
            "LESSOR_REDIS_URL": REDIS_URL,
            "LESSOR_REDIS_NAMESPACE": f"attack-{os.getpid()}",
            "LESSOR_JWT_SECRET": self.jwt_secret,
            "LESSOR_TRUSTED_PROXIES": PROXY_ADDR,
            "LESSOR_LOG_FORMAT": "text",
            "LESSOR_LOG_LEVEL": "info",
            "LESSOR_RECONCILE_INTERVAL_SECS": "3600",
            "LESSOR_COLLECTION_INTERVAL_SECS": "0",
            "LESSOR_PLUGIN_RELOAD_MS": "200",
            **(extra_env or {}),
        }
        # For running the suite against an older build that does not know every setting.
        for name in filter(None, os.environ.get("ATTACK_DROP_ENV", "").split(",")):
            self.env.pop(name, None)
        self.process = None
        self.log = None

    # -- lifecycle ---------------------------------------------------------------------------

    def create_database(self):
        psql(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
        psql(f'CREATE DATABASE "{self.db_name}"')

    def cli(self, *args, stdin=None, check=True):
        result = subprocess.run([self.binary, *args], env=self.env, input=stdin, capture_output=True,
                                text=True, timeout=120)
        if check and result.returncode != 0:
            raise RuntimeError(f"host {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
        return result

    def start(self):
        self.log = open(self.log_path, "ab")
        self.process = subprocess.Popen([self.binary, "serve"], env=self.env, stdout=self.log,
                                        stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"host exited with {self.process.returncode}; log: {self.log_path}")
            try:
                with urllib.request.urlopen(f"{self.base}/ready", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"host not ready within 60 s; log: {self.log_path}")

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
        if self.log:
            self.log.close()

    def cleanup(self, keep_logs=False):
        self.stop()
        try:
            psql(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
        except subprocess.CalledProcessError:
            pass
        if not keep_logs:
            shutil.rmtree(self.dir, ignore_errors=True)

    # -- observation -------------------------------------------------------------------------

    def rss_kib(self):
        with open(f"/proc/{self.process.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def log_text(self):
        self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def metric(self, name, labels=None, token=None):
        """The sum of a metric's samples on /metrics whose labels include `labels`."""
        text = client.metrics_text(self, token)
        total = 0.0
        for line in text.splitlines():
            if not line.startswith(name) or line.startswith("#"):
                continue
            head, _, value = line.rpartition(" ")
            metric_name = head.split("{", 1)[0]
            if metric_name != name:
                continue
            if labels and not all(f'{k}="{v}"' in head for k, v in labels.items()):
                continue
            try:
                total += float(value)
            except ValueError:
                pass
        return total

    # -- setup -------------------------------------------------------------------------------

    def install(self, package, *flags):
        return self.cli("plugin", "install", os.path.join(self.packages, package), *flags)

    def create_admin(self):
        self.cli("user", "create", "--email", ADMIN_EMAIL, "--password-stdin", "--role", "admin",
                 stdin=PASSWORD + "\n")
