// The review page: a reviewer signs in with an API key, works the queue, decides reviews and
// watches the runs continue. Everything goes through Keel's REST API with the key as a
// bearer token; the key lives in sessionStorage, so it is forgotten when the tab closes.

const KEY = "keel.reviewerKey";
const NAME = "keel.reviewerName";
const AUTO_NEXT = "keel.autoNext";
const QUEUE_REFRESH_MS = 5000;
// Who the API says holds this page's claims (the key's principal), learnt from the first claim.
const CLAIMANT = "keel.claimant";
const DONE = new Set(["completed", "rejected", "failed", "cancelled"]);

const $ = (id) => document.getElementById(id);

class Problem extends Error {
  constructor(problem) {
    super(problem.detail || problem.title || "request failed");
    this.problem = problem;
  }
}

// ---- the API ---------------------------------------------------------------------------

function headers(extra = {}) {
  const key = sessionStorage.getItem(KEY);
  return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
}

async function api(method, path, body) {
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: headers(body === undefined ? {} : { "Content-Type": "application/json" }),
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    throw new Problem({ title: "The API cannot be reached", detail: String(err), status: 0 });
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const problem = data && typeof data === "object" ? data : {};
    throw new Problem({
      type: problem.type || "about:blank",
      title: problem.title || `HTTP ${response.status}`,
      status: response.status,
      detail: problem.detail || text || response.statusText,
      errors: problem.errors || [],
      retryAfter: response.headers.get("Retry-After"),
    });
  }
  return data;
}

// ---- messages --------------------------------------------------------------------------

function showProblem(err) {
  const problem = err instanceof Problem ? err.problem : { title: "Unexpected error", detail: String(err) };
  $("problem-title").textContent = problem.status
    ? `${problem.title} (${problem.status})`
    : problem.title;
  let detail = problem.detail || "";
  if (problem.retryAfter) detail += ` Try again in ${problem.retryAfter} s.`;
  $("problem-detail").textContent = detail;
  const list = $("problem-errors");
  list.replaceChildren(
    ...(problem.errors || []).map((e) => el("li", {}, [el("code", {}, e.field || "body"), `: ${e.message}`])),
  );
  $("problem-type").textContent = problem.type || "";
  $("problem").hidden = false;
  $("problem").focus?.();
  notice("");
  if (problem.status === 401) signOut(false);
}

function clearProblem() {
  $("problem").hidden = true;
}

function notice(text) {
  $("notice").textContent = text;
}

// ---- small DOM helpers -----------------------------------------------------------------

function el(tag, attrs = {}, children = []) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of [].concat(children)) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// Replace a node's children, skipping the empty ones.
function fill(node, children) {
  node.replaceChildren(...children.filter((child) => child !== null && child !== undefined && child !== ""));
}

function badge(status) {
  return el("span", { class: `badge ${status}`, text: status });
}

function when(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  return el("time", { datetime: iso, title: date.toISOString() }, date.toLocaleString());
}

function score(value) {
  return value === null || value === undefined ? "—" : value.toFixed(2);
}

function money(value) {
  return `$${(value || 0).toFixed(4)}`;
}

function show(section) {
  for (const id of ["sign-in", "queue", "review"]) $(id).hidden = id !== section;
}

// ---- signing in ------------------------------------------------------------------------

function signedIn() {
  return sessionStorage.getItem(KEY) !== null;
}

function renderWho() {
  const key = sessionStorage.getItem(KEY) || "";
  const name = sessionStorage.getItem(NAME) || "";
  const keyId = key.startsWith("keel_") ? key.split("_")[1] : "";
  const parts = [name || "reviewer", keyId ? `key ${keyId}` : "no key (open mode)"];
  $("who-name").textContent = `Signed in: ${parts.join(" · ")}`;
  $("who").hidden = !signedIn();
}

async function signIn(event) {
  event.preventDefault();
  clearProblem();
  const key = $("key").value.trim();
  const name = $("reviewer-name").value.trim();
  sessionStorage.setItem(KEY, key);
  sessionStorage.removeItem(CLAIMANT);
  if (name) sessionStorage.setItem(NAME, name);
  else sessionStorage.removeItem(NAME);
  try {
    await api("GET", "/v1/reviews?limit=1");
  } catch (err) {
    sessionStorage.removeItem(KEY);
    showProblem(err);
    return;
  }
  $("key").value = "";
  renderWho();
  notice("Signed in.");
  location.hash = "#/";
  route();
}

function signOut(announce = true) {
  sessionStorage.removeItem(KEY);
  sessionStorage.removeItem(NAME);
  sessionStorage.removeItem(CLAIMANT);
  renderWho();
  show("sign-in");
  if (announce) notice("Signed out.");
  $("key").focus();
}

// ---- the queue -------------------------------------------------------------------------

let nextPage = null;

function queuePath() {
  const form = new FormData($("filters"));
  const params = new URLSearchParams();
  for (const [name, value] of form.entries()) if (value) params.set(name, value);
  params.set("limit", "50");
  return `/v1/reviews?${params}`;
}

async function loadQueue(path = queuePath(), append = false, quiet = false) {
  if (!quiet) clearProblem();
  let page;
  try {
    page = await api("GET", path);
  } catch (err) {
    showProblem(err);
    return;
  }
  $("queue-updated").textContent = `Updated ${new Date().toLocaleTimeString()}; it updates by itself.`;
  const rows = page.reviews.map(reviewRow);
  if (!append) appended = false;
  if (append) $("review-rows").append(...rows);
  else $("review-rows").replaceChildren(...rows);
  $("queue-empty").hidden = $("review-rows").children.length > 0;
  nextPage = page.next || null;
  $("more").hidden = !nextPage;
}

// The queue's first page reloads by itself while it is on screen, unless older pages were
// added below it (reloading would take them away).
function refreshQueue() {
  if (!$("queue").hidden && !document.hidden && !appended) loadQueue(queuePath(), false, true);
}

let appended = false;

function reviewRow(review) {
  const subject = review.tool_call
    ? `${review.tool_call.name}(${JSON.stringify(review.tool_call.arguments)})`
    : review.question;
  const claim = review.claim
    ? el("span", { class: "claimed", text: `claimed by ${review.claim.claimant}` })
    : null;
  return el("tr", { "data-review": review.id }, [
    el("td", {}, when(review.created_at)),
    el("td", {}, [review.agent, review.queue ? ` · ${review.queue}` : ""]),
    el("td", {}, review.reason),
    el("td", { class: "subject" }, [
      el("a", { href: `#/review/${encodeURIComponent(review.id)}`, text: subject }),
    ]),
    el("td", {}, score(review.confidence)),
    el("td", {}, [badge(review.status), claim]),
  ]);
}

// ---- the next review -------------------------------------------------------------------

// The oldest pending review of the queue's filters, other than the one on screen and not held
// by someone else.
async function openNext() {
  const params = new URLSearchParams(queuePath().split("?")[1]);
  params.set("status", "pending");
  let page;
  try {
    page = await api("GET", `/v1/reviews?${params}`);
  } catch (err) {
    showProblem(err);
    return;
  }
  const next = page.reviews.find(
    (review) => review.id !== current?.id && (!review.claim || isMine(review.claim)),
  );
  if (!next) {
    $("next-state").textContent = "No other review is waiting.";
    notice("No other review is waiting.");
    return;
  }
  location.hash = `#/review/${encodeURIComponent(next.id)}`;
}

// ---- one review ------------------------------------------------------------------------

let current = null;

async function openReview(id) {
  clearProblem();
  show("review");
  $("next-state").textContent = "";
  $("run").hidden = true;
  try {
    current = await api("GET", `/v1/reviews/${encodeURIComponent(id)}`);
  } catch (err) {
    showProblem(err);
    return;
  }
  renderReview(current);
  $("review-title").focus?.();
}

function renderReview(review) {
  $("review-title").textContent = `Review ${review.id}`;
  const facts = [
    ["Agent", review.agent],
    ["Queue", review.queue],
    ["Reason", review.reason],
    ["Triage", review.triage],
    ["Node", review.node],
    ["Status", badge(review.status)],
    ["Cost so far", money(review.cost_usd)],
    ["Opened", when(review.created_at)],
    ["Deadline", when(review.deadline)],
  ];
  $("review-facts").replaceChildren(
    ...facts
      .filter(([, value]) => value !== undefined && value !== null)
      .map(([term, value]) => el("div", {}, [el("dt", {}, term), el("dd", {}, value)])),
  );
  $("question").textContent = review.question;
  renderFindings(review.findings || []);
  renderVerification(review.verification);
  renderPassages(review);
  renderProposal(review);
  renderClaim(review);
  renderDecision(review);
}

function renderFindings(findings) {
  $("findings-block").hidden = findings.length === 0;
  $("findings").replaceChildren(
    ...findings.map((f) =>
      el("li", {}, [
        el("strong", {}, f.kind.replaceAll("_", " ")),
        ` in ${f.field}: `,
        el("code", {}, f.label),
        f.start !== null && f.end !== null ? ` (characters ${f.start}–${f.end})` : "",
        f.score < 1 ? `, score ${score(f.score)}` : "",
      ]),
    ),
  );
}

function renderVerification(verification) {
  $("verification-block").hidden = !verification;
  if (!verification) return;
  const missing = verification.missing ? ` (missing: ${verification.missing})` : "";
  $("verdict").textContent = `${verification.verdict.replaceAll("_", " ")}${missing}`;
  const removed = verification.removed || [];
  $("removed").replaceChildren(...(removed.length ? removed : ["none"]).map((s) => el("li", {}, s)));
}

function renderPassages(review) {
  const cited = new Set((review.citations || []).map((c) => c.passage_id));
  const passages = review.passages || [];
  const shown = new Set(passages.map((p) => p.id));
  const items = passages.map((p) => {
    const isCited = cited.has(p.id);
    return el("li", { class: isCited ? "cited" : "", "data-passage": p.id }, [
      el("div", {}, [
        el("span", { class: "title", text: p.title }),
        " ",
        isCited ? el("mark", { class: "cited-mark", text: "cited" }) : null,
      ]),
      el("div", { class: "meta" }, [
        el("code", {}, p.id),
        p.collection ? ` · ${p.collection}` : "",
        typeof p.score === "number" ? ` · score ${p.score.toFixed(2)}` : "",
      ]),
      ...(p.flags || []).map((flag) => el("div", { class: "flag", text: `⚠ ${flag.replaceAll("_", " ")}` })),
      el("p", { class: "text", text: p.text }),
    ]);
  });
  // A citation whose passage is not in the evidence is still listed, so nothing cited hides.
  for (const c of review.citations || []) {
    if (!shown.has(c.passage_id)) {
      items.push(
        el("li", { class: "cited", "data-passage": c.passage_id }, [
          el("span", { class: "title", text: c.title }),
          " ",
          el("mark", { class: "cited-mark", text: "cited" }),
          el("div", { class: "meta" }, el("code", {}, c.passage_id)),
        ]),
      );
    }
  }
  $("passages").replaceChildren(...items);
  // A tool call has no retrieval behind it; an answer without passages says so.
  $("passages-block").hidden = items.length === 0 && Boolean(review.tool_call);
  if (items.length === 0) $("passages").replaceChildren(el("li", { text: "No passages were retrieved." }));
}

function renderProposal(review) {
  const parts = [];
  if (review.tool_call) {
    parts.push(el("h4", {}, "Tool call"));
    parts.push(
      el("pre", { class: "call" }, `${review.tool_call.name}\n${JSON.stringify(review.tool_call.arguments, null, 2)}`),
    );
  } else {
    parts.push(el("h4", {}, "Proposed answer"));
    parts.push(el("div", { class: "answer", id: "proposed-answer", text: review.proposed_answer }));
  }
  parts.push(el("h4", {}, "Confidence"));
  if (review.confidence !== null && review.confidence !== undefined) {
    parts.push(
      el("div", { class: "meter" }, [
        el("meter", { min: "0", max: "1", value: String(review.confidence), low: String(review.threshold ?? 0.5), optimum: "1", "aria-label": "confidence" }),
        el("span", {}, `${score(review.confidence)}${review.threshold != null ? ` (threshold ${score(review.threshold)})` : ""}`),
      ]),
    );
  } else {
    parts.push(el("p", {}, "Not applicable"));
  }
  parts.push(el("h4", {}, "Why it is here"));
  parts.push(el("p", {}, reasonText(review)));
  $("proposal").replaceChildren(...parts);
}

function reasonText(review) {
  const confidence = review.confidence ?? null;
  const threshold = review.threshold ?? null;
  const below = confidence !== null && threshold !== null && confidence < threshold;
  const found = (kind) => {
    const labels = (review.findings || []).filter((f) => f.kind === kind).map((f) => `${f.label} in ${f.field}`);
    return labels.length ? ` (${labels.join("; ")})` : "";
  };
  const texts = {
    low_confidence: below
      ? `The agent's confidence ${score(confidence)} is below the threshold ${score(threshold)}.`
      : (review.citations || []).length === 0
        ? "The answer cites no passage, so nothing supports it."
        : "The agent's confidence is below the threshold.",
    off_topic: "The question does not look like one the agent is meant to answer.",
    tool_approval: "This tool needs a person's approval before it runs.",
    budget: `The run has spent ${money(review.cost_usd)}, and its next model call could pass its budget.`,
    pii: `A guard found personal data${found("pii")}.`,
    policy_term: `A guard found a policy term${found("policy_term")}.`,
    suspected_injection: `A retrieved passage looks like a prompt injection${found("suspected_injection")}.`,
    not_answered: "The verifier found that the answer does not answer the question from its passages.",
    partial_answer: "The verifier found that the answer covers only part of the question, or made claims its passages do not support.",
    needs_person: `Triage put the message in a category a person must handle (${review.triage}).`,
  };
  return `${review.reason}: ${texts[review.reason] || "escalated by policy."}`;
}

function myClaimant() {
  const learnt = sessionStorage.getItem(CLAIMANT);
  if (learnt) return learnt;
  // Until then: a key created without a principal is its own, named by the key id.
  const key = sessionStorage.getItem(KEY) || "";
  return key.startsWith("keel_") ? key.split("_")[1] : sessionStorage.getItem(NAME);
}

function isMine(claim) {
  return claim.claimant === myClaimant() || claim.claimant === sessionStorage.getItem(NAME);
}

function renderClaim(review) {
  const box = $("claim-box");
  // Claims exist when the API reports them; without them any reviewer may decide at once.
  if (review.status !== "pending" || !("claim" in review)) {
    box.hidden = true;
    return;
  }
  box.hidden = false;
  const claim = review.claim;
  const mine = claim && isMine(claim);
  const text = claim
    ? `Claimed by ${mine ? "you" : claim.claimant} until ${new Date(claim.expires_at).toLocaleTimeString()}.`
    : "Nobody has claimed this review.";
  const button = el("button", { type: "button", id: "claim", class: "secondary", text: mine ? "Extend claim" : "Claim" });
  button.addEventListener("click", claimReview);
  fill(box, [el("p", { id: "claim-state", text }), claim && !mine ? null : button]);
}

async function claimReview() {
  clearProblem();
  const body = {};
  const name = sessionStorage.getItem(NAME);
  if (name) body.reviewer = name;
  try {
    current = await api("POST", `/v1/reviews/${encodeURIComponent(current.id)}/claim`, body);
  } catch (err) {
    showProblem(err);
    return;
  }
  if (current.claim) sessionStorage.setItem(CLAIMANT, current.claim.claimant);
  notice("Claimed.");
  renderReview(current);
}

function renderDecision(review) {
  const pending = review.status === "pending";
  $("decision").hidden = !pending;
  $("decided").hidden = pending;
  if (!pending) {
    fill($("decided"), [
      el("h4", {}, "Decision"),
      el("p", {}, [badge(review.status), review.reviewer ? ` by ${review.reviewer}` : "", review.decided_at ? " at " : "", review.decided_at ? when(review.decided_at) : ""]),
      review.answer ? el("div", { class: "answer", text: review.answer }) : null,
      review.edited_citations
        ? el("p", { id: "edited-citations" }, [
            "Cites: ",
            review.edited_citations.length ? review.edited_citations.map((c) => c.title).join("; ") : "nothing",
          ])
        : null,
      review.arguments ? el("pre", { class: "call", text: JSON.stringify(review.arguments, null, 2) }) : null,
      review.comment ? el("p", {}, ["Comment: ", el("q", {}, review.comment)]) : null,
    ]);
    watchRun(review.run_id);
    return;
  }
  $("decision").reset();
  $("comment").value = "";
  const isCall = Boolean(review.tool_call);
  $("edit-label").textContent = isCall ? "Edited arguments (JSON)" : "Edited answer";
  $("edit-text").classList.toggle("mono", isCall);
  $("edit-text").value = isCall ? JSON.stringify(review.tool_call.arguments, null, 2) : review.proposed_answer;
  $("edit-help").textContent = isCall
    ? `The arguments must fit ${review.tool_call.name}'s schema; the server checks them again.`
    : "The customer sees this text instead of the proposed answer.";
  renderCitationChoices(review);
  toggleEdit();
}

// An edited answer cites what the reviewer ticks: the proposed citations to begin with.
function renderCitationChoices(review) {
  $("cite-box").hidden = Boolean(review.tool_call);
  if (review.tool_call) return;
  const cited = new Set((review.citations || []).map((c) => c.passage_id));
  const choices = new Map((review.passages || []).map((p) => [p.id, p.title]));
  for (const c of review.citations || []) if (!choices.has(c.passage_id)) choices.set(c.passage_id, c.title);
  $("cite-choices").replaceChildren(
    ...[...choices].map(([id, title]) =>
      el("label", { class: "choice" }, [
        el("input", { type: "checkbox", name: "cite", value: id, checked: cited.has(id) }),
        ` ${title} `,
        el("code", {}, id),
      ]),
    ),
  );
}

function toggleEdit() {
  const action = new FormData($("decision")).get("action");
  $("edit-box").hidden = action !== "edit";
  $("decide").textContent = { approve: "Approve", edit: "Approve with edits", reject: "Reject" }[action];
}

async function submitDecision(event) {
  event.preventDefault();
  clearProblem();
  const review = current;
  const action = new FormData($("decision")).get("action");
  const body = { action };
  if (review.action_hash) body.action_hash = review.action_hash;
  const comment = $("comment").value.trim();
  if (comment) body.comment = comment;
  const name = sessionStorage.getItem(NAME);
  if (name) body.reviewer = name;
  if (action === "edit") {
    const text = $("edit-text").value;
    if (review.tool_call) {
      try {
        body.arguments = JSON.parse(text);
      } catch (err) {
        showProblem(new Problem({ title: "The arguments are not valid JSON", detail: err.message, errors: [{ field: "arguments", message: err.message }] }));
        $("edit-text").focus();
        return;
      }
    } else {
      body.answer = text;
      body.citations = [...$("cite-choices").querySelectorAll("input:checked")].map((box) => box.value);
    }
  }
  $("decide").disabled = true;
  try {
    current = await api("POST", `/v1/reviews/${encodeURIComponent(review.id)}/decision`, body);
  } catch (err) {
    showProblem(err);
    return;
  } finally {
    $("decide").disabled = false;
  }
  notice(`Decision recorded: ${current.status}.`);
  if ($("auto-next").checked) {
    await openNext();
    if (location.hash.endsWith(encodeURIComponent(review.id))) renderReview(current);
    return;
  }
  renderReview(current);
  $("next").focus();
}

// ---- the run continues -----------------------------------------------------------------

let watching = null;

async function watchRun(runId) {
  if (watching === runId) return;
  watching = runId;
  $("run").hidden = false;
  $("run-events").replaceChildren();
  $("run-result").replaceChildren();
  $("run-status").textContent = "…";
  // The event stream shows progress; polling the run is what tells its ending, come what may.
  streamEvents(runId).catch(() => {});
  await pollRun(runId);
}

async function streamEvents(runId) {
  const response = await fetch(`/v1/runs/${encodeURIComponent(runId)}/events`, { headers: headers() });
  if (!response.ok || !response.body) throw new Error(`events: HTTP ${response.status}`);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  while (watching === runId) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const data = block.split("\n").find((line) => line.startsWith("data: "));
      if (!data) continue;
      const event = JSON.parse(data.slice(6));
      addEvent(event);
      if (event.type === "run.finished") {
        reader.cancel();
        return;
      }
    }
  }
  reader.cancel();
}

function addEvent(event) {
  const text = [event.type, event.step, event.detail, event.status].filter(Boolean).join(" · ");
  $("run-events").append(el("li", {}, [when(event.at), " ", text]));
  if (event.status) $("run-status").textContent = event.status;
}

async function pollRun(runId) {
  while (watching === runId) {
    let run;
    try {
      run = await api("GET", `/v1/runs/${encodeURIComponent(runId)}`);
    } catch (err) {
      showProblem(err);
      return;
    }
    $("run-status").textContent = run.status;
    $("run-status").dataset.status = run.status;
    $("run-ui").href = run.ui_url;
    if (DONE.has(run.status)) {
      renderResult(run);
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

function renderResult(run) {
  const result = run.result;
  const parts = [el("h4", {}, "Result")];
  if (run.error) parts.push(el("p", {}, run.error));
  if (result && result.answer !== null && result.answer !== undefined) {
    parts.push(el("div", { class: "answer", id: "run-answer", text: result.answer }));
  } else if (result) {
    parts.push(el("p", {}, "No answer (rejected)."));
  }
  if (run.cost) parts.push(el("p", { class: "help" }, `Model spend: ${money(run.cost_usd)}`));
  $("run-result").replaceChildren(...parts);
}

// ---- keyboard --------------------------------------------------------------------------

function chooseAction(action) {
  if ($("decision").hidden) return;
  $("decision").querySelector(`input[value="${action}"]`).checked = true;
  toggleEdit();
  if (action === "edit") $("edit-text").focus();
  if (action === "reject") $("comment").focus();
}

function onKey(event) {
  if (event.altKey || event.metaKey || !signedIn()) return;
  const onReview = !$("review").hidden;
  if (event.ctrlKey) {
    if (event.key === "Enter" && onReview && !$("decision").hidden) {
      event.preventDefault();
      $("decision").requestSubmit();
    }
    return;
  }
  const typing = event.target.closest?.("input, textarea, select");
  if (typing) return;
  const actions = {
    n: () => openNext(),
    q: () => (location.hash = "#/"),
    c: () => onReview && $("claim")?.click(),
    a: () => onReview && chooseAction("approve"),
    e: () => onReview && chooseAction("edit"),
    r: () => onReview && chooseAction("reject"),
  };
  const act = actions[event.key];
  if (act) {
    event.preventDefault();
    act();
  }
}

// ---- navigation ------------------------------------------------------------------------

function route() {
  if (!signedIn()) {
    show("sign-in");
    return;
  }
  watching = null;
  const match = location.hash.match(/^#\/review\/(.+)$/);
  if (match) {
    openReview(decodeURIComponent(match[1]));
  } else {
    show("queue");
    loadQueue();
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("problem").tabIndex = -1;
  $("review-title").tabIndex = -1;
  $("sign-in-form").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", () => signOut());
  $("filters").addEventListener("submit", (event) => {
    event.preventDefault();
    loadQueue();
  });
  $("refresh").addEventListener("click", () => loadQueue());
  $("more").addEventListener("click", () => {
    if (!nextPage) return;
    appended = true;
    loadQueue(nextPage, true);
  });
  $("next").addEventListener("click", () => openNext());
  $("auto-next").checked = localStorage.getItem(AUTO_NEXT) === "1";
  $("auto-next").addEventListener("change", () =>
    localStorage.setItem(AUTO_NEXT, $("auto-next").checked ? "1" : "0"),
  );
  document.addEventListener("keydown", onKey);
  setInterval(refreshQueue, QUEUE_REFRESH_MS);
  $("decision").addEventListener("change", toggleEdit);
  $("decision").addEventListener("submit", submitDecision);
  window.addEventListener("hashchange", route);
  renderWho();
  route();
});
