"""One sign-in per browser for a shift (issue 20, item 5), in a real Chromium against the whole
product (the fixtures of test_web_ui.py: the built SPA behind the shipped nginx.conf, the four
services): a new tab of the browser is signed in, sign-out in one tab signs every tab out, and the
session is a cookie no script of the page can read."""
import pytest
import requests

from tests import test_web_ui as web_ui
from tests.test_web_ui import WAIT_MS, expect, session_cookie, sign_in, signed_in_as_d01

pytestmark = pytest.mark.module_database

# The browser suite's fixtures, shared rather than written twice.
web_dist, site, browser, page = web_ui.web_dist, web_ui.site, web_ui.browser, web_ui.page


def _signed_in(tab):
    """What the clinician sees once signed in: the dashboard greets them and alarms are live (the
    live socket's ticket is a POST: it took the session's CSRF token)."""
    expect(tab.get_by_role("heading", level=1)).to_contain_text("Dr. Michael Brooks")
    expect(tab.get_by_role("status").filter(has_text="Live")).to_be_visible()


def test_a_second_tab_is_signed_in_without_signing_in_again(page, site):
    token = signed_in_as_d01(page)
    assert token and page.evaluate("document.cookie") == ""  # the page cannot read its session
    second = page.context.new_page()
    second.set_default_timeout(WAIT_MS)
    second.set_viewport_size({"width": 375, "height": 812})  # the phone-sized tab too
    second.goto("/")
    _signed_in(second)
    expect(second.get_by_role("heading", name="Sign in")).to_have_count(0)
    # One session for the browser, not one per tab.
    assert session_cookie(second) == token
    me = requests.get(f"{site}/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert me.status_code == 200 and me.json()["session"]["idle_minutes"] == 30


def test_signing_out_in_one_tab_signs_out_the_other(page, site):
    token = signed_in_as_d01(page)
    second = page.context.new_page()
    second.set_default_timeout(WAIT_MS)
    second.goto("/incidents")
    expect(second.get_by_role("button", name="Sign out")).to_be_visible()
    second.get_by_role("button", name="Sign out").click()
    expect(second.get_by_role("heading", name="Sign in")).to_be_visible()
    # The first tab, left alone, goes to the login page by itself and says why.
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("You are signed out")
    # Ended on the server too, and the cookie is gone: a reload stays signed out.
    answer = requests.get(f"{site}/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert answer.status_code == 401
    assert session_cookie(page) is None
    page.goto("/incidents")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_signing_in_in_one_tab_signs_in_a_tab_waiting_on_the_login_page(page):
    second = page.context.new_page()
    second.set_default_timeout(WAIT_MS)
    second.goto("/")
    expect(second.get_by_role("heading", name="Sign in")).to_be_visible()
    sign_in(page)
    _signed_in(page)
    _signed_in(second)
