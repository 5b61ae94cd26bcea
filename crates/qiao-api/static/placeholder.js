// The built-in first-run page: used until the web client is built into the binary.
(async () => {
  const token = new URLSearchParams(location.hash.slice(1)).get("token");
  const status = await fetch("/api/v1/setup").then((r) => r.json()).catch(() => null);
  if (!status || status.setup_complete || !token) return;
  const form = document.getElementById("setup");
  form.hidden = false;
  form.org_name.value = status.org_name;
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = { token };
    for (const k of ["org_name", "username", "display_name", "email", "password"]) {
      if (form[k].value) body[k] = form[k].value;
    }
    const res = await fetch("/api/v1/setup", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    const out = await res.json();
    document.getElementById("result").textContent = res.ok
      ? `Welcome, ${out.user.display_name}. You are signed in as the owner.`
      : `${out.code}: ${out.message}`;
    if (res.ok) history.replaceState(null, "", "/");
  });
})();
