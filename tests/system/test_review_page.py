"""The review page in a real headless Chromium, against a real stack.

Debian's `chromium` (installed by `make test` when missing), driven by Playwright's async API
over CDP. A reviewer signs in with a reviewer key, approves a support answer, edits a
ticket's arguments (after the server refused a bad edit), and both runs finish. The queue
updates by itself, the next review is one key away, a PII review names what was found, and
the ticket is claimed, edited and submitted from the keyboard. The screenshots are kept as
artifacts in `tests/artifacts/`: `review-queue.png` (the queue), `review-page.png` (the
approved answer with its evidence and the finished run) and `review-page-edit.png` (the
edited ticket).
"""

import json
import sqlite3
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Page, async_playwright, expect

from keel.testing.stack import Stack, wait_status

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).parents[1] / "artifacts"
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Low confidence with citations: a review whose evidence shows cited passages.
QUESTION = "How do I share a note with a colleague?"
# The same with an e-mail address: a PII review.
PERSONAL = "I'm ana.lopez@example.com: how do I share a note with a colleague?"
# A loaded shared machine replays each workflow task from history: runs are slow, not stuck.
SLOW = 180.0


async def _key(
    http: httpx.AsyncClient, role: str, admin: str | None = None, principal: str | None = None
) -> str:
    headers = {"Authorization": f"Bearer {admin}"} if admin else {}
    body = {"role": role, "name": f"page-{role}", "principal": principal}
    response = await http.post("/v1/keys", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()["key"]


def _client(stack: Stack, key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=stack.api_url, timeout=30, headers={"Authorization": f"Bearer {key}"}
    )


async def _start(http: httpx.AsyncClient, agent: str, text: str) -> str:
    response = await http.post("/v1/runs", json={"agent": agent, "input": text})
    assert response.status_code == 202, response.text
    return response.json()["run_id"]


async def _open_review(page: Page, run_id: str) -> None:
    await page.goto(page.url.split("#")[0] + "#/")
    row = page.locator("tr", has=page.locator(f'a[href*="{run_id}"]'))
    await expect(row).to_have_count(1)
    await row.get_by_role("link").click()
    await expect(page.locator("#review-title")).to_contain_text(run_id)
    await expect(page.locator("#claim-state")).to_have_text("Nobody has claimed this review.")
    await page.locator("#claim").click()
    await expect(page.locator("#claim-state")).to_contain_text("Claimed by you")


@pytest.mark.timeout(600)
async def test_a_reviewer_signs_in_approves_one_review_and_edits_another(make_stack):
    # A strict threshold: the support answer below escalates although it cites its article.
    stack: Stack = make_stack(KEEL_REVIEW_THRESHOLD="0.95")
    await stack.start_worker()
    await stack.start_api()
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as anonymous:
        admin = await _key(anonymous, "admin")  # the first key ends open mode
        submitter = await _key(anonymous, "submitter", admin)
        # A person's key: the page learns its claims are Robin's, not the key's.
        reviewer = await _key(anonymous, "reviewer", admin, principal="robin")
    async with (
        _client(stack, submitter) as http,
        _client(stack, reviewer) as reviews,
    ):
        answer_run = await _start(http, "support", QUESTION)
        ticket_run = await _start(
            http, "assistant", "Please open a ticket: export to PDF is broken, urgent"
        )
        await wait_status(http, answer_run, {"awaiting_review"}, timeout=SLOW)
        await wait_status(http, ticket_run, {"awaiting_review"}, timeout=SLOW)
        review = (await reviews.get("/v1/reviews", params={"run_id": answer_run})).json()
        assert "reviews" in review, review
        cited = {c["passage_id"] for c in review["reviews"][0]["citations"]}
        ticket = (await reviews.get("/v1/reviews", params={"run_id": ticket_run})).json()
        arguments = ticket["reviews"][0]["tool_call"]["arguments"]
        edited = {**arguments, "subject": "PDF export fails", "priority": "normal"}

        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
            page = await browser.new_page(viewport={"width": 1400, "height": 1000})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            try:
                await page.goto(f"{stack.api_url}/reviews")
                await expect(page.locator("#who")).to_be_hidden()  # nobody is signed in yet
                # A wrong key is refused, and the page says why.
                await page.get_by_label("Reviewer key").fill("keel_000000000000_wrong")
                await page.get_by_role("button", name="Sign in").click()
                await expect(page.locator("#problem")).to_be_visible()
                await expect(page.locator("#problem-title")).to_contain_text("401")

                await page.get_by_label("Reviewer key").fill(reviewer)
                await page.get_by_label("Your name").fill("Robin Reviewer")
                await page.get_by_role("button", name="Sign in").click()
                await expect(page.locator("#who-name")).to_contain_text("Robin Reviewer")
                await expect(page.locator("#review-rows tr")).to_have_count(2)

                # A new review reaches the open queue with nobody pressing Refresh.
                personal_run = await _start(http, "support", PERSONAL)
                await expect(page.locator("#review-rows tr")).to_have_count(3, timeout=SLOW * 1000)
                ARTIFACTS.mkdir(exist_ok=True)
                await page.screenshot(path=str(ARTIFACTS / "review-queue.png"), full_page=True)

                # A PII review says what was found, where, and no "<" it does not mean.
                await page.locator(f'a[href*="{personal_run}"]').click()
                await expect(page.locator("#findings")).to_contain_text(
                    "pii in question: EMAIL_ADDRESS (characters 4–25)"
                )
                await expect(page.locator("#proposal")).to_contain_text(
                    "A guard found personal data (EMAIL_ADDRESS in question)."
                )
                # Editing an answer offers its passages to cite, the proposed ones ticked.
                await page.keyboard.press("e")
                await expect(page.locator("#cite-box")).to_be_visible()
                await expect(page.locator("#cite-choices input")).to_have_count(
                    await page.locator("#passages li").count()
                )

                # Approve the support answer, its evidence side by side.
                await _open_review(page, answer_run)
                await expect(page.locator("#question")).to_have_text(QUESTION)
                highlighted = page.locator("#passages li.cited")
                await expect(highlighted).to_have_count(len(cited))
                for passage_id in cited:
                    await expect(
                        page.locator(f'#passages li.cited[data-passage="{passage_id}"]')
                    ).to_have_count(1)
                await page.get_by_label("Approve as proposed").check()
                await page.get_by_label("Comment").fill("Right article, fine as it is.")
                await page.locator("#decide").click()
                await expect(page.locator("#notice")).to_contain_text("approved")
                await expect(page.locator("#next")).to_be_focused()
                await expect(page.locator("#run-status")).to_have_text(
                    "completed", timeout=SLOW * 1000
                )
                await expect(page.locator("#run-answer")).not_to_be_empty()
                await expect(page.locator("#run-events")).to_contain_text("run.finished")
                shot = ARTIFACTS / "review-page.png"
                await page.screenshot(path=str(shot), full_page=True)

                # The next review is the ticket: claimed, edited and submitted from the keyboard.
                # A bad edit is refused with the field named, then fixed.
                await page.keyboard.press("n")
                await expect(page.locator("#review-title")).to_contain_text(ticket_run)
                await expect(page.locator(".call")).to_contain_text("create_ticket")
                await page.keyboard.press("c")
                await expect(page.locator("#claim-state")).to_contain_text("Claimed by you")
                await page.keyboard.press("e")
                editor = page.get_by_label("Edited arguments (JSON)")
                await expect(editor).to_be_focused()
                await editor.fill('{"subject": 7}')
                await page.keyboard.press("Control+Enter")
                await expect(page.locator("#problem-type")).to_have_text(
                    "urn:keel:problem:invalid-arguments"
                )
                await expect(page.locator("#problem-errors")).to_contain_text("arguments.subject")
                await editor.fill(json.dumps(edited))
                await page.keyboard.press("Control+Enter")
                await expect(page.locator("#notice")).to_contain_text("edited")
                await expect(page.locator("#run-status")).to_have_text(
                    "completed", timeout=SLOW * 1000
                )
                await expect(page.locator("#run-answer")).to_contain_text("create_ticket")
                await page.screenshot(path=str(ARTIFACTS / "review-page-edit.png"), full_page=True)
            finally:
                await browser.close()
        assert errors == []

        approved = await wait_status(http, answer_run, {"completed"}, timeout=SLOW)
        assert approved["result"]["reviewed"] and approved["result"]["answer"]
        ticketed = await wait_status(http, ticket_run, {"completed"}, timeout=SLOW)
        assert ticketed["result"]["reviewed"]
        decided = (await reviews.get("/v1/reviews", params={"run_id": answer_run})).json()
        assert decided["reviews"][0]["comment"] == "Right article, fine as it is."
    with sqlite3.connect(stack.db_file) as db:
        tickets = db.execute(
            "SELECT subject, priority FROM tickets WHERE run_id = ?", (ticket_run,)
        ).fetchall()
    assert tickets == [("PDF export fails", "normal")]
