"""What Nordwind Motors sells and shows: journey stages, age groups and their channel
affinities, models, prices, accessories, pages, social networks and user agents.

Static data only (and the few text helpers that turn it into slugs and page titles): the
simulator's people, journeys and stage steps read it, nothing writes it.
"""

from __future__ import annotations

STAGES: tuple[str, ...] = (
    "awareness",
    "consideration",
    "decision",
    "purchase",
    "retention",
    "advocacy",
)
AGE_GROUPS: tuple[tuple[str, int, int], ...] = (
    ("18-24", 18, 24),
    ("25-34", 25, 34),
    ("35-44", 35, 44),
    ("45-54", 45, 54),
    ("55-64", 55, 64),
    ("65+", 65, 85),
)
# How likely each age group uses each contact channel (the seed articles: the young prefer
# chat, social media and apps; older customers e-mail, phone and the dealer).
CHANNEL_AFFINITY: dict[str, dict[str, float]] = {
    "18-24": {
        "app": 0.80,
        "chat": 0.65,
        "social": 0.85,
        "email": 0.25,
        "sms": 0.30,
        "phone": 0.08,
        "store": 0.30,
        "voice": 0.30,
        "blockchain": 0.10,
    },
    "25-34": {
        "app": 0.70,
        "chat": 0.55,
        "social": 0.65,
        "email": 0.40,
        "sms": 0.35,
        "phone": 0.15,
        "store": 0.40,
        "voice": 0.30,
        "blockchain": 0.06,
    },
    "35-44": {
        "app": 0.55,
        "chat": 0.40,
        "social": 0.45,
        "email": 0.60,
        "sms": 0.40,
        "phone": 0.30,
        "store": 0.50,
        "voice": 0.25,
        "blockchain": 0.03,
    },
    "45-54": {
        "app": 0.40,
        "chat": 0.25,
        "social": 0.30,
        "email": 0.75,
        "sms": 0.35,
        "phone": 0.45,
        "store": 0.60,
        "voice": 0.15,
        "blockchain": 0.01,
    },
    "55-64": {
        "app": 0.25,
        "chat": 0.15,
        "social": 0.18,
        "email": 0.80,
        "sms": 0.25,
        "phone": 0.60,
        "store": 0.70,
        "voice": 0.10,
        "blockchain": 0.0,
    },
    "65+": {
        "app": 0.10,
        "chat": 0.06,
        "social": 0.08,
        "email": 0.85,
        "sms": 0.15,
        "phone": 0.75,
        "store": 0.80,
        "voice": 0.05,
        "blockchain": 0.0,
    },
}
# Chance to move on to the next stage, without and with a pain point in the current one.
ADVANCE: dict[str, tuple[float, float]] = {
    "awareness": (0.62, 0.40),
    "consideration": (0.55, 0.30),
    "decision": (0.58, 0.28),
    "purchase": (0.70, 0.45),
    "retention": (0.42, 0.20),
}
MODELS = ("Nordwind E3", "Nordwind E5", "Nordwind Kombi", "Nordwind SUV X", "Nordwind GT")
PRICES = {
    "Nordwind E3": 34900,
    "Nordwind E5": 48900,
    "Nordwind Kombi": 41900,
    "Nordwind SUV X": 56900,
    "Nordwind GT": 69900,
}
ACCESSORIES = (
    ("Dachbox", 649),
    ("Wallbox 11 kW", 1190),
    ("Winterräder", 1490),
    ("Fahrradträger", 529),
    ("Ladekabel Typ 2", 279),
    ("Fußmatten", 119),
)
# What customers buy again in the web shop (shop.py): (name, price, popularity), the
# popularity the shape of each item's weight in a customer's taste.
SHOP_ITEMS = (
    ("Ladeguthaben 50", 50, 3.0),
    ("Pflegeset", 39, 1.5),
    ("Scheibenwischer", 59, 1.0),
    ("Fußmatten", 119, 0.8),
    ("Ladekabel Typ 2", 279, 0.6),
    ("Fahrradträger", 529, 0.3),
    ("Dachbox", 649, 0.3),
)
BROWSE_PAGES = [
    "/modelle",
    "/angebote",
    "/finanzierung",
    "/haendler",
    "/modelle/nordwind-e3",
    "/modelle/nordwind-e5",
    "/modelle/nordwind-kombi",
    "/modelle/nordwind-suv-x",
    "/modelle/nordwind-gt",
    "/service",
    "/zubehoer",
]
SOCIAL_NETWORKS = ("instagram", "tiktok", "facebook", "linkedin", "youtube")
SITE = "https://www.nordwind-motors.example"
UA_DESKTOP = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0 Safari/537.36"
)
UA_PHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"
)
UA_TABLET = (
    "Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.6 Safari/604.1"
)


_TITLES = {
    "": "Startseite",
    "modelle": "Modelle",
    "konfigurator": "Konfigurator",
    "probefahrt": "Probefahrt",
    "login": "Anmelden",
    "konto": "Mein Konto",
    "kasse": "Kasse",
    "bestellung": "Bestellung",
    "service": "Service",
    "zubehoer": "Zubehör",
    "bewertung": "Bewertung",
    "empfehlen": "Empfehlen",
    "angebote": "Angebote",
    "finanzierung": "Finanzierung",
    "haendler": "Händlersuche",
}


def _title(path: str) -> str:
    parts = path.strip("/").split("/")
    title = _TITLES.get(parts[0], parts[0].title())
    return f"{title}: {parts[1].replace('-', ' ').title()}" if len(parts) > 1 else title


def _slug(text: str) -> str:
    return text.lower().replace(" ", "-")


def item_id(name: str) -> str:
    """An accessory's ``product_id``: ``Fußmatten`` → ``fussmatten``."""
    return _slug(_ascii(name.lower()))


def _ascii(text: str) -> str:
    return (
        text.replace("ä", "ae")
        .replace("ö", "oe")
        .replace("ü", "ue")
        .replace("ß", "ss")
        .replace("é", "e")
    )
