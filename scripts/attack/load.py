"""Payments at a steady rate beside an attack: what a legitimate client sees while it runs."""

import threading
import time
import uuid

from . import client
from .stack import LOAD_ADDR


def percentile(values, p):
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round((len(ordered) - 1) * p))]


class PaymentLoad:
    """`workers` threads, each with its own customer token and keep-alive connection, posting
    `POST /api/v1/payments` (echo provider) at `rate` payments/s in all."""

    def __init__(self, host, customers, lease_ids, rate=100, workers=4):
        self.host = host
        self.customers = customers
        self.lease_ids = lease_ids
        self.interval = workers / rate
        self.workers = workers
        self.latencies = []
        self.errors = []
        self.lock = threading.Lock()
        self.running = threading.Event()
        self.threads = []

    def _work(self, index):
        conn = client.Conn(self.host, LOAD_ADDR, timeout=30)
        token = self.customers[index % len(self.customers)]
        lease_id = self.lease_ids[index % len(self.lease_ids)]
        next_at = time.monotonic()
        while self.running.is_set():
            body = {"lease_id": lease_id, "amount": 1000, "currency": "EUR", "provider": "echo",
                    "payment_method": "tok_attack"}
            started = time.monotonic()
            try:
                r = conn.request("POST", "/api/v1/payments", body, {"idempotency-key": uuid.uuid4().hex}, token)
                elapsed = time.monotonic() - started
                with self.lock:
                    if r.status == 201:
                        self.latencies.append(elapsed)
                    else:
                        self.errors.append(f"{r.status} {r.body[:120]}")
            except OSError as e:
                with self.lock:
                    self.errors.append(f"{type(e).__name__}: {e}")
            next_at += self.interval
            pause = next_at - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            else:
                next_at = time.monotonic()
        conn.close()

    def __enter__(self):
        self.running.set()
        self.threads = [threading.Thread(target=self._work, args=(i,), daemon=True) for i in range(self.workers)]
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.running.clear()
        for t in self.threads:
            t.join(timeout=60)

    def p99_ms(self):
        return percentile(self.latencies, 0.99) * 1e3

    def summary(self):
        return {"payments": len(self.latencies), "errors": len(self.errors), "p50_ms": percentile(self.latencies, 0.5) * 1e3,
                "p99_ms": self.p99_ms(), "first_errors": self.errors[:3]}


def measure(host, customers, lease_ids, seconds, rate):
    with PaymentLoad(host, customers, lease_ids, rate) as load:
        time.sleep(seconds)
    return load
