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
    """f() until it is true; on a timeout, a screenshot (and the console's
    screen, where one is open) and the end."""
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
    try:
        rows = term_rows()
        if rows:
            print("the console's screen:\n" + "\n".join(f"|{r}" for r in rows), flush=True)
    except Exception:
        pass
    raise SystemExit(f"timed out waiting for {what}" + (f" (last error: {last})" if last else ""))


def shot(name):
    # The console, where one is open, in the picture.
    try:
        if by_id("console").is_displayed():
            driver.execute_script("arguments[0].scrollIntoView({block: 'end'})", by_id("console"))
    except Exception:
        pass
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


def term_rows():
    """The console's screen as xterm.js shows it: its DOM renderer's rows
    (the visible ones), spaces as spaces. Scrolled into view first: xterm
    pauses drawing while the terminal is off screen (a long journal above
    pushes it down)."""
    return driver.execute_script(
        "const c = document.getElementById('console');"
        "if (c && !c.hidden) c.scrollIntoView({block: 'nearest'});"
        "return [...document.querySelectorAll('#console .xterm-rows > div')]"
        ".map(d => d.textContent.replace(/\\u00a0/g, ' '))")


def term_text():
    return "\n".join(term_rows())


def term_type(*keys):
    """Keys as typed into xterm.js (its hidden textarea has the focus)."""
    ta = driver.find_element(By.CSS_SELECTOR, "#console .xterm-helper-textarea")
    for k in keys:
        ta.send_keys(k)


def term_size():
    c = by_id("console")
    return int(c.get_attribute("data-rows")), int(c.get_attribute("data-cols"))


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

    # PatternFly's stylesheet applies (a primary button's blue, its
    # variables), and the text is in Cockpit's font, loaded from its
    # static/fonts.
    style = driver.execute_script(
        "const r = getComputedStyle(document.documentElement);"
        "return [getComputedStyle(document.getElementById('p-start')).backgroundColor,"
        " r.getPropertyValue('--pf-global--primary-color--100').trim(),"
        " getComputedStyle(document.body).fontFamily, typeof Terminal];")
    assert style[0] == "rgb(0, 102, 204)" and style[1] == "#06c", f"PatternFly not applied: {style}"
    assert style[2].split(",")[0].strip('"') == "RedHatText" and style[3] == "function", f"fonts or xterm.js: {style}"
    wait("Cockpit's font loaded", lambda: "RedHatText 400 loaded" in driver.execute_script(
        "return [...document.fonts].map(f => `${f.family} ${f.weight} ${f.status}`)"))
    fonts = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name).filter(n => n.includes('font'))")
    assert fonts and all("/cockpit/static/fonts/" in f for f in fonts), f"fonts not Cockpit's: {fonts}"
    ok("patternfly")

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

    # The console: xterm.js on a pty running `nspawnctl shell`; a shell
    # in the machine takes typing.
    by_id("c-shell").click()
    wait("a shell prompt", lambda: "#" in term_text() or "$" in term_text())
    term_type("echo typed-$((6*7))", Keys.ENTER)
    wait("the shell's answer", lambda: "typed-42" in term_text())
    ok("console")

    # The pty has the terminal's size (the channel's `window`), and a
    # program that moves the cursor draws where it asked.
    rows, cols = term_size()
    assert rows > 10 and cols > 40, f"terminal size {rows}x{cols}"
    term_type("stty size", Keys.ENTER)
    wait(f"stty size {rows} {cols}", lambda: f"{rows} {cols}" in [r.strip() for r in term_rows()])
    term_type("printf '\\033[2J\\033[5;10Hxy-%s\\033[12;1H' drawn", Keys.ENTER)
    wait("text at row 5, column 10", lambda: term_rows()[4].rstrip() == " " * 9 + "xy-drawn")
    shot("console")
    # A narrower window: the terminal refits and the pty follows.
    driver.set_window_size(1000, 1300)
    wait("the terminal refitted", lambda: term_size()[1] < cols)
    rows2, cols2 = term_size()
    term_type("stty size", Keys.ENTER)
    wait(f"stty size {rows2} {cols2} after the resize",
         lambda: f"{rows2} {cols2}" in [r.strip() for r in term_rows()])
    driver.set_window_size(1400, 1300)
    wait("the terminal refitted back", lambda: term_size() == (rows, cols))
    print(f"terminal {rows}x{cols}, narrower {rows2}x{cols2}", flush=True)
    ok("terminal size")

    if cfg.get("debian"):
        d = cfg["debian"]
        wait(f"{d} in the table", lambda: row("machines", d))
        click("the Debian machine", lambda: row("machines", d))
        wait("Debian's status", lambda: "Debian" in by_id("d-status").text)
        # Its journal, linked to the host's: the last lines in the details.
        if cfg.get("debian_journal"):
            wait("Debian's journal", lambda: by_id("d-journal").is_displayed() and by_id("d-journal").text.strip(), 30)
        by_id("c-login").click()
        wait("Debian's login prompt", lambda: "login:" in term_text(), 60)
        term_type("root", Keys.ENTER)
        # The fixture's root has no password: a shell prompt follows.
        wait("Debian's shell", lambda: f"root@{d}:~#" in term_text())
        term_type("echo typed-$((6*7))", Keys.ENTER)
        wait("Debian's answer", lambda: "typed-42" in term_text().split("echo typed", 1)[-1])
        shot("debian-login")
        ok("debian login")
        # Screen control through the guest's terminfo (the fixture has no
        # top or editor): clear, the cursor sent to row 10 column 20, and
        # the guest's pty of the terminal's size.
        rows, cols = term_size()
        term_type("clear; tput cup 9 19; echo drawn-by-tput; tput cup 20 0; stty size", Keys.ENTER)
        wait("tput's text at row 10, column 20, and the size", lambda: term_rows()[9].rstrip() == " " * 19 + "drawn-by-tput"
             and f"{rows} {cols}" in [r.strip() for r in term_rows()])
        shot("debian-tput")
        ok("debian screen")

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
    wait("the bad URL refused", lambda: by_id("p-percent").text == "Failed." and "nspawnctl:" in by_id("alert").text)
    print(f"refused: {by_id('alert').text}", flush=True)
    shot("refused-url")
    ok("refused")
finally:
    driver.quit()
