// One participant's media in a live hearing: publishes the local stream, answers subscribe
// offers, keeps one MediaStream per remote participant, and reports the connection state.
//
// Events: 'streams' (remote streams changed), 'connection' (detail: {state}), 'error' (detail: {error}).

import { PublishConnection, SubscribeConnection } from './media.js';

// A leg whose ICE is `disconnected` this long (or at once `failed`), or a network change of the page,
// starts both connections afresh: a new publish offer, which the server takes as a reconnect (no
// re-admission) and answers with a new subscribe connection. The server (aiortc) cannot restart ICE on
// a running connection, so a restart is a new pair of connections.
const RESTART_AFTER_DISCONNECTED_MS = 1000;
const MIN_RESTART_INTERVAL_MS = 3000;
// Direct first: a publish connection not up this long after its offer starts again through the relay
// only (when the server gave one); the page stays on the relay while that works, and tries direct
// again if the relay does not connect either.
const DIRECT_TIMEOUT_MS = 6000;

function combinedState(publish, subscribe) {
  const states = [publish, subscribe].filter(Boolean);
  if (!states.length) return 'new';
  if (states.includes('failed')) return 'failed';
  if (states.includes('disconnected')) return 'disconnected';
  if (states.every((s) => s === 'connected')) return 'connected';
  if (states.includes('closed')) return 'closed';
  return 'connecting';
}

export class MediaCall extends EventTarget {
  constructor(signaling) {
    super();
    this.signaling = signaling;
    this.iceServers = [];
    this.localStream = null;
    this.audioOnly = false;
    this.streams = new Map();
    this.connectionState = 'new';
    this._publish = null;
    this._publishState = null;
    this._subscribeState = null;
    this._publishRef = null;
    this._restartTimer = null;
    this._lastRestart = 0;
    this.restarts = 0; // media restarts so far (diagnostics and tests)
    this.relayOnly = false;
    this._directTimer = null;
    this._subscribe = new SubscribeConnection(
      this.iceServers,
      (state) => {
        this._setStates(this._publishState, state);
        this._legState(state);
      },
      (tracks) => this._syncStreams(tracks),
    );
    this._onNetworkChange = () => this.networkChanged();
    window.addEventListener('online', this._onNetworkChange);
    if (navigator.connection) navigator.connection.addEventListener('change', this._onNetworkChange);
  }

  /** The page's network changed: check the signaling socket and start the media connections afresh. */
  networkChanged() {
    if (!this._publish) return;
    this._restart();
  }

  _legState(state) {
    if (!this._publish) return;
    if (state === 'connected') {
      clearTimeout(this._restartTimer);
      this._restartTimer = null;
    } else if (state === 'failed') {
      this._restart();
    } else if (state === 'disconnected' && !this._restartTimer) {
      this.signaling.checkAlive(); // a new network breaks the signaling socket too: find out now
      this._restartTimer = setTimeout(() => {
        this._restartTimer = null;
        if (this.connectionState !== 'connected') this._restart();
      }, RESTART_AFTER_DISCONNECTED_MS);
    }
  }

  async _restart() {
    clearTimeout(this._restartTimer);
    this._restartTimer = null;
    const wait = MIN_RESTART_INTERVAL_MS - (Date.now() - this._lastRestart);
    if (wait > 0) {
      this._restartTimer = setTimeout(() => this._restart(), wait);
      return;
    }
    this._lastRestart = Date.now();
    this.restarts += 1;
    // Over a live socket, offer again now; over a dead one the new socket's join publishes anyway.
    if ((await this.signaling.checkAlive()) && this._publish) this.publish();
  }

  /** Use the ICE servers the server sent in `hearing.media.ice_servers`. */
  configure(iceServers) {
    this.iceServers = iceServers || [];
    this._subscribe.iceServers = this.iceServers;
  }

  get publishing() {
    return Boolean(this._publish);
  }

  /** Offer our stream on a new publish connection (after admission, after every reconnect). */
  async publish() {
    if (!this.localStream) return;
    if (this._publish) this._publish.close();
    clearTimeout(this._directTimer);
    const connection = new PublishConnection(
      this.localStream,
      this.iceServers,
      (state) => {
        if (connection !== this._publish) return;
        this._setStates(state, this._subscribeState);
        this._legState(state);
      },
      this.relayOnly,
    );
    this._subscribe.relayOnly = this.relayOnly;
    this._publish = connection;
    if (this.iceServers.some((server) => server.username)) {
      this._directTimer = setTimeout(() => {
        if (connection !== this._publish || connection.pc.connectionState === 'connected') return;
        this.relayOnly = !this.relayOnly; // the other way: through the relay, or (relay down) direct again
        this._lastRestart = 0; // not a repeat: a different way
        this._restart();
      }, DIRECT_TIMEOUT_MS);
    }
    this._setStates('connecting', this._subscribeState);
    try {
      const sdp = await connection.offer();
      if (connection !== this._publish) return;
      this._publishRef = this.signaling.nextRef('pub');
      this.signaling.send({ type: 'publish_offer', sdp, ref: this._publishRef });
    } catch (error) {
      this.dispatchEvent(new CustomEvent('error', { detail: { error } }));
    }
  }

  /** Handle the media messages of the protocol; true when `message` was one of them. */
  handle(message) {
    if (message.type === 'publish_answer') {
      if (this._publish && message.ref === this._publishRef) {
        this._publish.accept(message.sdp).catch((error) => {
          this.dispatchEvent(new CustomEvent('error', { detail: { error } }));
        });
      }
      return true;
    }
    if (message.type === 'subscribe_offer') {
      this._subscribe
        .answer(message.sdp, message.tracks, { audioOnly: this.audioOnly })
        .then((sdp) => this.signaling.send({ type: 'subscribe_answer', sdp }))
        .catch((error) => this.dispatchEvent(new CustomEvent('error', { detail: { error } })));
      return true;
    }
    return false;
  }

  /** Forget both connections (a new `join` starts media from scratch). */
  reset() {
    clearTimeout(this._directTimer);
    clearTimeout(this._restartTimer);
    this._restartTimer = null;
    if (this._publish) this._publish.close();
    this._publish = null;
    this._publishRef = null;
    this._subscribe.close();
    this._setStates(null, null);
    this._syncStreams(new Map());
  }

  /** Put a new camera track (front/back switch, video back on) on the running publish connection. */
  async replaceVideo(track) {
    if (!this._publish) return;
    if (track && !this._publish.videoSender) {
      await this.publish(); // joined audio-only: a new offer adds the video m-line
      return;
    }
    await this._publish.replaceVideo(track);
  }

  /** Per remote participant: frames decoded, audio samples and bytes (for tests and diagnostics). */
  participantStats() {
    return this._subscribe.participantStats();
  }

  close() {
    this.reset();
    window.removeEventListener('online', this._onNetworkChange);
    if (navigator.connection) navigator.connection.removeEventListener('change', this._onNetworkChange);
  }

  _setStates(publish, subscribe) {
    this._publishState = publish;
    this._subscribeState = subscribe;
    const state = combinedState(publish, subscribe);
    if (state !== this.connectionState) {
      this.connectionState = state;
      this.dispatchEvent(new CustomEvent('connection', { detail: { state } }));
    }
  }

  _syncStreams(tracks) {
    for (const [participantId, stream] of this.streams) {
      if (!tracks.has(participantId)) {
        for (const track of stream.getTracks()) stream.removeTrack(track);
        this.streams.delete(participantId);
      }
    }
    for (const [participantId, kinds] of tracks) {
      let stream = this.streams.get(participantId);
      if (!stream) {
        stream = new MediaStream();
        this.streams.set(participantId, stream);
      }
      const wanted = Object.values(kinds).filter(Boolean);
      for (const track of stream.getTracks()) if (!wanted.includes(track)) stream.removeTrack(track);
      for (const track of wanted) if (!stream.getTracks().includes(track)) stream.addTrack(track);
    }
    this.dispatchEvent(new CustomEvent('streams'));
  }
}
