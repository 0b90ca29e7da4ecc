// The signaling WebSocket (docs/protocol.md): joins, reconnects with back-off, checks liveness.
//
// Events: 'message' (detail: the server message), 'open' (after every successful connect),
// 'reconnecting' (detail: {code, delay, cause}), 'closed' (detail: {code, reason}) when the server closed
// the connection for good (left, ended, removed, replaced, denied, join failed, policy).
// `cause` is 'closed' when the socket was closed under us — the server went away (1001) or its process
// died (1006 at once, the kernel closed the connection) — and 'lost' when it stopped answering (no pong).

export const CloseCode = Object.freeze({
  LEFT: 1000,
  GOING_AWAY: 1001,
  POLICY: 1008,
  TOO_BIG: 1009,
  HEARING_ENDED: 4000,
  REMOVED: 4001,
  REPLACED: 4002,
  DENIED: 4003,
  JOIN_FAILED: 4004,
});

// Close codes after which reconnecting would be wrong (docs/protocol.md §1, "Close codes").
const FINAL_CODES = new Set([
  CloseCode.LEFT, CloseCode.POLICY, CloseCode.TOO_BIG, CloseCode.HEARING_ENDED,
  CloseCode.REMOVED, CloseCode.REPLACED, CloseCode.DENIED, CloseCode.JOIN_FAILED,
]);

const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 5000;
const PING_EVERY_MS = 10000;
const PONG_TIMEOUT_MS = 8000;
const QUICK_PONG_TIMEOUT_MS = 1500; // after a sign of trouble (network change, media dropped)

/** The signaling endpoint of the page's own origin. */
export function signalingUrl() {
  const scheme = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${window.location.host}/ws`;
}

export class SignalingClient extends EventTarget {
  /** `joinMessage()` builds the `join` sent on every (re)connect. */
  constructor(joinMessage, url = signalingUrl()) {
    super();
    this._joinMessage = joinMessage;
    this._url = url;
    this._socket = null;
    this._stopped = false;
    this._attempt = 0;
    this._retryTimer = null;
    this._pingTimer = null;
    this._pongTimer = null;
    this._alive = null;
    this._aliveResolve = null;
    this._aliveTimer = null;
    this._refs = 0;
    this.connected = false;
    this._onOnline = () => {
      if (!this.connected && !this._stopped) this._reconnectNow();
    };
    window.addEventListener('online', this._onOnline);
  }

  connect() {
    this._stopped = false;
    this._open();
  }

  /** Send one message; returns false when the socket is not open (the caller re-sends after 'open'). */
  send(message) {
    if (!this._socket || this._socket.readyState !== WebSocket.OPEN) return false;
    this._socket.send(JSON.stringify(message));
    return true;
  }

  /** A fresh `ref` for matching a reply to its request. */
  nextRef(prefix = 'r') {
    this._refs += 1;
    return `${prefix}${this._refs}`;
  }

  /** Close for good (the page is done with the hearing). */
  stop(code = 1000) {
    this._stopped = true;
    clearTimeout(this._retryTimer);
    this._stopPing();
    window.removeEventListener('online', this._onOnline);
    if (this._socket && this._socket.readyState <= WebSocket.OPEN) this._socket.close(code);
  }

  _open() {
    clearTimeout(this._retryTimer);
    let socket;
    try {
      socket = new WebSocket(this._url);
    } catch (error) {
      this._scheduleReconnect(0, 'closed');
      return;
    }
    this._socket = socket;
    socket.addEventListener('open', () => {
      if (socket !== this._socket) return;
      this._attempt = 0;
      this.connected = true;
      socket.send(JSON.stringify(this._joinMessage()));
      this._startPing();
      this.dispatchEvent(new CustomEvent('open'));
    });
    socket.addEventListener('message', (event) => {
      if (socket !== this._socket) return;
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return; // the server only sends JSON; anything else is noise on the line
      }
      if (message.type === 'pong') {
        clearTimeout(this._pongTimer);
        this._pongTimer = null;
        this._settleAlive(true);
        return;
      }
      this.dispatchEvent(new CustomEvent('message', { detail: message }));
    });
    socket.addEventListener('close', (event) => {
      if (socket !== this._socket) return;
      this.connected = false;
      this._settleAlive(false);
      this._stopPing();
      if (this._stopped) return;
      if (FINAL_CODES.has(event.code)) {
        this._stopped = true;
        this.dispatchEvent(new CustomEvent('closed', { detail: { code: event.code, reason: event.reason } }));
        return;
      }
      this._scheduleReconnect(event.code, 'closed');
    });
  }

  _scheduleReconnect(code, cause) {
    const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** this._attempt);
    this._attempt += 1;
    this.dispatchEvent(new CustomEvent('reconnecting', { detail: { code, delay, cause } }));
    this._retryTimer = setTimeout(() => this._open(), delay * (0.8 + Math.random() * 0.4));
  }

  _reconnectNow() {
    clearTimeout(this._retryTimer);
    if (this._socket && this._socket.readyState === WebSocket.CONNECTING) return;
    this._open();
  }

  /** Give up on a socket that stopped answering and connect anew (its late events are ignored). */
  _abandon() {
    const socket = this._socket;
    this._socket = null;
    this.connected = false;
    this._settleAlive(false);
    this._stopPing();
    if (socket) socket.close();
    if (!this._stopped) this._scheduleReconnect(1006, 'lost');
  }

  /**
   * The network may have changed: ping now; resolves true when the server answers within `timeoutMs`,
   * false when it does not (the socket is then abandoned and a new one opened at once: its `join` and
   * the page's publish after it restore everything).
   */
  checkAlive(timeoutMs = QUICK_PONG_TIMEOUT_MS) {
    if (this._stopped) return Promise.resolve(false);
    if (!this.connected) {
      this._reconnectNow();
      return Promise.resolve(false);
    }
    if (this._alive) return this._alive;
    if (!this.send({ type: 'ping' })) return Promise.resolve(false);
    this._alive = new Promise((resolve) => {
      this._aliveResolve = resolve;
    });
    this._aliveTimer = setTimeout(() => {
      this._settleAlive(false);
      this._attempt = 0;
      this._abandon();
    }, timeoutMs);
    return this._alive;
  }

  _settleAlive(alive) {
    clearTimeout(this._aliveTimer);
    const resolve = this._aliveResolve;
    this._alive = null;
    this._aliveResolve = null;
    if (resolve) resolve(alive);
  }

  _startPing() {
    this._stopPing();
    this._pingTimer = setInterval(() => {
      if (!this.send({ type: 'ping' })) return;
      if (this._pongTimer) return;
      // No pong in time: the network is gone even if the socket has not noticed yet.
      this._pongTimer = setTimeout(() => {
        this._pongTimer = null;
        this._abandon();
      }, PONG_TIMEOUT_MS);
    }, PING_EVERY_MS);
  }

  _stopPing() {
    clearInterval(this._pingTimer);
    clearTimeout(this._pongTimer);
    this._pingTimer = null;
    this._pongTimer = null;
  }
}
