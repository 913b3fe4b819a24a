// The execution page while the execution runs: every 2 s, fetch what changed (the header with
// its progress, the breadcrumb's status, the operator's buttons, a batch job's steps, the last
// attempt's summary and its new log lines, attempts that started since) and stop after the
// answer that says the execution has ended, which brings its final state (Restart, say).
// "Show earlier" fetches a page of older lines.
(function () {
  "use strict";
  const page = document.getElementById("bj-execution");
  if (!page) {
    return;
  }
  const EVERY_MS = 2000;
  const header = document.getElementById("bj-header");
  const attempts = document.getElementById("bj-attempts");
  const state = document.getElementById("bj-live-state");
  const crumbStatus = document.getElementById("bj-crumb-status");
  const steps = document.getElementById("bj-steps");

  // Drawn again only when the operations change: a button being pressed stays where it is.
  function swapOperations(html) {
    const holder = document.createElement("template");
    holder.innerHTML = html.trim();
    const fresh = holder.content.firstElementChild;
    const shown = document.getElementById("bj-operations");
    if (fresh && shown && fresh.dataset.operations !== shown.dataset.operations) {
      shown.replaceWith(fresh);
    }
  }

  function lastAttempt() {
    const blocks = attempts.querySelectorAll(".bj-attempt");
    return blocks.length ? blocks[blocks.length - 1] : null;
  }

  // The log box follows new lines only when the operator has not scrolled up to read.
  function appendLines(block, html) {
    const box = block.querySelector(".bj-log-box");
    const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 8;
    block.querySelector(".bj-log-table tbody").insertAdjacentHTML("beforeend", html);
    if (atBottom) {
      box.scrollTop = box.scrollHeight;
    }
  }

  async function getJson(url) {
    const response = await fetch(url, {
      credentials: "same-origin",
      headers: { "X-Requested-With": "fetch", Accept: "application/json" },
      cache: "no-store",
    });
    if (response.redirected) {
      throw new Error(page.dataset.textSessionEnded);
    }
    if (!response.ok) {
      throw new Error(page.dataset.textUpdateFailed.replace("{status}", response.status));
    }
    return response.json();
  }

  async function poll() {
    const block = lastAttempt();
    const query = new URLSearchParams({
      attempt: block ? block.dataset.attempt : "0",
      line: block ? block.dataset.lastLine : "0",
    });
    let data;
    try {
      data = await getJson(page.dataset.liveUrl + "?" + query);
    } catch (error) {
      page.classList.add("bj-stale");
      state.textContent = error instanceof TypeError ? page.dataset.textNoAnswer : error.message;
      window.setTimeout(poll, EVERY_MS);
      return;
    }
    page.classList.remove("bj-stale");
    state.textContent = "";
    header.innerHTML = data.header;
    swapOperations(data.operations);
    if (crumbStatus) {
      crumbStatus.textContent = data.status;
    }
    if (steps && data.steps !== undefined) {
      steps.innerHTML = data.steps;
    }
    if (block) {
      if (data.summary) {
        block.querySelector(".bj-attempt-summary").innerHTML = data.summary;
      }
      if (data.lines) {
        appendLines(block, data.lines);
        block.dataset.lastLine = data.last_line;
      }
    }
    if (data.new_attempts) {
      const none = document.getElementById("bj-no-attempts");
      if (none) {
        none.remove();
      }
      attempts.insertAdjacentHTML("beforeend", data.new_attempts);
    }
    if (data.ended) {
      page.dataset.ended = "true";
      state.textContent = page.dataset.textEnded;
      return;
    }
    window.setTimeout(poll, EVERY_MS);
  }

  async function showEarlier(button) {
    const block = button.closest(".bj-attempt");
    const query = new URLSearchParams({
      attempt: block.dataset.attempt,
      before: block.dataset.firstLine,
    });
    button.disabled = true;
    try {
      const data = await getJson(page.dataset.logUrl + "?" + query);
      block.querySelector(".bj-log-table tbody").insertAdjacentHTML("afterbegin", data.lines);
      block.dataset.firstLine = data.first_line;
      if (Number(data.first_line) <= 1) {
        button.remove();
        return;
      }
      button.textContent = data.more;
    } catch (error) {
      state.textContent = error.message;
    }
    button.disabled = false;
  }

  attempts.addEventListener("click", function (event) {
    const button = event.target.closest(".bj-log-earlier");
    if (button) {
      showEarlier(button);
    }
  });
  for (const box of attempts.querySelectorAll(".bj-log-box")) {
    box.scrollTop = box.scrollHeight; // the newest lines first in view
  }
  if (page.dataset.ended !== "true") {
    window.setTimeout(poll, EVERY_MS);
  }
})();
