// The courtroom console of one hearing: the courtroom camera joins as the `courtroom` participant;
// the operator admits, mutes, removes, calls recess and ends, and watches quality and the log.

import { SignalingClient, CloseCode } from '../shared/signaling.js';
import { openLocalMedia, mediaErrorKind } from '../shared/media.js';
import { MediaCall } from '../shared/call.js';
import { RoomView } from '../shared/room_view.js';
import { formatTime } from '../shared/dates.js';
import { el, tr, value } from '../shared/dom.js';
import { startConsole } from './session.js';

const $ = (id) => document.getElementById(id);
const LOG_POLL_MS = 3000;
// Hearing statuses in which the server accepts media (docs/protocol.md: "open the waiting room first").
const MEDIA_STATUSES = new Set(['open', 'in_session', 'recess', 'interrupted']);
const ENDINGS = {
  [CloseCode.HEARING_ENDED]: 'ended',
  [CloseCode.REPLACED]: 'replaced',
  [CloseCode.JOIN_FAILED]: 'join_failed',
  [CloseCode.POLICY]: 'join_failed',
  [CloseCode.TOO_BIG]: 'join_failed',
  [CloseCode.LEFT]: 'left',
};

function hearingIdFromPath() {
  const segments = window.location.pathname.split('/').filter(Boolean);
  return segments.length >= 3 ? decodeURIComponent(segments[2]) : '';
}

class RunPage {
  constructor(i18n, api, settings) {
    this.i18n = i18n;
    this.api = api;
    this.timeZone = settings.timezone;
    this.hearingId = hearingIdFromPath();
    this.hearing = null;
    this.state = null;
    this.quality = new Map();
    this.names = new Map();
    this.localStream = null;
    this.selfMuted = { audio: false, video: false };
    this.lastSeq = 0;
    this.logEntries = [];
    this.logTimer = null;
    this.ended = false;
    this.needsPublish = true;
    this.signaling = new SignalingClient(() => ({
      type: 'join', hearing_id: this.hearingId, as: 'courtroom', language: this.i18n.language,
    }));
    this.call = new MediaCall(this.signaling);
    this.room = new RoomView(i18n, () => $('video-grid'));
    window.hearingClient = this; // for tests and diagnostics
  }

  async start() {
    $('back-link').href = `/console/?hearing=${encodeURIComponent(this.hearingId)}`;
    this.bindControls();
    this.i18n.addEventListener('change', () => this.render());
    this.signaling.addEventListener('message', (event) => this.onMessage(event.detail));
    this.signaling.addEventListener('open', () => {
      this.call.reset();
      this.needsPublish = true;
    });
    this.signaling.addEventListener('reconnecting', () => { $('banner-reconnecting').hidden = this.ended; });
    this.signaling.addEventListener('closed', (event) => this.onClosed(event.detail.code));
    this.call.addEventListener('streams', () => this.renderRoom());
    this.call.addEventListener('connection', (event) => {
      const dropped = ['disconnected', 'failed'].includes(event.detail.state);
      $('banner-reconnecting').hidden = !(dropped || !this.signaling.connected) || this.ended;
    });
    this.room.addEventListener('autoplay-blocked', () => { $('banner-sound').hidden = false; });
    await this.openCamera();
    this.signaling.connect();
    this.pollLog();
  }

  async openCamera() {
    try {
      this.localStream = await openLocalMedia({ audioOnly: false, facing: 'user' });
    } catch (error) {
      try {
        this.localStream = await openLocalMedia({ audioOnly: true });
      } catch (second) {
        this.localStream = null;
      }
      const banner = $('banner-camera');
      this.i18n.render(banner, `device.problem_${mediaErrorKind(error)}_title`);
      banner.hidden = false;
    }
    $('self-video').srcObject = this.localStream;
    this.call.localStream = this.localStream;
  }

  bindControls() {
    $('cmd-open').addEventListener('click', () => this.command({ type: 'open_waiting_room' }));
    $('cmd-start').addEventListener('click', () => this.command({ type: 'start' }));
    $('cmd-recess').addEventListener('click', () => this.command({ type: 'recess' }));
    $('cmd-resume').addEventListener('click', () => this.command({ type: 'resume' }));
    $('cmd-admit-returning').addEventListener('click', () => this.command({ type: 'admit_returning' }));
    $('cmd-end').addEventListener('click', () => this.confirm('confirm.end_title', 'confirm.end_text', 'run.end', () => this.command({ type: 'end' })));
    $('self-mic').addEventListener('click', () => this.toggleSelf('audio'));
    $('self-camera').addEventListener('click', () => this.toggleSelf('video'));
    $('confirm-cancel').addEventListener('click', () => $('confirm-dialog').close());
    $('confirm-ok').addEventListener('click', () => {
      $('confirm-dialog').close();
      if (this._confirmed) this._confirmed();
      this._confirmed = null;
    });
    $('alert-dismiss').addEventListener('click', () => { $('banner-alert').hidden = true; });
    $('sound-enable').addEventListener('click', () => {
      this.room.playAll();
      $('banner-sound').hidden = true;
    });
  }

  command(message) {
    this.signaling.send(message);
  }

  confirm(titleKey, textKey, okKey, action, params = null) {
    this.i18n.render($('confirm-title'), titleKey, params);
    this.i18n.render($('confirm-text'), textKey, params);
    this.i18n.render($('confirm-ok'), okKey);
    this._confirmed = action;
    $('confirm-dialog').showModal();
  }

  toggleSelf(kind) {
    this.selfMuted[kind] = !this.selfMuted[kind];
    const track = this.localStream && (kind === 'audio' ? this.localStream.getAudioTracks()[0] : this.localStream.getVideoTracks()[0]);
    if (track) track.enabled = !this.selfMuted[kind];
    this.command({ type: 'mute_self', kind, muted: this.selfMuted[kind] });
    this.renderSelf();
  }

  // --- signaling --------------------------------------------------------------------------

  onMessage(message) {
    if (this.call.handle(message)) return;
    switch (message.type) {
      case 'hearing':
        this.hearing = message.hearing;
        this.call.configure((message.media && message.media.ice_servers) || []);
        $('banner-reconnecting').hidden = true;
        this.render();
        break;
      case 'state':
        this.state = message;
        for (const p of [...(message.participants || []), ...(message.waiting || [])]) this.names.set(p.id, p.name);
        if (this.needsPublish && message.you.state === 'in_hearing' && this.localStream
          && MEDIA_STATUSES.has(message.hearing.status)) {
          this.needsPublish = false;
          this.call.publish();
        }
        this.render();
        break;
      case 'quality':
        this.quality = new Map(message.participants.map((q) => [q.participant_id, q]));
        this.renderParticipants();
        break;
      case 'link_quality': {
        // congestion control paused (or resumed) video to a party: warn at once, figures follow with `quality`
        const known = this.quality.get(message.participant_id) || { participant_id: message.participant_id };
        this.quality.set(message.participant_id, {
          ...known, video_paused: message.video_paused, downlink_loss_pct: message.loss_pct,
          rtt_ms: message.rtt_ms, outbound_kbps: message.kbps,
        });
        this.renderParticipants();
        break;
      }
      case 'alert':
        this.i18n.render($('alert-text'), this.i18n.has(`alert.${message.code}`) ? `alert.${message.code}` : 'alert.generic');
        $('banner-alert').dataset.code = message.code;
        $('banner-alert').hidden = false;
        break;
      case 'error':
        if (message.ref && message.ref.startsWith('pub')) this.needsPublish = true; // offer again on the next state
        this.showError(message);
        break;
      case 'hearing_ended':
        this.finish('ended');
        break;
      case 'replaced':
        this.finish('replaced');
        break;
      default:
        break;
    }
  }

  onClosed(code) {
    $('banner-reconnecting').hidden = true;
    if (!this.ended) this.finish(ENDINGS[code] || 'join_failed');
  }

  showError(message) {
    this.lastError = message;
    const banner = $('banner-error');
    const key = this.i18n.has(`signal_error.${message.code}`) ? `signal_error.${message.code}` : 'signal_error.generic';
    this.i18n.render(banner, key);
    banner.hidden = false;
    banner.dataset.code = message.code;
    clearTimeout(this._errorTimer);
    this._errorTimer = setTimeout(() => { banner.hidden = true; }, 8000);
  }

  finish(reason) {
    if (this.ended) return;
    this.ended = true;
    this.signaling.stop();
    this.call.close();
    this.room.update([], new Map());
    if (this.localStream) for (const track of this.localStream.getTracks()) track.stop();
    for (const id of ['banner-recording', 'banner-recording-paused', 'banner-recess', 'banner-reconnecting',
      'banner-not-recording', 'banner-recording-failed', 'banner-alert']) {
      $(id).hidden = true;
    }
    let key = reason === 'join_failed' && this.lastError && this.i18n.has(`signal_error.${this.lastError.code}`)
      ? `signal_error.${this.lastError.code}` : `run.ended_${reason}_text`;
    // The courtroom seat of a hearing with assigned staff is theirs (and admins'): say so.
    if (reason === 'join_failed' && this.lastError && this.lastError.field === 'seat') key = 'detail.read_only';
    this.i18n.render($('ended-title'), `run.ended_${reason}_title`);
    this.i18n.render($('ended-text'), key);
    $('main').hidden = true;
    $('ended-panel').hidden = false;
    $('ended-back').href = `/console/?hearing=${encodeURIComponent(this.hearingId)}`;
    document.body.dataset.end = reason;
    $('ended-title').setAttribute('tabindex', '-1');
    $('ended-title').focus();
    this.fetchLog(); // the last entries (hearing_ended)
  }

  // --- rendering ----------------------------------------------------------------------------

  render() {
    if (this.hearing) {
      $('run-case').textContent = this.hearing.case_number;
      $('run-subtitle').textContent = this.hearing.title;
    }
    this.renderStatus();
    this.renderWaiting();
    this.renderParticipants();
    this.renderRoom();
    this.renderSelf();
    this.renderLog();
  }

  renderStatus() {
    const hearing = this.state ? this.state.hearing : (this.hearing ? { status: this.hearing.status, recording: 'off' } : null);
    if (!hearing) return;
    const status = hearing.status;
    const statusEl = $('run-status');
    this.i18n.render(statusEl, `status.${status}`);
    statusEl.className = `status status-${status}`;
    document.body.dataset.hearingStatus = status;
    document.body.dataset.recording = hearing.recording;
    $('run-node').hidden = !hearing.node;
    $('run-node-id').textContent = hearing.node || '';
    $('cmd-open').hidden = !['scheduled', 'interrupted'].includes(status);
    $('cmd-start').hidden = !['open', 'interrupted'].includes(status);
    $('cmd-recess').hidden = status !== 'in_session';
    $('cmd-resume').hidden = status !== 'recess';
    $('cmd-end').hidden = !['open', 'in_session', 'recess', 'interrupted'].includes(status);
    $('banner-recording').hidden = hearing.recording !== 'recording';
    $('banner-recording-paused').hidden = hearing.recording !== 'paused';
    $('banner-not-recording').hidden = !(status === 'in_session' && hearing.recording === 'off');
    $('banner-recording-failed').hidden = hearing.recording !== 'failed';
    $('banner-recess').hidden = status !== 'recess';
    const host = $('run-media-host');
    host.hidden = !hearing.media_host;
    if (hearing.media_host) this.i18n.render(host, 'run.media_host', { worker: hearing.media_host });
  }

  renderWaiting() {
    const waiting = (this.state && this.state.waiting) || [];
    $('waiting-count').textContent = waiting.length ? `(${waiting.length})` : '';
    $('waiting-empty').hidden = waiting.length > 0;
    // Back after an interruption (docs/protocol.md): one click each, or all of them at once.
    $('cmd-admit-returning').hidden = !waiting.some((party) => party.returning && party.state === 'waiting');
    $('waiting-list').replaceChildren(...waiting.map((party) => {
      const canAdmit = party.state === 'waiting';
      const admit = el('button', {
        type: 'button', class: 'button button-small button-primary', disabled: !canAdmit,
        dataset: { action: 'admit', partyId: party.id },
        on: { click: () => this.command({ type: 'admit', party_id: party.id }) },
      });
      this.i18n.render(admit, 'run.admit');
      const deny = el('button', {
        type: 'button', class: 'button button-small button-danger-outline', disabled: !canAdmit,
        dataset: { action: 'deny', partyId: party.id },
        on: { click: () => this.command({ type: 'deny', party_id: party.id }) },
      });
      this.i18n.render(deny, 'run.deny');
      const returning = party.returning
        ? tr(this.i18n, 'run.returning', null, 'span', { class: 'badge badge-warn', dataset: { returning: 'true' } }) : null;
      return el('li', { class: 'queue-item', dataset: { partyId: party.id, state: party.state, returning: String(Boolean(party.returning)) } },
        el('div', { class: 'who' }, value(party.name, 'strong'), tr(this.i18n, `role.${party.role}`, null, 'span', { class: 'hint' })),
        tr(this.i18n, `party_state.${party.state}`, null, 'span', { class: `badge ${canAdmit ? 'badge-ok' : 'badge-neutral'}` }),
        returning,
        el('div', { class: 'queue-actions' }, admit, deny));
    }));
  }

  renderParticipants() {
    const people = (this.state && this.state.participants) || [];
    const me = this.state ? this.state.you.participant_id : null;
    $('participants-empty').hidden = people.length > 0;
    $('participant-list').replaceChildren(...people.map((person) => this.participantItem(person, person.id === me)));
  }

  participantItem(person, isSelf) {
    const muted = person.muted || [];
    const byCourt = person.muted_by_court || [];
    const quality = this.quality.get(person.id);
    const badges = el('div', { class: 'badges' });
    badges.append(tr(this.i18n, `party_state.${person.state}`, null, 'span', { class: `badge ${person.state === 'in_hearing' ? 'badge-ok' : 'badge-warn'}` }));
    if (muted.includes('audio')) {
      badges.append(tr(this.i18n, byCourt.includes('audio') ? 'run.muted_by_court' : 'tile.muted', null, 'span', { class: 'badge badge-muted' }));
    }
    if (person.audio_only) badges.append(tr(this.i18n, 'run.audio_only', null, 'span', { class: 'badge badge-neutral' }));
    const connection = person.connection || (quality && quality.connection) || null;
    if (connection) badges.append(tr(this.i18n, `connection.${connection}`, null, 'span', { class: 'badge badge-neutral' }));
    if (quality && quality.video_paused) {
      badges.append(tr(this.i18n, 'run.weak_link', null, 'span', { class: 'badge badge-warn', dataset: { weakLink: person.id } }));
    }
    const details = el('div', { class: 'quality' });
    if (quality) {
      const known = (value) => value !== null && value !== undefined;
      this.i18n.render(details, 'run.quality', {
        rtt: known(quality.rtt_ms) ? Math.round(quality.rtt_ms) : '–',
        loss: known(quality.loss_pct) ? Number(quality.loss_pct).toFixed(1) : '–',
        down: Math.round(quality.inbound_kbps || 0),
        up: Math.round(quality.outbound_kbps || 0),
        downlink_loss: known(quality.downlink_loss_pct) ? Number(quality.downlink_loss_pct).toFixed(1) : '–',
      });
    }
    const actions = el('div', { class: 'person-actions' });
    if (!isSelf) {
      const courtMuted = byCourt.includes('audio');
      const mute = el('button', {
        type: 'button', class: 'button button-small', dataset: { action: courtMuted ? 'unmute' : 'mute', partyId: person.id },
        on: { click: () => this.command({ type: courtMuted ? 'unmute' : 'mute', party_id: person.id, kind: 'audio' }) },
      });
      this.i18n.render(mute, courtMuted ? 'run.unmute' : 'run.mute');
      const ask = el('button', {
        type: 'button', class: 'button button-small', disabled: courtMuted || !muted.includes('audio'),
        dataset: { action: 'request_unmute', partyId: person.id },
        on: { click: () => this.command({ type: 'request_unmute', party_id: person.id, kind: 'audio' }) },
      });
      this.i18n.render(ask, 'run.request_unmute');
      const remove = el('button', {
        type: 'button', class: 'button button-small button-danger-outline', dataset: { action: 'remove', partyId: person.id },
        on: {
          click: () => this.confirm('confirm.remove_title', 'confirm.remove_text', 'run.remove',
            () => this.command({ type: 'remove', party_id: person.id }), { name: person.name }),
        },
      });
      this.i18n.render(remove, 'run.remove');
      actions.append(mute, ask, remove);
    }
    const who = el('div', { class: 'who' }, value(person.name, 'strong'),
      tr(this.i18n, `role.${person.role}`, null, 'span', { class: 'hint' }),
      isSelf ? tr(this.i18n, 'run.you', null, 'span', { class: 'hint' }) : null);
    return el('li', { class: 'person', dataset: { partyId: person.id, state: person.state } }, who, badges, details, actions);
  }

  renderRoom() {
    if (!this.state) return;
    const me = this.state.you.participant_id;
    const others = (this.state.participants || []).filter((p) => p.id !== me);
    this.room.update(others, this.call.streams, { recess: this.state.hearing.status === 'recess' });
  }

  renderSelf() {
    $('self-mic').setAttribute('aria-pressed', String(this.selfMuted.audio));
    this.i18n.render($('self-mic'), this.selfMuted.audio ? 'run.mic_on' : 'run.mic_off');
    $('self-camera').setAttribute('aria-pressed', String(this.selfMuted.video));
    this.i18n.render($('self-camera'), this.selfMuted.video ? 'run.camera_on' : 'run.camera_off');
    $('self-muted').hidden = !this.selfMuted.audio;
    $('self-tile').classList.toggle('no-video', this.selfMuted.video || !this.localStream || !this.localStream.getVideoTracks().length);
  }

  // --- the confirmation log -----------------------------------------------------------------

  pollLog() {
    this.fetchLog().finally(() => {
      if (!this.ended && !this.logUnavailable) this.logTimer = setTimeout(() => this.pollLog(), LOG_POLL_MS);
    });
  }

  async fetchLog() {
    if (this.logUnavailable) return;
    try {
      const page = await this.api.get(`/hearings/${encodeURIComponent(this.hearingId)}/events`, { after_seq: this.lastSeq || null });
      const items = Array.isArray(page) ? page : (page.items || []);
      const fresh = items.filter((entry) => entry.seq > this.lastSeq);
      if (fresh.length) {
        this.logEntries.push(...fresh);
        this.lastSeq = Math.max(...fresh.map((entry) => entry.seq));
        this.renderLog();
      }
    } catch (error) {
      if (error.status === 404 || error.status === 405) {
        // The server has no event feed (yet): the state above is all there is.
        this.logUnavailable = true;
        $('log-unavailable').hidden = false;
      }
    }
  }

  renderLog() {
    const list = $('log-list');
    list.replaceChildren(...this.logEntries.slice(-200).map((entry) => {
      const when = entry.time || entry.at || entry.created_at;
      const eventKey = this.i18n.has(`event.${entry.event}`) ? `event.${entry.event}` : null;
      const name = entry.party_id ? this.names.get(entry.party_id) : null;
      const details = entry.details || {};
      return el('li', { class: 'log-entry', dataset: { event: entry.event, seq: String(entry.seq) } },
        value(formatTime(when, this.i18n.language, this.timeZone, { seconds: true }), 'time', { datetime: when, class: 'log-time' }),
        eventKey ? tr(this.i18n, eventKey, null, 'span', { class: 'log-event' }) : value(entry.event, 'span', { class: 'log-event' }),
        name ? value(name, 'span', { class: 'log-party' }) : null,
        details.language ? tr(this.i18n, `language.${details.language}`, null, 'span', { class: 'hint' }) : null);
    }));
    list.scrollTop = list.scrollHeight;
  }
}

startConsole((i18n, api, settings) => new RunPage(i18n, api, settings).start());

