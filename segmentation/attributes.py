"""The attributes a question can filter or group by: the columns of the `users` table.

Each run keeps a snapshot of these columns for its users (in `user_segments`), so a run's
numbers never change when a users file is loaded later. The words that name an attribute
("country", "market", "platform"...) belong to the schema and live here; the attribute's
*values* always come from the data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Tuple


@dataclass(frozen=True)
class Attribute:
    """A users-table column: how people name it and what kind of values it holds."""

    name: str  # the column
    label: str  # "country"
    plural: str  # "countries"
    kind: str  # "category" or "date"
    nouns: Tuple[str, ...]  # words that name the attribute in a question
    preposition: str = ""  # "in Germany", "on iOS", "on the premium plan"


ATTRIBUTES: Dict[str, Attribute] = {
    a.name: a
    for a in (
        Attribute(
            "country",
            "country",
            "countries",
            "category",
            ("country", "countries", "market", "markets", "nation", "nations", "geo"),
            "in",
        ),
        Attribute(
            "device",
            "device",
            "devices",
            "category",
            ("device", "devices", "platform", "platforms", "os", "operating system"),
            "on",
        ),
        Attribute(
            "plan",
            "plan",
            "plans",
            "category",
            ("plan", "plans", "subscription", "subscriptions", "pricing plan", "billing plan"),
            "on",
        ),
        Attribute(
            "signup_date",
            "signup date",
            "signup dates",
            "date",
            (
                "signup",
                "signups",
                "sign up",
                "signed up",
                "sign-up",
                "joined",
                "join",
                "joining",
                "registered",
                "registration",
                "signup date",
                "join date",
                "account created",
            ),
        ),
    )
}
CATEGORY_ATTRIBUTES: Tuple[str, ...] = tuple(
    a.name for a in ATTRIBUTES.values() if a.kind == "category"
)
# Groupings of the signup date: calendar month or year of signup.
DATE_GROUPS = {"signup_month": "signup month", "signup_year": "signup year"}
