"""Realistic ESP engagement-event files, made from a `sends.csv` frame with planted effects.

    sends = make_sends(4000, arms=("control", "treatment_1"), seeds=3)
    f = write_esp_events(sends, "sendgrid", tmp_path / "events.json", rates=PLANTED, seed=7)
    f.truth      # per non-seed recipient: what really happened (delivered, opened, ... revenue)
    f.planted    # the per-arm true rates the events were drawn from
    f.counts     # the exact counts `outcomes_from_events` must report for this file

Each recipient (seed = 0) first bounces with `bounce_share` (some bounced ones also get a delivered event, as
an asynchronous bounce does); otherwise is delivered, opens with the arm's `open` rate (one to three opens),
clicks with `click` (clicks are among openers; one clicker in ten shows no open at all, images blocked),
converts with `convert` (among clickers; one converter in five converts twice, each with a value drawn around
`revenue`), and unsubscribes / complains with their rates. On top: machine opens (`machine_share` of delivered
recipients, SendGrid `sg_machine_open`, Mailchimp open-details `is_proxy_open`, the generic `machine` column),
at-least-once redelivery (`duplicate_share` of events written twice, same `sg_event_id`), events of
`unknown` recipients not in sends, seed-list addresses' events, SendGrid `processed`/`deferred` events, event
names in mixed case and forms (generic), and email addresses in mixed case.

Formats and layouts: "sendgrid" (layout "array" or "lines"), "generic" (CSV), "mailchimp" (layout "json":
email-activity + open-details + unsubscribed + abuse-reports + e-commerce orders; or "csv": the activity
flattened, no orders, so nothing converts). Deterministic for a given seed.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

BASE_TIME = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
PLANTED = {
    "control": {"open": 0.30, "click": 0.08, "convert": 0.03, "revenue": 60.0, "unsubscribe": 0.004,
                "complaint": 0.001},
    "treatment_1": {"open": 0.38, "click": 0.12, "convert": 0.05, "revenue": 60.0, "unsubscribe": 0.006,
                    "complaint": 0.001},
}
GENERIC_NAMES = {"delivered": ["delivered", "Delivered", "DELIVERY"], "open": ["open", "Opened", "opens"],
                 "click": ["click", "Clicked", "CLICKS"], "conversion": ["conversion", "Converted", "purchase"],
                 "unsubscribe": ["unsubscribe", "Unsubscribed"], "complaint": ["complaint", "spamreport"],
                 "bounce": ["bounce", "Bounced"]}
OUTCOMES = ("delivered", "opened", "clicked", "converted", "revenue", "unsubscribed", "complained")


@dataclass
class EventFile:
    path: Path
    fmt: str
    truth: pl.DataFrame
    planted: dict
    counts: dict
    layout: str = ""
    extra: dict = field(default_factory=dict)


def make_sends(n: int, arms=("control", "treatment_1"), seeds: int = 2, seed: int = 0) -> pl.DataFrame:
    """A sends.csv frame: n customers spread over the arms, then `seeds` seed-list rows."""
    rng = np.random.default_rng(seed)
    arm = rng.choice(list(arms), size=n)
    rows = {"customer_id": [f"C{i:06d}" for i in range(n)],
            "email": [f"customer{i}@example.com" for i in range(n)],
            "arm": arm.tolist(),
            "variant_id": [f"{a}-v1" if a != "control" else "control-bau" for a in arm],
            "segment": rng.choice(["loyal", "lapsed", "new"], size=n).tolist(),
            "seed": [0] * n}
    for s in range(seeds):
        rows["customer_id"].append(f"SEED{s}")
        rows["email"].append(f"seed{s}@brand.example")
        rows["arm"].append(arms[s % len(arms)])
        rows["variant_id"].append("seed")
        rows["segment"].append(None)
        rows["seed"].append(1)
    return pl.DataFrame(rows)


def write_esp_events(sends: pl.DataFrame, fmt: str, path: str | Path, rates: dict | None = None, *, seed: int = 0,
                     layout: str | None = None, duplicate_share: float = 0.1, machine_share: float = 0.2,
                     bounce_share: float = 0.03, unknown: int = 12, seed_events: bool = True,
                     email_share: float = 0.3, run_id: str = "run-1") -> EventFile:
    """Write an events file for `sends` in `fmt` and return it with the ground truth and exact counts.
    `email_share`: the share of recipients whose events carry only the email (the rest carry customer_id)."""
    rates = rates or PLANTED
    layout = layout or {"sendgrid": "array", "generic": "csv", "mailchimp": "json"}[fmt]
    rng = np.random.default_rng(seed)
    path = Path(path)
    gen = _Generator(fmt, layout, rng, run_id)
    truth_rows = []
    clock = 0
    for row in sends.iter_rows(named=True):
        clock += 1
        if str(row.get("seed", 0)) in ("1", "True", "true"):
            if seed_events:
                who = gen.who(row["customer_id"], row["email"], rng.random() < 0.5)
                t = BASE_TIME + timedelta(seconds=clock)
                for kind in ("delivered", "open", "click"):
                    t = gen.event(who, "seed", kind, t)
            continue
        r = rates.get((row.get("segment"), row["arm"])) or rates[row["arm"]]  # per segment and arm, or per arm
        who = gen.who(row["customer_id"], row["email"], rng.random() < email_share)
        t = BASE_TIME + timedelta(seconds=clock)
        truth = dict.fromkeys(OUTCOMES, 0)
        truth["revenue"] = 0.0
        if rng.random() < bounce_share:
            if fmt != "mailchimp" and rng.random() < 0.3:
                t = gen.event(who, "real", "delivered", t)
            gen.event(who, "real", "bounce", t)
            truth_rows.append({"customer_id": row["customer_id"], "arm": row["arm"], **truth})
            continue
        truth["delivered"] = 1
        t = gen.event(who, "real", "delivered", t)
        if rng.random() < machine_share:
            t = gen.event(who, "real", "open", t, machine=True)
        if rng.random() < r["open"]:
            truth["opened"] = 1
            clicks = rng.random() < r["click"] / r["open"]
            blocked = clicks and rng.random() < 0.1
            if not blocked:
                for _ in range(rng.integers(1, 4)):
                    t = gen.event(who, "real", "open", t)
            if clicks:
                truth["clicked"] = 1
                t = gen.event(who, "real", "click", t)
                if rng.random() < r["convert"] / r["click"] and gen.conversions:
                    truth["converted"] = 1
                    for _ in range(2 if rng.random() < 0.2 else 1):
                        value = round(float(rng.gamma(4.0, r["revenue"] / 4.0)), 2)
                        truth["revenue"] += value
                        t = gen.event(who, "real", "conversion", t, value=value)
        if rng.random() < r["unsubscribe"]:
            truth["unsubscribed"] = 1
            t = gen.event(who, "real", "unsubscribe", t)
        if rng.random() < r["complaint"]:
            truth["complained"] = 1
            t = gen.event(who, "real", "complaint", t)
        truth_rows.append({"customer_id": row["customer_id"], "arm": row["arm"], **truth})
    for u in range(unknown):
        who = gen.who(f"X{u:05d}", f"stranger{u}@elsewhere.example", rng.random() < 0.5)
        t = gen.event(who, "unknown", "delivered", BASE_TIME + timedelta(seconds=u))
        if rng.random() < 0.5:
            gen.event(who, "unknown", "open", t)
    gen.duplicate(duplicate_share)
    gen.write(path)
    truth = pl.DataFrame(truth_rows, schema={"customer_id": pl.String, "arm": pl.String, "delivered": pl.Int8,
                                             "opened": pl.Int8, "clicked": pl.Int8, "converted": pl.Int8,
                                             "revenue": pl.Float64, "unsubscribed": pl.Int8, "complained": pl.Int8})
    planted = {arm: dict(r) for arm, r in rates.items() if arm in set(sends["arm"].to_list())
               or isinstance(arm, tuple)}
    return EventFile(path, fmt, truth, planted, gen.counts(truth), layout)


@dataclass
class _Who:
    customer_id: str
    email: str
    by_email: bool


class _Generator:
    """Collects logical events (who, kind, time, value, machine), their copies, and writes them in a format."""

    def __init__(self, fmt: str, layout: str, rng: np.random.Generator, run_id: str = "run-1"):
        self.fmt, self.layout, self.rng, self.run_id = fmt, layout, rng, run_id
        self.events: list[dict] = []      # one per logical event
        self.ignored = Counter()
        self.conversions = not (fmt == "mailchimp" and layout == "csv")

    def who(self, customer_id: str, email: str, by_email: bool) -> _Who:
        if self.fmt == "mailchimp":
            by_email = True
        shown = email.upper() if self.rng.random() < 0.2 else (email.title() if self.rng.random() < 0.1 else email)
        return _Who(customer_id, shown, by_email)

    def event(self, who: _Who, kind: str, name: str, t: datetime, machine: bool = False,
              value: float | None = None) -> datetime:
        t = t + timedelta(seconds=int(self.rng.integers(1, 3600)))
        self.events.append({"who": who, "group": kind, "event": name, "t": t, "machine": machine, "value": value,
                            "id": f"sg{len(self.events):08d}{int(self.rng.integers(1 << 30)):x}", "copies": 1})
        if self.fmt == "sendgrid" and name == "delivered":
            self.ignored["processed"] += 1
            if self.rng.random() < 0.05:
                self.ignored["deferred"] += 1
        return t

    def duplicate(self, share: float) -> None:
        for e in self.events:
            if self.rng.random() < share:
                e["copies"] += 1 + int(self.rng.random() < 0.2)

    def counts(self, truth: pl.DataFrame) -> dict:
        written = [e for e in self.events if not (self.fmt == "mailchimp" and e["event"] == "delivered")]
        by_group = Counter(e["group"] for e in written)
        unknown = {(e["who"].by_email, e["who"].email.lower() if e["who"].by_email else e["who"].customer_id)
                   for e in written if e["group"] == "unknown"}
        return {"events_read": sum(e["copies"] for e in written),
                "duplicates": sum(e["copies"] - 1 for e in written),
                "machine_opens": sum(1 for e in written if e["machine"]),
                "unknown_recipient_events": by_group["unknown"], "unknown_recipients": len(unknown),
                "seed_events": by_group["seed"], "events_used": by_group["real"],
                "ignored_events": sum(self.ignored.values()),
                "ignored_event_kinds": dict(sorted(self.ignored.items())),
                "bounced_recipients": sum(1 for e in written if e["group"] == "real" and e["event"] == "bounce"),
                "delivered_basis": "sent_not_bounced" if self.fmt == "mailchimp" else "events",
                "recipients": truth.height}

    # ----------------------------------------------------------------------------------------- writers

    def write(self, path: Path) -> None:
        getattr(self, f"_write_{self.fmt}")(path)

    def _copies(self) -> list[dict]:
        out = [e for e in self.events for _ in range(e["copies"])]
        order = self.rng.permutation(len(out))
        return [out[i] for i in order]

    def _write_sendgrid(self, path: Path) -> None:
        names = {"bounce": "bounce", "complaint": "spamreport", "unsubscribe": "unsubscribe"}
        items = []
        for e in self._copies():
            who = e["who"]
            item = {"email": who.email, "timestamp": int(e["t"].timestamp()), "event": names.get(e["event"], e["event"]),
                    "sg_event_id": e["id"], "sg_message_id": f"msg.{who.customer_id}", "cpo_run": self.run_id}
            if e["event"] == "unsubscribe" and int(e["id"][-1], 16) % 2:
                item["event"] = "group_unsubscribe"
            if e["event"] == "bounce" and int(e["id"][-1], 16) % 3 == 0:
                item["event"] = "dropped"
            if not who.by_email:
                item["customer_id"] = who.customer_id
            if e["event"] == "open":
                item["sg_machine_open"] = e["machine"]
            if e["value"] is not None:
                item["value"] = e["value"]
            items.append(item)
        for kind, n in self.ignored.items():
            for i in range(n):
                items.append({"email": f"customer{i}@example.com", "timestamp": int(BASE_TIME.timestamp()),
                              "event": kind, "sg_event_id": f"ign-{kind}-{i}"})
        items = [items[i] for i in self.rng.permutation(len(items))]
        if self.layout == "lines":
            path.write_text("".join(json.dumps(i) + "\n" for i in items), encoding="utf-8")
        else:
            path.write_text(json.dumps(items, indent=0), encoding="utf-8")

    def _write_generic(self, path: Path) -> None:
        rows = []
        for e in self._copies():
            who = e["who"]
            names = GENERIC_NAMES[e["event"]]
            rows.append({"customer_id": None if who.by_email else who.customer_id, "email": who.email,
                         "event": names[int(e["t"].timestamp()) % len(names)],
                         "timestamp": e["t"].strftime("%Y-%m-%dT%H:%M:%SZ"),
                         "value": e["value"], "machine": "true" if e["machine"] else "false"})
        pl.DataFrame(rows, schema={"customer_id": pl.String, "email": pl.String, "event": pl.String,
                                   "timestamp": pl.String, "value": pl.Float64, "machine": pl.String}
                     ).write_csv(path)

    def _write_mailchimp(self, path: Path) -> None:
        iso = lambda t: t.strftime("%Y-%m-%dT%H:%M:%S+00:00")  # noqa: E731
        if self.layout == "csv":
            rows = []
            for e in self._copies():
                if e["event"] == "delivered":
                    continue
                action = {"complaint": "abuse"}.get(e["event"], e["event"])
                rows.append({"email_address": e["who"].email, "action": action, "timestamp": iso(e["t"]),
                             "type": "hard" if e["event"] == "bounce" else None,
                             "is_proxy_open": ("true" if e["machine"] else "false") if e["event"] == "open" else None})
            pl.DataFrame(rows, schema={"email_address": pl.String, "action": pl.String, "timestamp": pl.String,
                                       "type": pl.String, "is_proxy_open": pl.String}).write_csv(path)
            return
        emails: dict[str, dict] = {}
        members: dict[str, dict] = {}
        unsubscribes, abuse, orders = [], [], []
        for e in self._copies():
            who, kind = e["who"], e["event"]
            if kind == "delivered":
                emails.setdefault(who.email, {"email_address": who.email, "activity": []})
                continue
            if kind in ("open", "click", "bounce"):
                act = {"action": kind, "timestamp": iso(e["t"])}
                if kind == "bounce":
                    act["type"] = "soft" if int(e["id"][-1], 16) % 4 == 0 else "hard"
                if kind == "click":
                    act["url"] = "https://brand.example/offer"
                emails.setdefault(who.email, {"email_address": who.email, "activity": []})["activity"].append(act)
                if kind == "open":
                    opens = members.setdefault(who.email, {"email_address": who.email, "opens": []})["opens"]
                    if not any(o["timestamp"] == act["timestamp"] for o in opens):
                        opens.append({"timestamp": act["timestamp"], "is_proxy_open": e["machine"]})
            elif kind == "unsubscribe":
                unsubscribes.append({"email_address": who.email, "timestamp": iso(e["t"]), "reason": "N/A"})
            elif kind == "complaint":
                abuse.append({"id": int(e["id"][2:10]), "email_address": who.email, "date": iso(e["t"])})
            elif kind == "conversion":
                orders.append({"id": e["id"], "customer": {"email_address": who.email},
                               "order_total": e["value"], "processed_at_foreign": iso(e["t"]),
                               "campaign_id": "abc123"})
        listed = list(emails.values())
        listed = [listed[i] for i in self.rng.permutation(len(listed))]
        report = {"campaign_id": "abc123", "emails": listed, "members": list(members.values()),
                  "unsubscribes": unsubscribes, "abuse_reports": abuse, "orders": orders}
        path.write_text(json.dumps(report, indent=1), encoding="utf-8")
