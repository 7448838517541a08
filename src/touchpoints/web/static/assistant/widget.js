// The touchpoints chat widget: a button and a panel a site embeds with one script tag,
//
//   <link rel="stylesheet" href="https://TOUCHPOINTS/static/assistant/widget.css">
//   <script src="https://TOUCHPOINTS/static/assistant/widget.js" defer
//           data-key="tp_write_…"              (a write key, as analytics.js has)
//           data-user-id="u-1001"              (only for a signed-in user, with:)
//           data-user-hash="…"                 (hex HMAC-SHA256 of the user id, from your server)
//           data-language="de"></script>       (else the browser's)
//
// It speaks to POST /v1/assistant/messages and long-polls GET …/messages?after=N&wait=25 for
// what a person answers. Visitors are known by analytics.js's anonymousId (the cookie or
// localStorage entry ajs_anonymous_id) when the site runs analytics.js, else by an id of its
// own (localStorage tp_anonymous_id). No inline styles or scripts: it works under a strict
// Content-Security-Policy (styles from widget.css, classes only).
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script) return;
  var base = new URL(script.src).origin;
  var key = script.dataset.key || "";
  var userId = script.dataset.userId || null;
  var userHash = script.dataset.userHash || null;
  var language = (script.dataset.language || navigator.language || "de").slice(0, 2);
  var texts = {
    de: {
      open: "Chat", title: "Wie können wir helfen?", placeholder: "Ihre Nachricht …",
      send: "Senden", close: "Schließen", agent: "Mitarbeiter", assistant: "Assistent",
      you: "Sie", source: "Quelle", error: "Das hat nicht geklappt: ",
      hello: "Hallo! Fragen Sie mich z. B. nach Öffnungszeiten, Ihrer Bestellung oder einer Probefahrt.",
      rate: "Das Gespräch ist beendet. Wie zufrieden waren Sie?", stars: " von 5",
      thanks: "Danke für Ihre Bewertung!",
    },
    en: {
      open: "Chat", title: "How can we help?", placeholder: "Your message …",
      send: "Send", close: "Close", agent: "Agent", assistant: "Assistant",
      you: "You", source: "Source", error: "That did not work: ",
      hello: "Hello! Ask me about opening hours, your order or a test drive, for example.",
      rate: "The conversation has ended. How satisfied were you?", stars: " of 5",
      thanks: "Thank you for your rating!",
    },
  };
  var t = texts[language] || texts.de;
  var stored = "tp_assistant_conversation";
  var conversation = null;
  var after = 0;
  var polling = false;
  var seen = {};

  function readId(raw) {
    if (!raw) return null;
    try { var parsed = JSON.parse(raw); if (typeof parsed === "string") return parsed; } catch (e) { /* plain */ }
    return raw;
  }
  function cookie(name) {
    var found = document.cookie.split("; ").filter(function (c) { return c.indexOf(name + "=") === 0; })[0];
    return found ? decodeURIComponent(found.slice(name.length + 1)) : null;
  }
  function anonymousId() {
    var found = readId(cookie("ajs_anonymous_id"));
    try {
      found = found || readId(localStorage.getItem("ajs_anonymous_id")) || localStorage.getItem("tp_anonymous_id");
      if (!found) {
        found = (crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random().toString(16).slice(2));
        localStorage.setItem("tp_anonymous_id", found);
      }
    } catch (e) {
      found = found || "tp-" + Date.now();
    }
    return found;
  }
  try { conversation = localStorage.getItem(stored); } catch (e) { conversation = null; }

  function element(tag, className, text) {
    var el = document.createElement(tag);
    if (className) el.className = className;
    if (text !== undefined) el.textContent = text;
    return el;
  }

  var root = element("div", "tp-assistant");
  var button = element("button", "tp-assistant-open", t.open);
  button.type = "button";
  button.setAttribute("aria-expanded", "false");
  var panel = element("section", "tp-assistant-panel");
  panel.hidden = true;
  panel.setAttribute("aria-label", t.title);
  var head = element("header", "tp-assistant-head", t.title);
  var shut = element("button", "tp-assistant-close", "×");
  shut.type = "button";
  shut.setAttribute("aria-label", t.close);
  head.appendChild(shut);
  var list = element("ol", "tp-assistant-messages");
  list.setAttribute("aria-live", "polite");
  var form = element("form", "tp-assistant-form");
  var input = element("input", "tp-assistant-input");
  input.type = "text";
  input.name = "text";
  input.autocomplete = "off";
  input.placeholder = t.placeholder;
  input.setAttribute("aria-label", t.placeholder);
  var send = element("button", "tp-assistant-send", t.send);
  send.type = "submit";
  form.appendChild(input);
  form.appendChild(send);
  panel.appendChild(head);
  panel.appendChild(list);
  panel.appendChild(form);
  root.appendChild(panel);
  root.appendChild(button);

  function show(message) {
    if (message.number && seen[message.number]) return;
    if (message.number) seen[message.number] = true;
    var item = element("li", "tp-assistant-message tp-from-" + message.author);
    item.dataset.author = message.author;
    var who = { customer: t.you, agent: t.agent, assistant: t.assistant }[message.author] || "";
    item.appendChild(element("span", "tp-assistant-who", who));
    item.appendChild(element("span", "tp-assistant-text", message.text === null ? "…" : message.text));
    if (message.source && message.source.url) {
      var link = element("a", "tp-assistant-source", t.source + ": " + message.source.title);
      link.href = message.source.url;
      link.target = "_blank";
      link.rel = "noopener";
      item.appendChild(link);
    }
    list.appendChild(item);
    list.scrollTop = list.scrollHeight;
  }
  function notice(text) {
    list.appendChild(element("li", "tp-assistant-notice", text));
    list.scrollTop = list.scrollHeight;
  }

  function api(method, path, body) {
    return fetch(base + path, {
      method: method,
      headers: { "Content-Type": "application/json", "Authorization": "Bearer " + key },
      body: body ? JSON.stringify(body) : undefined,
    }).then(function (response) {
      return response.json().then(function (data) {
        if (!response.ok) { var error = new Error(data.detail || response.status); error.status = response.status; throw error; }
        return data;
      });
    });
  }

  function remember(id) {
    conversation = id;
    try { localStorage.setItem(stored, id); } catch (e) { /* private mode: this page only */ }
  }
  function forget() {
    conversation = null; after = 0; seen = {};
    try { localStorage.removeItem(stored); } catch (e) { /* nothing kept */ }
  }

  function say(text) {
    var body = { text: text, anonymous_id: anonymousId(), language: language };
    if (conversation) body.conversation = conversation;
    if (userId) { body.user_id = userId; body.user_hash = userHash; }
    return api("POST", "/v1/assistant/messages", body).then(function (reply) {
      remember(reply.conversation);
      reply.messages.forEach(function (message) {
        if (message.author === "customer") seen[message.number] = true;  // shown as typed
        else show(message);
      });
      after = Math.max(after, reply.after);
      poll();
    }, function (error) {
      if ((error.status === 404 || error.status === 409) && conversation) {
        forget();  // gone or closed: a new conversation
        return say(text);
      }
      notice(t.error + error.message);
    });
  }

  // A closed conversation asks for a rating, 1 to 5 (the satisfaction figure); the next
  // message starts a new conversation either way.
  function askRating(id) {
    forget();
    var item = element("li", "tp-assistant-rating", t.rate);
    var row = element("div", "tp-assistant-stars");
    [1, 2, 3, 4, 5].forEach(function (stars) {
      var star = element("button", "tp-assistant-star", "★");
      star.type = "button";
      star.dataset.rating = String(stars);
      star.setAttribute("aria-label", stars + t.stars);
      star.addEventListener("click", function () {
        api("POST", "/v1/assistant/conversations/" + encodeURIComponent(id) + "/rating", { rating: stars }).then(
          function () { list.removeChild(item); notice(t.thanks); },
          function (error) { notice(t.error + error.message); }
        );
      });
      row.appendChild(star);
    });
    item.appendChild(row);
    list.appendChild(item);
    list.scrollTop = list.scrollHeight;
  }

  function poll() {
    if (polling || !conversation || panel.hidden) return;
    polling = true;
    var path = "/v1/assistant/conversations/" + encodeURIComponent(conversation) + "/messages?wait=25&after=" + after;
    api("GET", path).then(function (page) {
      page.messages.forEach(show);
      after = Math.max(after, page.after);
      polling = false;
      if (page.state === "closed") { askRating(page.conversation); return; }
      poll();
    }, function (error) {
      polling = false;
      if (error.status === 404) { forget(); return; }
      setTimeout(poll, 5000);
    });
  }

  function history() {
    if (!conversation) { notice(t.hello); return; }
    api("GET", "/v1/assistant/conversations/" + encodeURIComponent(conversation) + "/messages?after=0").then(
      function (page) {
        if (page.state === "closed") { forget(); notice(t.hello); return; }
        page.messages.forEach(show);
        after = page.after;
        poll();
      },
      function () { forget(); notice(t.hello); }
    );
  }

  var opened = false;
  button.addEventListener("click", function () {
    panel.hidden = !panel.hidden;
    button.setAttribute("aria-expanded", String(!panel.hidden));
    if (!panel.hidden) {
      if (!opened) { opened = true; history(); } else { poll(); }
      input.focus();
    }
  });
  shut.addEventListener("click", function () { panel.hidden = true; button.setAttribute("aria-expanded", "false"); });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value.trim();
    if (!text) return;
    input.value = "";
    show({ author: "customer", text: text });
    say(text);
  });

  function mount() { document.body.appendChild(root); }
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);
})();
