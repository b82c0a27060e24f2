"""The walk a class makes, in a real browser: headless Chromium (tests/e2e/chromium.py)
signs a new student up, the admin approves them on the hub's page, the student logs in
through the form, JupyterLab renders, a new notebook's `%%ai` cell answers, the chat
panel answers, `/learn` + `/ask` answer from a file the student wrote (quoting it), a
thinking model's reasoning shows collapsed above its answer; then the admin's pages (the
hub's and the gateway's usage page) render.
Each step leaves a screenshot in tests/e2e/screenshots/, and the console shows no errors.

The steps run in order and share the two browsers (module fixtures); each test is one
step, so a failure names the step. Uses only the fixtures.
"""

import shutil
import time

import pytest
from aihub.gateway.config import SERVICE_PREFIX
from selenium.webdriver.common.by import By

from .chromium import BROWSER_SERVICE, SCREENSHOTS, WEBDRIVER_PORT, Chromium
from .test_02_ai import ASK_OLLAMA
from .test_10_thinking import THINKING_MODEL
from .test_11_learn import DOCUMENT, QUESTION

STUDENT, PASSWORD = "wang-fang", "browser-walk-password"
CHAT_MESSAGE = "Explain a Python list comprehension in one sentence."


@pytest.fixture(scope="module")
def webdriver_url(stack):
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)  # this run's screenshots only
    address = stack.compose("port", BROWSER_SERVICE, str(WEBDRIVER_PORT)).stdout.strip()
    return f"http://{address}"


def chromium(webdriver_url, name, figures):
    browser = Chromium(webdriver_url, name)
    yield browser
    log = browser.save_console()
    figures[f"browser walk: {name}'s console messages (errors), in {log.name}"] = (
        f"{len(browser.console)} ({sum(e['level'] == 'SEVERE' for e in browser.console)})")
    browser.quit()


@pytest.fixture(scope="module")
def admin_browser(stack, webdriver_url, figures):
    yield from chromium(webdriver_url, "admin", figures)


@pytest.fixture(scope="module")
def student_browser(stack, webdriver_url, figures):
    yield from chromium(webdriver_url, "student", figures)


@pytest.fixture(scope="module", autouse=True)
def screenshots_in_figures(figures):
    yield
    shots = sorted(path.name for path in SCREENSHOTS.glob("*.png"))  # names start with the step's number
    figures[f"browser walk screenshots in {SCREENSHOTS}"] = ", ".join(shots) or "none"


def assert_console_clean(browser):
    errors = browser.console_errors()
    assert not errors, f"{browser.name}'s browser console has errors:\n" + "\n".join(errors)


def test_a_student_signs_up_on_the_form(student_browser):
    message = student_browser.sign_up(STUDENT, PASSWORD)
    student_browser.screenshot("signed-up")
    assert "sent to the admin" in message
    assert_console_clean(student_browser)


def test_the_admin_approves_on_the_authorize_page(stack, admin_browser):
    admin_browser.log_in(*stack.admin_login())
    admin_browser.approve(STUDENT)
    admin_browser.screenshot("approved")
    assert_console_clean(admin_browser)


def test_the_student_logs_in_and_jupyterlab_renders(student_browser, figures):
    started = time.monotonic()
    student_browser.log_in(STUDENT, PASSWORD)
    student_browser.wait_for_lab()
    figures["browser walk: login form to JupyterLab's launcher"] = f"{time.monotonic() - started:.1f} s"
    student_browser.screenshot("jupyterlab")
    assert_console_clean(student_browser)


def test_a_new_notebook_runs_an_ai_cell(student_browser, figures):
    student_browser.open_notebook()
    started = time.monotonic()
    answer = student_browser.run_cell(ASK_OLLAMA)
    figures["browser walk: %%ai cell run to answer shown"] = f"{time.monotonic() - started:.1f} s"
    figures["browser walk: the %%ai answer as shown"] = answer[:200]
    student_browser.screenshot("ai-cell-answered")
    assert answer.strip() and "Traceback" not in answer and "Error" not in answer[:40], answer[:300]
    assert_console_clean(student_browser)


def test_the_chat_panel_answers(student_browser, figures):
    reply = student_browser.chat(CHAT_MESSAGE)
    figures["browser walk: the chat panel's reply as shown"] = reply[:200]
    student_browser.screenshot("chat-answered")
    assert reply and "error" not in reply.lower()[:200], reply[:300]
    assert_console_clean(student_browser)


def test_learn_then_ask_answers_quoting_the_students_file(student_browser, figures):
    # The student writes the file from their notebook, then asks the chat panel about it.
    written = student_browser.run_cell(
        f"import pathlib; pathlib.Path('notes').mkdir(exist_ok=True); pathlib.Path('notes/bank.md').write_text({DOCUMENT!r})")
    assert written.strip() == str(len(DOCUMENT)), written
    learned = student_browser.chat("/learn notes")
    student_browser.screenshot("learned")
    assert "I have learned documents" in learned, learned
    answer = student_browser.chat("/ask " + QUESTION)
    figures["browser walk: the /ask answer as shown"] = answer
    student_browser.screenshot("asked")
    reply, sources = answer.split("Sources", 1)
    assert reply.strip(), answer
    # quoted as written (the file's "# ..." line is not a heading), under the file's path
    assert "# Silicon Valley Bank Silicon Valley Bank collapsed on 10 March 2023" in sources, answer
    assert "notes/bank.md" in sources, answer
    assert_console_clean(student_browser)


def test_a_thinking_models_reasoning_shows_collapsed_above_its_answer(stack, student_browser, figures):
    stack.compose("exec", "-T", "ollama", "ollama", "pull", THINKING_MODEL)  # the admin adds the model
    shown = student_browser.run_cell(f"%%ai ollama:{THINKING_MODEL}\nIs 1001 a prime number?")
    student_browser.screenshot("thinking-collapsed")
    output = student_browser.last_output()
    [thinking] = output.find_elements(By.CSS_SELECTOR, "details")
    assert thinking.find_element(By.CSS_SELECTOR, "summary").text == "Thinking"
    assert thinking.get_attribute("open") is None  # collapsed: the answer is what shows
    answer = shown.split("Thinking", 1)[1].strip()
    assert shown.startswith("Thinking") and answer, shown
    thinking.find_element(By.CSS_SELECTOR, "summary").click()
    reasoning = student_browser.wait_for(lambda: thinking.find_element(By.CSS_SELECTOR, "blockquote").text,
                                         10, "the reasoning, expanded")
    student_browser.screenshot("thinking-expanded")
    assert reasoning.strip() and reasoning not in answer and "think>" not in output.text
    figures["browser walk: the thinking model's %%ai output, its parts as shown"] = (
        f"<details> with <summary>Thinking</summary>, collapsed; expanded, its quote: {reasoning!r}; "
        f"after it, the answer: {answer!r}")
    assert_console_clean(student_browser)


def test_the_admin_page_renders(admin_browser):
    admin_browser.get("/hub/admin")
    admin_browser.wait_for(lambda: STUDENT in admin_browser.text(), 60, f"{STUDENT} on the admin page")
    admin_browser.screenshot("hub-admin")
    assert_console_clean(admin_browser)


def test_the_gateways_usage_page_renders(admin_browser):
    admin_browser.get(SERVICE_PREFIX)
    admin_browser.wait_for(lambda: STUDENT in admin_browser.text(), 60, f"{STUDENT}'s usage on the gateway's page")
    admin_browser.screenshot("gateway-usage")
    assert_console_clean(admin_browser)
