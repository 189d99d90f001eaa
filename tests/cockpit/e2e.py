#!/usr/bin/python3
"""The Cockpit page in a real browser, driven by tests/tests/cockpit.rs.

Headless chromium (through chromedriver and selenium) opens the page that
cockpit-ws serves on 127.0.0.1 and acts as a person would: the machines
table, a power-off, the console, a pull with progress, the start-at-boot
switch, refused input. The machines, the HTTP server, cockpit-ws and the
clean-up are the Rust test's; this script gets what it needs as one JSON
argument and prints `ok STEP` lines, failing with the first broken one.
Screenshots go to the directory given.
"""

import json
import os
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

cfg = json.loads(sys.argv[1])
shots = cfg["screenshots"]


def wait(what, f, limit=30):
    end = time.time() + limit
    last = None
    while time.time() < end:
        try:
            v = f()
            if v:
                return v
        except Exception as e:  # the page is still changing under us
            last = e
        time.sleep(0.2)
    shot("failed")
    raise SystemExit(f"timed out waiting for {what}" + (f" (last error: {last})" if last else ""))


def shot(name):
    path = os.path.join(shots, f"{name}.png")
    driver.save_screenshot(path)
    print(f"screenshot {path}", flush=True)


def ok(step):
    print(f"ok {step}", flush=True)


def by_id(i):
    return driver.find_element(By.ID, i)


def row(table, name):
    for tr in driver.find_elements(By.CSS_SELECTOR, f"#{table} tbody tr"):
        if tr.get_attribute("data-name") == name:
            return tr
    return None


def click(what, find, limit=30):
    """Click what `find` returns, again if the page redrew it meanwhile
    (the machines table is redrawn with every top sample)."""
    def attempt():
        find().click()
        return True
    wait(what, attempt, limit)


def cell_text(table, name, cls):
    r = row(table, name)
    return r.find_element(By.CSS_SELECTOR, f"td.{cls}").text if r else None


opts = webdriver.ChromeOptions()
opts.binary_location = cfg["chromium"]
for a in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
          "--window-size=1400,1300", f"--user-data-dir={cfg['profile']}",
          "--no-first-run", "--disable-extensions", "--disable-background-networking"]:
    opts.add_argument(a)
driver = webdriver.Chrome(service=Service(cfg["chromedriver"], log_path=os.path.join(shots, "chromedriver.log")), options=opts)
try:
    driver.set_page_load_timeout(30)
    # In Cockpit's shell: the manifest's menu entry, the page in its frame.
    driver.get(cfg["shell_url"])
    wait("the menu entry", lambda: any(a.text == "nspawn machines" for a in driver.find_elements(By.TAG_NAME, "a")))
    frame = wait("the page's frame", lambda: driver.find_element(By.CSS_SELECTOR, "iframe[name='cockpit1:localhost/nspawn']"))
    driver.switch_to.frame(frame)
    wait("the page in the shell", lambda: driver.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1")
    driver.switch_to.default_content()
    shot("shell")
    ok("shell")

    # The page alone, as the rest of the test uses it.
    driver.get(cfg["url"])
    wait("the page to start", lambda: driver.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1")

    # The table lists the running machines, with top's numbers.
    for m in cfg["machines"]:
        wait(f"{m} in the table", lambda: row("machines", m))
    wait("CPU and memory from top", lambda: cell_text("machines", cfg["machines"][0], "memory") not in (None, "-"))
    ok("table")

    # Details: the process tree of the selected machine.
    click("the console machine", lambda: row("machines", cfg["console"]))
    wait("the process tree", lambda: "sh" in by_id("d-tree").text)
    time.sleep(2.5)  # a graph needs two samples
    shot("machines")
    ok("details")

    # The console: a shell in the machine takes typing.
    by_id("c-shell").click()
    term = by_id("console")
    wait("a shell prompt", lambda: "#" in term.text or "$" in term.text)
    term.click()
    term.send_keys("echo typed-$((6*7))")
    term.send_keys(Keys.ENTER)
    wait("the shell's answer", lambda: "typed-42" in term.text)
    shot("console")
    ok("console")

    if cfg.get("debian"):
        d = cfg["debian"]
        wait(f"{d} in the table", lambda: row("machines", d))
        click("the Debian machine", lambda: row("machines", d))
        wait("Debian's status", lambda: "Debian" in by_id("d-status").text)
        # Its journal, linked to the host's: the last lines in the details.
        if cfg.get("debian_journal"):
            wait("Debian's journal", lambda: by_id("d-journal").is_displayed() and by_id("d-journal").text.strip(), 30)
        by_id("c-login").click()
        wait("Debian's login prompt", lambda: "login:" in by_id("console").text, 60)
        by_id("console").send_keys("root")
        by_id("console").send_keys(Keys.ENTER)
        # The fixture's root has no password: a shell prompt follows.
        wait("Debian's shell", lambda: f"root@{d}:~#" in by_id("console").text)
        by_id("console").send_keys("echo typed-$((6*7))")
        by_id("console").send_keys(Keys.ENTER)
        wait("Debian's answer", lambda: "typed-42" in by_id("console").text.split("echo typed", 1)[-1])
        shot("debian-login")
        ok("debian login")

    # Power off (the machine's init exits on SIGRTMIN+4): it leaves the table.
    click("the machine to power off", lambda: row("machines", cfg["poweroff"]))
    wait("the details", lambda: by_id("d-name").text == cfg["poweroff"])
    by_id("d-poweroff").click()
    wait("the machine to end", lambda: row("machines", cfg["poweroff"]) is None)
    ok("poweroff")

    # Images: a pull with progress; the new image appears.
    by_id("tab-images").click()
    by_id("p-url").send_keys(cfg["pull_url"])
    by_id("p-name").send_keys(cfg["pull_name"])
    by_id("p-verify").send_keys("no")
    by_id("p-start").click()
    seen = set()

    def pulled():
        seen.add(by_id("p-percent").text)
        return by_id("p-percent").text in ("Done.", "Failed.")
    wait("the pull to end", pulled, 90)
    if by_id("p-percent").text != "Done.":
        shot("failed")
        raise SystemExit(f"the pull failed: {by_id('p-log').text}")
    assert any(s.endswith("%") for s in seen), f"no progress shown: {seen}"
    wait("the pulled image in the table", lambda: row("images", cfg["pull_name"]))
    shot("images")
    ok("pull")

    # Start at boot: the switch makes and removes the link.
    link = os.path.join(cfg["unit_dir"], "machines.target.wants", f"nspawn@{cfg['pull_name']}.service")
    sw = lambda: row("images", cfg["pull_name"]).find_element(By.CSS_SELECTOR, "label.enabled")
    click("the switch", sw)
    wait("the link", lambda: os.path.islink(link))
    wait("the switch on", lambda: sw().find_element(By.TAG_NAME, "input").is_selected())
    shot("enabled")
    click("the switch", sw)
    wait("the link gone", lambda: not os.path.lexists(link))
    ok("enable")

    # Clone, rename, read-only on and off, remove (confirmed).
    pull, clone, renamed = cfg["pull_name"], cfg["pull_name"] + "-c", cfg["pull_name"] + "-r"

    def image_dialog(name, action, value=None):
        click(action, lambda: row("images", name).find_element(By.CSS_SELECTOR, f"button.{action}"))
        wait(f"the {action} dialog", lambda: by_id("modal").is_displayed())
        if value is not None:
            by_id("f-new").clear()
            by_id("f-new").send_keys(value)
        by_id("m-ok").click()
        wait(f"the {action} dialog to close", lambda: not by_id("modal").is_displayed(), 60)

    image_dialog(pull, "clone", clone)
    wait("the clone", lambda: row("images", clone))
    image_dialog(clone, "rename", renamed)
    wait("the renamed clone", lambda: row("images", renamed) and not row("images", clone))
    ro = lambda: row("images", renamed).find_element(By.CSS_SELECTOR, "label.read-only")
    for on in (True, False):
        click("the read-only switch", ro)
        wait(f"read-only {on}", lambda: ro().find_element(By.TAG_NAME, "input").is_selected() == on)
        if on:
            shot("read-only")
    image_dialog(renamed, "remove")
    wait("the clone removed", lambda: row("images", renamed) is None)
    ok("image verbs")

    # Start from the image (ephemeral, no veth), then terminate, confirmed.
    click("start", lambda: row("images", pull).find_element(By.CSS_SELECTOR, "button.start"))
    wait("the start dialog", lambda: by_id("modal").is_displayed())
    by_id("f-ephemeral").click()
    by_id("f-veth").click()
    by_id("m-ok").click()
    wait("the start", lambda: not by_id("modal").is_displayed(), 60)
    by_id("tab-machines").click()
    wait("the started machine", lambda: row("machines", pull), 30)
    click("the started machine", lambda: row("machines", pull))
    wait("its details", lambda: by_id("d-name").text == pull)
    by_id("d-terminate").click()
    wait("the confirmation", lambda: by_id("modal").is_displayed())
    shot("terminate")
    by_id("m-ok").click()
    wait("the machine to end", lambda: row("machines", pull) is None, 30)
    by_id("tab-images").click()
    ok("start and terminate")

    # Bad input is refused with the tool's words.
    click("rename", lambda: row("images", cfg["pull_name"]).find_element(By.CSS_SELECTOR, "button.rename"))
    field = wait("the rename dialog", lambda: by_id("f-new"))
    field.clear()
    field.send_keys("no/slash")
    by_id("m-ok").click()
    wait("the tool's refusal", lambda: by_id("m-error").is_displayed() and "nspawnctl:" in by_id("m-error").text)
    print(f"refused: {by_id('m-error').text}", flush=True)
    shot("refused")
    by_id("m-cancel").click()
    by_id("p-url").clear()
    by_id("p-url").send_keys("--help")
    by_id("p-name").clear()
    by_id("p-start").click()
    wait("the bad URL refused", lambda: by_id("p-percent").text == "Failed." and by_id("alert").text)
    print(f"refused: {by_id('alert').text}", flush=True)
    ok("refused")
finally:
    driver.quit()
