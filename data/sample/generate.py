#!/usr/bin/env python3
"""Generate the bundled sample data for cpo (Customer Personalization Orchestrator).

Deterministic (seed 7) and stdlib-only, so it runs with plain ``python3``:

    python3 data/sample/generate.py

Writes, next to this file:

* ``customers.csv`` -- 500 fictional customers of "Harbor & Pine Outfitters"
  with RFM-style behaviour and email engagement history.
* ``content/<id>.json`` -- approved brand content documents used to ground
  email copy, plus a few deliberate special cases (one expired, one draft,
  one promotion naming a competitor).

All people, emails and businesses are fictional; emails use only the reserved
example.com / example.org / example.net domains.
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

SEED = 7
N_CUSTOMERS = 500
N_OPTED_OUT = 20  # 4% of 500

HERE = Path(__file__).resolve().parent
CUSTOMERS_PATH = HERE / "customers.csv"
CONTENT_DIR = HERE / "content"

COLUMNS = [
    "customer_id",
    "first_name",
    "email",
    "email_opt_in",
    "age",
    "location",
    "tier",
    "recency_days",
    "frequency",
    "monetary",
    "historical_open_rate",
    "historical_click_rate",
    "preferred_category",
]

FIRST_NAMES = [
    "Maya", "Liam", "Sofia", "Noah", "Ava", "Ethan", "Isabella", "Lucas", "Mia",
    "Mason", "Harper", "Logan", "Evelyn", "Elijah", "Abigail", "Oliver", "Emily",
    "James", "Ella", "Benjamin", "Aria", "Henry", "Chloe", "Samuel", "Grace",
    "Daniel", "Zoe", "Mateo", "Nora", "Jack", "Lily", "Owen", "Hannah", "Caleb",
    "Layla", "Wyatt", "Riley", "Carter", "Aaliyah", "Julian", "Stella", "Levi",
    "Hazel", "Isaac", "Aurora", "Gabriel", "Violet", "Anthony", "Lucy", "Dylan",
    "Priya", "Arjun", "Mei", "Kenji", "Aiko", "Diego", "Camila", "Valentina",
    "Santiago", "Fatima", "Omar", "Amara", "Kwame", "Nia", "Tariq", "Leila",
    "Ingrid", "Soren", "Freya", "Anika", "Rohan", "Yuki", "Hana", "Tomas",
    "Elena", "Marco", "Rosa", "Andre", "Jasmine", "Malik", "Naomi", "Ezra",
    "Willow", "Rowan", "Juniper", "Silas", "Ruby", "Felix", "Iris", "Theo",
    "Clara", "Hugo", "Ada", "Miles", "June", "Jonah", "Tess", "Reid", "Quinn",
    "Sage",
]

LAST_NAMES = [
    "rivera", "chen", "patel", "okafor", "nguyen", "larsen", "garcia", "kim",
    "murphy", "silva", "haddad", "novak", "tanaka", "brooks", "morales",
    "fischer", "adeyemi", "oconnor", "reyes", "walker", "singh", "lopez",
    "hughes", "bennett", "park", "castillo", "foster", "mendez", "sato",
    "hansen", "ward", "coleman", "ibrahim", "kowalski", "dubois", "ramos",
    "shaw", "yamada", "price", "ortiz", "bailey", "cruz", "russo", "holm",
    "wright", "ali", "barnes", "vega", "lindqvist", "moreau",
]

EMAIL_DOMAINS = ["example.com", "example.org", "example.net"]
EMAIL_DOMAIN_WEIGHTS = [0.55, 0.25, 0.20]

CITIES = [
    "Portland", "Seattle", "Denver", "Boise", "Salt Lake City", "Minneapolis",
    "Burlington", "Asheville", "Bend", "Missoula", "Austin", "Boston",
]
CITY_WEIGHTS = [12, 12, 12, 6, 8, 8, 5, 6, 5, 5, 10, 11]

CATEGORIES = ["footwear", "apparel", "camping", "climbing", "accessories"]

# Behavioural segments (hidden; only their effects appear in the CSV).
# recency/frequency ranges are inclusive; aov = average order value in USD.
SEGMENTS = {
    "champions":   dict(share=0.12, recency=(0, 30),    frequency=(14, 40), aov=(75, 160),
                        open_rate=(0.45, 0.78), ctr=(0.25, 0.45), age=(38, 11)),
    "loyal":       dict(share=0.21, recency=(5, 90),    frequency=(7, 18),  aov=(55, 115),
                        open_rate=(0.30, 0.55), ctr=(0.18, 0.35), age=(44, 12)),
    "new":         dict(share=0.14, recency=(0, 45),    frequency=(1, 2),   aov=(40, 150),
                        open_rate=(0.28, 0.55), ctr=(0.12, 0.30), age=(31, 9)),
    "occasional":  dict(share=0.16, recency=(30, 160),  frequency=(2, 6),   aov=(40, 105),
                        open_rate=(0.16, 0.36), ctr=(0.10, 0.25), age=(40, 13)),
    "lapsed":      dict(share=0.16, recency=(150, 300), frequency=(3, 12),  aov=(50, 125),
                        open_rate=(0.07, 0.24), ctr=(0.06, 0.20), age=(47, 13)),
    "hibernating": dict(share=0.21, recency=(240, 365), frequency=(1, 2),   aov=(15, 65),
                        open_rate=(0.02, 0.13), ctr=(0.04, 0.18), age=(45, 15)),
}

# Category preferences by segment (weights in CATEGORIES order).
CATEGORY_WEIGHTS = {
    "champions":   [3, 2, 3, 3, 1],
    "loyal":       [3, 3, 3, 1, 1],
    "new":         [3, 3, 2, 1, 2],
    "occasional":  [3, 3, 2, 1, 2],
    "lapsed":      [2, 3, 3, 1, 2],
    "hibernating": [2, 3, 1, 1, 3],
}

# Tier from 12-month spend, with a noisy threshold so the mapping is correlated
# but not deterministic (tiers also reflect history we do not show).
TIER_THRESHOLDS = [("platinum", 1800.0), ("gold", 800.0), ("silver", 250.0)]


def _segment_plan(rng: random.Random) -> list[str]:
    names = list(SEGMENTS)
    counts = {n: round(SEGMENTS[n]["share"] * N_CUSTOMERS) for n in names}
    # Fix rounding so the total is exactly N_CUSTOMERS.
    diff = N_CUSTOMERS - sum(counts.values())
    counts["loyal"] += diff
    plan = [n for n in names for _ in range(counts[n])]
    rng.shuffle(plan)
    # Row 1 is a plain, typical customer (helps humans and type inference).
    first_loyal = plan.index("loyal")
    plan[0], plan[first_loyal] = plan[first_loyal], plan[0]
    return plan


def _tier(rng: random.Random, monetary: float) -> str:
    noise = rng.uniform(0.8, 1.25)
    for tier, threshold in TIER_THRESHOLDS:
        if monetary >= threshold * noise:
            return tier
    return "bronze"


def _email(rng: random.Random, first: str, used: set[str]) -> str:
    base = first.lower()
    while True:
        last = rng.choice(LAST_NAMES)
        style = rng.randrange(4)
        if style == 0:
            local = f"{base}.{last}"
        elif style == 1:
            local = f"{base}{last[0]}{rng.randint(1, 99)}"
        elif style == 2:
            local = f"{base[0]}{last}"
        else:
            local = f"{base}_{last}{rng.randint(70, 99)}"
        domain = rng.choices(EMAIL_DOMAINS, EMAIL_DOMAIN_WEIGHTS)[0]
        email = f"{local}@{domain}"
        if email not in used:
            used.add(email)
            return email


def generate_customers(rng: random.Random) -> list[dict[str, str]]:
    plan = _segment_plan(rng)
    opted_out = set(rng.sample(range(1, N_CUSTOMERS), N_OPTED_OUT))  # never row 1
    used_emails: set[str] = set()
    rows = []
    for i, seg_name in enumerate(plan):
        seg = SEGMENTS[seg_name]
        first = rng.choice(FIRST_NAMES)
        age = int(round(rng.gauss(*seg["age"])))
        age = max(18, min(80, age))

        recency = rng.randint(*seg["recency"])
        lo, hi = seg["frequency"]
        frequency = rng.randint(lo, hi)
        # Within a segment, more recent buyers buy a little more often.
        span = seg["recency"][1] - seg["recency"][0] or 1
        freshness = 1 - (recency - seg["recency"][0]) / span
        frequency = int(round(frequency * (0.85 + 0.3 * freshness)))
        frequency = max(1, min(40, frequency))

        aov = rng.uniform(*seg["aov"])
        monetary = sum(aov * rng.uniform(0.6, 1.4) for _ in range(frequency))
        # Keep realistic price points: some whole dollars, most with cents.
        if rng.random() < 0.2:
            monetary = float(round(monetary))
        monetary = round(monetary, 2)

        tier = _tier(rng, monetary)

        open_rate = rng.uniform(*seg["open_rate"])
        if tier in ("gold", "platinum"):
            open_rate = min(0.95, open_rate * 1.08)
        open_rate = round(open_rate, 3)
        click_rate = round(open_rate * rng.uniform(*seg["ctr"]), 3)
        if click_rate >= open_rate:
            click_rate = round(open_rate - 0.001, 3)

        category = rng.choices(CATEGORIES, CATEGORY_WEIGHTS[seg_name])[0]
        rows.append(
            {
                "customer_id": f"C{i + 1:05d}",
                "first_name": first,
                "email": _email(rng, first, used_emails),
                "email_opt_in": "false" if i in opted_out else "true",
                "age": str(age),
                "location": rng.choices(CITIES, CITY_WEIGHTS)[0],
                "tier": tier,
                "recency_days": str(recency),
                "frequency": str(frequency),
                "monetary": f"{monetary:.2f}",
                "historical_open_rate": f"{open_rate:.3f}",
                "historical_click_rate": f"{click_rate:.3f}",
                "preferred_category": category,
            }
        )
    return rows


def write_customers(rows: list[dict[str, str]]) -> None:
    with CUSTOMERS_PATH.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


# --------------------------------------------------------------------------
# Content documents
# --------------------------------------------------------------------------

def _doc(id, title, content, category, audience, keywords, product_category,
         approved_at, expires_at, approval_status="approved"):
    return {
        "id": id,
        "title": title,
        "content": " ".join(content),
        "category": category,
        "audience": audience,
        "keywords": keywords,
        "product_category": product_category,
        "approval_status": approval_status,
        "approved_at": approved_at,
        "expires_at": expires_at,
    }


CONTENT = [
    # ---------------------------------------------------------------- products
    _doc(
        "prod-ridgeline-tent", "Ridgeline Two Backpacking Tent",
        [
            "The Ridgeline Two tent sleeps two, weighs 1.8 kg and costs $249.",
            "The Ridgeline Two pitches in under five minutes with a single color-coded hub pole.",
            "Two doors and two vestibules on the Ridgeline Two give each camper a separate way in and out.",
            "The Ridgeline Two fly is rated to a 3,000 mm waterhead for steady mountain rain.",
        ],
        "product", ["all", "high_value"],
        ["tent", "backpacking", "two-person", "lightweight", "shelter"],
        "camping", "2026-01-12", None,
    ),
    _doc(
        "prod-cascade-hiking-boot", "Cascade Mid Waterproof Hiking Boot",
        [
            "The Cascade Mid waterproof hiking boot costs $179.00.",
            "The Cascade Mid pairs a breathable waterproof membrane with a grippy lugged outsole for wet trails.",
            "Each Cascade Mid boot weighs 540 g in a men's size 9.",
            "Every Harbor & Pine boot is guaranteed for life against manufacturing defects.",
            "The Cascade Mid comes in regular and wide widths.",
        ],
        "product", ["all", "loyal", "high_value"],
        ["boot", "hiking", "waterproof", "footwear", "trail"],
        "footwear", "2026-01-12", "2030-01-31",
    ),
    _doc(
        "prod-basalt-approach-shoe", "Basalt Approach Shoe",
        [
            "The Basalt approach shoe costs $139.00.",
            "The Basalt approach shoe uses sticky climbing rubber on the toe for scrambling on rock.",
            "Lace-to-toe closure on the Basalt approach shoe gives a precise fit on technical ground.",
            "The Basalt approach shoe weighs 410 g per shoe and clips to a harness with its heel loop.",
        ],
        "product", ["all", "high_value"],
        ["approach shoe", "scrambling", "climbing", "footwear", "rubber"],
        "footwear", "2026-02-03", None,
    ),
    _doc(
        "prod-driftwood-rain-jacket", "Driftwood Rain Jacket",
        [
            "The Driftwood rain jacket costs $159.00 and weighs 340 g.",
            "The Driftwood rain jacket uses a 2.5-layer waterproof, breathable shell with fully taped seams.",
            "The Driftwood rain jacket packs into its own chest pocket for easy carrying.",
            "Pit zips on the Driftwood rain jacket dump heat on steep climbs.",
        ],
        "product", ["all", "new"],
        ["rain jacket", "waterproof", "shell", "packable", "apparel"],
        "apparel", "2026-01-20", "2030-03-31",
    ),
    _doc(
        "prod-merino-base-layer", "Merino 200 Base Layer Crew",
        [
            "The Merino 200 base layer crew costs $69.00.",
            "The Merino 200 base layer is knit from 200 gsm merino wool that stays warm when damp.",
            "Merino wool in the Merino 200 base layer resists odor over several days on the trail.",
            "The Merino 200 base layer crew comes in six colors and sizes XS to XXL.",
        ],
        "product", ["all", "new", "price_sensitive"],
        ["base layer", "merino", "wool", "layering", "apparel"],
        "apparel", "2026-01-20", None,
    ),
    _doc(
        "prod-ember-sleeping-bag", "Ember 20 Down Sleeping Bag",
        [
            "The Ember 20 down sleeping bag costs $199.00.",
            "The Ember 20 sleeping bag is rated to 20 degrees Fahrenheit.",
            "The Ember 20 sleeping bag is filled with 650-fill responsibly sourced down and weighs 1.1 kg.",
            "The Ember 20 sleeping bag compresses to the size of a large water bottle.",
        ],
        "product", ["all", "loyal"],
        ["sleeping bag", "down", "three-season", "backpacking", "camping"],
        "camping", "2026-02-10", "2030-02-28",
    ),
    _doc(
        "prod-granite-climbing-harness", "Granite Climbing Harness",
        [
            "The Granite climbing harness costs $89.00 and weighs 360 g.",
            "The Granite climbing harness has four gear loops and adjustable leg loops.",
            "Padded waist and leg loops on the Granite climbing harness stay comfortable on long belays.",
            "The Granite climbing harness is certified to UIAA and CE standards.",
        ],
        "product", ["all", "high_value"],
        ["harness", "climbing", "gym", "sport climbing", "safety"],
        "climbing", "2026-02-10", None,
    ),
    _doc(
        "prod-trailhead-daypack", "Trailhead 24 Daypack",
        [
            "The Trailhead 24 daypack holds 24 liters and costs $79.00.",
            "The Trailhead 24 daypack has a ventilated back panel and a sleeve for a hydration reservoir.",
            "The Trailhead 24 daypack weighs 780 g and includes a stowable rain cover.",
            "Hip-belt pockets on the Trailhead 24 daypack keep snacks and a phone within reach.",
        ],
        "product", ["all", "new", "price_sensitive"],
        ["daypack", "backpack", "hiking", "hydration", "accessories"],
        "accessories", "2026-01-28", "2030-01-31",
    ),
    # -------------------------------------------------------------- promotions
    _doc(
        "promo-trail-twenty", "20% Off Trail Footwear",
        [
            "Take 20% off all trail footwear with code TRAIL20.",
            "The TRAIL20 code works on hiking boots, trail runners and approach shoes.",
            "The TRAIL20 offer ends December 31, 2029.",
            "The TRAIL20 code cannot be combined with other discount codes.",
        ],
        "promotion", ["all", "price_sensitive", "loyal"],
        ["discount", "footwear", "TRAIL20", "boots", "sale"],
        "footwear", "2026-03-02", "2029-12-31",
    ),
    _doc(
        "promo-free-shipping", "Free Shipping Over $75",
        [
            "Every order over $75 ships free within the contiguous United States.",
            "Free standard shipping over $75 applies automatically at checkout with no code needed.",
            "Standard shipping arrives in three to seven business days.",
        ],
        "promotion", ["all", "price_sensitive", "new"],
        ["free shipping", "shipping", "delivery", "order minimum"],
        "general", "2026-01-05", "2030-01-05",
    ),
    _doc(
        "promo-welcome-fifteen", "Welcome Offer: 15% Off Your Next Order",
        [
            "New customers save 15% on their next order with code WELCOME15.",
            "The WELCOME15 code can be used once per customer on full-priced gear.",
            "The WELCOME15 offer ends December 31, 2029.",
        ],
        "promotion", ["new", "price_sensitive"],
        ["welcome", "discount", "WELCOME15", "first order", "new customer"],
        "general", "2026-01-05", "2029-12-31",
    ),
    _doc(
        "promo-come-back-twenty-five", "$25 Off When You Come Back",
        [
            "Returning customers get $25 off any order of $100 or more with code COMEBACK25.",
            "The COMEBACK25 code works on every category, including new-season arrivals.",
            "The COMEBACK25 offer ends October 31, 2029.",
        ],
        "promotion", ["lapsed", "price_sensitive"],
        ["win-back", "discount", "COMEBACK25", "returning customer"],
        "general", "2026-03-16", "2029-10-31",
    ),
    _doc(
        "promo-basecamp-sale", "Basecamp Sale: 25% Off Tents and Sleeping Bags",
        [
            "Save 25% on all tents and sleeping bags with code BASECAMP25.",
            "The BASECAMP25 code includes the Ridgeline Two tent and the Ember 20 sleeping bag.",
            "The BASECAMP25 offer ends September 30, 2029.",
        ],
        "promotion", ["all", "loyal", "price_sensitive"],
        ["camping", "tent", "sleeping bag", "BASECAMP25", "sale"],
        "camping", "2026-04-01", "2029-09-30",
    ),
    _doc(
        "promo-member-early-access", "Member Early Access to the Winter Sale",
        [
            "Gold and Platinum members can shop the Winter Sale 48 hours before everyone else.",
            "The Winter Sale takes up to 30% off selected apparel and climbing gear.",
            "Member early access to the Winter Sale opens December 1, 2029.",
        ],
        "promotion", ["loyal", "high_value"],
        ["early access", "winter sale", "members", "gold", "platinum"],
        "general", "2026-04-15", "2029-12-31",
    ),
    _doc(
        "promo-price-match", "Price Match Promise",
        [
            "Harbor & Pine will match a lower advertised price on an identical in-stock item.",
            "Bring a receipt from Summit Supply Co. and we will match the price.",
            "Price match requests are accepted within 14 days of purchase.",
        ],
        "promotion", ["price_sensitive", "all"],
        ["price match", "lowest price", "competitor", "savings"],
        "general", "2026-02-20", "2030-02-20",
    ),
    # ----------------------------------------------------------------- loyalty
    _doc(
        "loyalty-trail-points", "Trail Points Rewards Program",
        [
            "Trail Points members earn 1 point for every dollar spent at Harbor & Pine.",
            "Every 100 Trail Points can be redeemed for a $5 reward.",
            "Joining Trail Points is free and takes less than a minute.",
            "Trail Points never expire while the account has a purchase in the last 18 months.",
        ],
        "loyalty", ["all", "new", "loyal"],
        ["rewards", "points", "loyalty program", "Trail Points"],
        "general", "2026-01-08", None,
    ),
    _doc(
        "loyalty-tier-perks", "Member Tier Perks",
        [
            "Silver members earn 1.25 Trail Points per dollar spent.",
            "Gold members earn 1.5 Trail Points per dollar and get free two-day shipping on every order.",
            "Platinum members earn 2 Trail Points per dollar and get free repairs on Harbor & Pine gear.",
            "Member tiers are based on spend over the last 12 months.",
        ],
        "loyalty", ["loyal", "high_value"],
        ["tiers", "silver", "gold", "platinum", "perks", "points"],
        "general", "2026-01-08", None,
    ),
    _doc(
        "loyalty-birthday-reward", "Birthday Reward",
        [
            "Trail Points members receive a $10 reward during their birthday month.",
            "The birthday reward can be used on any order with no minimum purchase.",
            "The birthday reward stays valid for 30 days after it is issued.",
        ],
        "loyalty", ["all", "loyal", "new"],
        ["birthday", "reward", "members", "Trail Points"],
        "general", "2026-02-01", "2030-02-01",
    ),
    # ---------------------------------------------------------- support/policy
    _doc(
        "policy-100-day-returns", "100-Day Return Guarantee",
        [
            "Returns are risk-free within 100 days.",
            "Any Harbor & Pine purchase can be returned within 100 days for a full refund, even if it has been used outdoors.",
            "Return shipping is free with the prepaid label included in every order.",
            "Refunds go back to the original payment method within five business days of the return arriving.",
        ],
        "policy", ["all", "new", "price_sensitive"],
        ["returns", "refund", "100 days", "guarantee", "risk-free"],
        "general", "2026-01-05", None,
    ),
    _doc(
        "policy-lifetime-warranty", "Lifetime Warranty on Boots and Packs",
        [
            "Every Harbor & Pine boot is guaranteed for life against manufacturing defects.",
            "Harbor & Pine packs carry the same lifetime warranty against defects in materials and workmanship.",
            "A warranty claim needs only the order number or the item itself.",
            "The lifetime warranty does not cover normal wear, accidents or damage from misuse.",
        ],
        "policy", ["all", "loyal", "high_value"],
        ["warranty", "lifetime", "guaranteed", "boots", "packs", "defects"],
        "general", "2026-01-05", None,
    ),
    _doc(
        "support-repair-service", "Gear Repair Service",
        [
            "The Harbor & Pine repair service fixes zippers, seams, buckles and tent poles.",
            "Zipper replacements through the repair service start at $15.",
            "Most repairs are finished within 10 business days of the item arriving at the repair shop.",
            "Repairing gear through the Harbor & Pine repair service keeps it on the trail and out of the landfill.",
        ],
        "support", ["all", "loyal", "lapsed"],
        ["repair", "zipper", "seams", "sustainability", "service"],
        "general", "2026-02-12", "2030-02-12",
    ),
    _doc(
        "support-fit-help", "Fit and Sizing Help",
        [
            "The online fit guide covers sizing for every Harbor & Pine boot, shoe and jacket.",
            "Size exchanges are free within 100 days of purchase.",
            "Gear specialists answer fit questions by live chat every day from 8 in the morning to 8 in the evening, Pacific time.",
        ],
        "support", ["new", "all"],
        ["fit", "sizing", "exchange", "live chat", "help"],
        "general", "2026-02-12", None,
    ),
    # ----------------------------------------------------------- special cases
    # Expired: must be ignored by retrieval.
    _doc(
        "promo-spring-clearance", "Spring Clearance: 40% Off",
        [
            "Take 40% off last season's jackets and packs with code SPRING40.",
            "The SPRING40 clearance includes tents, sleeping bags and climbing gear.",
            "The SPRING40 offer ends June 30, 2025.",
        ],
        "promotion", ["all", "price_sensitive"],
        ["clearance", "SPRING40", "discount", "sale"],
        "general", "2025-03-03", "2025-06-30",
    ),
    # Draft: not approved, must be ignored by retrieval.
    _doc(
        "promo-holiday-preview", "Holiday Preview: 30% Off Everything",
        [
            "Take 30% off everything sitewide with code HOLIDAY30.",
            "The HOLIDAY30 code stacks with Trail Points rewards.",
            "The HOLIDAY30 offer ends December 24, 2029.",
        ],
        "promotion", ["all", "loyal", "price_sensitive"],
        ["holiday", "HOLIDAY30", "discount", "sitewide"],
        "general", None, "2029-12-24", approval_status="draft",
    ),
]


def write_content() -> list[dict]:
    CONTENT_DIR.mkdir(parents=True, exist_ok=True)
    ids = [d["id"] for d in CONTENT]
    assert len(ids) == len(set(ids)), "duplicate content ids"
    # Remove stale generated documents so the directory mirrors CONTENT exactly.
    for old in CONTENT_DIR.glob("*.json"):
        if old.stem not in ids:
            old.unlink()
    for doc in CONTENT:
        path = CONTENT_DIR / f"{doc['id']}.json"
        path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return CONTENT


def main() -> None:
    rng = random.Random(SEED)
    rows = generate_customers(rng)
    write_customers(rows)
    docs = write_content()

    tiers: dict[str, int] = {}
    for r in rows:
        tiers[r["tier"]] = tiers.get(r["tier"], 0) + 1
    opted_out = sum(r["email_opt_in"] == "false" for r in rows)
    approved = [d for d in docs if d["approval_status"] == "approved"]
    expired = [d["id"] for d in approved if d["expires_at"] and d["expires_at"] < "2026-01-01"]
    drafts = [d["id"] for d in docs if d["approval_status"] != "approved"]
    by_cat: dict[str, int] = {}
    for d in docs:
        by_cat[d["category"]] = by_cat.get(d["category"], 0) + 1
    print(f"customers: {len(rows)} rows -> {CUSTOMERS_PATH.relative_to(HERE.parent.parent)}")
    print("  tiers: " + ", ".join(f"{t}={tiers.get(t, 0)}" for t in
                                  ("bronze", "silver", "gold", "platinum")))
    print(f"  opted out: {opted_out}")
    print(f"content: {len(docs)} documents ({len(approved)} approved) -> "
          f"{CONTENT_DIR.relative_to(HERE.parent.parent)}/")
    print("  by category: " + ", ".join(f"{k}={v}" for k, v in sorted(by_cat.items())))
    print(f"  expired: {', '.join(expired)}; not approved: {', '.join(drafts)}")


if __name__ == "__main__":
    main()
