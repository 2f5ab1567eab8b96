"""How the learned KIE reads a value's rows: an address's parting full stops as commas, a
number parted from the word run into it, and the ways training found right; a company's name
printed over two rows offered whole."""

from __future__ import annotations

import itertools

import torch
from test_kie import RECEIPT_SCHEMA, ocr_record

from ocrkie.fields import load_field_schema
from ocrkie.learn.candidates import read_sheet
from ocrkie.learn.inference import choose, read_many
from ocrkie.learn.model import FieldRanker
from ocrkie.learn.training import examples, reading_rates
from ocrkie.normalize import normalize_text

SCHEMA = load_field_schema(RECEIPT_SCHEMA)
ROWS = [
    ["LIM SENG THO HARDWARE TRADING (002231061-T)"],
    ["NO 7. SIMPANG OFF BATU VILLAGE."],
    ["JALAN IPOH BATU 5. 51200 KUALA LUMPUR"],
    ["TEL NO. 03-6258 7191"],
    ["TOTAL", "7.00"],
]
PRINTED = "NO 7.SIMPANG OFF BATU VILLAGE.JALAN IPOH BATU 5.51200 KUALA LUMPUR"
COMMAS = "NO 7,SIMPANG OFF BATU VILLAGE,JALAN IPOH BATU 5,51200 KUALA LUMPUR"


def receipt(sha256: str = "0" * 64) -> dict:
    return {**ocr_record(ROWS), "image": {"path": f"{sha256[:4]}.jpg", "sha256": sha256}}


def addresses_read(sheet, **rates: dict[str, float]) -> dict:
    """The address an untrained model picks on ``sheet``, read with each set of reading rates."""
    model = FieldRanker([spec.name for spec in SCHEMA.fields]).eval()
    return {
        case: read_many(model, [sheet], {"address": way_rates})[0]["address"].candidate
        for case, way_rates in rates.items()
    }


def test_an_address_is_offered_as_printed_and_with_its_parting_stops_as_commas():
    sheet = read_sheet(receipt(), SCHEMA)
    addresses = {c.normalized: c for c in sheet.candidates["address"]}
    assert addresses[PRINTED].ways == set()
    assert (addresses[COMMAS].ways, addresses[COMMAS].commas) == ({"commas"}, 3)
    assert addresses[COMMAS].span == addresses[PRINTED].span  # two readings of one span
    # "NO 7." parts the address; "NO. 03" is an abbreviation: only the first becomes a comma
    assert "TEL NO.03-6258 7191" in {c.normalized for c in sheet.candidates["company"]}
    tel = [c for c in sheet.candidates["address"] if c.normalized.endswith("TEL NO.03-6258 7191")]
    assert tel and all(",03-6258" not in c.normalized for c in tel)


def test_the_span_is_the_models_choice_and_its_reading_the_training_counts():
    torch.manual_seed(0)
    rows = [["KEDAI. MAJU"], ["NO 7. SIMPANG"], ["JALAN. IPOH"], ["KUALA. LUMPUR"]]
    sheet = read_sheet(ocr_record(rows), SCHEMA)
    assert all(  # every span of rows reads two ways
        [c.ways for c in sheet.candidates["address"] if c.span == span] == [set(), {"commas"}]
        for span in {c.span for c in sheet.candidates["address"]}
    )
    pick = addresses_read(
        sheet,
        commas={"commas": 0.7, "printed": 0.5},
        printed={"commas": 0.3, "printed": 0.5},
        unknown={},
    )
    assert pick["commas"].span == pick["printed"].span == pick["unknown"].span
    assert pick["commas"].ways == {"commas"}
    assert pick["printed"].ways == pick["unknown"].ways == set()


def test_reading_rates_count_which_reading_held_the_label():
    labels = [("a" * 64, COMMAS), ("b" * 64, COMMAS), ("c" * 64, PRINTED)]
    made = examples([(receipt(sha), {"address": value}) for sha, value in labels], SCHEMA, 0.0)
    rates = reading_rates(made)
    assert rates["address"] == {"commas": (2 + 1) / (3 + 2)}
    assert "company" not in rates  # names are read one way only


GLUED = [
    ["MENJALARA TRADING"],
    ["NO 53. JALAN 3/62A"],
    ["52200KUALA LUMPUR"],
    ["TOTAL", "7.00"],
]
SPACED = "NO 53.JALAN 3/62A 52200 KUALA LUMPUR"


def test_a_number_run_into_the_word_after_it_is_also_read_apart():
    sheet = read_sheet(ocr_record(GLUED), SCHEMA)
    span = {c.normalized: c for c in sheet.candidates["address"]}[SPACED].span
    readings = [(c.ways, c.normalized) for c in sheet.candidates["address"] if c.span == span]
    assert readings == [
        (set(), "NO 53.JALAN 3/62A 52200KUALA LUMPUR"),
        ({"spaces"}, SPACED),
        ({"commas"}, "NO 53,JALAN 3/62A 52200KUALA LUMPUR"),
        ({"commas", "spaces"}, "NO 53,JALAN 3/62A 52200 KUALA LUMPUR"),
    ]
    # an ordinal, a unit's letter and a number run into a two-letter word stay as printed
    kept = read_sheet(ocr_record([["3RD FLR, NO.145G"], ["1234KL"]]), SCHEMA)
    assert all(c.ways == set() for c in kept.candidates["address"])


def test_each_way_is_counted_on_its_own_and_taken_where_right_more_often_than_not():
    torch.manual_seed(0)
    labels = [("a" * 64, "NO 53,JALAN 3/62A 52200 KUALA LUMPUR")] * 2 + [("b" * 64, SPACED)]
    glued = [
        ({**ocr_record(GLUED), "image": {"path": "g.jpg", "sha256": sha}}, {"address": value})
        for sha, value in labels
    ]
    rates = reading_rates(examples(glued, SCHEMA, 0.0))
    assert rates["address"] == {"commas": (2 + 1) / (3 + 2), "spaces": (3 + 1) / (3 + 2)}
    sheet = read_sheet(ocr_record(GLUED), SCHEMA)
    found = sheet.candidates["address"]
    span = next(c.span for c in found if c.normalized == SPACED)
    sheet.candidates["address"] = [c for c in found if c.span == span]  # its four readings
    by_rates = addresses_read(
        sheet,
        both={"commas": 0.6, "spaces": 0.8},
        spaces={"commas": 0.4, "spaces": 0.8},
        neither={"commas": 0.4, "spaces": 0.2},
        older={"commas": 0.7, "printed": 0.3},  # the card of a model made before spaces
    )
    assert {way: c.ways for way, c in by_rates.items()} == {
        "both": {"commas", "spaces"},
        "spaces": {"spaces"},
        "neither": set(),
        "older": {"commas"},
    }


def test_a_block_of_rows_normalises_as_its_joined_text_would():
    """Candidates' values are normalised from their rows', not from the joined text: the
    same result, over rows that end or start with punctuation, spaces or nothing."""
    rows = ["NO 7.", " , JALAN", "KL ;", "Ávenue  12", ":x", "a.b, c", "LOT 5. TAMAN", "47400PJ."]
    for block in itertools.permutations(rows, 3):
        sheet = read_sheet(ocr_record([[text] for text in block]), SCHEMA)
        for candidate in sheet.candidates["address"]:
            assert candidate.normalized == normalize_text(candidate.value), candidate.value


def test_a_company_name_printed_over_two_rows_is_offered_whole_never_a_piece():
    rows = [["POPULAR BOOK"], ["CO.(M) SDN BHD"], ["HOME MASTER HARDWARE &"], ["ELECTRICAL"]]
    rows += [["S&Y STATIONERY"], ["SDN.BHD"]]
    sheet = read_sheet(ocr_record(rows), SCHEMA)
    companies = {c.normalized for c in sheet.candidates["company"]}
    assert {"POPULAR BOOK CO.(M) SDN BHD", "HOME MASTER HARDWARE & ELECTRICAL"} <= companies
    assert not companies & {"CO.(M) SDN BHD", "HOME MASTER HARDWARE &", "SDN.BHD"}
    assert "S&Y STATIONERY" in companies  # a short name beside a trade word is whole
    # only a field named by its legal forms reads so: an address row may be anything
    assert "CO.(M) SDN BHD" in {c.normalized for c in sheet.candidates["address"]}


def test_a_name_and_an_address_never_share_a_row():
    """The odds put the name's row on top of the address too: chosen together, the name
    keeps its row and the address is the rows below it, with what probability is left."""
    sheet = read_sheet(receipt(), SCHEMA)
    name = "LIM SENG THO HARDWARE TRADING (002231061-T)"
    address = PRINTED.replace("NO 7.", f"{name} NO 7.")  # the three rows: a row too many
    below = [c for c in sheet.candidates["address"] if c.normalized == PRINTED]

    def odds(field: str, favourite: str, runner_up: set[int]) -> list[float]:
        found = sheet.candidates[field]
        weights = [
            8.0 if c.normalized == favourite else 4.0 if id(c) in runner_up else 0.1 for c in found
        ]
        return [w / sum(weights) for w in weights]

    chances = {
        field: [1 / max(len(found), 1)] * len(found) for field, found in sheet.candidates.items()
    }
    chances["company"] = odds("company", name, set())
    chances["address"] = odds("address", address, {id(c) for c in below})
    picks = choose(sheet, chances, {})
    assert picks["company"].candidate.normalized == name
    assert picks["address"].candidate.normalized == PRINTED
    found = sheet.candidates["address"]
    alone = sum(
        p for c, p in zip(found, chances["address"], strict=True) if c.span == below[0].span
    )
    assert picks["address"].confidence == alone  # the odds of its span's readings, no more
