"""Name, email, domain and phone matching against loaded list entries (pure, no files)."""

from __future__ import annotations

from routing_core.lead import parse_lead
from routing_core.name_screening import ListEntry, ListScreener, LoadedList, fold_name, phone_digits


def _lead(**fields: str):  # type: ignore[no-untyped-def]
    return parse_lead({"source": "test", "id": "L1", "jurisdiction": "GB", **fields})


SANCTIONS = LoadedList(
    check="sanctions", list_id="sdn", digest="sha256:00",
    entries=[ListEntry("1", "KARVOSSEN, Taras Ilvenovich", aliases=("Тарас Карвоссен",)),
             ListEntry("2", "Orlovane Maritime Trading LLC")],
)
BLOCK = LoadedList(
    check="blocklist", list_id="internal", digest="sha256:01",
    entries=[ListEntry("row 2", "", emails=("Fraud@Example.org",)),
             ListEntry("row 3", "", domains=("bad.example.net",)),
             ListEntry("row 4", "", phones=("+44 7700 900999",))],
)


def screen(lead, *lists, threshold=0.9):  # type: ignore[no-untyped-def]
    return ListScreener(lists or (SANCTIONS,), threshold=threshold).screen(lead)


def test_fold_name_ignores_case_accents_punctuation_and_order() -> None:
    assert fold_name("KARVOSSEN, Táras") == fold_name("taras karvossen") == "karvossen taras"


def test_reordered_name_with_middle_name_left_out_is_a_hit() -> None:
    [result] = screen(_lead(first_name="Taras", last_name="Karvossen"))
    assert result.hit and result.best_score == 1.0
    assert result.matched is not None and result.matched["entry"] == "1"


def test_alias_in_another_script_is_a_hit() -> None:
    [result] = screen(_lead(first_name="Тарас", last_name="Карвоссен"))
    assert result.hit and result.matched is not None and result.matched["entry"] == "1"


def test_invisible_characters_inside_a_name_do_not_hide_it() -> None:
    """Zero-width spaces and joiners, soft hyphens and direction marks are invisible in a CRM:
    they are dropped, not read as breaks that split "Karvossen" into words of its own."""
    for first, last in (("Ta\u200bras", "Kar\u200bvossen"), ("Taras", "Karvos\u00adsen"),
                        ("\u200eTaras\u200f", "Karvo\u2060ssen"), ("Та\u200cрас", "Кар\u200dвоссен"),
                        ("Taras\ufe0f", "Karv\ufe0fossen")):
        [result] = screen(_lead(first_name=first, last_name=last))
        assert result.hit and result.best_score == 1.0, (first, last, result)


def test_latin_name_with_cyrillic_or_greek_look_alikes_is_a_hit() -> None:
    for first, last in (("T\u0430r\u0430s", "K\u0430rv\u043essen"),   # Cyrillic а, о
                        ("Taras", "Karv\u03bfssen"),                     # Greek ο
                        ("TARAS", "KARV\u041eSSEN")):                    # Cyrillic О
        [result] = screen(_lead(first_name=first, last_name=last))
        assert result.hit and result.best_score == 1.0, (first, last, result)
    # a word in one script is its own spelling, not read as another script's
    assert fold_name("Тарас") == "тарас" and fold_name("Αθηνά") == "αθηνα"


def test_indic_vowel_signs_are_not_dropped_as_accents() -> None:
    """Two Devanagari names that differ only in their vowel signs are two names, not one
    (dropping every mark made them a false hit at full marks)."""
    assert fold_name("सीता राम") != fold_name("सुता रम")
    listed = LoadedList(check="sanctions", list_id="sdn", digest="sha256:00",
                        entries=[ListEntry("1", "सीता राम")])
    [result] = screen(_lead(first_name="सुता", last_name="रम"), listed)
    assert not result.hit
    [result] = screen(_lead(first_name="सी\u200dता", last_name="राम"), listed)  # a joiner
    assert result.hit and result.best_score == 1.0


def test_one_shared_word_is_not_a_hit() -> None:
    [result] = screen(_lead(first_name="Taras", last_name="Smith"))
    assert not result.hit
    assert 0 < result.best_score < 0.9


def test_company_name_is_screened_too() -> None:
    [result] = screen(_lead(first_name="Ann", last_name="Lee",
                            company="Orlovane Maritime Trading LLC"))
    assert result.hit and result.matched is not None and result.matched["entry"] == "2"


def test_threshold_decides() -> None:
    lead = _lead(first_name="Taras Ilvenovich", last_name="Karvosen")   # one letter off
    [strict] = screen(lead, threshold=0.99)
    [lenient] = screen(lead, threshold=0.85)
    assert not strict.hit and lenient.hit
    assert strict.best_score == lenient.best_score


def test_clean_lead_records_best_score_and_digest() -> None:
    [result] = screen(_lead(first_name="Amelia", last_name="Thornbury"))
    assert result.to_json() == {"check": "sanctions", "list": "sdn", "list_digest": "sha256:00",
                                "hit": False, "best_score": result.best_score}


def test_blocklist_matches_email_domain_and_phone_exactly() -> None:
    email = screen(_lead(email="fraud@example.org"), BLOCK)[0]
    domain = screen(_lead(email="anyone@bad.example.net"), BLOCK)[0]
    phone = screen(_lead(phone="0044 7700 900 999"), BLOCK)[0]
    clean = screen(_lead(email="anyone@good.example.net", phone="+44 7700 900100"), BLOCK)[0]
    assert [r.matched["matched_on"] for r in (email, domain, phone) if r.matched] == [
        "email", "domain", "phone"]
    assert not clean.hit


def test_a_listed_phone_is_found_in_the_national_form_of_the_leads_country() -> None:
    for phone in ("07700 900999", "(0)7700-900999", "+44 (0)7700 900999", "0044 7700 900999"):
        [result] = screen(_lead(first_name="Ann", last_name="Lee", phone=phone), BLOCK)
        assert result.hit and result.matched == {"entry": "row 4", "matched_on": "phone"}, phone
    # the same national digits in another country are another number
    [result] = screen(parse_lead({"source": "test", "id": "L1", "jurisdiction": "FR",
                                  "first_name": "Ann", "last_name": "Lee",
                                  "phone": "07700 900999"}), BLOCK)
    assert not result.hit
    # a listed number written nationally matches a lead's number written the same way
    national = LoadedList(check="blocklist", list_id="internal", digest="sha256:02",
                          entries=[ListEntry("row 2", "", phones=("07700 900999",))])
    [result] = screen(_lead(first_name="Ann", last_name="Lee", phone="07700-900999"), national)
    assert result.hit


def test_blocklist_hit_does_not_copy_the_listed_contact_into_the_decision() -> None:
    result = screen(_lead(email="fraud@example.org"), BLOCK)[0]
    assert "example.org" not in str(result.to_json())


def test_phone_digits_drops_international_prefix() -> None:
    assert phone_digits("+44 (0)7700") == phone_digits("0044 07700") == "4407700"
