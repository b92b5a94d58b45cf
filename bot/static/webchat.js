// Segment Insights web chat. Talks to the Rasa server that serves this page:
// POST webhook {sender, message} -> [{text, buttons, image}], GET summary -> current run.
"use strict";

(function () {
  const log = document.getElementById("log");
  const chat = log.parentElement;
  const form = document.getElementById("composer");
  const input = document.getElementById("message");
  const sendButton = document.getElementById("send");
  const runLine = document.getElementById("run");
  const sizes = document.getElementById("sizes");
  const SUMMARY_REFRESH_MS = 120000;
  let queue = Promise.resolve();
  let pending = 0;

  // One conversation per browser tab.
  function senderId() {
    const key = "segment-insights-sender";
    let id = null;
    try { id = sessionStorage.getItem(key); } catch (e) { /* storage disabled */ }
    if (!id || !/^[A-Za-z0-9_-]{8,64}$/.test(id)) {
      const bytes = new Uint8Array(16);
      crypto.getRandomValues(bytes);
      id = "web-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
      try { sessionStorage.setItem(key, id); } catch (e) { /* storage disabled */ }
    }
    return id;
  }
  const sender = senderId();

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function scrollDown() {
    chat.scrollTop = chat.scrollHeight;
  }

  // --- Slack-style mrkdwn: *bold*, _italic_, `code`, ``` blocks, line breaks ---------------
  const EDGE = "[\\s()\\[\\]{}\"'.,;:!?\\-\\u2013\\u2014\\u2022]";
  const INLINE = new RegExp(
    "(^|" + EDGE + ")(\\*(?=\\S)([^*\\n]*?\\S)\\*|_(?=\\S)([^_\\n]*?\\S)_|`([^`\\n]+)`)(?=$|" +
      EDGE + ")",
    "g"
  );

  function appendInline(parent, text) {
    let last = 0;
    INLINE.lastIndex = 0;
    let match;
    while ((match = INLINE.exec(text)) !== null) {
      const start = match.index + match[1].length;
      if (start > last) parent.appendChild(document.createTextNode(text.slice(last, start)));
      let node;
      if (match[3] !== undefined) {
        node = el("strong");
        appendInline(node, match[3]);
      } else if (match[4] !== undefined) {
        node = el("em");
        appendInline(node, match[4]);
      } else {
        node = el("code", null, match[5]);
      }
      parent.appendChild(node);
      last = start + match[2].length;
      INLINE.lastIndex = last;
    }
    if (last < text.length) parent.appendChild(document.createTextNode(text.slice(last)));
  }

  function appendProse(parent, text) {
    const lines = text.replace(/^\n+|\n+$/g, "").split("\n");
    if (lines.length === 1 && lines[0] === "") return;
    const p = el("p");
    lines.forEach((line, index) => {
      if (index) p.appendChild(el("br"));
      appendInline(p, line);
    });
    parent.appendChild(p);
  }

  function renderText(parent, text) {
    const parts = text.split("```");
    parts.forEach((part, index) => {
      const isCode = index % 2 === 1 && index < parts.length - 1;
      if (isCode) {
        const pre = el("pre");
        pre.tabIndex = 0; // wide tables scroll with the keyboard too
        pre.appendChild(el("code", null, part.replace(/^\n/, "").replace(/\n$/, "")));
        parent.appendChild(pre);
      } else {
        appendProse(parent, index % 2 === 1 ? "```" + part : part);
      }
    });
  }

  // --- messages -------------------------------------------------------------------------
  function addMessage(who, extraClass) {
    const node = el("div", "msg " + who + (extraClass ? " " + extraClass : ""));
    log.appendChild(node);
    scrollDown();
    return node;
  }

  function chartSource(url) {
    const path = String(url).split(/[?#]/)[0];
    const match = /(?:^|\/)([A-Za-z0-9][A-Za-z0-9._-]*\.png)$/.exec(path);
    const ours = path.indexOf("/webhooks/webchat/charts/") !== -1 || !/^[a-z]+:/i.test(path);
    return match && ours ? "charts/" + match[1] : null;
  }

  // --- structured replies (custom.reply): paragraphs of spans, real tables, a run line ----
  function appendSpans(parent, spans) {
    (spans || []).forEach((span) => {
      const text = String(span[0] === undefined ? "" : span[0]);
      const style = span[1];
      const node = style === "b" ? el("strong", null, text) : style === "i" ? el("em", null, text) : null;
      parent.appendChild(node || document.createTextNode(text));
    });
  }

  function renderBlocks(parent, blocks) {
    blocks.forEach((block) => {
      if (block.type === "table") {
        const wrap = el("div", "table-wrap");
        wrap.tabIndex = 0; // wide tables scroll with the keyboard too
        const table = el("table");
        const head = el("thead");
        const row = el("tr");
        (block.headers || []).forEach((h, i) => row.appendChild(el("th", i ? "num" : null, String(h))));
        head.appendChild(row);
        table.appendChild(head);
        const body = el("tbody");
        (block.rows || []).forEach((cells) => {
          const tr = el("tr");
          cells.forEach((c, i) => tr.appendChild(el("td", i ? "num" : null, String(c))));
          body.appendChild(tr);
        });
        table.appendChild(body);
        wrap.appendChild(table);
        parent.appendChild(wrap);
      } else if (block.type !== "chart") {
        const p = el("p", block.type === "text" ? null : block.type);
        appendSpans(p, block.spans);
        parent.appendChild(p);
      }
    });
  }

  function structured(message) {
    const custom = message.custom;
    return custom && typeof custom === "object" && custom.reply && Array.isArray(custom.reply.blocks)
      ? custom.reply.blocks
      : null;
  }

  function chartTitle(message, src) {
    const custom = message.custom;
    if (custom && custom.chart && typeof custom.chart.title === "string") return custom.chart.title;
    return "Chart " + src.slice("charts/".length);
  }

  function addButtons(parent, buttons) {
    const group = el("div", "choices");
    group.setAttribute("role", "group");
    group.setAttribute("aria-label", "Choices");
    buttons.forEach((button) => {
      const b = el("button", null, button.title);
      b.type = "button";
      b.dataset.payload = button.payload;
      b.addEventListener("click", () => {
        group.querySelectorAll("button").forEach((other) => { other.disabled = true; });
        b.setAttribute("aria-pressed", "true");
        send(button.payload, button.title);
      });
      group.appendChild(b);
    });
    parent.appendChild(group);
  }

  function renderReply(message) {
    if (!message.text && !message.image && !(message.buttons && message.buttons.length)) return;
    const node = addMessage("bot");
    const blocks = structured(message);
    const download = exportLink(message);
    if (download) node.appendChild(download);
    else if (blocks) renderBlocks(node, blocks);
    else if (message.text) renderText(node, message.text);
    if (message.image) {
      const src = chartSource(message.image);
      if (src) {
        const figure = el("figure");
        const img = el("img");
        img.src = src;
        img.alt = "Chart: " + chartTitle(message, src);
        img.addEventListener("load", scrollDown);
        figure.appendChild(img);
        figure.appendChild(el("figcaption", null, chartTitle(message, src)));
        node.appendChild(figure);
      } else {
        const link = el("a", null, "Open the image");
        link.href = message.image;
        link.target = "_blank";
        link.rel = "noopener noreferrer";
        node.appendChild(link);
      }
    }
    if (message.buttons && message.buttons.length) addButtons(node, message.buttons);
  }

  // A CSV export: a download link to our own route (the file name is a token that expires).
  function exportLink(message) {
    const custom = message.custom;
    const file = custom && custom.export && custom.export.file;
    if (typeof file !== "string" || !/^[A-Za-z0-9_-]{32}\.csv$/.test(file)) return null;
    const link = el("a", "download", "Download " + String(custom.export.title || "CSV"));
    link.href = "exports/" + file;
    link.setAttribute("download", String(custom.export.title || "export.csv"));
    return link;
  }

  function setBusy(delta) {
    pending += delta;
    // The button stays enabled (Enter must keep working); questions queue up in order.
    sendButton.classList.toggle("busy", pending > 0);
    log.setAttribute("aria-busy", pending > 0 ? "true" : "false");
  }

  async function deliver(payload) {
    const typing = addMessage("bot", "typing");
    typing.textContent = "Thinking…";
    try {
      const response = await fetch("webhook", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ sender: sender, message: payload }),
      });
      if (response.status >= 400 && response.status < 500) {
        // The server says what it refused (too long, bad characters...): show that.
        const refusal = await response.json().catch(() => ({}));
        typing.remove();
        addMessage("bot", "problem").textContent =
          "Sorry, I can't take that message: " + (refusal.error || "HTTP " + response.status) + ".";
        scrollDown();
        return;
      }
      if (!response.ok) throw new Error("HTTP " + response.status);
      const replies = await response.json();
      typing.remove();
      if (!Array.isArray(replies) || replies.length === 0) {
        addMessage("bot", "problem").textContent =
          "I didn't get an answer from the assistant. Please try again.";
      } else {
        replies.forEach(renderReply);
      }
    } catch (error) {
      typing.remove();
      addMessage("bot", "problem").textContent =
        "Sorry, I couldn't reach the assistant (" + error.message + "). Please try again.";
    }
    scrollDown();
  }

  function send(payload, shown) {
    addMessage("user").textContent = shown;
    setBusy(1);
    queue = queue.then(() => deliver(payload)).finally(() => setBusy(-1));
    return queue;
  }

  // --- summary bar ----------------------------------------------------------------------
  function renderSummary(data) {
    sizes.textContent = "";
    if (!data || !data.ok) {
      runLine.className = "run problem";
      runLine.textContent = (data && data.message) || "The segments could not be loaded.";
      return;
    }
    runLine.className = "run";
    runLine.textContent =
      "Run #" + data.run.id + " · " + data.run.date + " " + data.run.time + " · " +
      data.total_users.toLocaleString("en-US") + " users";
    runLine.dataset.runId = data.run.id;
    runLine.dataset.date = data.run.date;
    data.segments.forEach((segment, index) => {
      const item = el("li", "tier-" + Math.min(index, 2));
      item.dataset.segment = segment.name;
      item.appendChild(el("span", "name", segment.name));
      const size = el("strong", "size", segment.size.toLocaleString("en-US"));
      item.appendChild(size);
      item.appendChild(el("span", "share", (segment.share * 100).toFixed(1) + "%"));
      item.title = segment.name + ": " + size.textContent + " users";
      sizes.appendChild(item);
    });
  }

  async function loadSummary() {
    try {
      const response = await fetch("summary", { cache: "no-store" });
      renderSummary(await response.json());
    } catch (error) {
      renderSummary({ ok: false, message: "The segments could not be loaded (" + error.message + ")." });
    }
  }

  // --- wiring ---------------------------------------------------------------------------
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    send(text, text);
    input.focus();
  });

  document.querySelectorAll(".suggestion").forEach((button) => {
    button.addEventListener("click", () => send(button.textContent, button.textContent));
  });

  loadSummary();
  setInterval(() => { if (!document.hidden) loadSummary(); }, SUMMARY_REFRESH_MS);
  document.addEventListener("visibilitychange", () => { if (!document.hidden) loadSummary(); });
})();
