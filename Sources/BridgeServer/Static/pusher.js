/*!
 * PusherLite 1.0.0: a small browser client for Bridge, speaking Pusher protocol 7.
 *
 *   var pusher = new PusherLite(appKey, { host: "bridge.example.com", ssl: true });
 *   var channel = pusher.subscribe("general");
 *   channel.bind("new_message", function (data) { ... });
 *
 * Two ways to get into private-* and presence-* channels:
 *   - Pusher style: { authEndpoint: "/pusher/auth" } is POSTed socket_id and channel_name and
 *     answers {"auth": "key:signature", "channel_data"?: "..."}.
 *   - JWT style (Bridge's seed API): { jwt: token, uniqueUserId: "ann" } go in the connection URL;
 *     the server then needs no per-channel auth.
 *
 * One file, no dependencies, no build step. Loaded by a <script> tag it defines
 * window.PusherLite (and window.require("pusher_lite") when the page has no `require`);
 * under CommonJS it is module.exports (with .default).
 */
(function (root, factory) {
  "use strict";
  var PusherLite = factory(root);
  if (typeof module === "object" && module && module.exports) {
    module.exports = PusherLite;
  } else if (root) {
    root.PusherLite = PusherLite;
    // Pages written for the original bundle call require("pusher_lite").default.
    if (typeof root.require !== "function") {
      root.require = function (name) {
        if (name === "pusher_lite" || name === "pusher-lite") return PusherLite;
        throw new Error("Cannot find module '" + name + "'");
      };
    }
  }
})(typeof self !== "undefined" ? self : this, function (root) {
  "use strict";

  const VERSION = "1.0.0";
  const PROTOCOL = 7;

  // The host the script itself was loaded from: the default server when no host is given.
  const scriptOrigin = (function () {
    try {
      const script = root.document && root.document.currentScript;
      if (script && script.src) {
        const url = new URL(script.src, root.location.href);
        return { host: url.host, ssl: url.protocol === "https:" };
      }
    } catch (ignored) { /* not in a browser page */ }
    return null;
  })();

  const DEFAULTS = {
    activityTimeout: 120000, // ms of silence before we ping (the server's value wins if lower)
    pongTimeout: 30000,      // ms to wait for any frame after our ping
    connectTimeout: 10000,   // ms for the socket to open and say connection_established
    maxReconnectDelay: 30000,
    maxQueuedTriggers: 100,  // per channel, sent once the subscription succeeds
    authEndpoint: "/pusher/auth",
  };

  // --------------------------------------------------------------------------------------
  // Events
  // --------------------------------------------------------------------------------------

  /** bind/unbind/emit, shared by the client and its channels. */
  class Emitter {
    constructor() {
      this._callbacks = new Map(); // event name -> [{fn, context}]
      this._globalCallbacks = [];  // fn(eventName, data, metadata)
    }

    bind(event, fn, context) {
      if (typeof fn !== "function") throw new TypeError("bind needs a function");
      if (!this._callbacks.has(event)) this._callbacks.set(event, []);
      this._callbacks.get(event).push({ fn: fn, context: context });
      return this;
    }

    /** unbind(event, fn) removes one callback; unbind(event) all of an event; unbind() all. */
    unbind(event, fn, context) {
      if (event === undefined) {
        this._callbacks.clear();
        return this;
      }
      const list = this._callbacks.get(event);
      if (!list) return this;
      const kept = list.filter(function (entry) {
        return (fn !== undefined && entry.fn !== fn) || (context !== undefined && entry.context !== context);
      });
      if (kept.length) this._callbacks.set(event, kept); else this._callbacks.delete(event);
      return this;
    }

    bind_global(fn) {
      this._globalCallbacks.push(fn);
      return this;
    }

    unbind_global(fn) {
      this._globalCallbacks = fn === undefined ? [] : this._globalCallbacks.filter(function (g) { return g !== fn; });
      return this;
    }

    emit(event, data, metadata) {
      // Copies: a callback may bind or unbind while we iterate.
      this._globalCallbacks.slice().forEach(function (fn) { safely(fn, null, [event, data, metadata]); });
      (this._callbacks.get(event) || []).slice().forEach(function (entry) {
        safely(entry.fn, entry.context || root, [data, metadata]);
      });
      return this;
    }
  }

  /** A throwing callback must not break the socket's message loop or the other callbacks. */
  function safely(fn, context, args) {
    try {
      fn.apply(context, args);
    } catch (error) {
      if (root.console) root.console.error("PusherLite: an event callback threw", error);
    }
  }

  /** Server data is often a JSON document inside a string; parse it when it parses. */
  function decodeData(data) {
    if (typeof data !== "string") return data;
    try {
      return JSON.parse(data);
    } catch (notJSON) {
      return data;
    }
  }

  // --------------------------------------------------------------------------------------
  // Channels
  // --------------------------------------------------------------------------------------

  class Channel extends Emitter {
    constructor(name, client) {
      super();
      this.name = name;
      this.client = client;
      this.subscribed = false;
      this.subscriptionPending = false;
      this.subscriptionCount = null;
      this._attempt = 0; // bumps on each subscribe so a late auth answer for an old one is dropped
      this._queued = []; // [event, data] triggered before the subscription succeeded
    }

    /** Whether joining needs a signature from the auth endpoint (not in JWT mode). */
    get needsAuth() {
      return /^(private|presence)-/.test(this.name) && !this.client.options.jwt;
    }

    /** Send pusher:subscribe on the current connection (after authorizing, when needed). */
    subscribe() {
      if (this.subscribed || this.subscriptionPending) return;
      const client = this.client;
      const socketId = client.socket_id;
      const attempt = ++this._attempt;
      this.subscriptionPending = true;
      const send = (auth) => {
        // Still wanted, and still the same connection?
        if (attempt !== this._attempt || client.socket_id !== socketId || client.channels.get(this.name) !== this) return;
        const data = { channel: this.name, auth: auth.auth || "" };
        if (auth.channel_data !== undefined) data.channel_data = auth.channel_data;
        this._authData = auth;
        client.send_event("pusher:subscribe", data);
      };
      if (!this.needsAuth) {
        send(this.jwtAuthData());
        return;
      }
      client.authorize(this.name, socketId).then(send, (failure) => {
        if (attempt !== this._attempt) return;
        this.subscriptionPending = false;
        client.debug("auth failed for " + this.name, failure);
        this.emit("pusher:subscription_error", failure);
      });
    }

    /** Extra subscribe fields in JWT mode (presence channels override this). */
    jwtAuthData() {
      return {};
    }

    /** The connection dropped: we must subscribe again on the next one. */
    disconnected() {
      this.subscribed = false;
      this.subscriptionPending = false;
      this._attempt++;
    }

    unsubscribed() {
      this.disconnected();
      this._queued = [];
    }

    /** The server confirmed the subscription: send what trigger() held back, in order. */
    succeeded() {
      this.subscriptionPending = false;
      this.subscribed = true;
      const queued = this._queued;
      this._queued = [];
      queued.forEach((entry) => this.client.send_event(entry[0], entry[1], this.name));
    }

    /** One frame for this channel from the server. */
    handleEvent(event, data, metadata) {
      switch (event) {
        case "pusher_internal:subscription_succeeded":
          this.succeeded();
          this.emit("pusher:subscription_succeeded", data);
          break;
        case "pusher:subscription_error":
          this.subscriptionPending = false;
          this._queued = [];
          this.emit(event, data);
          break;
        case "pusher_internal:subscription_count":
          this.subscriptionCount = data && data.subscription_count;
          this.emit("pusher:subscription_count", data);
          break;
        default:
          if (event.indexOf("pusher_internal:") === 0) return; // internal: never for the app
          this.emit(event, data, metadata);
      }
    }

    /**
     * Send an event on this channel. Pusher rules allow only client-* events on private and
     * presence channels; in JWT mode Bridge broadcasts any event name, sender included.
     * Before the subscription succeeds (the server would drop the event) it is queued and sent
     * once it does, so `subscribe(); joinAll(); trigger()` in a row works. Returns false only
     * when the event could not be sent or queued.
     */
    trigger(event, data) {
      if (this.subscribed) return this.client.send_event(event, data, this.name);
      if (this.client.channels.get(this.name) !== this) return false; // unsubscribed: nothing would send it
      if (this._queued.length >= this.client.options.maxQueuedTriggers) {
        this.client.warn("trigger queue of " + this.name + " is full; dropping the oldest event");
        this._queued.shift();
      }
      this._queued.push([event, data]);
      return true;
    }
  }

  /** Who is in a presence channel: {id, info} per unique user, and who "me" is. */
  class Members {
    constructor() {
      this.reset();
    }

    reset() {
      this._members = new Map();
      this.count = 0;
      this.me = null;
      this.myID = null;
    }

    get(id) {
      const info = this._members.get(String(id));
      return info === undefined ? null : { id: String(id), info: info };
    }

    each(fn) {
      this._members.forEach(function (info, id) { fn({ id: id, info: info }); });
    }

    /** {"presence": {"ids": [...], "hash": {id: info}, "count": N}} from subscription_succeeded. */
    setFromSubscription(data) {
      const presence = (data && data.presence) || {};
      const hash = presence.hash || {};
      this._members = new Map();
      (presence.ids || Object.keys(hash)).forEach((id) => {
        this._members.set(String(id), hash[id] === undefined ? null : hash[id]);
      });
      this.count = this._members.size;
      this.me = this.myID === null ? null : (this.get(this.myID) || { id: this.myID, info: null });
    }

    add(data) {
      const id = String(data.user_id);
      const isNew = !this._members.has(id);
      this._members.set(id, data.user_info === undefined ? null : data.user_info);
      this.count = this._members.size;
      return isNew ? this.get(id) : null;
    }

    remove(data) {
      const member = this.get(data.user_id);
      if (member) {
        this._members.delete(member.id);
        this.count = this._members.size;
      }
      return member;
    }
  }

  class PresenceChannel extends Channel {
    constructor(name, client) {
      super(name, client);
      this.members = new Members();
    }

    /** JWT mode: announce ourselves with channel_data only when the page gave userInfo. */
    jwtAuthData() {
      const options = this.client.options;
      if (options.userInfo === undefined) return {};
      return {
        channel_data: JSON.stringify({
          user_id: String(options.uniqueUserId || this.client.socket_id),
          user_info: options.userInfo,
        }),
      };
    }

    /** Who we are in this channel: the signed channel_data, else the URL's user_id, else the socket. */
    myUserID() {
      const signed = this._authData && this._authData.channel_data;
      if (signed) {
        const parsed = decodeData(signed);
        if (parsed && parsed.user_id !== undefined) return String(parsed.user_id);
      }
      const options = this.client.options;
      return String(options.jwt && options.uniqueUserId ? options.uniqueUserId : this.client.socket_id);
    }

    disconnected() {
      super.disconnected();
      this.members.reset();
    }

    handleEvent(event, data, metadata) {
      switch (event) {
        case "pusher_internal:subscription_succeeded": {
          this.members.myID = this.myUserID();
          this.members.setFromSubscription(data);
          this.succeeded();
          this.emit("pusher:subscription_succeeded", this.members);
          break;
        }
        case "pusher_internal:member_added": {
          const member = this.members.add(data);
          if (member) this.emit("pusher:member_added", member);
          break;
        }
        case "pusher_internal:member_removed": {
          const member = this.members.remove(data);
          if (member) this.emit("pusher:member_removed", member);
          break;
        }
        default:
          super.handleEvent(event, data, metadata);
      }
    }
  }

  // --------------------------------------------------------------------------------------
  // The client: one WebSocket, its state, reconnects and heartbeats
  // --------------------------------------------------------------------------------------

  /** What to do when the socket closes with `code` (PROTOCOL.md §1.4). */
  function closeAction(code) {
    if (code === 4000) return "tls";                       // app wants wss://
    if (code >= 4000 && code < 4100) return "refused";     // don't reconnect unchanged
    if (code >= 4100 && code < 4200) return "backoff";
    if (code >= 4200 && code < 4300) return "retry";       // reconnect at once
    if (code >= 4300) return "refused";
    return "backoff";                                      // network trouble, server gone
  }

  class PusherLite extends Emitter {
    constructor(appKey, options) {
      super();
      if (!appKey) throw new Error("PusherLite needs an app key");
      this.key = appKey;
      this.options = Object.assign({}, DEFAULTS, options || {});
      this.channels = new Map();
      this.state = "initialized";
      this.socket_id = null;
      this.socket = null;
      this._timers = {};
      this._failedAttempts = 0; // connection attempts in a row that never got established
      this._pendingErrorCode = null; // code of a pusher:error that the close may explain
      this._onOnline = () => {
        if (this.state === "unavailable") this._reconnectIn(0);
      };
      if (root.addEventListener) root.addEventListener("online", this._onOnline);
      // Connect on the next tick, so that callbacks bound right after `new` see "connecting" too.
      this._wanted = true;
      Promise.resolve().then(() => {
        if (this._wanted && this.state === "initialized") this.connect();
      });
    }

    /** pusher-js style: pusher.connection.bind("state_change", ...) works too. */
    get connection() {
      return this;
    }

    // --- public API ---

    connect() {
      this._wanted = true;
      if (this.socket || this.state === "connected") return;
      this._clearTimer("reconnect");
      this._open();
    }

    disconnect() {
      this._wanted = false;
      this._clearAllTimers();
      this._closeSocket(1000, "client disconnect");
      this._channelsDisconnected();
      this.socket_id = null;
      this._failedAttempts = 0;
      this._setState("disconnected");
    }

    subscribe(name) {
      let channel = this.channels.get(name);
      if (!channel) {
        channel = name.indexOf("presence-") === 0 ? new PresenceChannel(name, this) : new Channel(name, this);
        this.channels.set(name, channel);
      }
      if (this.state === "connected") channel.subscribe();
      return channel;
    }

    unsubscribe(name) {
      const channel = this.channels.get(name);
      if (!channel) return;
      this.channels.delete(name);
      if ((channel.subscribed || channel.subscriptionPending) && this.state === "connected") {
        this.send_event("pusher:unsubscribe", { channel: name });
      }
      channel.unsubscribed();
    }

    channel(name) {
      return this.channels.get(name) || null;
    }

    allChannels() {
      return Array.from(this.channels.values());
    }

    /** Connect if needed and join every channel subscribe() registered (the seed API's entry). */
    joinAll() {
      if (this.state === "connected") this.channels.forEach(function (channel) { channel.subscribe(); });
      else this.connect();
      return this;
    }

    /** Send one frame: {"event", "data", "channel"?}. Returns whether it was written. */
    send_event(event, data, channel) {
      if (!this.socket || this.socket.readyState !== 1 /* OPEN */) return false;
      const frame = { event: event, data: data };
      if (channel !== undefined) frame.channel = channel;
      this.debug("send", frame);
      this.socket.send(JSON.stringify(frame));
      return true;
    }

    /** POST socket_id and channel_name to the auth endpoint; resolves to {auth, channel_data?}. */
    authorize(channelName, socketId) {
      const auth = this.options.auth || {};
      const params = new URLSearchParams();
      params.set("socket_id", socketId);
      params.set("channel_name", channelName);
      Object.keys(auth.params || {}).forEach(function (name) { params.set(name, auth.params[name]); });
      const headers = Object.assign({ "Content-Type": "application/x-www-form-urlencoded" }, auth.headers || {});
      return fetch(this.options.authEndpoint, {
        method: "POST", headers: headers, body: params.toString(), credentials: "same-origin",
      }).then(function (response) {
        return response.text().then(function (body) {
          const answer = decodeData(body);
          if (!response.ok || !answer || typeof answer.auth !== "string") {
            return Promise.reject({
              type: "AuthError", status: response.status,
              error: "auth endpoint answered " + response.status + ": " + String(body).slice(0, 200),
            });
          }
          return answer;
        });
      }, function (error) {
        return Promise.reject({ type: "AuthError", status: 0, error: String(error) });
      });
    }

    // --- the socket ---

    get url() {
      const options = this.options;
      let host = options.host || options.wsHost || (scriptOrigin && scriptOrigin.host) || root.location.host;
      // pusher-js's names for the same switch (forceTLS, useTLS, encrypted) are understood too.
      const tls = [options.ssl, options.forceTLS, options.useTLS, options.encrypted].find(function (v) { return v !== undefined; });
      const ssl = tls !== undefined ? !!tls
        : (scriptOrigin ? scriptOrigin.ssl : root.location && root.location.protocol === "https:");
      const port = (ssl ? options.wssPort : options.wsPort) || options.port;
      if (port && !/:\d+$/.test(host)) host += ":" + port;
      let query = "protocol=" + PROTOCOL + "&client=pusher-lite&version=" + VERSION;
      if (options.jwt) query += "&jwt=" + encodeURIComponent(options.jwt);
      if (options.uniqueUserId) query += "&user_id=" + encodeURIComponent(options.uniqueUserId);
      return (ssl ? "wss://" : "ws://") + host + "/app/" + encodeURIComponent(this.key) + "?" + query;
    }

    _open() {
      if (this.state !== "unavailable") this._setState("connecting");
      this._pendingErrorCode = null;
      let socket;
      try {
        socket = new WebSocket(this.url);
      } catch (error) {
        // A malformed URL is not going to get better by retrying.
        this.emit("error", { type: "WebSocketError", error: error });
        this._setState("failed");
        return;
      }
      this.socket = socket;
      socket.onmessage = (message) => { if (this.socket === socket) this._onMessage(message); };
      socket.onerror = (error) => {
        if (this.socket === socket) this.emit("error", { type: "WebSocketError", error: error });
      };
      socket.onclose = (event) => { if (this.socket === socket) this._onClose(event); };
      this._setTimer("connect", this.options.connectTimeout, () => {
        this.debug("no connection_established within " + this.options.connectTimeout + " ms");
        this._dropSocket("backoff");
      });
    }

    _onMessage(message) {
      let frame;
      try {
        frame = JSON.parse(message.data);
      } catch (error) {
        this.emit("error", { type: "MessageParseError", error: error, data: message.data });
        return;
      }
      this.debug("receive", frame);
      const event = frame.event;
      const data = decodeData(frame.data);
      if (event !== "pusher:error") this._pendingErrorCode = null; // the socket outlived that error
      this._resetActivityTimer();
      this.emit("message", { event: event, channel: frame.channel, data: data });

      if (frame.channel !== undefined) {
        const channel = this.channels.get(frame.channel);
        const metadata = frame.user_id !== undefined ? { user_id: frame.user_id } : {};
        if (channel) channel.handleEvent(event, data, metadata);
        return;
      }
      switch (event) {
        case "pusher:connection_established": return this._onEstablished(data);
        case "pusher:error": return this._onPusherError(data);
        case "pusher:ping": return this.send_event("pusher:pong", {});
        case "pusher:pong": return; // any frame already cleared the pong timer
        default: this.emit(event, data);
      }
    }

    _onEstablished(data) {
      this._clearTimer("connect");
      this.socket_id = data.socket_id;
      this._failedAttempts = 0;
      // Ping after the shorter of our own and the server's idea of silence.
      const serverTimeout = Number(data.activity_timeout) * 1000;
      this._activityTimeout = serverTimeout > 0 ? Math.min(this.options.activityTimeout, serverTimeout)
        : this.options.activityTimeout;
      this._resetActivityTimer();
      this._setState("connected", { socket_id: this.socket_id });
      this.channels.forEach(function (channel) { channel.subscribe(); });
    }

    /**
     * pusher:error. Codes 4000-4299 announce a close (the close frame follows and decides);
     * code null (e.g. a bad signature) and 4300+ leave the connection open: only "error".
     */
    _onPusherError(data) {
      const code = data && typeof data.code === "number" ? data.code : null;
      if (code !== null && code >= 4000 && code < 4300) this._pendingErrorCode = code;
      this.emit("error", { type: "PusherError", data: data });
    }

    _onClose(event) {
      // A close without a code (1005/1006) right after a pusher:error is explained by that error.
      let code = event.code;
      if ((code === 1005 || code === 1006) && this._pendingErrorCode !== null) code = this._pendingErrorCode;
      this.debug("socket closed", { code: code, reason: event.reason });
      const announced = this._pendingErrorCode === code; // "error" went out with the pusher:error
      this._dropSocket(closeAction(code), { code: code, reason: event.reason, announced: announced });
    }

    /** Forget the current socket and act: reconnect now, later, over TLS, or give up. */
    _dropSocket(action, closeInfo) {
      const wasEstablished = this.state === "connected";
      this._closeSocket(1000, "");
      this._clearAllTimers();
      this._channelsDisconnected();
      this.socket_id = null;
      if (!this._wanted) return this._setState("disconnected");
      const info = closeInfo || {};
      if (action === "refused") {
        if (!info.announced) {
          this.emit("error", { type: "PusherError", data: { code: info.code, message: info.reason || "connection refused" } });
        }
        return this._setState("failed", { code: info.code, reason: info.reason });
      }
      if (action === "tls") {
        this.options.ssl = true;
        return this._reconnectIn(0);
      }
      if (!wasEstablished) this._failedAttempts++;
      if (action === "retry" && wasEstablished) {
        // "Reconnect at once", spread a little so a restarted server is not hit by all at once.
        this._setState("connecting");
        return this._reconnectIn(Math.random() * 250);
      }
      // Back off; a dropped live connection is "connecting" again, a failed attempt "unavailable".
      this._setState(wasEstablished ? "connecting" : "unavailable");
      this._reconnectIn(this._backoffDelay());
    }

    /** Exponential backoff with full jitter: 1 s, 2 s, 4 s ... up to maxReconnectDelay. */
    _backoffDelay() {
      const ceiling = Math.min(this.options.maxReconnectDelay, 1000 * Math.pow(2, Math.max(0, this._failedAttempts - 1)));
      return ceiling / 2 + Math.random() * ceiling / 2;
    }

    _reconnectIn(delay) {
      this._clearTimer("reconnect");
      this.debug("reconnecting in " + Math.round(delay) + " ms");
      this._setTimer("reconnect", delay, () => {
        if (this._wanted && !this.socket) this._open();
      });
    }

    _closeSocket(code, reason) {
      const socket = this.socket;
      if (!socket) return;
      this.socket = null; // its late events are ignored from now on
      socket.onmessage = socket.onerror = socket.onclose = null;
      try {
        socket.close(code, reason);
      } catch (ignored) { /* already closing */ }
    }

    _channelsDisconnected() {
      this.channels.forEach(function (channel) { channel.disconnected(); });
    }

    // --- heartbeats: ping after silence, reconnect when even the ping gets no answer ---

    _resetActivityTimer() {
      this._clearTimer("pong");
      if (!this.socket_id) return; // before connection_established the connect timer watches
      this._setTimer("activity", this._activityTimeout, () => {
        this.send_event("pusher:ping", {});
        this._setTimer("pong", this.options.pongTimeout, () => {
          this.debug("no pong within " + this.options.pongTimeout + " ms");
          this._dropSocket("retry");
        });
      });
    }

    // --- state and timers ---

    _setState(next, data) {
      const previous = this.state;
      if (previous === next) return;
      this.state = next;
      this.debug("state " + previous + " -> " + next);
      this.emit("state_change", { previous: previous, current: next });
      this.emit(next, data);
    }

    _setTimer(name, ms, fn) {
      this._clearTimer(name);
      this._timers[name] = setTimeout(() => {
        delete this._timers[name];
        fn();
      }, ms);
    }

    _clearTimer(name) {
      if (this._timers[name] !== undefined) {
        clearTimeout(this._timers[name]);
        delete this._timers[name];
      }
    }

    _clearAllTimers() {
      Object.keys(this._timers).forEach((name) => this._clearTimer(name));
    }

    debug(message, detail) {
      if ((this.options.logToConsole || PusherLite.logToConsole) && root.console) {
        root.console.log("PusherLite: " + message, detail === undefined ? "" : JSON.stringify(detail));
      }
    }

    warn(message) {
      if (root.console) root.console.warn("PusherLite: " + message);
    }
  }

  PusherLite.VERSION = VERSION;
  PusherLite.logToConsole = false;
  PusherLite.Channel = Channel;
  PusherLite.PresenceChannel = PresenceChannel;
  PusherLite.default = PusherLite; // require("pusher_lite").default, as with an ES module bundle
  return PusherLite;
});
