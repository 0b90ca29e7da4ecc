// One archived hearing: the playback copy, the confirmation log as a timeline that seeks the video,
// the original tracks, the seal (checked on opening, verified in full on demand), export and legal hold.

import { formatDateTime, formatTime } from '../shared/dates.js';
import { el, showScreen, tr, value } from '../shared/dom.js';
import { failureKey, showBanner } from './errors.js';
import { lastSearch } from './search.js';

const $ = (id) => document.getElementById(id);
const SEAL_STATES = new Set(['valid', 'invalid', 'unsealed', 'deleted']);
const PLAYBACK_STATES = new Set(['none', 'queued', 'rendering', 'failed', 'unknown']);
const TRACK_KINDS = new Set(['video', 'audio']);
const RENDER_POLL_MS = 5000;

/** "1:02:03" or "2:03": a position on the recording. */
export function clock(seconds) {
  const total = Math.max(0, Math.floor(seconds));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

function size(bytes, i18n) {
  if (bytes === null || bytes === undefined) return '';
  const units = [['archive.size_gb', 2 ** 30], ['archive.size_mb', 2 ** 20], ['archive.size_kb', 2 ** 10]];
  for (const [key, unit] of units) {
    if (bytes >= unit) return i18n.t(key, { n: (bytes / unit).toLocaleString(i18n.locale, { maximumFractionDigits: 1 }) });
  }
  return i18n.t('archive.size_b', { n: bytes });
}

export class HearingScreen {
  constructor(i18n, api, settings, hearingId) {
    this.i18n = i18n;
    this.api = api;
    this.timeZone = settings.timezone;
    this.id = hearingId;
    this.hearing = null;
    this.verification = null;
    this.videoSource = null;
  }

  get path() {
    return `/archive/hearings/${encodeURIComponent(this.id)}`;
  }

  async start() {
    $('back-to-search').href = lastSearch();
    $('verify-now').addEventListener('click', () => this.verify());
    $('hold-form').addEventListener('submit', (event) => {
      event.preventDefault();
      this.toggleHold();
    });
    const video = $('playback');
    video.addEventListener('timeupdate', () => this.markPosition());
    video.addEventListener('loadedmetadata', () => this.markPosition());
    this.i18n.addEventListener('change', () => this.render());
    try {
      this.hearing = await this.api.get(this.path);
    } catch (failure) {
      showScreen('no-access');
      const key = failure.status === 403 ? 'archive.no_access_title' : failureKey(this.i18n, failure);
      this.i18n.render($('no-access-title'), key);
      if (failure.status !== 403) $('no-access-title').nextElementSibling.hidden = true;
      return;
    }
    this.render();
    showScreen('hearing-screen');
    this.pollRender();
  }

  render() {
    if (!this.hearing) return;
    this.renderFacts();
    this.renderPlayback();
    this.renderTimeline();
    this.renderSeal();
    this.renderFiles();
    this.renderActs();
    this.renderHold();
  }

  when(iso) {
    return iso ? formatDateTime(iso, this.i18n.language, this.timeZone) : '—';
  }

  partyName(id) {
    const party = this.hearing.parties.find((p) => p.id === id);
    return party ? party.display_name : null;
  }

  renderFacts() {
    const h = this.hearing;
    document.title = `${h.case_number} — ${this.i18n.t('archive.page_title')}`;
    $('h-case').textContent = h.case_number;
    $('h-subtitle').textContent = h.title;
    $('h-court').textContent = h.court;
    $('h-courtroom').textContent = h.courtroom;
    $('h-judge').textContent = h.presiding_judge;
    $('h-scheduled').textContent = this.when(h.scheduled_start);
    $('h-started').textContent = this.when(h.started_at);
    $('h-ended').textContent = this.when(h.ended_at);
    $('h-sealed').textContent = this.when(h.sealed_at);
    this.i18n.render($('h-status'), `status.${h.status}`);
    $('h-hold-badge').hidden = !h.retention.legal_hold;
    $('h-parties').replaceChildren(...h.parties.filter((p) => p.role !== 'courtroom').map((party) =>
      el('li', {}, value(party.display_name, 'span', { class: 'party-name' }), ' ',
        tr(this.i18n, `role.${party.role}`, null, 'span', { class: 'hint' }))));
  }

  // --- playback -------------------------------------------------------------------------------

  /** Where the playback copy starts on the hearing timeline: at the earliest recorded track. */
  get playbackZero() {
    const starts = this.hearing.files
      .filter((f) => f.sealed && TRACK_KINDS.has(f.kind) && typeof f.first_timestamp_s === 'number')
      .map((f) => f.first_timestamp_s);
    return starts.length ? Math.min(...starts) : 0;
  }

  renderPlayback() {
    const playback = this.hearing.playback;
    const video = $('playback');
    const state = $('playback-state');
    if (playback.url) {
      if (this.videoSource !== playback.url) {
        this.videoSource = playback.url;
        video.src = playback.url;
      }
      video.hidden = false;
      state.hidden = true;
      return;
    }
    video.hidden = true;
    state.hidden = false;
    const kind = PLAYBACK_STATES.has(playback.state) ? playback.state : 'unknown';
    if (kind === 'rendering' && typeof playback.percent === 'number') {
      this.i18n.render(state, 'archive.playback_rendering_percent', { percent: Math.round(playback.percent) });
    } else {
      this.i18n.render(state, `archive.playback_${kind}`);
    }
  }

  /** While the playback copy is being made, look again now and then. */
  pollRender() {
    const pending = () => ['queued', 'rendering'].includes(this.hearing.playback.state) && !this.hearing.playback.url;
    if (!pending()) return;
    const timer = setInterval(async () => {
      try {
        const fresh = await this.api.get(this.path);
        this.hearing.playback = fresh.playback;
        this.hearing.files = fresh.files;
        this.renderPlayback();
        this.renderFiles();
        if (!pending()) {
          clearInterval(timer);
          this.renderTimeline(); // entries become seek buttons now that there is something to seek
        }
      } catch {
        /* try again at the next tick */
      }
    }, RENDER_POLL_MS);
  }

  seekTo(entry) {
    const video = $('playback');
    if (video.hidden || typeof entry.offset_s !== 'number') return;
    let target = Math.max(0, entry.offset_s - this.playbackZero);
    if (Number.isFinite(video.duration)) target = Math.min(target, video.duration);
    video.currentTime = target;
    this.selected = entry.seq;
    this.markPosition();
    video.focus();
  }

  markPosition() {
    const video = $('playback');
    if (video.hidden) return;
    const duration = Number.isFinite(video.duration) ? clock(video.duration) : '—';
    this.i18n.render($('playback-position'), 'archive.position', { position: clock(video.currentTime), duration });
    for (const item of $('timeline').querySelectorAll('[data-seq]')) {
      item.classList.toggle('current', Number(item.dataset.seq) === this.selected);
    }
  }

  // --- the confirmation log ------------------------------------------------------------------

  renderTimeline() {
    const entries = this.hearing.timeline.entries;
    const playable = Boolean(this.hearing.playback.url);
    $('timeline').replaceChildren(...entries.map((entry) => this.timelineEntry(entry, playable)));
    $('timeline-empty').hidden = entries.length > 0;
    this.markPosition();
  }

  /** Who acted: "Name (role)" for a party, the display name for staff (from the timeline's directory). */
  actor(entry) {
    const actor = entry.actor;
    if (!actor) return null;
    const who = (this.hearing.timeline.actors || {})[actor];
    if (who) {
      const named = who.kind === 'party' && this.i18n.has(`role.${who.role}`)
        ? this.i18n.t('archive.actor_named', { name: who.name, role: this.i18n.t(`role.${who.role}`) })
        : who.name;
      return value(named, 'span', { class: 'log-actor', dataset: { actor } });
    }
    // Not in the directory (e.g. an account since deleted): say what kind of actor, never a raw id.
    const kind = actor.startsWith('party:') ? 'party' : actor.startsWith('user:') ? 'staff' : actor;
    for (const key of [`archive.actor_${kind}`, `role.${kind}`]) {
      if (this.i18n.has(key)) return tr(this.i18n, key, null, 'span', { class: 'log-actor' });
    }
    return value(actor, 'span', { class: 'log-actor' }); // a staff username
  }

  timelineEntry(entry, playable) {
    const language = this.i18n.language;
    const eventKey = this.i18n.has(`event.${entry.event}`) ? `event.${entry.event}` : 'archive.event_other';
    const byParty = entry.party_id && entry.actor === `party:${entry.party_id}`; // the actor already names them
    const party = byParty ? null : entry.party_name || (entry.party_id ? this.partyName(entry.party_id) : null);
    const where = typeof entry.offset_s === 'number'
      ? value(clock(Math.max(0, entry.offset_s - this.playbackZero)), 'span', { class: 'log-offset' })
      : null;
    const parts = [
      value(formatTime(entry.time, language, this.timeZone, { seconds: true }), 'time', { class: 'log-time', datetime: entry.time }),
      where,
      tr(this.i18n, eventKey, null, 'span', { class: 'log-event' }),
      this.actor(entry),
      party ? value(party, 'span', { class: 'log-party' }) : null,
    ];
    if (entry.details && entry.details.notice_language && this.i18n.has(`language.${entry.details.notice_language}`)) {
      parts.push(tr(this.i18n, 'archive.notice_in', { language: this.i18n.t(`language.${entry.details.notice_language}`) }, 'span', { class: 'hint' }));
    }
    const canSeek = playable && typeof entry.offset_s === 'number';
    const body = canSeek
      ? el('button', {
        type: 'button',
        class: 'log-seek',
        dataset: { offset: String(entry.offset_s) },
        on: { click: () => this.seekTo(entry) },
      }, ...parts)
      : el('div', { class: 'log-seek' }, ...parts);
    if (canSeek) body.dataset.i18nAttr = 'title:archive.seek_here';
    this.i18n.apply(body);
    return el('li', { class: 'timeline-entry', dataset: { seq: String(entry.seq), event: entry.event } }, body);
  }

  // --- the seal ------------------------------------------------------------------------------

  renderSeal() {
    const seal = this.hearing.seal;
    const state = SEAL_STATES.has(seal.state) ? seal.state : 'invalid';
    const box = $('seal-state');
    box.className = `seal-state seal-${state}`;
    box.dataset.state = state;
    this.i18n.render(box, `archive.seal_${state}`);
    const signer = this.verification ? this.verification.signer_subject : seal.signer_subject;
    $('seal-signer').textContent = signer || '—';
    const trusted = this.verification ? this.verification.signer_trusted : seal.signer_trusted;
    this.i18n.render($('seal-trust'), trusted === true ? 'archive.trusted_yes'
      : trusted === false ? 'archive.trusted_no' : 'archive.trusted_unknown');
    $('seal-signed').textContent = seal.sealed_at ? this.when(seal.sealed_at) : '—';
    const full = seal.full_check;
    if (!full) this.i18n.render($('seal-full'), 'archive.full_check_never');
    else {
      const key = !full.valid ? 'archive.full_check_failed' : full.current ? 'archive.full_check_ok' : 'archive.full_check_stale';
      this.i18n.render($('seal-full'), key, { time: this.when(full.checked_at), files: full.files_checked });
    }
    const problems = this.verification ? this.verification.problems : seal.problems;
    $('seal-problems').replaceChildren(...problems.map((problem) => this.problem(problem)));
    const sealed = this.hearing.status === 'sealed' && state !== 'deleted' && state !== 'unsealed';
    $('verify-now').disabled = !sealed;
    const exportLink = $('export');
    exportLink.hidden = !sealed;
    exportLink.href = `/api/v1${this.path}/export`;
    this.renderVerification();
  }

  problem(problem) {
    const key = this.i18n.has(`archive.problem_${problem.kind}`) ? `archive.problem_${problem.kind}` : 'archive.problem_other';
    return el('li', { class: 'problem', dataset: { kind: problem.kind } },
      tr(this.i18n, key, null, 'span', { class: 'problem-kind' }),
      problem.path ? value(problem.path, 'code', { class: 'problem-path' }) : null,
      value(problem.detail, 'span', { class: 'hint block' }));
  }

  renderVerification() {
    const box = $('verify-result');
    const result = this.verification;
    box.hidden = !result;
    if (!result) return;
    box.className = `verify-result ${result.valid ? 'seal-valid' : 'seal-invalid'}`;
    box.dataset.valid = String(result.valid);
    this.i18n.render(box, result.valid ? 'archive.verified_ok' : 'archive.verified_failed', {
      time: this.when(result.checked_at),
      files: result.files_checked,
      entries: result.log_entries ?? 0,
    });
  }

  async verify() {
    const button = $('verify-now');
    button.disabled = true;
    this.i18n.render(button, 'archive.verifying');
    try {
      this.verification = await this.api.post(`${this.path}/verify`);
      this.hearing = await this.api.get(this.path);
      this.render();
    } catch (failure) {
      showBanner(this.i18n, failure);
    } finally {
      this.i18n.render(button, 'archive.verify_now');
      button.disabled = false;
    }
  }

  // --- files ---------------------------------------------------------------------------------

  download(file) {
    const link = el('a', { href: `${file.url}?download=1`, download: file.name.split('/').pop(), class: 'button button-small' });
    this.i18n.render(link, 'archive.download');
    link.dataset.i18nAttr = 'aria-label:archive.download_file';
    link.setAttribute('aria-label', this.i18n.t('archive.download_file', { name: file.name }));
    return link;
  }

  renderFiles() {
    const files = this.hearing.files;
    const tracks = files.filter((f) => f.sealed && TRACK_KINDS.has(f.kind));
    $('tracks-body').replaceChildren(...tracks.map((file) => {
      const who = this.partyName(file.participant_id) || file.participant_id || '—';
      return el('tr', { dataset: { fileId: file.id } },
        el('td', {}, value(who)),
        el('td', {}, tr(this.i18n, `archive.kind_${file.kind}`)),
        el('td', {}, value(file.codec || '—')),
        el('td', {}, value(typeof file.duration_s === 'number' ? clock(file.duration_s) : '—')),
        el('td', {}, value(size(file.size, this.i18n))),
        el('td', {}, value(file.sha256 ? file.sha256.slice(0, 12) : '—', 'code', { title: file.sha256 || '' })),
        el('td', {}, this.download(file)));
    }));
    $('tracks-empty').hidden = tracks.length > 0;
    $('tracks-table').hidden = tracks.length === 0;
    const others = files.filter((f) => !tracks.includes(f));
    $('other-files').replaceChildren(...others.map((file) => {
      const kind = this.i18n.has(`archive.kind_${file.kind}`) ? `archive.kind_${file.kind}` : 'archive.kind_other';
      return el('li', { dataset: { fileId: file.id } },
        tr(this.i18n, kind, null, 'span', { class: 'file-kind' }),
        value(file.name, 'code'),
        value(size(file.size, this.i18n), 'span', { class: 'hint' }),
        this.download(file));
    }));
  }

  // --- court acts and addenda --------------------------------------------------------------

  renderActs() {
    const files = new Map(this.hearing.files.map((f) => [f.id, f]));
    const acts = this.hearing.acts || [];
    $('acts-body').replaceChildren(...acts.map((act) => {
      const file = act.file_id ? files.get(act.file_id) : null;
      const seal = act.addendum
        ? tr(this.i18n, 'archive.act_in_addendum', { number: act.addendum })
        : tr(this.i18n, file ? 'archive.act_in_seal' : 'archive.act_not_sealed');
      return el('tr', { dataset: { actId: act.id } },
        el('td', {}, value(act.title)),
        el('td', {}, value(act.signer_subject)),
        el('td', {}, value(this.when(act.signed_at))),
        el('td', {}, seal),
        el('td', {}, file ? this.download(file) : value('—')));
    }));
    $('acts-empty').hidden = acts.length > 0;
    $('acts-table').hidden = acts.length === 0;
    const addenda = this.hearing.addenda || [];
    $('addenda-list').replaceChildren(...addenda.map((addendum) => {
      const manifest = addendum.manifest_file_id ? files.get(addendum.manifest_file_id) : null;
      return el('li', { dataset: { addendum: String(addendum.number) } },
        tr(this.i18n, 'archive.addendum_line', {
          number: addendum.number,
          time: this.when(addendum.sealed_at),
          signer: addendum.signer || '—',
          files: addendum.files,
        }),
        ...(manifest ? [this.download(manifest)] : []));
    }));
    $('addenda-empty').hidden = addenda.length > 0;
  }

  // --- legal hold ----------------------------------------------------------------------------

  renderHold() {
    const retention = this.hearing.retention;
    const held = retention.legal_hold;
    this.i18n.render($('hold-state'), held ? 'archive.hold_on' : 'archive.hold_off', {
      by: retention.hold_changed_by || '—',
      time: this.when(retention.hold_changed_at),
      reason: retention.hold_reason || '—',
    });
    this.i18n.render($('hold-retention'), 'archive.retention', {
      days: retention.days,
      time: this.when(retention.expires_at),
    });
    const toggle = $('hold-toggle');
    this.i18n.render(toggle, held ? 'archive.hold_release' : 'archive.hold_set');
    toggle.className = held ? 'button' : 'button button-danger-outline';
    $('hold-form').hidden = Boolean(retention.deleted_at);
  }

  async toggleHold() {
    const error = $('hold-error');
    error.hidden = true;
    const reason = $('hold-reason').value.trim();
    if (!reason) {
      this.i18n.render(error, 'archive.hold_reason_missing');
      error.hidden = false;
      $('hold-reason').focus();
      return;
    }
    $('hold-toggle').disabled = true;
    try {
      this.hearing.retention = await this.api.request('PUT', `${this.path}/hold`, {
        hold: !this.hearing.retention.legal_hold,
        reason,
      });
      $('hold-reason').value = '';
      this.renderHold();
      this.renderFacts();
    } catch (failure) {
      this.i18n.render(error, failureKey(this.i18n, failure));
      error.hidden = false;
    } finally {
      $('hold-toggle').disabled = false;
    }
  }
}
