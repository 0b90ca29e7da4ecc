// The party's page: hearing details → device check → recording notice → waiting room → hearing → end.

import { I18n, mountLanguageSwitch, preferredLanguage } from '../shared/i18n.js';
import { SignalingClient, CloseCode } from '../shared/signaling.js';
import { LevelMeter, mediaErrorKind, openCamera, openLocalMedia } from '../shared/media.js';
import { MediaCall } from '../shared/call.js';
import { RoomView } from '../shared/room_view.js';
import { clientSettings } from '../shared/api.js';
import { formatDateTime } from '../shared/dates.js';
import { el, showScreen, tr, value } from '../shared/dom.js';

const $ = (id) => document.getElementById(id);

// Join failures (the server closes with 4004 after one of these) and how each is explained.
const JOIN_ERRORS = new Set([
  'invitation_expired', 'invitation_revoked', 'invitation_invalid', 'hearing_not_open',
  'hearing_closed', 'hearing_full', 'cluster_full', 'not_found', 'forbidden',
]);
// Errors that end the page's visit whenever they come (also on a reconnect).
const FATAL_ERRORS = new Set([
  'invitation_expired', 'invitation_revoked', 'invitation_invalid', 'hearing_not_open', 'hearing_closed', 'hearing_full',
  'cluster_full',
]);
const FAREWELLS = { hearing_ended: 'ended', removed: 'removed', denied: 'denied', replaced: 'replaced' };
const CLOSE_ENDINGS = {
  [CloseCode.HEARING_ENDED]: 'ended',
  [CloseCode.REMOVED]: 'removed',
  [CloseCode.REPLACED]: 'replaced',
  [CloseCode.DENIED]: 'denied',
  [CloseCode.LEFT]: 'left',
};
const MIN_TOKEN = 16;

function tokenFromPath() {
  const segments = window.location.pathname.split('/').filter(Boolean);
  if (segments.length < 2 || segments[0] !== 'join') return '';
  try {
    return decodeURIComponent(segments[1]);
  } catch {
    return '';
  }
}

class PartyApp {
  constructor(i18n, settings) {
    this.i18n = i18n;
    this.settings = settings;
    this.timeZone = settings.timezone || 'UTC';
    this.token = tokenFromPath();
    this.stage = 'loading';
    this.hearing = null;
    this.you = null;
    this.notice = null;
    this.state = null;
    this.lastError = null;
    this.localStream = null;
    this.meter = null;
    this.facing = 'user';
    this.audioOnly = false;
    this.selfMuted = { audio: false, video: false };
    this.courtMuted = new Set();
    this.devicesReady = false;
    this.confirmSent = false;
    this.readySent = false;
    this.needsPublish = false;
    this.ended = false;
    this.reconnecting = false;
    this.lostCause = null; // why the socket went: 'closed' (the server went away) or 'lost' (no answer)
    this.mediaDropped = false;
    this.signaling = new SignalingClient(() => this._joinMessage());
    this.call = new MediaCall(this.signaling);
    this.room = new RoomView(i18n, (participant) => (participant.role === 'courtroom' ? $('stage') : $('strip')));
    // For tests and diagnostics: the page's live objects (no secrets: the token is in the address anyway).
    window.hearingClient = this;
  }

  start() {
    this._bindControls();
    this.i18n.addEventListener('change', () => this._onLanguageChanged());
    if (this.token.length < MIN_TOKEN) {
      this._showError('invitation_invalid');
      return;
    }
    this.signaling.addEventListener('message', (event) => this._onMessage(event.detail));
    this.signaling.addEventListener('open', () => this._onSocketOpen());
    this.signaling.addEventListener('reconnecting', (event) => this._onReconnecting(event.detail));
    this.signaling.addEventListener('closed', (event) => this._onClosed(event.detail.code));
    this.call.addEventListener('streams', () => this._renderRoom());
    this.call.addEventListener('connection', (event) => this._onMediaState(event.detail.state));
    this.call.addEventListener('error', (event) => console.warn('media:', event.detail.error));
    this.room.addEventListener('autoplay-blocked', () => { $('banner-sound').hidden = false; });
    this.signaling.connect();
    this._loadActs();
  }

  // --- court acts: signed PDFs the party downloads with the same link, also after the hearing ---------

  async _loadActs() {
    try {
      const response = await fetch(`/api/v1/join/${encodeURIComponent(this.token)}/acts`, {
        credentials: 'omit', cache: 'no-store', referrerPolicy: 'no-referrer',
      });
      if (!response.ok) return;
      this.acts = (await response.json()).items || [];
    } catch (error) {
      console.warn('acts:', error);
      return;
    }
    this._renderActs();
  }

  _renderActs() {
    const acts = this.acts || [];
    $('acts-panel').hidden = acts.length === 0;
    $('acts-list').replaceChildren(...acts.map((act) => {
      const link = el('a', {
        class: 'button button-primary',
        href: `/api/v1/join/${encodeURIComponent(this.token)}/acts/${encodeURIComponent(act.id)}/pdf`,
        download: act.file_name,
        dataset: { actId: act.id },
      });
      this.i18n.render(link, 'acts.download');
      return el('li', { class: 'act', dataset: { actId: act.id } },
        value(act.title, 'strong', { class: 'block' }),
        tr(this.i18n, 'acts.signed', {
          signer: act.signer_subject,
          time: formatDateTime(act.signed_at, this.i18n.language, this.timeZone),
        }, 'span', { class: 'hint block' }),
        tr(this.i18n, act.signature_valid ? 'acts.valid' : 'acts.invalid', null, 'span', {
          class: `badge ${act.signature_valid ? 'badge-ok' : 'badge-warn'}`, dataset: { valid: String(act.signature_valid) },
        }),
        tr(this.i18n, 'acts.pages', { pages: act.pages }, 'span', { class: 'hint block' }),
        link);
    }));
  }

  _joinMessage() {
    return { type: 'join', token: this.token, language: this.i18n.language };
  }

  // --- controls ---------------------------------------------------------------------------

  _bindControls() {
    $('details-continue').addEventListener('click', () => this._goDevice());
    $('device-continue').addEventListener('click', () => this._afterDevices());
    $('device-retry').addEventListener('click', () => this._openDevices());
    $('device-switch').addEventListener('click', () => this._switchCamera());
    $('device-audio-only').addEventListener('change', (event) => this._chooseAudioOnly(event.target.checked));
    $('notice-agree').addEventListener('change', (event) => {
      $('notice-continue').disabled = !event.target.checked || !this.notice;
    });
    $('notice-continue').addEventListener('click', () => this._confirmNotice());
    $('waiting-leave').addEventListener('click', () => this._askLeave());
    $('ctl-mic').addEventListener('click', () => this._toggleMic());
    $('ctl-camera').addEventListener('click', () => this._toggleCamera());
    $('ctl-audio-only').addEventListener('click', () => this._toggleAudioOnly());
    $('ctl-leave').addEventListener('click', () => this._askLeave());
    $('leave-cancel').addEventListener('click', () => $('leave-dialog').close());
    $('leave-confirm').addEventListener('click', () => this._leave());
    $('unmute-accept').addEventListener('click', () => this._acceptUnmute());
    $('end-again').addEventListener('click', () => window.location.reload());
    $('error-retry').addEventListener('click', () => window.location.reload());
    $('sound-enable').addEventListener('click', () => {
      this.room.playAll();
      $('banner-sound').hidden = true;
    });
  }

  // --- signaling --------------------------------------------------------------------------

  _onSocketOpen() {
    // A new connection needs a new `join` (sent by the client) and new media connections.
    this.call.reset();
    this.needsPublish = true;
    this.weakLink = false; // a new subscribe connection starts with all video
  }

  _onMessage(message) {
    if (this.call.handle(message)) return;
    switch (message.type) {
      case 'hearing':
        this._onHearing(message);
        break;
      case 'state':
        this._onState(message);
        break;
      case 'notice':
        this._setNotice({ language: message.language, text: message.text, sha256: message.sha256 });
        break;
      case 'muted':
        this._onCourtMute(message);
        break;
      case 'unmute_requested':
        this._onUnmuteRequested(message);
        break;
      case 'link_quality':
        // the server holds back video to this phone while its connection is weak; audio keeps going
        this.weakLink = Boolean(message.video_paused);
        this._renderBanners();
        break;
      case 'error':
        this._onError(message);
        break;
      default:
        if (FAREWELLS[message.type]) this._end(FAREWELLS[message.type]);
    }
  }

  _onHearing(message) {
    this.hearing = message.hearing;
    this.you = message.you;
    this.timeZone = message.hearing.timezone || this.timeZone;
    this.call.configure((message.media && message.media.ice_servers) || []);
    this._setReconnecting(false);
    if (message.notice) this._setNotice(message.notice);
    this._renderDetails();
    if (this.stage === 'loading') {
      this._go('details');
    }
  }

  _onState(message) {
    this.state = message;
    const you = message.you;
    this.courtMuted = new Set(you.muted_by_court || []);
    this._followBack(you.state);
    $('waiting-returning').hidden = !(you.returning && you.state === 'waiting');
    this._renderBanners();
    if (you.state === 'confirmed' && this.confirmSent && !this.readySent) this._sendReady();
    if (you.state === 'waiting' && ['notice', 'device', 'details'].includes(this.stage) && this.devicesReady) {
      this._go('waiting');
    }
    if (you.state === 'in_hearing') {
      if (this.devicesReady && this.stage !== 'hearing') this._enterHearing();
      if (this.stage === 'hearing' && this.needsPublish) {
        this.needsPublish = false;
        this.call.publish();
      }
    }
    this._renderRoom();
    this._renderControls();
  }

  /** The server may put the party back — after an interruption it seats them in the waiting room, or
   * from the notice — so the page follows it backwards too: off the hearing screen, media torn down. */
  _followBack(state) {
    if (!this.devicesReady || !['hearing', 'waiting'].includes(this.stage)) return;
    if (this.stage === 'hearing' && !['in_hearing', 'disconnected'].includes(state)) {
      this.call.reset();
      this.needsPublish = true; // published again once re-admitted
      $('banner-unmute-request').hidden = true;
    }
    if (state === 'link_opened') {
      this.confirmSent = false;
      this.readySent = false;
      $('notice-agree').checked = false;
      $('notice-continue').disabled = true;
      this._go('notice');
    } else if (state === 'confirmed') {
      this.confirmSent = true; // confirmed on this seat: the next state sends `ready` again
      this.readySent = false;
      this._go('waiting');
    } else if (state === 'waiting' && this.stage === 'hearing') {
      this._go('waiting');
    }
  }

  _onError(message) {
    this.lastError = message;
    if (FATAL_ERRORS.has(message.code) || (this.stage === 'loading' && JOIN_ERRORS.has(message.code))) {
      this._showError(message.code, message);
      return;
    }
    if (message.ref && message.ref.startsWith('pub')) this.needsPublish = true; // offer again on the next state
    if (message.code === 'notice_mismatch') {
      this.confirmSent = false;
      this.signaling.send({ type: 'show_notice', language: this.i18n.language });
      return;
    }
    if (message.code === 'rate_limited') return;
    const key = this.i18n.has(`signal_error.${message.code}`) ? `signal_error.${message.code}` : 'signal_error.generic';
    const banner = $('banner-error');
    this.i18n.render(banner, key);
    banner.hidden = false;
    clearTimeout(this._errorTimer);
    this._errorTimer = setTimeout(() => { banner.hidden = true; }, 6000);
  }

  _onClosed(code) {
    this._setReconnecting(false);
    if (this.ended || this.stage === 'error') return;
    if (code === CloseCode.JOIN_FAILED) {
      this._showError(this.lastError ? this.lastError.code : 'invitation_invalid', this.lastError);
      return;
    }
    if (CLOSE_ENDINGS[code]) {
      this._end(CLOSE_ENDINGS[code]);
      return;
    }
    this._showError('connection_refused');
  }

  _onReconnecting(detail) {
    // The first cause since the last connection says what happened; later attempts fail alike either way.
    if (!this.reconnecting) this.lostCause = detail.cause;
    this._setReconnecting(true);
  }

  _setReconnecting(on) {
    this.reconnecting = on;
    if (!on) this.lostCause = null;
    this._renderConnection();
  }

  _onMediaState(state) {
    this.mediaDropped = state === 'disconnected' || state === 'failed';
    this._renderConnection();
  }

  /** "The hearing was interrupted — reconnecting" when the server went away or says the hearing is
   * interrupted; "Connection lost" when our own connection stopped answering. */
  _renderConnection() {
    // While the page still loads, the loading screen says enough.
    const shown = this.stage !== 'loading' && !this.ended;
    const status = this.state ? this.state.hearing.status : null;
    const inside = this.stage === 'waiting' || this.stage === 'hearing';
    const interrupted = shown && ((this.reconnecting && this.lostCause === 'closed')
      || (!this.reconnecting && inside && status === 'interrupted'));
    const lost = this.reconnecting || (this.stage === 'hearing' && this.mediaDropped);
    $('banner-interrupted').hidden = !interrupted;
    $('banner-reconnecting').hidden = !(shown && lost && !interrupted);
    document.body.dataset.interrupted = String(interrupted);
  }

  // --- screens ----------------------------------------------------------------------------

  _go(stage) {
    this.stage = stage;
    showScreen(`screen-${stage}`);
    document.body.dataset.stage = stage;
  }

  _renderDetails() {
    const hearing = this.hearing;
    if (!hearing) return;
    $('court-name').textContent = hearing.court;
    $('d-case').textContent = hearing.case_number;
    $('d-court').textContent = hearing.court;
    $('d-courtroom').textContent = hearing.courtroom;
    $('d-when').textContent = formatDateTime(hearing.scheduled_start, this.i18n.language, this.timeZone);
    $('d-judge').textContent = hearing.presiding_judge;
    $('d-you').textContent = this.you ? this.you.name : '';
    this.i18n.render($('d-role'), `role.${this.you ? this.you.role : 'observer'}`);
    // Who invited them: the court and, when one is assigned, the hearing's secretary.
    const invited = hearing.invited_by;
    $('d-invited-by').hidden = !invited;
    if (invited && invited.secretary) {
      this.i18n.render($('d-invited-by'), 'details.invited_by_secretary', { court: invited.court, name: invited.secretary });
    } else if (invited) {
      this.i18n.render($('d-invited-by'), 'details.invited_by', { court: invited.court });
    }
  }

  _onLanguageChanged() {
    this._renderDetails();
    this._renderActs();
    if (this.lastErrorScreen) this._showError(this.lastErrorScreen.code, this.lastErrorScreen.message);
    // The notice is read in the chosen language; the server records which one was shown.
    if (this.notice && !this.confirmSent && this.you && this.you.state !== 'confirmed') {
      if (this.notice.language !== this.i18n.language) {
        this.signaling.send({ type: 'show_notice', language: this.i18n.language });
      }
    }
  }

  _setNotice(notice) {
    const changed = !this.notice || this.notice.sha256 !== notice.sha256;
    this.notice = notice;
    const box = $('notice-text');
    box.lang = notice.language;
    box.replaceChildren(...notice.text.split(/\n\s*\n/).map((paragraph) => {
      const p = document.createElement('p');
      p.textContent = paragraph.trim();
      return p;
    }));
    if (changed) {
      // A new text must be read and confirmed again.
      $('notice-agree').checked = false;
      $('notice-continue').disabled = true;
    }
  }

  // --- device check -----------------------------------------------------------------------

  _goDevice() {
    this._go('device');
    if (!this.localStream) this._openDevices();
  }

  async _openDevices() {
    $('device-problem').hidden = true;
    $('device-continue').disabled = true;
    this._stopLocal();
    try {
      this.localStream = await openLocalMedia({ audioOnly: this.audioOnly, facing: this.facing });
    } catch (error) {
      if (!this.audioOnly && mediaErrorKind(error) === 'not_found') {
        // No camera: offer audio-only rather than nothing.
        try {
          this.localStream = await openLocalMedia({ audioOnly: true });
          this.audioOnly = true;
          $('device-audio-only').checked = true;
        } catch (second) {
          this._deviceProblem(second);
          return;
        }
      } else {
        this._deviceProblem(error);
        return;
      }
    }
    this._attachLocal();
    $('device-continue').disabled = false;
  }

  _deviceProblem(error) {
    const kind = mediaErrorKind(error);
    this.devicesReady = false;
    this.i18n.render($('device-problem-title'), `device.problem_${kind}_title`);
    this.i18n.render($('device-problem-text'), `device.problem_${kind}_text`);
    $('device-howto').hidden = kind !== 'blocked';
    $('device-problem').hidden = false;
    document.body.dataset.deviceProblem = kind;
  }

  _attachLocal() {
    const stream = this.localStream;
    this.call.localStream = stream;
    this.call.audioOnly = this.audioOnly;
    for (const id of ['device-preview', 'waiting-preview', 'self-view']) $(id).srcObject = stream;
    const hasVideo = stream.getVideoTracks().length > 0;
    $('device-preview').hidden = !hasVideo;
    $('device-preview-off').hidden = hasVideo;
    for (const id of ['device-preview', 'waiting-preview', 'self-view']) {
      $(id).classList.toggle('mirrored', this.facing === 'user');
    }
    $('device-switch').disabled = !hasVideo;
    if (this.meter) this.meter.stop();
    try {
      this.meter = new LevelMeter(stream, (level) => {
        $('device-meter').value = Math.round(level * 100);
      });
    } catch (error) {
      this.meter = null; // no WebAudio: the meter stays empty, the call still works
    }
    delete document.body.dataset.deviceProblem;
  }

  _stopLocal() {
    if (this.localStream) for (const track of this.localStream.getTracks()) track.stop();
    this.localStream = null;
  }

  async _switchCamera() {
    if (!this.localStream || this.audioOnly) return;
    const facing = this.facing === 'user' ? 'environment' : 'user';
    try {
      const track = await openCamera(facing);
      const old = this.localStream.getVideoTracks()[0];
      if (old) {
        this.localStream.removeTrack(old);
        old.stop();
      }
      this.localStream.addTrack(track);
      this.facing = facing;
      await this.call.replaceVideo(track);
      this._attachLocal();
    } catch (error) {
      this._deviceProblem(error);
    }
  }

  _chooseAudioOnly(on) {
    this.audioOnly = on;
    this._openDevices();
  }

  _afterDevices() {
    if (!this.localStream) return;
    this.devicesReady = true;
    const state = this.you && this.state ? this.state.you.state : 'link_opened';
    if (state === 'in_hearing') this._enterHearing();
    else if (state === 'waiting') this._go('waiting');
    else if (state === 'confirmed') this._sendReady();
    else this._go('notice');
  }

  // --- notice and waiting room -------------------------------------------------------------

  _confirmNotice() {
    if (!this.notice || !$('notice-agree').checked) return;
    this.confirmSent = true;
    $('notice-continue').disabled = true;
    this.signaling.send({ type: 'confirm_notice', language: this.notice.language, notice_sha256: this.notice.sha256 });
  }

  _sendReady() {
    this.readySent = true;
    this.signaling.send({ type: 'ready' });
  }

  // --- in the hearing -----------------------------------------------------------------------

  _enterHearing() {
    this._go('hearing');
    this.needsPublish = false;
    this.call.publish();
    this._renderControls();
    this._renderRoom();
  }

  _renderRoom() {
    if (!this.state) return;
    const me = this.state.you.participant_id;
    const others = (this.state.participants || []).filter((p) => p.id !== me);
    this.room.update(others, this.call.streams, { recess: this.state.hearing.status === 'recess' });
    $('stage-empty').hidden = others.some((p) => p.role === 'courtroom');
    // Without a courtroom endpoint, the first other participant takes the stage.
    if (!others.some((p) => p.role === 'courtroom') && others.length) {
      const first = this.room.tiles.get(others[0].id);
      if (first && first.root.parentElement !== $('stage')) $('stage').append(first.root);
    }
  }

  _renderBanners() {
    const hearing = this.state ? this.state.hearing : null;
    const live = this.stage === 'hearing' || this.stage === 'waiting';
    $('banner-recording').hidden = !(hearing && hearing.recording === 'recording');
    $('banner-recording-paused').hidden = !(hearing && hearing.recording === 'paused');
    $('banner-recess').hidden = !(live && hearing && hearing.status === 'recess');
    $('banner-court-muted').hidden = !this.courtMuted.has('audio');
    $('banner-weak-link').hidden = !(this.weakLink && this.stage === 'hearing');
    this._renderConnection();
    document.body.dataset.hearingStatus = hearing ? hearing.status : '';
    document.body.dataset.recording = hearing ? hearing.recording : '';
  }

  _renderControls() {
    const audioTrack = this.localStream && this.localStream.getAudioTracks()[0];
    const videoTrack = this.localStream && this.localStream.getVideoTracks()[0];
    const micOff = this.selfMuted.audio || this.courtMuted.has('audio');
    if (audioTrack) audioTrack.enabled = !micOff;
    const cameraOff = this.selfMuted.video || this.audioOnly || this.courtMuted.has('video');
    if (videoTrack) videoTrack.enabled = !cameraOff;
    $('ctl-mic').setAttribute('aria-pressed', String(micOff));
    $('ctl-mic').disabled = this.courtMuted.has('audio');
    this.i18n.render($('ctl-mic-label'), micOff ? 'hearing.mic_on' : 'hearing.mic_off');
    $('ctl-camera').setAttribute('aria-pressed', String(cameraOff));
    $('ctl-camera').disabled = this.audioOnly || this.courtMuted.has('video');
    this.i18n.render($('ctl-camera-label'), cameraOff ? 'hearing.camera_on' : 'hearing.camera_off');
    $('ctl-audio-only').setAttribute('aria-pressed', String(this.audioOnly));
    $('self-view').hidden = cameraOff || !videoTrack;
  }

  _toggleMic() {
    if (this.courtMuted.has('audio')) return;
    this.selfMuted.audio = !this.selfMuted.audio;
    this.signaling.send({ type: 'mute_self', kind: 'audio', muted: this.selfMuted.audio });
    if (!this.selfMuted.audio) $('banner-unmute-request').hidden = true;
    this._renderControls();
  }

  _toggleCamera() {
    if (this.audioOnly || this.courtMuted.has('video')) return;
    this.selfMuted.video = !this.selfMuted.video;
    this.signaling.send({ type: 'mute_self', kind: 'video', muted: this.selfMuted.video });
    this._renderControls();
  }

  async _toggleAudioOnly() {
    const on = !this.audioOnly;
    this.audioOnly = on;
    this.call.audioOnly = on;
    this.signaling.send({ type: 'set_audio_only', audio_only: on });
    const old = this.localStream.getVideoTracks()[0];
    if (on) {
      if (old) {
        this.localStream.removeTrack(old);
        old.stop(); // the camera light goes off
      }
      await this.call.replaceVideo(null);
    } else {
      try {
        const track = await openCamera(this.facing);
        this.localStream.addTrack(track);
        await this.call.replaceVideo(track);
      } catch (error) {
        this.audioOnly = true;
        this.call.audioOnly = true;
        this.signaling.send({ type: 'set_audio_only', audio_only: true });
      }
    }
    this._attachLocal();
    this._renderControls();
  }

  _onCourtMute(message) {
    if (message.kind !== 'audio') {
      this._renderControls();
      return;
    }
    $('banner-court-muted').hidden = !message.muted;
    $('banner-court-unmuted').hidden = message.muted;
    if (!message.muted) {
      clearTimeout(this._unmutedTimer);
      this._unmutedTimer = setTimeout(() => { $('banner-court-unmuted').hidden = true; }, 8000);
    }
  }

  _onUnmuteRequested() {
    $('banner-unmute-request').hidden = false;
  }

  _acceptUnmute() {
    $('banner-unmute-request').hidden = true;
    if (this.selfMuted.audio && !this.courtMuted.has('audio')) this._toggleMic();
  }

  _askLeave() {
    const dialog = $('leave-dialog');
    if (typeof dialog.showModal === 'function') dialog.showModal();
    else this._leave();
  }

  _leave() {
    const dialog = $('leave-dialog');
    if (dialog.open) dialog.close();
    this.signaling.send({ type: 'leave' });
    this._end('left');
  }

  // --- endings ------------------------------------------------------------------------------

  _teardown() {
    this.ended = true;
    this.signaling.stop();
    this.call.close();
    this.room.update([], new Map());
    if (this.meter) this.meter.stop();
    this._stopLocal();
    for (const id of ['banner-recording', 'banner-recording-paused', 'banner-recess', 'banner-reconnecting', 'banner-interrupted',
      'banner-court-muted', 'banner-court-unmuted', 'banner-unmute-request', 'banner-sound']) {
      $(id).hidden = true;
    }
  }

  _end(reason) {
    if (this.ended) return;
    this._teardown();
    this.endReason = reason;
    this.i18n.render($('end-title'), `end.${reason}_title`);
    this.i18n.render($('end-text'), `end.${reason}_text`);
    $('end-again').hidden = !['left', 'denied', 'replaced'].includes(reason);
    document.body.dataset.end = reason;
    this._go('end');
  }

  _showError(code, message = null) {
    if (!this.ended) this._teardown();
    const known = this.i18n.has(`party_error.${code}_title`) ? code : 'generic';
    this.lastErrorScreen = { code, message };
    this.i18n.render($('error-title'), `party_error.${known}_title`);
    this.i18n.render($('error-text'), `party_error.${known}_text`);
    const opens = $('error-opens');
    if (code === 'hearing_not_open' && message && message.opens_at) {
      this.i18n.render(opens, 'party_error.opens_at', {
        time: formatDateTime(message.opens_at, this.i18n.language, this.timeZone),
      });
      opens.hidden = false;
    } else {
      opens.hidden = true;
    }
    $('error-retry').hidden = !['hearing_not_open', 'connection_refused', 'hearing_full', 'cluster_full', 'generic'].includes(known);
    document.body.dataset.error = code;
    this._go('error');
  }
}

async function main() {
  const i18n = new I18n();
  let settings = { timezone: 'UTC', court_name: '' };
  const [loaded] = await Promise.allSettled([clientSettings(), i18n.setLanguage(preferredLanguage(), { remember: false })]);
  if (loaded.status === 'fulfilled') settings = loaded.value;
  $('court-name').textContent = settings.court_name || '';
  mountLanguageSwitch($('lang-switch'), i18n, { short: true });
  new PartyApp(i18n, settings).start();
}

main();
