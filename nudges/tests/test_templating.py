import pytest
from hypothesis import given
from hypothesis import strategies as st

from nudges.templating import TemplateError, check, render, render_email, text_to_html


def test_placeholders_are_filled_and_html_values_are_escaped() -> None:
    values = {"first_name": "<b>Ann</b>", "school_name": "St Mary's & St John's"}
    assert render("Hi {{ first_name }} at {{school_name}}", values) == (
        "Hi <b>Ann</b> at St Mary's & St John's"
    )
    assert render("Hi {{ first_name }}", values, html=True) == "Hi &lt;b&gt;Ann&lt;/b&gt;"


@pytest.mark.parametrize(
    "text",
    [
        "Hello {{ password }}",
        "{% load static %}",
        "{{ first_name|upper }}",
        "{# comment #}",
        "{{ first_name.__class__ }}",
    ],
)
def test_anything_but_known_placeholders_is_refused(text: str) -> None:
    with pytest.raises(TemplateError):
        check(text)


def test_the_error_names_the_unknown_placeholder() -> None:
    with pytest.raises(TemplateError, match=r"Unknown placeholder.*pupil_name"):
        check("Dear {{ first_name }}, how is {{ pupil_name }}?")


def test_an_unsubscribe_link_is_always_added() -> None:
    email = render_email(
        "Pilot starts {{ phase_start }}",
        "Hi {{ first_name }},\n\nSee you soon.",
        "",
        {"first_name": "Ann", "phase_start": "6 January", "unsubscribe_url": "https://x/u/abc/"},
    )
    assert email.subject == "Pilot starts 6 January"
    assert email.text.endswith("Unsubscribe: https://x/u/abc/\n")
    assert email.html.startswith("<p>Hi Ann,</p>")
    assert '<a href="https://x/u/abc/">Unsubscribe</a>' in email.html


def test_literal_text_of_a_plain_template_is_escaped_in_html() -> None:
    assert text_to_html("Fish & chips < 5\n{{ first_name }}") == (
        "<p>Fish &amp; chips &lt; 5<br>\n{{ first_name }}</p>"
    )


@given(
    st.text(alphabet=st.characters(blacklist_characters="{}%#"), max_size=200), st.text(max_size=50)
)
def test_rendering_never_lets_a_value_inject_markup(literal: str, value: str) -> None:
    html = render(literal + "{{ first_name }}", {"first_name": value}, html=True)
    assert "<" not in html[len(literal) :]
