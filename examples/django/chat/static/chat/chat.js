// The chat page: joins the presence channel through Bridge's PusherLite client, lists who is
// online, shows messages as they arrive and sends them two ways:
//   "Send"          posts to Django, which stores the message and publishes it from its worker;
//   "Send directly" triggers a client event that Bridge passes to the others, and Django stores
//                   it when Bridge's client_event webhook arrives.
(function () {
  "use strict";

  const config = JSON.parse(document.getElementById("bridge-config").textContent);
  const form = document.getElementById("send");
  const csrfToken = form.elements.csrfmiddlewaretoken.value;
  const list = document.getElementById("messages");
  const members = document.getElementById("members");
  const status = document.getElementById("status");
  const shown = new Set(Array.from(list.children, (item) => item.dataset.id));

  const pusher = new PusherLite(config.key, {
    host: config.host,
    ssl: config.ssl,
    authEndpoint: config.authEndpoint,
    auth: { headers: { "X-CSRFToken": csrfToken } },
  });
  pusher.bind("state_change", (states) => { status.textContent = states.current; });
  const channel = pusher.subscribe(config.channel);

  function newId() {
    return Array.from(crypto.getRandomValues(new Uint8Array(16)),
      (byte) => byte.toString(16).padStart(2, "0")).join("");
  }

  function show(message) {
    if (!message || !message.id || shown.has(message.id)) return;
    shown.add(message.id);
    const item = document.createElement("li");
    item.dataset.id = message.id;
    const who = document.createElement("strong");
    who.textContent = message.name + ":";
    item.append(who, " " + message.text);
    list.append(item);
    list.scrollTop = list.scrollHeight;
  }

  function showMembers() {
    members.replaceChildren();
    channel.members.each((member) => {
      const item = document.createElement("li");
      item.textContent = (member.info && member.info.name) || member.id;
      if (member.id === channel.members.myID) item.textContent += " (you)";
      members.append(item);
    });
  }

  channel.bind("pusher:subscription_succeeded", showMembers);
  channel.bind("pusher:member_added", showMembers);
  channel.bind("pusher:member_removed", showMembers);
  channel.bind("message", show);         // published by Django's worker, to everyone
  channel.bind("client-message", show);  // sent by another browser

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = form.elements.text.value.trim();
    if (!text) return;
    const message = { id: newId(), name: config.user.name, text: text };
    if (event.submitter && event.submitter.value === "direct") {
      // Bridge does not echo a client event to its sender: show ours here.
      if (channel.trigger("client-message", message)) show(message);
    } else {
      fetch(form.action, {
        method: "POST",
        headers: { "X-CSRFToken": csrfToken, "Accept": "application/json" },
        body: new URLSearchParams({ id: message.id, text: text }),
      }).then((response) => {
        if (!response.ok) status.textContent = "not sent (" + response.status + ")";
      });
    }
    form.reset();
  });
})();
