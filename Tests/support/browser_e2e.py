#!/usr/bin/env python3
"""The sign page in a real browser: Debian's Chromium, headless, through chromium-driver
and Selenium, with axe-core (axe-selenium-python) on every kind of page.

    browser_e2e.py main BASE SPOOL SHOTS UNSUB_CLICK UNSUB_ONE_CLICK
    browser_e2e.py expired BASE CONFIRM_PATH

main: the petition at 1280 and 390 px (screenshots in SHOTS), a validation error (the
values kept), a valid signature, its confirmation mail read from the aiosmtpd SPOOL, the
confirmation page (a GET changes nothing) and its button (the count rises), a duplicate
(the same page, an "already signed" mail), an unknown link, the unsubscribe page and its
button (UNSUB_CLICK), and an RFC 8058 one-click POST (UNSUB_ONE_CLICK). It leaves one
signature unconfirmed and prints its confirmation path on the last line as
"pending PATH", for the `expired` run against a server started 8 days later.

Every page must have no critical or serious axe violation. Prints one line per step
and exits 1 at the first failure.
"""
import email
import email.policy
import glob
import json
import os
import re
import sys
import time
import urllib.request

from axe_selenium_python import Axe
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait


class Failure(Exception):
    pass


def check(condition, what):
    if not condition:
        raise Failure(what)
    print("ok:", what, flush=True)


def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(executable_path="/usr/bin/chromedriver"), options=options)


def accessible(driver, page):
    axe = Axe(driver)
    axe.inject()
    results = axe.run()
    bad = [f"{v['id']} ({v['impact']}): {v['help']}" for v in results["violations"] if v["impact"] in ("critical", "serious")]
    check(not bad, f"axe: no critical or serious violation on the {page} page {bad}")


def count(base):
    with urllib.request.urlopen(base + "/c/fair-rates/count.json") as response:
        return json.load(response)["count"]


def mails(spool):
    found = []
    for path in sorted(glob.glob(os.path.join(spool, "*.eml"))):
        with open(path, "rb") as f:
            message = email.message_from_binary_file(f, policy=email.policy.default)
        found.append((str(message["Subject"]), message.get_body(("plain",)).get_content()))
    return found


def wait_for_mail(spool, n):
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = mails(spool)
        if len(found) >= n:
            return found
        time.sleep(0.1)
    raise Failure(f"mail {n} did not arrive")


def fill(driver, values):
    for name, value in values.items():
        field = driver.find_element(By.NAME, name)
        if field.tag_name == "select":
            field.find_element(By.CSS_SELECTOR, f"option[value='{value}']").click()
        else:
            field.clear()
            field.send_keys(value)


def submit(driver):
    """Presses the form's button and waits for the next page to replace this one."""
    page = driver.find_element(By.TAG_NAME, "html")
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit], form input[type=submit]").click()
    WebDriverWait(driver, 60).until(expected_conditions.staleness_of(page))
    # The old page is gone; wait until the new one has finished loading, so the next
    # lookup cannot land on a document that is still being replaced (on a loaded
    # machine Chromium then answers "Node ... does not belong to the document").
    WebDriverWait(driver, 60).until(lambda d: d.execute_script("return document.readyState") == "complete")


def heading(driver):
    return driver.find_element(By.TAG_NAME, "h1").text


def main(base, spool, shots, unsub_click, unsub_one_click):
    driver = browser()
    try:
        petition = base + "/c/fair-rates"
        before = count(base)
        driver.get(petition)
        check("Fair rates" in heading(driver), "the petition opens")
        accessible(driver, "petition")
        driver.execute_script("window.scrollTo(0, 0)")
        driver.save_screenshot(os.path.join(shots, "petition-1280.png"))
        driver.set_window_size(390, 844)
        driver.get(petition)
        width = driver.execute_script("return document.documentElement.scrollWidth")
        check(width <= 390, f"no sideways scrolling at 390 px (page {width} px wide)")
        driver.save_screenshot(os.path.join(shots, "petition-390.png"))
        driver.set_window_size(1280, 900)

        # A validation error: shown beside the field, with the typed values kept.
        driver.get(petition)
        fill(driver, {"name": "Ana Lima", "email": "ana@example", "field.region": "Lyon"})  # a browser takes it, muster does not
        driver.find_element(By.NAME, "consent.updates").click()
        submit(driver)
        error = driver.find_element(By.ID, "in-email-error").text
        check(error != "", f"the email error is shown beside its field: {error!r}")
        check(driver.find_element(By.NAME, "name").get_attribute("value") == "Ana Lima", "the typed name is kept")
        check(driver.find_element(By.NAME, "consent.updates").is_selected(), "the ticked consent stays ticked")
        accessible(driver, "petition with errors")
        driver.execute_script("document.getElementById('errors').scrollIntoView()")
        driver.save_screenshot(os.path.join(shots, "errors-1280.png"))

        # The same form corrected: pending, "check your inbox".
        fill(driver, {"email": "ana@example.org"})
        submit(driver)
        check(heading(driver) == "Check your inbox", "a valid form says: check your inbox")
        inbox_page = driver.page_source
        accessible(driver, "check your inbox")
        check(count(base) == before, "not counted before confirmation")

        subject, text = wait_for_mail(spool, 1)[0]
        check(subject.startswith("Please confirm your signature"), f"the confirmation mail arrives: {subject!r}")
        link = re.search(r"http://\S+/confirm/[A-Za-z0-9_-]{22}", text).group(0)
        driver.get(link)
        driver.get(link)  # twice, as a mail scanner and then the signer
        check(heading(driver) == "Confirm your signature", "the link opens the confirmation page")
        accessible(driver, "confirmation")
        driver.set_window_size(390, 844)
        driver.save_screenshot(os.path.join(shots, "confirm-390.png"))
        driver.set_window_size(1280, 900)
        check(count(base) == before, "opening the link changes nothing")
        submit(driver)
        body = driver.find_element(By.TAG_NAME, "main").text
        check("your signature counts" in body and f"{before + 1} of 10" in body, f"the button confirms and shows the count: {body!r}")
        check(count(base) == before + 1, "count.json counts it")
        driver.get(petition)
        shown = driver.find_element(By.TAG_NAME, "main").text
        check(f"{before + 1} of 10" in shown, f"the petition page shows the new count: {shown[:300]!r}")

        # A duplicate: the same page, and an "already signed" mail instead.
        driver.get(petition)
        fill(driver, {"name": "Ana Lima", "email": "ana+again@example.org", "field.region": "Lyon"})
        submit(driver)
        check(heading(driver) == "Check your inbox", "a duplicate gets the same page")
        subject, _ = wait_for_mail(spool, 2)[1]
        check(subject.startswith("You have already signed"), f"and an already-signed mail: {subject!r}")

        # A third signer, left unconfirmed for the expiry run.
        driver.get(petition)
        fill(driver, {"name": "Cy Dee", "email": "cy@example.org", "field.region": "Paris"})
        submit(driver)
        _, text = wait_for_mail(spool, 3)[2]
        pending = re.search(r"/confirm/[A-Za-z0-9_-]{22}", text).group(0)

        # A link that does not exist.
        driver.get(base + "/confirm/" + "A" * 22)
        check(heading(driver) == "This link does not work", "an unknown link says so")
        accessible(driver, "unknown link")

        # Unsubscribe: the page and its button, then a provider's one-click POST.
        driver.get(base + unsub_click)
        check(heading(driver) == "Unsubscribe", "the unsubscribe link opens its page")
        accessible(driver, "unsubscribe")
        driver.set_window_size(390, 844)
        driver.save_screenshot(os.path.join(shots, "unsubscribe-390.png"))
        driver.set_window_size(1280, 900)
        submit(driver)
        check(heading(driver) == "You are unsubscribed", "its button unsubscribes")
        request = urllib.request.Request(base + unsub_one_click, data=b"List-Unsubscribe=One-Click", method="POST",
                                         headers={"Content-Type": "application/x-www-form-urlencoded"})
        with urllib.request.urlopen(request) as response:
            check(response.status == 200, "an RFC 8058 one-click POST is answered 200")
        print("pending", pending, flush=True)
    finally:
        driver.quit()


def expired(base, path):
    driver = browser()
    try:
        before = count(base)
        driver.get(base + path)
        check(heading(driver) == "This link does not work", "an expired link says so")
        check(not driver.find_elements(By.CSS_SELECTOR, "form button"), "and offers no button")
        accessible(driver, "expired link")
        check(count(base) == before, "nothing was counted")
    finally:
        driver.quit()


if __name__ == "__main__":
    try:
        if sys.argv[1] == "main":
            main(*sys.argv[2:7])
        else:
            expired(*sys.argv[2:4])
    except Failure as failure:
        print("FAILED:", failure, flush=True)
        sys.exit(1)
