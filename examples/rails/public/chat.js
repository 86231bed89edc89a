// The article's application.js, without jQuery: join the chat and presence channels through
// Bridge, show messages as they arrive, and send on Enter, over the WebSocket or through the app.
document.addEventListener("DOMContentLoaded", function () {
  var PusherLite = require("pusher_lite").default;

  var options = { host: window.pusher_host, uniqueUserId: window.user_name };
  if (window.guardian_token) {
    options.jwt = window.guardian_token;
  } else {
    // No organization configured: Pusher's way, this app signs the presence subscription.
    options.authEndpoint = "/bridge/auth";
    options.auth = { headers: { "X-CSRF-Token": csrfToken() } };
  }
  var pusher = new PusherLite(window.app_key, options);

  var publicChannel = pusher.subscribe(window.chat_channel);
  publicChannel.bind("new_message", function (payload) {
    var chat = document.getElementById("chat");
    var line = document.createElement("p");
    var name = document.createElement("strong");
    name.textContent = payload.name;
    line.append(name, " " + payload.message);
    chat.append(line);
    chat.scrollTop = chat.scrollHeight;
  });

  var presence = pusher.subscribe(window.presence_channel);
  var showOnline = function () {
    var names = [];
    presence.members.each(function (member) { names.push(member.id); });
    document.getElementById("members").textContent = names.sort().join(", ");
  };
  presence.bind("pusher:subscription_succeeded", showOnline);
  presence.bind("pusher:member_added", showOnline);
  presence.bind("pusher:member_removed", showOnline);

  pusher.joinAll();

  var throughApp = document.getElementById("channel");
  if (!window.guardian_token) {
    // Without a JWT a page may not publish on a public channel itself.
    throughApp.checked = true;
    throughApp.disabled = true;
  }

  var form = document.getElementById("send");
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var messageElement = document.getElementById("message");
    var payload = { name: document.getElementById("name").value, message: messageElement.value };
    if (!payload.message) return;

    if (!throughApp.checked) {
      sendPusher(publicChannel, payload);
    } else {
      sendApp(form);
    }
    messageElement.value = "";
  });
});

// Straight over the WebSocket: with a JWT, Bridge broadcasts it to every subscriber (this page
// included) and sends this app a client_event webhook, which stores it.
function sendPusher(channel, payload) {
  console.log("sending through socket");
  channel.trigger("new_message", payload);
}

// Through the app: it stores the message and a background job publishes it to Bridge.
function sendApp(form) {
  console.log("sending through the app");
  fetch(form.action, {
    method: "POST",
    headers: { "Accept": "application/json", "X-CSRF-Token": csrfToken() },
    body: new FormData(form),
    credentials: "same-origin",
  }).then(function (response) {
    return response.json().then(function (answer) { console.log(response.status, answer); });
  }, function (error) {
    console.log(error);
  });
}

function csrfToken() {
  var meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}
