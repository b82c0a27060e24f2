"""A person at a real browser: headless Chromium in the `browser` container, driven over
WebDriver with Selenium.

The container (tests/browser/, started by tests/e2e/compose.e2e.yml) runs Debian's
chromium and chromedriver on the students' network, so Chromium opens the hub at
http://hub:8000 as a browser in the classroom would; only chromedriver's port is
published, on the host's loopback, for the test process. Each step leaves a screenshot
in SCREENSHOTS and its console messages in `console`; `console_errors()` names every
error not in KNOWN_HARMLESS (each with its reason).

Steps are small methods (sign_up, log_in, open_notebook, run_cell, chat, ...): a walk
is a few calls.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from aihub.services import PROXY_PORT
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.command import Command
from selenium.webdriver.remote.webelement import WebElement

# The hub as Chromium reaches it: the hub service's name on the users network.
HUB_URL = f"http://hub:{PROXY_PORT}"
BROWSER_SERVICE, WEBDRIVER_PORT = "browser", 9515
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
CHAT_PANEL = "#jupyter-ai\\:\\:chat"  # Jupyter AI's side panel (its widget id, CSS-escaped)
# Console errors a browser walk may show that do not mean something is broken, each
# (pattern, reason). Every other SEVERE message fails the walk. None is known today:
# the walk's console logs warnings and information, no error.
KNOWN_HARMLESS: list[tuple[str, str]] = []


class Chromium:
    def __init__(self, webdriver_url: str, name: str, width: int = 1400, height: int = 900):
        options = webdriver.ChromeOptions()
        options.add_argument("--headless")
        # The container is the sandbox: Chromium's own needs user namespaces Docker denies.
        options.add_argument("--no-sandbox")
        options.add_argument(f"--window-size={width},{height}")
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Remote(webdriver_url, options=options)
        self.name = name  # whose browser: prefixes its screenshots' names
        self.console: list[dict] = []

    def quit(self) -> None:
        self.driver.quit()

    # -- plumbing ------------------------------------------------------------------

    def get(self, path: str) -> None:
        self.driver.get(HUB_URL + path)

    def wait_for(self, condition, timeout: float = 60, what: str = "") -> object:
        """Poll `condition()` until it returns something true; return that."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = condition()
            except WebDriverException:  # an element replaced while React re-renders
                value = None
            if value:
                return value
            if time.monotonic() > deadline:
                self.screenshot(f"timeout-{re.sub(r'[^a-z0-9]+', '-', what.lower())[:40]}")
                raise AssertionError(f"{self.name}'s browser: no {what or condition} after {timeout} s "
                                     f"at {self.driver.current_url}")
            time.sleep(0.25)

    def find(self, css: str, timeout: float = 60) -> WebElement:
        """The first visible element matching `css`, once there is one."""
        return self.wait_for(lambda: next((e for e in self.driver.find_elements(By.CSS_SELECTOR, css)
                                           if e.is_displayed()), None), timeout, css)

    def text(self, css: str = "body") -> str:
        return " ".join(e.text for e in self.driver.find_elements(By.CSS_SELECTOR, css))

    def screenshot(self, step: str) -> Path:
        """Save what the page shows now as SCREENSHOTS/<n>-<name>-<step>.png."""
        SCREENSHOTS.mkdir(exist_ok=True)
        number = len(list(SCREENSHOTS.glob("*.png"))) + 1
        path = SCREENSHOTS / f"{number:02d}-{self.name}-{step}.png"
        self.driver.save_screenshot(str(path))
        self.collect_console()
        return path

    def collect_console(self) -> None:
        """Move the console messages Chromium logged since the last call into `console`."""
        self.console += self.driver.execute(Command.GET_LOG, {"type": "browser"})["value"]

    def save_console(self) -> Path:
        """Every console message so far, one a line, in SCREENSHOTS/console-<name>.log."""
        self.collect_console()
        path = SCREENSHOTS / f"console-{self.name}.log"
        path.write_text("".join(f"{e['level']} {e['message']}\n" for e in self.console))
        return path

    def console_errors(self) -> list[str]:
        """Console errors so far that KNOWN_HARMLESS does not name."""
        self.collect_console()
        return [entry["message"] for entry in self.console if entry["level"] == "SEVERE"
                and not any(re.search(pattern, entry["message"]) for pattern, _ in KNOWN_HARMLESS)]

    # -- the hub's pages -----------------------------------------------------------

    def fill(self, fields: dict[str, str]) -> None:
        """Type into the form fields named by CSS selector, as a person does."""
        for css, value in fields.items():
            field = self.find(css)
            field.clear()
            field.send_keys(value)

    def sign_up(self, username: str, password: str) -> str:
        """Fill in the hub's sign-up form; return the message the page shows."""
        self.get("/hub/signup")
        self.fill({"#username_input": username, "#password_input": password,
                   "#password_confirmation_input": password})
        self.screenshot("sign-up-form")
        self.find("#signup_submit").click()
        return self.wait_for(lambda: "sent to the admin" in self.text() and self.text(), 30,
                             "sign-up confirmation")

    def log_in(self, username: str, password: str) -> None:
        self.get("/hub/login")
        self.fill({"#username_input": username, "#password_input": password})
        self.find("#password_input").send_keys(Keys.ENTER)
        self.wait_for(lambda: "/hub/login" not in self.driver.current_url, 30, "page after logging in")

    def log_out(self) -> None:
        self.get("/hub/logout")
        self.wait_for(lambda: "/hub/login" in self.driver.current_url, 30, "login page after logging out")

    def approve(self, username: str) -> None:
        """Admin: press "Authorize" on NativeAuthenticator's page for a signed-up name."""
        self.get("/hub/authorize")
        row = self.find(f"a[href$='/authorize/{username}']").find_element(By.XPATH, "./ancestor::tr")
        self.screenshot(f"authorize-{username}")
        row.find_element(By.LINK_TEXT, "Authorize").click()
        self.wait_for(lambda: self.driver.find_elements(By.XPATH, f"//tr[td[contains(., '{username}')]]"
                                                                  "//a[text()='Unauthorize']"),
                      30, f"{username} authorized")

    # -- JupyterLab ------------------------------------------------------------------

    def wait_for_lab(self, timeout: float = 240) -> float:
        """Wait (through the spawn page) until JupyterLab shows its launcher; seconds taken."""
        started = time.monotonic()
        self.find(".jp-Launcher", timeout)
        return time.monotonic() - started

    def open_notebook(self) -> None:
        """A new notebook from the launcher's Python 3 card, with its kernel idle."""
        self.find(".jp-LauncherCard[data-category='Notebook']").click()
        self.find(".jp-Notebook .jp-Cell .cm-content")
        self.wait_for(lambda: self.driver.find_elements(
            By.CSS_SELECTOR, ".jp-Notebook-ExecutionIndicator[data-status='idle']"), 120, "an idle kernel")

    def run_cell(self, code: str, timeout: float = 180) -> str:
        """Type `code` into the notebook's last cell and run it (Shift+Enter); the text of
        its output area once the cell finished."""
        cells = self.driver.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-CodeCell")
        cell = cells[-1]
        cell.find_element(By.CSS_SELECTOR, ".cm-content").click()
        lines = code.split("\n")
        for number, line in enumerate(lines):
            editor = cell.find_element(By.CSS_SELECTOR, ".cm-content")
            editor.send_keys(line)
            if number < len(lines) - 1:
                editor.send_keys(Keys.ENTER)
        cell.find_element(By.CSS_SELECTOR, ".cm-content").send_keys(Keys.SHIFT, Keys.ENTER)

        def finished() -> str | None:
            prompt = cell.find_element(By.CSS_SELECTOR, ".jp-InputPrompt").text
            output = "\n".join(e.text for e in cell.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output")).strip()
            return output if re.fullmatch(r"\[\d+\]:", prompt.strip()) and output else None
        return self.wait_for(finished, timeout, "cell output")

    def last_output(self) -> WebElement:
        """The output area of the notebook's last cell that has one."""
        return self.driver.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-CodeCell .jp-OutputArea-output")[-1]

    def open_chat(self) -> WebElement:
        """Open Jupyter AI's chat panel from the left side bar, unless open (its tab
        toggles it); its message box."""
        if not any(box.is_displayed() for box in self.driver.find_elements(By.CSS_SELECTOR, f"{CHAT_PANEL} textarea")):
            self.find(".jp-SideBar.jp-mod-left li[data-id='jupyter-ai::chat']").click()
        return self.find(f"{CHAT_PANEL} textarea")

    def chat(self, message: str, timeout: float = 180) -> str:
        """Send `message` in the chat panel (Enter); the reply's text without its header
        (sender and time), once it is whole."""
        box = self.open_chat()
        box.send_keys(message)
        box.send_keys(Keys.ENTER)

        def reply() -> str:
            text = self.text(CHAT_PANEL)
            if message not in text or self.driver.find_elements(By.CSS_SELECTOR, f"{CHAT_PANEL} .jp-ai-pending-message"):
                return ""
            lines = text.rsplit(message, 1)[1].strip().splitlines()
            while lines and re.fullmatch(r"Jupyternaut|\d{1,2}:\d{2}( [AP]M)?|", lines[0].strip()):
                lines.pop(0)  # the reply's header: sender and time
            return "\n".join(lines).strip()

        last, steady_since = None, time.monotonic()

        def settled() -> str | None:
            nonlocal last, steady_since
            current = reply()
            if current != last:
                last, steady_since = current, time.monotonic()
            # A reply streams in: it is whole once it stayed the same for 3 s.
            return current if current and time.monotonic() - steady_since > 3 else None
        return self.wait_for(settled, timeout, "chat reply")
