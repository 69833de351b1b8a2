"""The attack suite (issue 11): `bash scripts/attack.sh` builds the release host and the plugins,
then runs this. Each attack runs against a live `host serve` on PostgreSQL + Redis while a
steady stream of legitimate payments measures what clients see; the table shows, per attack,
how many hostile requests were sent, what the host did, whether that is the required defence,
the host's memory before and after, and payment p99 before and during."""

import argparse
import json
import os
import re
import sys
import time
import traceback

from . import attacks, client, load
from .stack import ADMIN_EMAIL, PASSWORD, Host, attacker_addr


class Context:
    """What the attacks share: the host, tokens, leases, and the suite's settings."""


def setup(ctx, args):
    host = ctx.host
    keys_dir = os.path.join(host.dir, "keys")
    os.makedirs(keys_dir, exist_ok=True)
    ctx.keys = {}
    for name in ("vendor", "other"):
        path = os.path.join(keys_dir, f"{name}.key")
        out = host.cli("plugin", "keygen", "--id", name, "--out", path).stdout
        public = re.search(rf'"{name}"\s*=\s*"([^"]+)"', out)
        host.env[f"LESSOR_PLUGIN_TRUSTED_KEYS__{name.upper()}"] = public.group(1)
        ctx.keys[name] = path
    host.create_database()
    host.cli("migrate")
    host.create_admin()
    # The provider that carries the load: echo 1.0.0, signed by `vendor`.
    echo = os.path.join(host.dir, "echo-v1")
    import shutil
    shutil.copytree(os.path.join(host.packages, "echo-v1"), echo)
    host.cli("plugin", "sign", echo, "--key", ctx.keys["vendor"])
    host.cli("plugin", "install", echo)
    host.install("stripe")
    host.install("panic")
    ctx.internal = attacks.CountingServer()
    # http-ungranted posts to its `target_url`: granted by name, `localhost` (loopback).
    internal = f"http://localhost:{ctx.internal.port}"
    host.env["LESSOR_PLUGINS__HTTP_UNGRANTED__TARGET_URL"] = internal + "/"
    host.install("http-ungranted", "--grant-host", internal)
    host.install("log-forger")
    ctx.stripe_webhook_secret = "whsec_attack_suite"
    host.env["LESSOR_PLUGINS__STRIPE__WEBHOOK_SECRET"] = ctx.stripe_webhook_secret
    host.env["LESSOR_PLUGINS__STRIPE__SECRET_KEY"] = "sk_test_attack"
    host.start()

    ctx.admin = client.token_for(host, ADMIN_EMAIL, PASSWORD)
    ctx.customers, ctx.lease_ids = [], []
    for _ in range(4):
        email, owner = client.create_user(host, ctx.admin, "customer", PASSWORD)
        token = client.token_for(host, email, PASSWORD)
        lease = client.once(host, "POST", "/api/v1/leases", {
            "vehicle": {"vin": "WDD2220821A123456", "make": "Mercedes-Benz", "model": "S 580", "year": 2025,
                        "category": "luxury"},
            "start_date": "2026-12-31", "term_months": 12, "monthly_amount": 129900, "deposit": 0,
            "currency": "EUR"}, token=token)
        assert lease.status == 201, lease
        lease_id = lease.json()["id"]
        r = client.once(host, "PATCH", f"/api/v1/leases/{lease_id}", {"status": "active"}, token=ctx.admin)
        assert r.status == 200, r
        ctx.customers.append(token)
        ctx.lease_ids.append(lease_id)


def run(args):
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    ctx = Context()
    ctx.allowed_origin = "https://console.attack.test"
    ctx.flood = args.flood
    ctx.slow_secs = args.slow_secs
    ctx.log_budget = 100  # log lines per plugin call, the host's warnings about it included
    ctx.max_failures_per_account_address = 5
    ctx.schemathesis_examples = args.schemathesis_examples
    ctx.host = Host(root, {
        "LESSOR_CORS_ORIGINS": ctx.allowed_origin,
        "LESSOR_METRICS_TOKEN": "metrics-attack-token",
        # The legitimate load (100 payments/s from one address, 4 tokens) stays under these; the
        # one-token flood (--flood requests in a few seconds) does not.
        "LESSOR_RATE_LIMIT_PER_TOKEN": "3000",
        "LESSOR_RATE_LIMIT_PER_ADDRESS": "12000",
    })
    rows = []
    try:
        setup(ctx, args)
        selected = [(name, fn) for name, fn in attacks.ALL if not args.only or any(o in fn.__name__ for o in args.only)]
        for index, (name, attack) in enumerate(selected):
            ctx.attacker = attacker_addr(index)
            rss_before = ctx.host.rss_kib()
            before = load.measure(ctx.host, ctx.customers, ctx.lease_ids, args.baseline_secs, args.rate)
            with load.PaymentLoad(ctx.host, ctx.customers, ctx.lease_ids, args.rate) as during:
                started = time.monotonic()
                try:
                    attempts, outcome, holds = attack(ctx)
                except Exception as e:  # an attack that could not run does not hold
                    traceback.print_exc()
                    attempts, outcome, holds = 0, f"could not run: {type(e).__name__}: {e}"[:110], False
                elapsed = time.monotonic() - started
            rss_after = ctx.host.rss_kib()
            bound = getattr(attack, "p99_bound", None)
            if bound and during.p99_ms() > bound * before.p99_ms():
                outcome += f"; payment p99 more than {bound:g}x"
                holds = False
            row = {"attack": name, "attempts": attempts, "outcome": outcome, "holds": bool(holds),
                   "rss_before_mib": rss_before / 1024, "rss_after_mib": rss_after / 1024,
                   "p99_before_ms": before.p99_ms(), "p99_during_ms": during.p99_ms(),
                   "payments_failed_during": len(during.errors), "seconds": elapsed}
            rows.append(row)
            print(f"{'holds' if holds else 'FAILS'}  {name}: {outcome} "
                  f"(p99 {row['p99_before_ms']:.1f} -> {row['p99_during_ms']:.1f} ms, "
                  f"RSS {row['rss_before_mib']:.0f} -> {row['rss_after_mib']:.0f} MiB)", flush=True)
            if ctx.host.process.poll() is not None:
                print("the host died", file=sys.stderr)
                break
    finally:
        ctx.host.cleanup(keep_logs=args.keep)
        if getattr(ctx, "internal", None):
            ctx.internal.close()
    return rows


def print_table(rows):
    header = ["attack", "attempts", "outcome", "holds", "RSS before", "RSS after", "p99 before", "p99 during"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        lines.append(
            f"| {r['attack']} | {r['attempts']} | {r['outcome']} | {'yes' if r['holds'] else '**no**'} | "
            f"{r['rss_before_mib']:.0f} MiB | {r['rss_after_mib']:.0f} MiB | {r['p99_before_ms']:.1f} ms | "
            f"{r['p99_during_ms']:.1f} ms |")
    print("\n".join(lines))


def main():
    p = argparse.ArgumentParser(prog="scripts/attack.sh", description=__doc__)
    p.add_argument("--only", nargs="*", help="run the attacks whose function name contains one of these")
    p.add_argument("--rate", type=float, default=100, help="legitimate payments per second during each attack")
    p.add_argument("--baseline-secs", type=float, default=3)
    p.add_argument("--flood", type=int, default=4000, help="requests of the one-token flood")
    p.add_argument("--slow-secs", type=int, default=25, help="how long the slow sockets trickle")
    p.add_argument("--schemathesis-examples", type=int, default=0,
                   help="examples per operation (default: schemathesis.toml's 200)")
    p.add_argument("--json", default="target/attack/results.json")
    p.add_argument("--keep", action="store_true", help="keep the host's data directory and log")
    args = p.parse_args()
    rows = run(args)
    print()
    print_table(rows)
    os.makedirs(os.path.dirname(args.json), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(rows, f, indent=2)
    failed = [r["attack"] for r in rows if not r["holds"]]
    expected = len([1 for name, fn in attacks.ALL if not args.only or any(o in fn.__name__ for o in args.only)])
    if failed or len(rows) < expected:
        print(f"\n{len(failed)} of {len(rows)} attacks not held: {', '.join(failed)}", file=sys.stderr)
        sys.exit(1)
    print(f"\nall {len(rows)} attacks held")


if __name__ == "__main__":
    main()
