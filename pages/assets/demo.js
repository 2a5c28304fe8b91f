(() => {
  const $ = (id) => document.getElementById(id);
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const mask = (t) => t.length > 12 ? t.slice(0, 6) + "\u2026" + t.slice(-4) : "\u2026";
  const say = (text) => { $("status").textContent = text; };
  async function postForm(path, fields) {
    const response = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(fields),
    });
    let body = {};
    try { body = await response.json(); } catch (_) { /* not JSON: report the status */ }
    return { status: response.status, body };
  }
  $("start").addEventListener("click", async () => {
    $("start").disabled = true;
    say("Starting a login session\u2026");
    const started = await postForm("new", {});
    if (started.status !== 200) {
      say("Could not start: " + (started.body.error_description || started.status));
      $("start").disabled = false;
      return;
    }
    $("login").href = started.body.login_url;
    $("step-login").hidden = false;
    say("Waiting for you to approve at the stand-in for Monzo\u2026");
    let interval = Math.max(1, started.body.interval || 2);
    for (;;) {
      await sleep(interval * 1000);
      const poll = await postForm("token", { id: started.body.id });
      if (poll.status === 202) { interval = Math.max(1, poll.body.interval || interval); continue; }
      if (poll.status === 200) {
        $("token").textContent = mask(poll.body.token);
        $("user").textContent = poll.body.user_id;
        $("expires").textContent = poll.body.expires;
        $("refresh").textContent = poll.body.refresh_token ? "yes (" + mask(poll.body.refresh_token) + ")" : "no";
        $("step-token").hidden = false;
        say("Done: the token arrived. Your app would have it now.");
        $("start").disabled = false;
        return;
      }
      say("The login ended: " + (poll.body.error_description || ("HTTP " + poll.status)));
      $("start").disabled = false;
      return;
    }
  });
})();
