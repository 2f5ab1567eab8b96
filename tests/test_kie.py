"""The local KIE rules and the value normalisers, over hand-made OCR records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ocrkie.engines import Document
from ocrkie.engines.rules import RuleExtractor
from ocrkie.fields import load_field_schema
from ocrkie.normalize import normalize_amount, normalize_date, normalize_text
from ocrkie.page import Line, Word, lines_record

RECEIPT_SCHEMA = Path(__file__).parents[1] / "config" / "fields" / "receipt.json"


def ocr_record(rows: list[list[str]]) -> dict:
    """An OCR record whose rows hold the given cells, left to right, 40 px apart."""
    lines = []
    for r, cells in enumerate(rows):
        for c, text in enumerate(cells):
            x, y = 20 + 300 * c, 20 + 40 * r
            words, cursor = [], x
            for token in text.split():
                width = 12 * len(token)
                words.append(
                    Word(
                        token,
                        0.9,
                        [
                            [cursor, y],
                            [cursor + width, y],
                            [cursor + width, y + 24],
                            [cursor, y + 24],
                        ],
                    )
                )
                cursor += width + 12
            lines.append(
                Line(text, 0.9, [[x, y], [cursor, y], [cursor, y + 24], [x, y + 24]], words)
            )
    return {"status": "ok", **lines_record(lines)}


RECEIPT = [
    ["WELCOME"],
    ["MAJU JAYA TRADING SDN BHD (123456-X)"],
    ["NO. 5, JALAN INDAH 2,"],
    ["TAMAN INDAH,"],
    ["81100 JOHOR BAHRU"],
    ["JOHOR"],
    ["TEL: 07-1234567"],
    ["INVOICE NO: 889"],
    ["DATE: 05/01/2019 10:31"],
    ["ITEM A", "12.00"],
    ["ITEM B", "3.50"],
    ["SUBTOTAL", "15.50"],
    ["TOTAL QTY", "2"],
    ["GST 6%", "0.93"],
    ["TOTAL (INCL GST)", "RM 16.43"],
    ["CASH", "50.00"],
    ["CHANGE", "33.57"],
]
ADDRESS = "NO.5,JALAN INDAH 2,TAMAN INDAH,81100 JOHOR BAHRU JOHOR"  # rows 2-5, normalised


@pytest.fixture(scope="module")
def fields() -> dict:
    extractor = RuleExtractor(load_field_schema(RECEIPT_SCHEMA))
    return extractor.extract(Document(ocr_record(RECEIPT), "")).fields


def test_company_is_the_labelled_name_without_its_registration_number(fields):
    assert fields["company"]["value"] == "MAJU JAYA TRADING SDN BHD"
    assert fields["company"]["normalized"] == "MAJU JAYA TRADING SDN BHD"


@pytest.mark.parametrize(
    ("printed", "name"),
    [
        ("99 SPEED MART S/B (519537-X)", "99 SPEED MART S/B"),
        ("99 SPEED MART S/B 519537-X)", "99 SPEED MART S/B"),  # OCR lost the "("
        ("KING'S CONFECTIONERY S/B 273500-U (GKJ)", "KING'S CONFECTIONERY S/B"),
        ("KING'S CONFECTIONERY S/B 273500-U (KJ1)", "KING'S CONFECTIONERY S/B"),  # and a branch
        ("AMPANG 210 PARKING SDN BHD", "AMPANG 210 PARKING SDN BHD"),  # a number, not one
    ],
)
def test_a_registration_number_is_cut_off_however_it_is_printed(printed, name):
    record = ocr_record([[printed], *RECEIPT[2:]])
    extracted = RuleExtractor(load_field_schema(RECEIPT_SCHEMA)).extract(Document(record, ""))
    assert extracted.fields["company"]["value"] == name


@pytest.mark.parametrize(
    ("printed", "name"),
    [
        (["POPULAR BOOK", "CO.(M) SDN BHD"], "POPULAR BOOK CO.(M) SDN BHD"),  # a legal form alone
        (["MAJU JAYA", "Sdn. Bhd."], "MAJU JAYA SDN.BHD"),  # the label alone
        (["HOME MASTER HARDWARE &", "ELECTRICAL"], "HOME MASTER HARDWARE & ELECTRICAL"),
    ],
)
def test_a_name_printed_over_two_rows_is_read_whole(printed, name):
    record = ocr_record([RECEIPT[0], *([row] for row in printed), *RECEIPT[2:]])
    extracted = RuleExtractor(load_field_schema(RECEIPT_SCHEMA)).extract(Document(record, ""))
    assert extracted.fields["company"]["normalized"] == name


def test_address_spans_rows_down_to_the_postcode_and_state(fields):
    assert fields["address"]["normalized"] == ADDRESS
    assert len(fields["address"]["source"]["lines"]) == 4


@pytest.mark.parametrize("printed", ["(Co. No. 113825-W)", "CO.NO 419060-A", "CO NO: 373665-A"])
def test_a_registration_row_under_the_name_is_no_part_of_the_address(printed):
    record = ocr_record([RECEIPT[1], [printed], *RECEIPT[2:]])
    extracted = RuleExtractor(load_field_schema(RECEIPT_SCHEMA)).extract(Document(record, ""))
    assert extracted.fields["address"]["normalized"] == ADDRESS


def test_date_is_iso_8601(fields):
    assert fields["date"]["value"] == "05/01/2019"
    assert fields["date"]["normalized"] == "2019-01-05"


def test_total_skips_subtotal_and_quantities_and_points_at_its_words(fields):
    total = fields["total"]
    assert total["value"] == "16.43"
    assert total["normalized"] == "16.43"
    assert total["confidence"] == pytest.approx(0.9)
    assert [w["text"] for w in total["source"]["words"]] == ["16.43"]
    _, y0 = total["source"]["polygon"][0]
    assert y0 == 20 + 40 * 14  # the TOTAL row


def test_a_missing_field_is_null_with_zero_confidence():
    extractor = RuleExtractor(load_field_schema(RECEIPT_SCHEMA))
    fields = extractor.extract(Document(ocr_record([["HELLO WORLD"]]), "")).fields
    assert fields["total"] == {
        "type": "amount",
        "value": None,
        "normalized": None,
        "confidence": 0.0,
        "source": None,
    }


def test_a_field_without_hints_reads_the_value_after_its_label(tmp_path: Path):
    schema = tmp_path / "invoice.json"
    schema.write_text(
        json.dumps(
            {
                "type": "object",
                "properties": {
                    "invoice_no": {"type": "string", "description": "Invoice number"},
                    "amount_due": {"type": "number", "description": "Amount to pay"},
                },
            }
        )
    )
    ocr = ocr_record([["ACME"], ["Invoice No: INV-2231"], ["Amount due", "1,250.00"]])
    fields = RuleExtractor(load_field_schema(schema)).extract(Document(ocr, "")).fields
    assert fields["invoice_no"]["value"] == "INV-2231"
    assert fields["amount_due"]["normalized"] == "1250.00"


def test_the_schema_sent_to_a_service_has_no_local_hints():
    api = load_field_schema(RECEIPT_SCHEMA).for_api()
    assert set(api["properties"]) == {"company", "date", "address", "total"}
    assert all("x-ocrkie" not in p and p["description"] for p in api["properties"].values())


def test_a_schema_without_properties_is_refused(tmp_path: Path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"type": "object"}')
    with pytest.raises(ValueError, match="properties"):
        load_field_schema(bad)


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("25/12/2018", "2018-12-25"),
        ("25-12-18", "2018-12-25"),
        ("2018-12-25", "2018-12-25"),
        ("25.12.2018", "2018-12-25"),
        ("25 Dec 2018", "2018-12-25"),
        ("Dec 25, 2018", "2018-12-25"),
        ("25-DEC-2018", "2018-12-25"),
        ("02/JAN/2017", "2017-01-02"),
        ("3.MAY.17", "2017-05-03"),
        ("12 MARKET 2018", None),  # a word that starts like a month
        # as OCR reads them: the time run into the date, a dash read as "~"
        ("[Sales]2018-01-0522:55:25", "2018-01-05"),
        ("06/04/1711:43am", "2017-04-06"),
        ("05~05-17", "2017-05-05"),
        ("ORD #64 -REG #2- 25/12/2016 13:51:47", "2016-12-25"),
        ("00440010036 25032018 13:11:54", "2018-03-25"),  # a till that prints no separators
        ("2703/2018", "2018-03-27"),  # a separator lost
        ("9557366100208", None),  # a barcode is not a date
        ("TEL.03-77343662", None),
        ("12/25/2018", "2018-12-25"),
        ("05/01/2019", "2019-01-05"),
        ("31/02/2019", None),
        ("no date here", None),
        ("20180428", "2018-04-28"),  # as Information Extraction may answer
        (" 20181225 ", "2018-12-25"),
        ("20181345", None),
        ("12345678", None),
        ("2018-04-28T10:15:00", "2018-04-28"),
    ],
)
def test_dates(text: str, iso: str | None):
    assert normalize_date(text) == iso


def test_ambiguous_dates_follow_the_configured_order():
    assert normalize_date("05/01/2019", order="MDY") == "2019-05-01"


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("RM 16.43", "16.43"),
        ("$1,234.50", "1234.50"),
        ("12,50", "12.50"),
        ("7", "7.00"),
        ("TOTAL: 0.9", "0.90"),
        ("-3.00", "-3.00"),
        ("none", None),
    ],
)
def test_amounts(text: str, value: str | None):
    assert normalize_amount(text) == value


def test_text_ignores_case_and_spacing_around_punctuation():
    assert normalize_text(" Jalan  Sagu 18 , Taman Daya. ") == normalize_text(
        "JALAN SAGU 18,TAMAN DAYA"
    )


def total_of(rows: list[list[str]]) -> dict:
    """The total of a receipt with a shop header above ``rows``."""
    header = [["SHOP SDN BHD"], ["1, JALAN SATU"], ["DATE: 01/02/2020"]]
    extractor = RuleExtractor(load_field_schema(RECEIPT_SCHEMA))
    return extractor.extract(Document(ocr_record(header + rows), "")).fields["total"]


def test_a_rounding_adjustment_after_the_total_is_applied():
    total = total_of(
        [
            ["ITEM", "33.92"],
            ["TOTAL", "RM 33.92"],
            ["ROUNDING ADJUSTMENT", "-RM 0.02"],
            ["CASH", "RM 50.00"],
        ]
    )
    assert total["value"] == "33.92"
    assert total["normalized"] == "33.90"
    assert [w["text"] for w in total["source"]["words"]] == ["33.92", "0.02"]


def test_the_most_specific_total_label_wins_and_paid_amounts_lose():
    assert (
        total_of(
            [
                ["TOTAL", "10.00"],
                ["SERVICE CHARGE", "1.00"],
                ["GRAND TOTAL", "11.00"],
                ["PAID AMOUNT", "20.00"],
            ]
        )["normalized"]
        == "11.00"
    )
    assert (
        total_of(
            [
                ["Total Amt Incl. GST", "79.50"],
                ["Paid Amount", "100.00"],
                ["Total Qty Tender", "101"],
            ]
        )["normalized"]
        == "79.50"
    )


def test_an_impossible_date_does_not_swallow_the_real_one():
    assert normalize_date("ORD #50 -REG #19- 18/01/2018 10:27:03") == "2018-01-18"


def test_a_date_run_into_its_time_is_found():
    assert normalize_date("14/03/20185:57:07PM") == "2018-03-14"
