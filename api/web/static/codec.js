// The codec server's sign-in page: posts the operator's key once, so that the API keeps it in
// an HttpOnly cookie the Temporal UI's requests to `/codec` carry.

const $ = (id) => document.getElementById(id);

async function signIn(event) {
  event.preventDefault();
  const response = await fetch("/codec/session", {
    method: "POST",
    headers: { Authorization: `Bearer ${$("key").value.trim()}` },
  });
  const body = await response.json();
  $("key").value = "";
  if (!response.ok) {
    $("notice").textContent = `${body.title || response.status}: ${body.detail || ""}`;
    return;
  }
  $("notice").textContent = body.expires_at
    ? `Signed in as ${body.principal} (${body.role}) until ${new Date(body.expires_at).toLocaleString()}.`
    : "The API is open (no key exists yet): the Temporal UI decodes without signing in.";
}

async function signOut() {
  const response = await fetch("/codec/session", { method: "DELETE" });
  $("notice").textContent = response.ok ? "Signed out." : `Not signed in (${response.status}).`;
}

document.addEventListener("DOMContentLoaded", () => {
  $("endpoint").textContent = `${location.origin}/codec`;
  $("session-form").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", signOut);
});
