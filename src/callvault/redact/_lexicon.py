"""Word tables the recognisers share: number words, months, titles, suffixes, stop words."""

from __future__ import annotations

from typing import Final

DIGIT_WORDS: Final = {
    "zero": 0, "oh": 0, "o": 0, "nought": 0, "naught": 0, "nil": 0,
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5,
    "six": 6, "seven": 7, "eight": 8, "nine": 9,
}  # fmt: skip
# "oh", "o" and "nil" mean zero only beside another number word.
WEAK_ZEROS: Final = frozenset({"oh", "o", "nil"})
TEENS: Final = {
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14,
    "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}  # fmt: skip
TENS: Final = {
    "twenty": 20, "thirty": 30, "forty": 40, "fourty": 40, "fifty": 50,
    "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
}  # fmt: skip
REPEATS: Final = {"double": 2, "triple": 3}
# Numeric homophones ASR writes inside a number run; numbers only between two number tokens.
HOMOPHONES: Final = {"for": 4, "fore": 4, "to": 2, "too": 2, "won": 1, "ate": 8}
FILLERS: Final = frozenset({"um", "uh", "er", "erm", "ah", "uhm", "hmm", "mm", "umm"})

ORDINALS: Final = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6,
    "seventh": 7, "eighth": 8, "ninth": 9, "tenth": 10, "eleventh": 11,
    "twelfth": 12, "thirteenth": 13, "fourteenth": 14, "fifteenth": 15,
    "sixteenth": 16, "seventeenth": 17, "eighteenth": 18, "nineteenth": 19,
    "twentieth": 20, "thirtieth": 30,
}  # fmt: skip
ORDINAL_SUFFIXES: Final = frozenset({"st", "nd", "rd", "th"})

MONTHS: Final = {
    "january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3,
    "april": 4, "apr": 4, "may": 5, "june": 6, "jun": 6, "july": 7, "jul": 7,
    "august": 8, "aug": 8, "september": 9, "sep": 9, "sept": 9, "october": 10,
    "oct": 10, "november": 11, "nov": 11, "december": 12, "dec": 12,
}  # fmt: skip

TITLES: Final = frozenset(
    {"mr", "mrs", "ms", "miss", "mx", "dr", "mister", "missus", "doctor", "prof", "professor",
     "sir", "dame", "lady", "lord", "rev", "reverend"}
)  # fmt: skip

STREET_SUFFIXES: Final = frozenset(
    {"street", "st", "road", "rd", "avenue", "ave", "av", "lane", "ln", "drive", "dr", "close",
     "way", "court", "ct", "crescent", "cres", "place", "pl", "terrace", "gardens", "gdns",
     "grove", "boulevard", "blvd", "square", "sq", "hill", "park", "row", "mews", "walk",
     "parade", "highway", "hwy", "parkway", "pkwy", "circle", "cir", "trail", "trl", "green",
     "rise", "vale", "view", "croft", "meadow", "meadows", "wharf", "yard", "hollow", "cove",
     "loop", "pike", "plaza", "ridge", "run", "terr", "alley", "crossing", "path", "point"}
)  # fmt: skip

# Common words that end a name ("my name is john and ...") or are not one.
STOP_WORDS: Final = frozenset(
    """
    a about after again all also am an and any are as at back be because been but by call
    calling can could did do does doing down for from get got had has have having he her
    here hi hello him his how i i'd i'll i'm i've if in is it it's its just know like
    looking me my need no not now of off oh ok okay on one only or our out over please
    really right see she so sorry speaking still sure than thank thanks that that's the
    their them then there they this to today too up us very want was we well were what when
    where which who why will with would yeah yes you your yours just ringing phoning here's
    um uh er erm trying wondering going fine good great calling about regarding re wanting
    happy glad afraid not new customer patient account card phone number mobile email
    address date birth born calling ringing and from with the calling
    yesterday tomorrow tonight morning afternoon evening last next week weekend earlier
    later already said told asked
        monday tuesday wednesday thursday friday saturday sunday wrong right order platform
    worth you're we're they're he's she's there's who's me again cheers thanks okay fine
    """.split()  # noqa: SIM905 - a word list reads best as one string
)

# Top-level domains said or written at the end of an e-mail address.
TLDS: Final = frozenset(
    """
    com co uk org net edu gov io ac me info biz us ca au de fr ie nl es it eu nhs mil int
    uk.com org.uk co.uk ltd plc app dev tech online email mail
    """.split()  # noqa: SIM905 - a word list reads best as one string
)

US_STATES: Final = frozenset(
    """
    al ak az ar ca co ct de fl ga hi id il in ia ks ky la me md ma mi mn ms mo mt ne nv nh
    nj nm ny nc nd oh ok or pa ri sc sd tn tx ut vt va wa wv wi wy dc alabama alaska arizona
    arkansas california colorado connecticut delaware florida georgia hawaii idaho illinois
    indiana iowa kansas kentucky louisiana maine maryland massachusetts michigan minnesota
    mississippi missouri montana nebraska nevada ohio oklahoma oregon pennsylvania tennessee
    texas utah vermont virginia washington wisconsin wyoming
    """.split()  # noqa: SIM905 - a word list reads best as one string
)

# IBAN lengths by country (SWIFT IBAN registry).
IBAN_LENGTHS: Final = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27,
    "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27,
    "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HN": 28, "HR": 21, "HU": 28,
    "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28,
    "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22,
    "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23,
    "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24,
    "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}  # fmt: skip

# Spelling alphabets callers use for letters ("alpha bravo", "b for bravo" is not handled).
PHONETIC: Final = {
    "alpha": "a", "alfa": "a", "bravo": "b", "charlie": "c", "delta": "d", "echo": "e",
    "foxtrot": "f", "golf": "g", "hotel": "h", "india": "i", "juliet": "j", "juliett": "j",
    "kilo": "k", "lima": "l", "mike": "m", "november": "n", "oscar": "o", "papa": "p",
    "quebec": "q", "romeo": "r", "sierra": "s", "tango": "t", "uniform": "u", "victor": "v",
    "whiskey": "w", "whisky": "w", "xray": "x", "yankee": "y", "zulu": "z",
}  # fmt: skip
