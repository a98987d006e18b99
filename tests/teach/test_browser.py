"""The teaching page in headless Chromium: its buttons and keys, a reload that resumes the
session, and (slow) a scripted person who teaches a rule the learner cannot know otherwise."""

import json
import time

import jax
import numpy as np
import pytest

from internalize.teach.session import LOG_FILE, read_log


def wait_for(driver, script: str, timeout: float = 60.0, what: str = ""):
    """The value of `script` (JavaScript, returned) once it is truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = driver.execute_script(f"return {script}")
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what or script}")


def severe(driver) -> list:
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


@pytest.fixture
def page(open_browser):
    driver = open_browser()
    yield driver
    driver.quit()


def test_the_page_labels_pauses_leaves_and_resumes_on_reload(
    page, start_teach, small_settings, tmp_path
):
    from selenium.webdriver.common.by import By

    server = start_teach(["--out", str(tmp_path / "s"), *small_settings])
    try:
        page.get(server.url)
        wait_for(page, "teach.frames > 2", what="frames")
        page.find_element(By.ID, "approve").click()
        wait_for(page, "teach.acks === 1", what="the first ack")
        page.find_element(By.TAG_NAME, "body").send_keys("z")  # disapprove by key
        wait_for(page, "teach.acks === 2", what="the second ack")
        assert wait_for(page, "teach.status.labels === 2 && teach.status")["disapprovals"] == 1
        assert page.execute_script("return teach.unacknowledged()") == 0
        page.find_element(By.ID, "pause").click()
        wait_for(page, "teach.status.paused", what="paused")
        shown = server.status()["shown"]
        time.sleep(1.0)
        assert server.status()["shown"] == shown  # nothing is shown while paused
        page.find_element(By.ID, "pause").click()
        wait_for(page, "!teach.status.paused", what="resumed")
        page.find_element(By.ID, "leave").click()
        wait_for(page, "!teach.status.present", what="left")
        assert "You have left" in page.find_element(By.ID, "banner").text
        page.find_element(By.ID, "approve").click()  # the page knows: nothing is sent
        assert "come back to label" in page.find_element(By.ID, "log").text
        assert page.execute_script("return teach.unacknowledged()") == 0
        page.refresh()  # a reload resumes the session as it was
        status = wait_for(page, "teach.status && teach.frames > 0 && teach.status", what="hello")
        assert status["labels"] == 2 and not status["present"]
        page.find_element(By.ID, "come_back").click()
        wait_for(page, "teach.status.present", what="back")
        assert severe(page) == []
    finally:
        assert server.stop() == 0
    kinds = [r["kind"] for r in read_log(server.directory / LOG_FILE)]
    assert [k for k in kinds if k in ("label", "pause", "resume", "leave", "come_back")] == [
        "label",
        "label",
        "pause",
        "resume",
        "leave",
        "come_back",
    ]


# ----------------------------------------------------------------- a person who teaches a rule

PERSON = """
teach.control('speed', 100);
teach.onFrame(frame => {
  // The person's rule: moving forward while facing right is good, facing left is bad.
  if (frame.action === 2 && (frame.state.heading === 0 || frame.state.heading === 2))
    teach.label(frame.state.heading === 0 ? 1 : -1);
});
"""
LABELS = 300
RULE_SEEDS = 5


def forward_moves(policies, seed: int, episodes: int = 64) -> dict[str, np.ndarray]:
    """Per policy of the set, forward actions per episode facing right and facing left (a
    turn always changes the heading, so an unchanged heading is a forward action)."""
    from internalize.render import play

    played = play(policies, jax.random.key(seed), episodes)
    heading = played.states.heading  # [episodes, steps + 1, policies]
    forward = (heading[:, 1:] == heading[:, :-1]) & ~played.reached
    return {
        "right": (forward & (heading[:, :-1] == 0)).sum(1).mean(0),
        "left": (forward & (heading[:, :-1] == 2)).sum(1).mean(0),
    }


@pytest.mark.slow
def test_a_scripted_person_teaches_a_rule_that_outlasts_their_leaving(page, start_teach, tmp_path):
    """A scripted person approves moving forward facing right and disapproves it facing left,
    for 300 labels, then leaves. The learner's reward never says which way it faces (the step
    cost is the same); after the ISR alone trained it, 5 learners replayed from the log (seed 0
    is the live one) move forward facing right more than untaught learners of the same seeds,
    and more than they do facing left. The scripted person reacts within the frame it judges,
    so the credit window is 1 step (2, the default, is for people)."""
    from internalize.render import policy_sets
    from internalize.teach.command import replay

    directory = tmp_path / "session"
    server = start_teach(["--out", str(directory), "--set", "credit_steps=1"])
    try:
        page.get(server.url)
        wait_for(page, "teach.frames > 0", what="the first frame")
        page.execute_script(PERSON)
        wait_for(page, f"teach.status && teach.status.labels >= {LABELS}", 600, "labels")
        page.execute_script("teach.control('leave')")
        wait_for(page, "teach.status && !teach.status.present", what="left")
        updates = -1
        while updates != server.status()["updates"]:  # until the learner waits
            updates = server.status()["updates"]
            time.sleep(3.0)
        assert severe(page) == []
    finally:
        assert server.stop() == 0, server.log.read_text()[-2000:]
    shown = replay(directory, None, RULE_SEEDS, None, progress=False)
    results = json.loads((directory / "replay" / "results.json").read_text())
    assert results["labels"] >= LABELS and results["updates"] == updates
    moves = {}
    for index in range(RULE_SEEDS):
        (policies,) = policy_sets(directory / "replay", index)
        assert policies.names == ("untaught", "taught")
        moves[index] = forward_moves(policies, 100 + index)
    right = np.array([moves[i]["right"] for i in moves])  # [seeds, (untaught, taught)]
    left = np.array([moves[i]["left"] for i in moves])
    print({"right": right.tolist(), "left": left.tolist(), "summary": shown["summary"]})
    # Measured (AMD EPYC, 2 CPUs), two sessions of 3 seeds: right 7.6, 17.5, 16.3 and 14.0,
    # 11.2, 0.3 taught against 0 untaught; left at most 0.9 taught. One replayed learner in six
    # did not take the rule up: the test asks it of most seeds and of the mean.
    gained = right[:, 1] - right[:, 0]
    assert gained.mean() > 3.0 and (gained > 1.0).sum() >= 3, right
    assert (right[:, 1] - left[:, 1]).mean() > 3.0, (right, left)
